package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// TestDeepBodiesMemoryBounded floods a real Latchkey with deeply nested
// JSON bodies from 64 connections at once, as the attack that found it
// did: 4 KiB of open arrays to login (with no account and no Origin),
// logout and an admin PUT, then 64 KiB ones to the admin PUT. Each once
// added tens of megabytes to the peak RSS (a 64 KiB one, gigabytes),
// because a path string was built at every nesting level. Property: every
// one is a 400 bad-request, and the process's peak RSS (VmHWM) stays
// within 64 MiB of what it was before the flood. It runs with the
// GOMEMLIMIT the Kubernetes manifests set. This bounds memory, not time:
// the flood stops early once the bound is crossed.
func TestDeepBodiesMemoryBounded(t *testing.T) {
	t.Parallel()
	const (
		workers  = 64
		boundKiB = 64 << 10
	)
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{Env: map[string]string{
		"GOMEMLIMIT":         "200MiB",
		"LATCHKEY_LOG_LEVEL": "warn",
	}})
	pub, adm := "http://"+lk.Public, "http://"+lk.Admin
	client := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: 2 * workers},
	}
	t.Cleanup(client.CloseIdleConnections)

	type phase struct {
		name, url string
		header    http.Header
		body      string
		requests  int // per worker
	}
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	admin := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + lk.AdminToken}}
	login, logout, put := pub+"/v1/t/"+demoTenant+"/login", pub+"/v1/t/"+demoTenant+"/logout", adm+"/admin/v1/tenants/"+demoTenant
	flat := func(name, url string, h http.Header) phase {
		return phase{name, url, h, `{"name":"x","username":"x","colour":"red"}`, 4}
	}
	warmUp := []phase{flat("login", login, jsonCT), flat("logout", logout, jsonCT), flat("admin PUT", put, admin)}
	flood := []phase{
		{"login, 4 KiB deep", login, jsonCT, `{"username":` + strings.Repeat("[", 4080), 10},
		{"logout, 4 KiB deep", logout, jsonCT, strings.Repeat("[", 4096), 10},
		{"admin PUT, 4 KiB deep", put, admin, strings.Repeat("[", 4096), 10},
		{"admin PUT, 64 KiB deep", put, admin, `{"origins":` + strings.Repeat("[", 64<<10-len(`{"origins":`)), 2},
	}

	pid := lk.PID()
	hwm := func() int64 {
		t.Helper()
		v, err := proctest.StatusKiB(pid, "VmHWM")
		if err != nil {
			t.Fatalf("VmHWM of latchkey: %v", err)
		}
		return v
	}
	var over atomic.Bool // the bound is crossed: stop sending
	var base int64
	run := func(p phase) {
		t.Helper()
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failures []string
		)
		for range workers {
			wg.Go(func() {
				for range p.requests {
					if over.Load() {
						return
					}
					status, body, err := send(client, p.url, p.header, p.body)
					if peak, err := proctest.StatusKiB(pid, "VmHWM"); err == nil && base > 0 && peak-base > boundKiB {
						over.Store(true)
					}
					if err == nil && status == http.StatusBadRequest && strings.Contains(body, "urn:latchkey:problem:bad-request") {
						continue
					}
					mu.Lock()
					failures = append(failures, fmt.Sprintf("status %d, err %v: %.200s", status, err, body))
					mu.Unlock()
					return
				}
			})
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%s: %d of %d workers got something else than a 400 bad-request, e.g. %s", p.name, len(failures), workers, failures[0])
		}
	}

	for _, p := range warmUp {
		run(p)
	}
	// The baseline is the peak so far, of serving 64 connections flat
	// bodies: reset to the RSS now where the kernel allows it.
	if err := proctest.ResetPeakRSS(pid); err != nil {
		t.Logf("VmHWM not reset (%v): the baseline is the peak of the warm-up", err)
	}
	base = hwm()
	t.Logf("baseline VmHWM %d KiB", base)
	for _, p := range flood {
		run(p)
		peak := hwm()
		t.Logf("after %s (%d requests): VmHWM %d KiB, +%d KiB", p.name, workers*p.requests, peak, peak-base)
		if peak-base > boundKiB {
			t.Fatalf("after %s: peak RSS %d KiB, %d KiB over the %d KiB before the flood; want at most %d KiB over", p.name, peak, peak-base, base, boundKiB)
		}
	}
	// And the process still serves.
	if status, _, err := send(client, login, jsonCT, `{"username":"demo","password":""}`); err != nil || status != http.StatusBadRequest {
		t.Errorf("a login after the flood: status %d, err %v; want 400", status, err)
	}
}

// send POSTs (or, to the admin API, PUTs) body to url and returns the
// status and the body of the answer.
func send(client *http.Client, url string, h http.Header, body string) (int, string, error) {
	method := http.MethodPost
	if strings.Contains(url, "/admin/") {
		method = http.MethodPut
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header = h.Clone()
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}
