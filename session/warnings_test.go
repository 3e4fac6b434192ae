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
