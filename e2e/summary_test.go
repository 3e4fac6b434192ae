package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// cell is one observation of a scenario: what was seen, and whether it is
// what the scenario wants.
type cell struct {
	OK   bool
	Text string
}

func (c cell) String() string {
	mark := "ok"
	if !c.OK {
		mark = "**FAIL**"
	}
	return mark + ": " + c.Text
}

// row is one scenario in the summary table.
type row struct {
	Order    int
	Scenario string
	Browser  string
	Route    string // page origin → API
	Cells    [5]cell
	Note     string
	Elapsed  time.Duration
}

// summary collects the rows of parallel scenarios.
type summary struct {
	mu   sync.Mutex
	rows []row
}

func (s *summary) add(r row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, r)
}

var columns = [5]string{
	"1 request sent",
	"2 response readable by the page",
	"3 cookie stored (DevTools jar)",
	"4 cookie sent on the next call",
	"5 page shows the user",
}

// markdown renders the table, in scenario order, with a header that says
// what ran.
func (s *summary) markdown(header string) string {
	s.mu.Lock()
	rows := make([]row, len(s.rows))
	copy(rows, s.rows)
	s.mu.Unlock()
	for i := range rows { // insertion sort by Order: a handful of rows
		for j := i; j > 0 && rows[j].Order < rows[j-1].Order; j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
	var b strings.Builder
	b.WriteString("# Latchkey browser end-to-end summary\n\n")
	b.WriteString(header)
	b.WriteString("\n\n| scenario | browser | page → API |")
	for _, c := range columns {
		b.WriteString(" " + c + " |")
	}
	b.WriteString(" note |\n|---|---|---|")
	for range columns {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |", md(r.Scenario), md(r.Browser), md(r.Route))
		for _, c := range r.Cells {
			b.WriteString(" " + md(c.String()) + " |")
		}
		fmt.Fprintf(&b, " %s (%v) |\n", md(r.Note), r.Elapsed.Round(10*time.Millisecond))
	}
	return b.String()
}

// md escapes a table cell.
func md(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", "<br>")
}

// write saves the table as summary.md in dir and logs it.
func (s *summary) write(tb testing.TB, dir, header string) {
	tb.Helper()
	text := s.markdown(header)
	path := filepath.Join(dir, "summary.md")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Errorf("summary: %v", err)
	}
	tb.Logf("summary (%s):\n%s", path, text)
}
