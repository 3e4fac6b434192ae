package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
)

// outageStore is a memstore whose user and session reads fail as a Redis
// outage does once down is set.
type outageStore struct {
	*memstore.Store
	down atomic.Bool
}

func (s *outageStore) fail(op string) error {
	return fmt.Errorf("outage: %s: %w", op, store.ErrUnavailable)
}

func (s *outageStore) GetUser(ctx context.Context, tenant, name string) (store.User, error) {
	if s.down.Load() {
		return store.User{}, s.fail("get user")
	}
	return s.Store.GetUser(ctx, tenant, name)
}

func (s *outageStore) GetSession(ctx context.Context, tenant, user, id string) (store.Session, error) {
	if s.down.Load() {
		return store.Session{}, s.fail("get session")
	}
	return s.Store.GetSession(ctx, tenant, user, id)
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestServerErrorLogs: a 5xx is logged with the request's ID, tenant,
// method and route template, never its path (a username, a session ID),
// and a method outside the standard ones is logged as "other".
func TestServerErrorLogs(t *testing.T) {
	t.Parallel()
	st := &outageStore{Store: memstore.New(memstore.Config{})}
	e := newEnv(t, envOptions{store: st, token: adminToken})
	var logs syncBuffer
	srv := serverOver(t, e, Config{AdminToken: adminToken, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	pub, adm := httptest.NewServer(srv.Public()), httptest.NewServer(srv.Admin())
	t.Cleanup(pub.Close)
	t.Cleanup(adm.Close)
	cookie := e.loginBob()
	st.down.Store(true)

	const user, sid, method = "lkmarker-user-in-a-path", "lkmarker-session-in-a-path", "LKMARKERMETHOD"
	send := func(base, method, path string, header map[string]string) *http.Response {
		t.Helper()
		r, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = sharedHost
		for k, v := range header {
			r.Header.Set(k, v)
		}
		r.AddCookie(cookie)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	wantRoutes := map[string]string{} // request ID → route template
	for _, c := range []struct {
		base, method, path string
		header             map[string]string
		status             int
		route              string
	}{
		{adm.URL, "GET", "/admin/v1/tenants/beta/users/" + user, map[string]string{"Authorization": "Bearer " + adminToken}, 503,
			"/admin/v1/tenants/{tenant}/users/{username}"},
		{pub.URL, "DELETE", "/v1/t/beta/sessions/" + sid + "?" + user, map[string]string{"Origin": betaDev}, 503,
			"/v1/t/{tenant}/sessions/{id}"},
		{pub.URL, method, "/v1/t/beta/me", nil, 405, ""},
	} {
		res := send(c.base, c.method, c.path, c.header)
		if res.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, res.StatusCode, c.status)
		}
		if c.route != "" {
			wantRoutes[res.Header.Get("X-Request-Id")] = c.route
		}
	}
	pub.Close() // every request line is written
	adm.Close()

	out := logs.String()
	for _, m := range []string{user, sid, method, cookie.Value} {
		if strings.Contains(out, m) {
			t.Errorf("the log holds %q:\n%s", m, out)
		}
	}
	var errorLines int
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var v struct {
			Level, Msg, Method, Route, Tenant string
			RequestID                         string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if v.Msg == "request" && v.Method != "GET" && v.Method != "DELETE" && v.Method != "other" {
			t.Errorf("request line with method %q, want GET, DELETE or other: %s", v.Method, l)
		}
		if v.Level != "ERROR" {
			continue
		}
		errorLines++
		want, ok := wantRoutes[v.RequestID]
		if !ok || v.Route != want || v.Tenant != "beta" || v.Msg != "store unavailable" {
			t.Errorf("error line %s: want msg store unavailable, tenant beta, route %q and the request ID of its answer", l, want)
		}
	}
	if errorLines != len(wantRoutes) {
		t.Errorf("%d error lines, want %d:\n%s", errorLines, len(wantRoutes), out)
	}
}

// TestPanicLogged: a panic is a 500 internal problem, and both its line
// and the request's carry the request ID, never the path.
func TestPanicLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	var logs syncBuffer
	srv := serverOver(t, e, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	const secret = "lkmarker-in-a-panicking-path"
	h := srv.instrument("admin", false)(srv.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/admin/v1/tenants/acme/users/"+secret, nil))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "urn:latchkey:problem:internal") {
		t.Errorf("a panic: %d %s, want 500 internal", w.Code, w.Body)
	}
	id, out := w.Header().Get("X-Request-Id"), logs.String()
	if strings.Contains(out, secret) {
		t.Errorf("the log holds the path:\n%s", out)
	}
	for _, want := range []string{`"msg":"panic while serving","request_id":"` + id + `"`, `"msg":"request","request_id":"` + id + `"`, `"status":500`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}
