package proctest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// StatusKiB returns one "kB" line of /proc/PID/status (Linux), such as
// VmRSS (the resident set now) or VmHWM (its peak).
func StatusKiB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// ResetPeakRSS sets the VmHWM of process pid back to its current VmRSS
// (clear_refs 5, Linux 4.0 and later), so that VmHWM afterwards is the peak
// of what follows. It needs the right to write the process's clear_refs,
// which a test has over its own children.
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
