package topology_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// The one tenant and user every Latchkey process of these tests serves.
const (
	tenantID  = "acme"
	appOrigin = "https://app.acme.test"
	userName  = "alice"
	// loadUser logs in under load, so that the sessions it makes do not
	// push userName's out (a user keeps at most 50).
	loadUser  = "bob"
	cookieKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	// adminToken is shared by the replicas of a test.
	adminToken = "topology-test-admin-token-0123"
)

// cheapParams keep argon2id fast in tests; production uses the defaults.
var cheapParams = session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// writeTenantsFile writes a tenants file with tenantID, userName and
// loadUser, whose one password it returns.
func writeTenantsFile(tb testing.TB) (path, password string) {
	tb.Helper()
	password = rand.Text()
	hash, err := session.HashPassword(password, cheapParams)
	if err != nil {
		tb.Fatalf("hash password: %v", err)
	}
	path = filepath.Join(tb.TempDir(), "tenants.yaml")
	body := fmt.Sprintf(`tenants:
  - id: %s
    name: Acme (topology tests)
    origins: [%s]
    cookie: {same_site: lax}
    users:
      - {username: %s, password_hash: %q}
      - {username: %s, password_hash: %q}
`, tenantID, appOrigin, userName, hash, loadUser, hash)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		tb.Fatalf("write tenants file: %v", err)
	}
	return path, password
}

// newPrefix returns a key prefix of its own. The set-ups are the test's
// own and vanish with it, so nothing is cleaned up under it.
func newPrefix() string { return "lktest:" + strings.ToLower(rand.Text()[:16]) + ":" }

func newStore(tb testing.TB, c redis.UniversalClient, prefix string) *redisstore.Store {
	tb.Helper()
	st, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
	if err != nil {
		tb.Fatalf("redisstore.New: %v", err)
	}
	return st
}

// answer is one HTTP exchange.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error         // a transport error; Status is 0
	At     time.Time     // when it ended
	Dur    time.Duration // how long it took
}

// Problem returns the problem type of an error answer without its URN
// prefix, or "".
func (a answer) Problem() string {
	var p struct {
		Type string `json:"type"`
	}
	json.Unmarshal(a.Body, &p)
	return strings.TrimPrefix(p.Type, "urn:latchkey:problem:")
}

// Cookie returns the session cookie an answer sets, as name=value, or "".
func (a answer) Cookie() string {
	for _, c := range (&http.Response{Header: a.Header}).Cookies() {
		if c.Name == "__Host-latchkey-"+tenantID && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

func (a answer) String() string {
	if a.Err != nil {
		return "error " + a.Err.Error()
	}
	if p := a.Problem(); p != "" {
		return fmt.Sprintf("%d %s", a.Status, p)
	}
	return fmt.Sprint(a.Status)
}

// lkClient talks to one Latchkey process as the SPA and as an operator.
type lkClient struct {
	public, admin string // base URLs
	hc            *http.Client
}

func newLKClient(public, admin string) *lkClient {
	return &lkClient{public: "http://" + public, admin: "http://" + admin, hc: &http.Client{Timeout: 15 * time.Second}}
}

func (c *lkClient) do(method, url, origin, cookie string, body any, header map[string]string) answer {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{Err: err, At: time.Now()}
	}
	if body != nil || method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		return answer{Err: err, At: time.Now(), Dur: time.Since(start)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return answer{Status: res.StatusCode, Header: res.Header, Body: b, Err: err, At: time.Now(), Dur: time.Since(start)}
}

func (c *lkClient) login(user, password string) answer {
	return c.do("POST", c.public+"/v1/t/"+tenantID+"/login", appOrigin, "", map[string]string{"username": user, "password": password}, nil)
}

func (c *lkClient) me(cookie string) answer {
	return c.do("GET", c.public+"/v1/t/"+tenantID+"/me", appOrigin, cookie, nil, nil)
}

func (c *lkClient) sessions(cookie string) answer {
	return c.do("GET", c.public+"/v1/t/"+tenantID+"/sessions", appOrigin, cookie, nil, nil)
}

func (c *lkClient) logout(cookie string) answer {
	return c.do("POST", c.public+"/v1/t/"+tenantID+"/logout", appOrigin, cookie, nil, nil)
}

// putTenant replaces the tenant through the admin API with these origins.
func (c *lkClient) putTenant(origins []string) answer {
	t := session.Tenant{
		ID: tenantID, Name: "Acme (topology tests)", Origins: origins, Hostnames: []string{},
		Cookie:  session.CookiePolicy{SameSite: session.SameSiteLax},
		Session: session.SessionPolicy{IdleTimeout: session.Duration(time.Hour), AbsoluteLifetime: session.Duration(24 * time.Hour)},
	}
	return c.do("PUT", c.admin+"/admin/v1/tenants/"+tenantID, "", "", t, map[string]string{"Authorization": "Bearer " + adminToken})
}

// sessionCount returns how many sessions a GET sessions answer lists.
func sessionCount(a answer) int {
	var v struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	json.Unmarshal(a.Body, &v)
	return len(v.Sessions)
}

// go-redis logs its pool's dial failures itself, which the failover
// provokes on purpose. Set once, before any test runs: the logger is a
// global.
func init() { redis.SetLogger(quiet{}) }

// quiet discards go-redis's log lines.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
