package session

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func validTenant() Tenant {
	return Tenant{
		ID: "acme", Name: "Acme Inc.",
		Origins:   []string{"https://app.acme.com", "https://admin.acme.com"},
		Hostnames: []string{"auth.acme.com"},
		Cookie:    CookiePolicy{SameSite: SameSiteLax},
	}.withDefaults()
}

// problemFields returns "field: message" for every problem of err.
func problemFields(tb testing.TB, err error) []string {
	tb.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		tb.Fatalf("error %v is not a *ValidationError", err)
	}
	out := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = p.Field + ": " + p.Message
	}
	return out
}

func TestTenantValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Tenant)
		field  string // "" means valid
	}{
		{"valid", func(*Tenant) {}, ""},
		{"dev localhost", func(t *Tenant) { t.Dev = true; t.Origins = []string{"http://localhost:5173"} }, ""},
		{"dev loopback ip", func(t *Tenant) { t.Dev = true; t.Origins = []string{"http://127.0.0.1:5173", "http://[::1]:5173"} }, ""},
		{"bad id uppercase", func(t *Tenant) { t.ID = "Acme" }, "id"},
		{"bad id underscore", func(t *Tenant) { t.ID = "ac_me" }, "id"},
		{"bad id hyphen edge", func(t *Tenant) { t.ID = "-acme" }, "id"},
		{"empty name", func(t *Tenant) { t.Name = " " }, "name"},
		{"no origins", func(t *Tenant) { t.Origins = nil }, "origins"},
		{"wildcard", func(t *Tenant) { t.Origins = []string{"*"} }, "origins[0]"},
		{"wildcard subdomain", func(t *Tenant) { t.Origins = []string{"https://*.acme.com"} }, "origins[0]"},
		{"null", func(t *Tenant) { t.Origins = []string{"null"} }, "origins[0]"},
		{"file", func(t *Tenant) { t.Origins = []string{"file:///tmp"} }, "origins[0]"},
		{"path", func(t *Tenant) { t.Origins = []string{"https://app.acme.com/login"} }, "origins[0]"},
		{"trailing slash", func(t *Tenant) { t.Origins = []string{"https://app.acme.com/"} }, "origins[0]"},
		{"uppercase", func(t *Tenant) { t.Origins = []string{"https://App.acme.com"} }, "origins[0]"},
		{"default port", func(t *Tenant) { t.Origins = []string{"https://app.acme.com:443"} }, "origins[0]"},
		{"userinfo", func(t *Tenant) { t.Origins = []string{"https://u@app.acme.com"} }, "origins[0]"},
		{"whitespace", func(t *Tenant) { t.Origins = []string{" https://app.acme.com"} }, "origins[0]"},
		{"http non-local", func(t *Tenant) { t.Origins = []string{"http://app.acme.com"} }, "origins[0]"},
		{"localhost without dev", func(t *Tenant) { t.Origins = []string{"http://localhost:5173"} }, "origins[0]"},
		{"https localhost without dev", func(t *Tenant) { t.Origins = []string{"https://localhost:5173"} }, "origins[0]"},
		{"duplicate origin", func(t *Tenant) { t.Origins = []string{"https://a.acme.com", "https://a.acme.com"} }, "origins[1]"},
		{"public suffix wildcard", func(t *Tenant) { t.Origins = []string{"https://*.github.io"} }, "origins[0]"},
		{"hostname with port", func(t *Tenant) { t.Hostnames = []string{"auth.acme.com:443"} }, "hostnames[0]"},
		{"hostname uppercase", func(t *Tenant) { t.Hostnames = []string{"Auth.acme.com"} }, "hostnames[0]"},
		{"hostname trailing dot", func(t *Tenant) { t.Hostnames = []string{"auth.acme.com."} }, "hostnames[0]"},
		{"hostname scheme", func(t *Tenant) { t.Hostnames = []string{"https://auth.acme.com"} }, "hostnames[0]"},
		{"no same_site", func(t *Tenant) { t.Cookie.SameSite = "" }, "cookie.same_site"},
		{"bad same_site", func(t *Tenant) { t.Cookie.SameSite = "Lax" }, "cookie.same_site"},
		{"partitioned without none", func(t *Tenant) { t.Cookie.Partitioned = true }, "cookie.partitioned"},
		{"idle too short", func(t *Tenant) { t.Session.IdleTimeout = Duration(time.Second) }, "session.idle_timeout"},
		{"absolute over 400 days", func(t *Tenant) { t.Session.AbsoluteLifetime = Duration(401 * 24 * time.Hour) }, "session.absolute_lifetime"},
		{"absolute shorter than idle", func(t *Tenant) {
			t.Session.IdleTimeout = Duration(2 * time.Hour)
			t.Session.AbsoluteLifetime = Duration(time.Hour)
		}, "session.absolute_lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := validTenant()
			tt.mutate(&tn)
			err := tn.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want a problem with field %s", tt.field)
			}
			fields := problemFields(t, err)
			for _, f := range fields {
				if strings.HasPrefix(f, tt.field+": ") {
					return
				}
			}
			t.Errorf("Validate() problems = %q, want one for field %s", fields, tt.field)
		})
	}
}

func TestTenantValidateReportsEverything(t *testing.T) {
	t.Parallel()
	tn := Tenant{ID: "Bad", Origins: []string{"*", "null", "http://evil.example"}, Cookie: CookiePolicy{Partitioned: true}}
	fields := problemFields(t, tn.Validate())
	for _, want := range []string{"id", "name", "origins[0]", "origins[1]", "origins[2]", "cookie.same_site", "cookie.partitioned", "session.idle_timeout"} {
		found := false
		for _, f := range fields {
			found = found || strings.HasPrefix(f, want+": ")
		}
		if !found {
			t.Errorf("problems = %q, want one for %s", fields, want)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"auth.acme.com", "auth.acme.com"},
		{"AUTH.Acme.COM", "auth.acme.com"},
		{"auth.acme.com:8443", "auth.acme.com"},
		{"auth.acme.com.", "auth.acme.com"},
		{"auth.acme.com.:443", "auth.acme.com"},
		{"[::1]:8080", ""},
		{"", ""},
		{"bad_host", ""},
		{"a..b", ""},
	}
	for _, tt := range tests {
		if got := NormalizeHost(tt.in); got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestValidLabelMatchesPattern checks the hand-written label check against
// the regular expression it replaces, on every short string over an
// alphabet with each character class at its edges, and on lengths around
// the 63-byte limit.
func TestValidLabelMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	alphabet := []string{"a", "z", "0", "9", "-", "A", "Z", ".", "_", "`", "{", "/", ":", "\x00", "\u00e9"}
	inputs := allStrings(alphabet, 4)
	for _, n := range []int{61, 62, 63, 64, 65} {
		body := strings.Repeat("a", n)
		inputs = append(inputs, body, "-"+body[1:], body[1:]+"-", body[:n/2]+"-"+body[n/2+1:])
	}
	for _, in := range inputs {
		if got, want := validLabel(in), re.MatchString(in); got != want {
			t.Errorf("validLabel(%q) = %v, want %v", in, got, want)
		}
	}
}

// allStrings returns every string of at most n pieces drawn from alphabet,
// the empty one included: exhaustive inputs for checking a hand-written
// check against the reference it replaces.
func allStrings(alphabet []string, n int) []string {
	out := []string{""}
	prev := []string{""}
	for range n {
		var next []string
		for _, p := range prev {
			for _, c := range alphabet {
				next = append(next, p+c)
			}
		}
		out = append(out, next...)
		prev = next
	}
	return out
}
