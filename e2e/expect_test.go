package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// expectationsFile is the expectation table: for each scenario (and so
// tenant policy) and engine profile, the five observations, as tokens.
// It is data, read by the suite and checked against every observation;
// docs/browsers.md and the doctor are derived from the same truth. Every
// row was observed: a run writes artifacts/e2e/expectations.observed.txt
// in this format, and a row changes by copying an observed one after
// reading why the engine behaves so.
const expectationsFile = "e2e/expectations.txt"

// observationNames are the five observations, in table order.
var observationNames = [5]string{"sent", "read", "stored", "next", "user"}

// expectation is one row of the table.
type expectation struct {
	Scenario, Policy, Profile string
	Obs                       [5]string
	line                      int
}

// expectations is the loaded table, with which rows a run checked.
type expectations struct {
	path string
	rows map[[2]string]*expectation // by scenario, profile

	mu      sync.Mutex
	checked map[[2]string]bool
}

// loadExpectations reads and validates the table: every row names a known
// scenario and profile, once, with its scenario's policy.
func loadExpectations(tb testing.TB) *expectations {
	tb.Helper()
	path := filepath.Join(proctest.ModuleRoot(tb), expectationsFile)
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("expectation table: %v", err)
	}
	defer f.Close()
	e := &expectations{path: path, rows: make(map[[2]string]*expectation), checked: make(map[[2]string]bool)}
	known := make(map[string]bool)
	for _, sc := range scenarios() {
		known[sc.ID] = true
	}
	knownProfile := make(map[string]bool)
	for _, p := range profiles() {
		knownProfile[p.Name] = true
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 8 {
			tb.Errorf("%s:%d: %d fields, want 8 (scenario policy profile %s)", expectationsFile, n, len(fs), strings.Join(observationNames[:], " "))
			continue
		}
		x := &expectation{Scenario: fs[0], Policy: fs[1], Profile: fs[2], line: n}
		copy(x.Obs[:], fs[3:])
		key := [2]string{x.Scenario, x.Profile}
		switch {
		case !known[x.Scenario]:
			tb.Errorf("%s:%d: unknown scenario %q", expectationsFile, n, x.Scenario)
		case !knownProfile[x.Profile]:
			tb.Errorf("%s:%d: unknown profile %q", expectationsFile, n, x.Profile)
		case e.rows[key] != nil:
			tb.Errorf("%s:%d: %s in %s again (line %d)", expectationsFile, n, x.Scenario, x.Profile, e.rows[key].line)
		default:
			e.rows[key] = x
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("expectation table: %v", err)
	}
	return e
}

// check compares r's observations with the table's row, failing tb for
// each that differs, or for a missing row.
func (e *expectations) check(tb testing.TB, r result) {
	tb.Helper()
	key := [2]string{r.Scenario.ID, r.Profile.Name}
	e.mu.Lock()
	x := e.rows[key]
	e.checked[key] = true
	e.mu.Unlock()
	if x == nil {
		tb.Errorf("%s has no row for %s in %s; observed:\n%s", expectationsFile, r.Scenario.ID, r.Profile.Name, observedLine(r))
		return
	}
	if x.Policy != r.Policy {
		tb.Errorf("%s:%d: policy %s, but scenario %s exercises %s", expectationsFile, x.line, x.Policy, r.Scenario.ID, r.Policy)
	}
	for i, o := range r.Obs {
		if o.Token != x.Obs[i] {
			tb.Errorf("(%d) %s: observed %s, %s:%d expects %s (%s)", i+1, observationNames[i], o.Token, expectationsFile, x.line, x.Obs[i], o.Text)
		}
	}
}

// matches reports whether r's observations are the table's.
func (e *expectations) matches(r result) bool {
	x := e.rows[[2]string{r.Scenario.ID, r.Profile.Name}]
	if x == nil || x.Policy != r.Policy {
		return false
	}
	for i, o := range r.Obs {
		if o.Token != x.Obs[i] {
			return false
		}
	}
	return true
}

// unchecked returns the rows no observation was checked against.
func (e *expectations) unchecked() []*expectation {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*expectation
	for k, x := range e.rows {
		if !e.checked[k] {
			out = append(out, x)
		}
	}
	return out
}

// observedLine is r as a row of the table.
func observedLine(r result) string {
	fs := []string{r.Scenario.ID, r.Policy, r.Profile.Name}
	for _, o := range r.Obs {
		fs = append(fs, o.Token)
	}
	return formatRows([][]string{fs})
}

// formatRows aligns rows of fields into columns.
func formatRows(rows [][]string) string {
	var width []int
	for _, r := range rows {
		for i, f := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(f))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, f := range r {
			if i == len(r)-1 {
				b.WriteString(f)
			} else {
				fmt.Fprintf(&b, "%-*s  ", width[i], f)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// expectationsHeader opens the table file, and the observed one.
const expectationsHeader = `# Latchkey's browser truth: what each scenario of the end-to-end suite
# (e2e/e2e_test.go) observes in each engine profile (e2e/engine_test.go),
# one row per scenario and profile, checked by TestBrowser against every
# run. Only observed rows belong here: a run writes what it saw to
# artifacts/e2e/expectations.observed.txt in this format.
#
# Columns: the scenario; the tenant cookie policy it exercises (host-lax:
# own hostname on the SPA's site, SameSite=Lax; none-partitioned: shared
# host, SameSite=None; Partitioned; none: the same without Partitioned;
# lax-cross-site: shared host, SameSite=Lax); the engine profile; then
# the five observations:
#   sent    preflight status/status of the request at Latchkey, as the TLS
#           front saw them from the scenario's tab ("-": none)
#   read    what the page read: the status, or blocked
#   stored  the cookie jar after the call: partitioned (keyed to the
#           page's site), unpartitioned, no (":reason" when the engine
#           gives one), cleared (held before, gone after); where the engine
#           shows no jar (WebKitGTK) inferred:yes/no/cleared from the
#           cookies the browser sent with the call and with the next me;
#           for log out everywhere, each context's jar (A:…,B:…)
#   next    the next me as the page read it / whether the cookie went
#   user    whether the page shows the user signed in
`
