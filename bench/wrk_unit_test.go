//go:build bench

package bench

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunWrk checks the wrk driver against an in-process server: that wrk
// sends the case's requests in turn, as Go would, and that answers on the
// wrong side of 400 count as errors.
// go test -tags bench -run '^TestRunWrk$' ./bench/
func TestRunWrk(t *testing.T) {
	bin, version, err := findWrk()
	if err != nil {
		t.Skip(err)
	}
	t.Log(version)
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.Path+" "+r.Header.Get("Cookie")+" "+r.UserAgent()]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cookies := []string{"a", "b", "c"}
	c := &benchCase{
		Name: "test", PID: os.Getpid,
		Request: func(seq int64) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/me", nil)
			req.Header.Set("Cookie", "s="+cookies[seq%3])
			return req
		},
		Check: expect(http.StatusOK, ""),
		Wrk:   true, URL: srv.URL, Cycle: len(cookies), Status: http.StatusOK,
	}
	w := wrkConfig{Bin: bin, Threads: 1, Conns: 2}
	res, err := runWrk(t.Context(), c, w, t.TempDir(), 100*time.Millisecond, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.N == 0 || res.Gen != "wrk" || res.Quantile(0.99) <= 0 || res.ClientCPU <= 0 {
		t.Errorf("N=%v Gen=%v p99=%v ClientCPU=%v, want requests, wrk, latencies and wrk's CPU", res.N, res.Gen, res.Quantile(0.99), res.ClientCPU)
	}
	if len(res.Errors) != 0 {
		t.Errorf("Errors=%v, want none", res.Errors)
	}
	mu.Lock()
	for _, k := range cookies {
		if n := seen["GET /me s="+k+" Go-http-client/1.1"]; n < res.N/4 {
			t.Errorf("cookie %s sent %d times of %d, want about a third; seen %v", k, n, res.N, seen)
		}
	}
	if len(seen) != len(cookies) {
		t.Errorf("seen %v, want only the case's %d requests", seen, len(cookies))
	}
	mu.Unlock()

	// The same answers, expected to be refusals: every one is an error.
	c.Status, c.script = http.StatusUnauthorized, ""
	res, err = runWrk(t.Context(), c, w, t.TempDir(), 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Errors["status < 400"]; got != res.N {
		t.Errorf(`Errors["status < 400"]=%v, want %v (every answer)`, got, res.N)
	}
}

func TestLuaQuote(t *testing.T) {
	var b strings.Builder
	luaQuote(&b, []byte("GET / HTTP/1.1\r\nX: \"q\\\"\r\n\r\n"))
	want := `"GET / HTTP/1.1\13\10X: \"q\\\"\13\10\13\10"`
	if b.String() != want {
		t.Errorf("luaQuote=%s, want %s", b.String(), want)
	}
}
