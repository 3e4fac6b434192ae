package session

import (
	"strings"
	"testing"
)

const publicHost = "auth.latchkey.test"

func TestPublicHostsCannotBeClaimed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, err := NewManager(f.st, Config{Keys: [][]byte{key1}, Password: cheapParams, PublicHosts: []string{publicHost, "login.latchkey.test"}})
	if err != nil {
		t.Fatal(err)
	}
	tn := validTenant()
	tn.ID, tn.Hostnames = "gamma", []string{"auth.gamma.test", publicHost}
	_, _, err = m.PutTenant(t.Context(), tn)
	got := strings.Join(problemFields(t, err), "\n")
	if want := `hostnames[1]: "` + publicHost + `" is a public host`; !strings.Contains(got, want) {
		t.Errorf("PutTenant claiming a public host: %s; want a problem containing %q", got, want)
	}
	if _, err := m.GetTenant(t.Context(), "gamma"); err == nil {
		t.Error("the refused tenant was stored")
	}
	if !m.IsPublicHost(publicHost) || m.IsPublicHost("auth.gamma.test") {
		t.Errorf("IsPublicHost = %v, %v; want true for the public host only", m.IsPublicHost(publicHost), m.IsPublicHost("auth.gamma.test"))
	}
	// Without the setting, nothing says the host is shared: the claim is a
	// tenant's own hostname like any other.
	if _, _, err := f.m.PutTenant(t.Context(), tn); err != nil {
		t.Errorf("PutTenant without PublicHosts: %v", err)
	}

	src := `
tenants:
  - id: gamma
    name: Gamma
    origins: [https://app.gamma.test]
    hostnames: [auth.gamma.test, login.latchkey.test]
    cookie: {same_site: lax}
`
	_, err = ParseTenantsFile(strings.NewReader(src), publicHost, "login.latchkey.test")
	if err == nil || !strings.Contains(err.Error(), `tenant "gamma": hostnames[1]: "login.latchkey.test" is a public host`) {
		t.Errorf("ParseTenantsFile claiming a public host: %v, want the claim refused", err)
	}
	if _, err := ParseTenantsFile(strings.NewReader(src)); err != nil {
		t.Errorf("ParseTenantsFile without public hosts: %v", err)
	}
}

func TestNewManagerChecksPublicHosts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, h := range []string{"", "Auth.Example.com", "auth.example.com:443", "https://auth.example.com", "auth.example.com."} {
		if _, err := NewManager(f.st, Config{Keys: [][]byte{key1}, Password: cheapParams, PublicHosts: []string{h}}); err == nil || !strings.Contains(err.Error(), "PublicHosts") {
			t.Errorf("NewManager(PublicHosts %q) = %v, want an error naming PublicHosts", h, err)
		}
	}
}

// TestManagerWarningsUsePublicHost: the load-time and PUT warnings judge a
// path-form tenant against the host SPAs call, the first public host, so a
// page on 127.0.0.1 calling an API on localhost is warned about.
func TestManagerWarningsUsePublicHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, err := NewManager(f.st, Config{Keys: [][]byte{key1}, Password: cheapParams, PublicHosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	tn := validTenant()
	tn.Origins, tn.Hostnames, tn.Cookie.SameSite, tn.Cookie.Partitioned = []string{"http://127.0.0.1:5173"}, nil, SameSiteLax, false
	if ws := m.Warnings(&tn); len(ws) == 0 || !strings.Contains(ws[0].Message, "use the same host name for both") {
		t.Errorf("Warnings with public host localhost = %v, want the same-host-name warning", ws)
	}
	// The shared host unknown, the page is taken to call the API by its
	// own name, where a dev tenant's cookie works in every browser.
	if ws := f.m.Warnings(&tn); len(ws) != 0 {
		t.Errorf("Warnings with no public host = %v, want none (the shared host is unknown)", ws)
	}
}
