package session

import (
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		origins   []string
		hostnames []string
		sameSite  SameSite
		part      bool
		dev       bool
		want      string // substring of the one warning, "" for none
	}{
		{"same-site lax", []string{"https://app.acme.com"}, []string{"auth.acme.com"}, SameSiteLax, false, false, ""},
		{"same-site strict, deeper", []string{"https://a.b.acme.com"}, []string{"auth.acme.com"}, SameSiteStrict, false, false, ""},
		{"cross-site lax", []string{"https://app.acme.com"}, []string{"auth.latchkey.io"}, SameSiteLax, false, false, "add a hostname on the SPA's site (e.g. auth.acme.com)"},
		{"shared host lax", []string{"https://app.acme.com"}, nil, SameSiteLax, false, false, "will call the shared host"},
		{"cross-site none", []string{"https://app.acme.com"}, nil, SameSiteNone, false, false, "set cookie.partitioned true"},
		{"cross-site none partitioned", []string{"https://app.acme.com"}, nil, SameSiteNone, true, false, ""},
		{"schemeful: http origin, https host", []string{"http://localhost:5173"}, []string{"localhost"}, SameSiteLax, false, true, "cross-site to every hostname"},
		{"local dev on the shared host", []string{"http://localhost:5173"}, nil, SameSiteLax, false, true, ""},
		{"public suffix sites differ", []string{"https://alice.github.io"}, []string{"bob.github.io"}, SameSiteLax, false, false, "cross-site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := Tenant{ID: "acme", Origins: tt.origins, Hostnames: tt.hostnames, Dev: tt.dev,
				Cookie: CookiePolicy{SameSite: tt.sameSite, Partitioned: tt.part}}
			ws := tn.Warnings()
			if tt.want == "" {
				if len(ws) != 0 {
					t.Errorf("Warnings() = %+v, want none", ws)
				}
				return
			}
			if len(ws) != 1 || !strings.Contains(ws[0].Message, tt.want) || ws[0].Field != "origins[0]" {
				t.Errorf("Warnings() = %+v, want one on origins[0] containing %q", ws, tt.want)
			}
		})
	}
}

// TestWarningsLoopbackNames: localhost, 127.0.0.1 and [::1] are one machine
// but three sites, so a page on one name calling the API on another can
// log in and never keep its Lax session; the warning names the fix.
func TestWarningsLoopbackNames(t *testing.T) {
	t.Parallel()
	const fix = "use the same host name for both"
	tests := []struct {
		name       string
		origins    []string
		hostnames  []string
		sharedHost string
		sameSite   SameSite
		part       bool
		want       map[string]string // field -> substring; empty means no warning at all
	}{
		{name: "one name, shared host unknown", origins: []string{"http://localhost:5173", "http://localhost:3000"}, sameSite: SameSiteLax},
		{name: "both names, shared host unknown", origins: []string{"http://localhost:5173", "http://127.0.0.1:5173"}, sameSite: SameSiteLax,
			want: map[string]string{"origins[1]": fix}},
		{name: "IPv6 loopback after 127.0.0.1", origins: []string{"http://127.0.0.1:5173", "http://[::1]:5173"}, sameSite: SameSiteStrict,
			want: map[string]string{"origins[1]": "(127.0.0.1)"}},
		{name: "127.0.0.1 page, API on localhost", origins: []string{"http://127.0.0.1:5173"}, sharedHost: "localhost", sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": fix}},
		{name: "localhost page, API on 127.0.0.1", origins: []string{"http://localhost:5173"}, sharedHost: "127.0.0.1", sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": "(127.0.0.1)"}},
		{name: "the demo: localhost on localhost", origins: []string{"http://localhost:5173"}, sharedHost: "localhost", sameSite: SameSiteLax},
		{name: "the old demo: both names on localhost", origins: []string{"http://localhost:5173", "http://127.0.0.1:5173"}, sharedHost: "localhost", sameSite: SameSiteLax,
			want: map[string]string{"origins[1]": fix}},
		{name: "a shared host name with a trailing dot and capitals", origins: []string{"http://localhost:5173"}, sharedHost: "LocalHost.", sameSite: SameSiteLax},
		{name: "IPv6 shared host", origins: []string{"http://[::1]:5173"}, sharedHost: "[::1]", sameSite: SameSiteLax},
		{name: "host form on localhost, page on 127.0.0.1", origins: []string{"http://127.0.0.1:5173"}, hostnames: []string{"localhost"}, sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": fix}},
		{name: "partitioned None keeps its session across names", origins: []string{"http://localhost:5173", "http://127.0.0.1:5173"}, sharedHost: "localhost",
			sameSite: SameSiteNone, part: true},
		{name: "unpartitioned None across names is a third-party cookie", origins: []string{"http://127.0.0.1:5173"}, sharedHost: "localhost",
			sameSite: SameSiteNone, want: map[string]string{"origins[0]": "set cookie.partitioned true"}},
		{name: "a public page on a local shared host", origins: []string{"https://app.acme.com"}, sharedHost: "localhost", sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": "will call the shared host localhost"}},
		{name: "shared host known and same-site", origins: []string{"https://app.acme.com"}, sharedHost: "auth.acme.com", sameSite: SameSiteLax},
		{name: "shared host known and cross-site", origins: []string{"https://app.acme.com"}, sharedHost: "auth.latchkey.io", sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": "will call the shared host auth.latchkey.io (this tenant has no hostnames), which is another site"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := Tenant{ID: "acme", Dev: true, Origins: tt.origins, Hostnames: tt.hostnames,
				Cookie: CookiePolicy{SameSite: tt.sameSite, Partitioned: tt.part}}
			ws := tn.WarningsOn(tt.sharedHost)
			if len(ws) != len(tt.want) {
				t.Fatalf("WarningsOn(%q) = %+v, want %d warnings: %v", tt.sharedHost, ws, len(tt.want), tt.want)
			}
			for _, w := range ws {
				if want, ok := tt.want[w.Field]; !ok || !strings.Contains(w.Message, want) || w.Tenant != "acme" {
					t.Errorf("warning on %s = %q, want one containing %q", w.Field, w.Message, want)
				}
			}
			if tt.sharedHost == "" {
				if got := tn.Warnings(); len(got) != len(ws) {
					t.Errorf("Warnings() = %+v, want WarningsOn(\"\") = %+v", got, ws)
				}
			}
		})
	}
}
