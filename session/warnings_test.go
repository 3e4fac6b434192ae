package session

import (
	"slices"
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	t.Parallel()
	all := []string{EngineChromium, EngineFirefox, EngineWebKit}
	tests := []struct {
		name       string
		origins    []string
		hostnames  []string
		sharedHost string
		sameSite   SameSite
		part       bool
		dev        bool
		want       []string // substrings of the one warning, none for no warning
		engines    []string
	}{
		{name: "same-site lax", origins: []string{"https://app.acme.com"}, hostnames: []string{"auth.acme.com"}, sameSite: SameSiteLax},
		{name: "same-site strict, deeper", origins: []string{"https://a.b.acme.com"}, hostnames: []string{"auth.acme.com"}, sameSite: SameSiteStrict},
		{name: "same-site under a listed two-label suffix", origins: []string{"https://app.acme.co.uk"}, hostnames: []string{"auth.acme.co.uk"}, sameSite: SameSiteLax},
		{name: "cross-site lax", origins: []string{"https://app.acme.com"}, hostnames: []string{"auth.latchkey.io"}, sameSite: SameSiteLax,
			want: []string{"in every browser (Chrome, Firefox, Safari)", "add a hostname on the SPA's site (e.g. auth.acme.com)"}, engines: all},
		{name: "cross-site strict", origins: []string{"https://app.acme.com"}, hostnames: []string{"auth.latchkey.io"}, sameSite: SameSiteStrict,
			want: []string{"strict cookie", "in every browser (Chrome, Firefox, Safari)"}, engines: all},
		{name: "shared host lax", origins: []string{"https://app.acme.com"}, sameSite: SameSiteLax,
			want: []string{"will call the shared host", "in every browser (Chrome, Firefox, Safari)"}, engines: all},
		{name: "cross-site none", origins: []string{"https://app.acme.com"}, sameSite: SameSiteNone,
			want: []string{"set cookie.partitioned true", "Chrome drops when third-party cookies are blocked", "Safari (WebKit) always",
				"Firefox when cross-site cookies are blocked", "add a hostname on the SPA's site (e.g. auth.acme.com)"}, engines: all},
		{name: "cross-site none partitioned", origins: []string{"https://app.acme.com"}, sameSite: SameSiteNone, part: true,
			want:    []string{"Safari (WebKit) before 26.2", "Firefox with cross-site cookies blocked", "add a hostname on the SPA's site (e.g. auth.acme.com), the one set-up that works in every browser"},
			engines: []string{EngineFirefox, EngineWebKit}},
		{name: "cross-site none partitioned, known shared host", origins: []string{"https://app.acme.com"}, sharedHost: "auth.latchkey.io", sameSite: SameSiteNone, part: true,
			want: []string{"will call the shared host auth.latchkey.io", "Safari (WebKit) before 26.2"}, engines: []string{EngineFirefox, EngineWebKit}},
		{name: "same-site none partitioned", origins: []string{"https://app.acme.com"}, hostnames: []string{"auth.acme.com"}, sameSite: SameSiteNone, part: true},
		{name: "a loopback hostname is called as the page is", origins: []string{"http://localhost:5173"}, hostnames: []string{"localhost"}, sameSite: SameSiteLax, dev: true},
		{name: "a loopback hostname over plain HTTP, None", origins: []string{"http://localhost:5173"}, hostnames: []string{"localhost"}, sameSite: SameSiteNone, dev: true,
			want: []string{"set cookie.same_site lax"}, engines: []string{EngineWebKit}},
		{name: "a local page, a hosted API", origins: []string{"http://localhost:5173"}, hostnames: []string{"auth.acme.com"}, sameSite: SameSiteNone, part: true, dev: true,
			want: []string{"cross-site to every hostname", "call the API on this machine"}, engines: []string{EngineFirefox, EngineWebKit}},
		{name: "public suffix sites differ", origins: []string{"https://alice.github.io"}, hostnames: []string{"bob.github.io"}, sameSite: SameSiteLax,
			want: []string{"cross-site"}, engines: all},
		{name: "own hostname under .test", origins: []string{"https://app.acme.test"}, hostnames: []string{"auth.acme.test"}, sameSite: SameSiteLax,
			want:    []string{"auth.acme.test", "grouping under .test", "WebKit without Intelligent Tracking Prevention", "suffix on the Public Suffix List"},
			engines: []string{EngineWebKit}},
		{name: "own hostname under .internal, partitioned", origins: []string{"https://app.corp.internal"}, hostnames: []string{"auth.corp.internal"}, sameSite: SameSiteNone, part: true,
			want: []string{"grouping under .internal"}, engines: []string{EngineWebKit}},
		{name: "shared host under .local", origins: []string{"https://app.acme.local"}, sharedHost: "auth.acme.local", sameSite: SameSiteLax,
			want: []string{"grouping under .local"}, engines: []string{EngineWebKit}},
		{name: "one host under .test relies on no grouping", origins: []string{"https://acme.test"}, hostnames: []string{"acme.test"}, sameSite: SameSiteLax},
		{name: "another hostname same-site without grouping", origins: []string{"https://acme.test"}, hostnames: []string{"auth.acme.test", "acme.test"}, sameSite: SameSiteLax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := Tenant{ID: "acme", Origins: tt.origins, Hostnames: tt.hostnames, Dev: tt.dev,
				Cookie: CookiePolicy{SameSite: tt.sameSite, Partitioned: tt.part}}
			ws := tn.WarningsOn(tt.sharedHost)
			if len(tt.want) == 0 {
				if len(ws) != 0 {
					t.Errorf("WarningsOn(%q) = %+v, want none", tt.sharedHost, ws)
				}
				return
			}
			if len(ws) != 1 || ws[0].Field != "origins[0]" || ws[0].Tenant != "acme" {
				t.Fatalf("WarningsOn(%q) = %+v, want one on origins[0]", tt.sharedHost, ws)
			}
			for _, want := range tt.want {
				if !strings.Contains(ws[0].Message, want) {
					t.Errorf("Message = %q, want it to contain %q", ws[0].Message, want)
				}
			}
			if !slices.Equal(ws[0].Engines, tt.engines) {
				t.Errorf("Engines = %v, want %v", ws[0].Engines, tt.engines)
			}
		})
	}
}

// TestWarningsLoopbackNames: localhost, 127.0.0.1 and [::1] are one machine
// but three sites, and http and https two, so a page on one name or scheme
// calling the API on another can log in and never keep its session; the
// warning names the fix. Safari's drop of the Secure cookie on
// http://localhost is TestWarningsSafariLocalhost's.
func TestWarningsLoopbackNames(t *testing.T) {
	t.Parallel()
	const fix = "use the same host name for both"
	const scheme = "serve the SPA and the API over the same scheme"
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
		{name: "partitioned None across names: dropped where CHIPS does not help", origins: []string{"http://localhost:5173", "http://127.0.0.1:5173"}, sharedHost: "localhost",
			sameSite: SameSiteNone, part: true, want: map[string]string{"origins[0]": "set cookie.same_site lax", "origins[1]": fix}},
		{name: "unpartitioned None across names is a third-party cookie", origins: []string{"http://127.0.0.1:5173"}, sharedHost: "localhost",
			sameSite: SameSiteNone, want: map[string]string{"origins[0]": "set cookie.partitioned true"}},
		{name: "a public page on a local shared host", origins: []string{"https://app.acme.com"}, sharedHost: "localhost", sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": "will call the shared host localhost"}},
		{name: "shared host known and same-site", origins: []string{"https://app.acme.com"}, sharedHost: "auth.acme.com", sameSite: SameSiteLax},
		{name: "shared host known and cross-site", origins: []string{"https://app.acme.com"}, sharedHost: "auth.latchkey.io", sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": "will call the shared host auth.latchkey.io (this tenant has no hostnames), which is another site"}},
		{name: "https page, API on http://localhost", origins: []string{"https://localhost:5173"}, sharedHost: "localhost", sameSite: SameSiteLax,
			want: map[string]string{"origins[0]": scheme}},
		{name: "https page, API on http://localhost, partitioned", origins: []string{"https://localhost:5173"}, sharedHost: "localhost", sameSite: SameSiteNone, part: true,
			want: map[string]string{"origins[0]": scheme}},
		{name: "both schemes, shared host unknown", origins: []string{"http://localhost:5173", "https://localhost:3000"}, sameSite: SameSiteLax,
			want: map[string]string{"origins[1]": "calls the API on this machine over http"}},
		{name: "https first, shared host unknown", origins: []string{"https://localhost:3000", "http://localhost:5173"}, sameSite: SameSiteLax,
			want: map[string]string{"origins[1]": "calls the API on this machine over https"}},
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
				if want := []string{EngineChromium, EngineFirefox, EngineWebKit}; (tt.sameSite != SameSiteNone || !tt.part) && !slices.Equal(w.Engines, want) {
					t.Errorf("warning on %s: Engines = %v, want %v", w.Field, w.Engines, want)
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

// TestWarningsPlainLoopback: Safari stores no Secure cookie set over
// http://localhost (WebKit bug 281149), but a dev tenant's cookie over
// plain HTTP on loopback is not Secure (OverPlainLoopback), so a page that
// calls the API by its own name and scheme on this machine gets no
// warning, whatever the scheme; another name still does, and so does a
// SameSite=None cookie over plain HTTP, which must stay Secure: in
// Safari alone.
func TestWarningsPlainLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		origins    []string
		sharedHost string
		none       bool // SameSite=None rather than Lax
		warned     []string
	}{
		{name: "the demo", origins: []string{"http://localhost:5173"}, sharedHost: "localhost"},
		{name: "shared host unknown", origins: []string{"http://localhost:5173", "http://localhost:3000"}},
		{name: "127.0.0.1 on 127.0.0.1", origins: []string{"http://127.0.0.1:5173"}, sharedHost: "127.0.0.1"},
		{name: "https on loopback, shared host unknown", origins: []string{"https://localhost:3000"}},
		{name: "another name", origins: []string{"http://127.0.0.1:5173"}, sharedHost: "localhost", warned: []string{EngineChromium, EngineFirefox, EngineWebKit}},
		{name: "None over plain HTTP", origins: []string{"http://localhost:5173"}, sharedHost: "localhost", none: true, warned: []string{EngineWebKit}},
		{name: "None over HTTPS", origins: []string{"https://localhost:5173"}, none: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := Tenant{ID: "acme", Dev: true, Origins: tt.origins, Cookie: CookiePolicy{SameSite: SameSiteLax}}
			if tt.none {
				tn.Cookie.SameSite = SameSiteNone
			}
			var engines []string
			for _, w := range tn.WarningsOn(tt.sharedHost) {
				engines = append(engines, w.Engines...)
				if tt.none && !strings.Contains(w.Message, "set cookie.same_site lax") {
					t.Errorf("warning %q does not name the fix", w.Message)
				}
			}
			if !slices.Equal(engines, tt.warned) {
				t.Errorf("warned for %v, want %v", engines, tt.warned)
			}
		})
	}
}

// TestOverPlainLoopback: only a dev tenant has a plain-HTTP copy, whose
// cookie is not Secure and has its own name; the copy changes nothing else
// and is its own copy.
func TestOverPlainLoopback(t *testing.T) {
	t.Parallel()
	prod := Tenant{ID: "acme", Origins: []string{"https://app.acme.com"}}
	if p := prod.OverPlainLoopback(); p != &prod || !p.SecureCookie() || p.CookieName() != "__Host-latchkey-acme" {
		t.Errorf("a production tenant over plain loopback: %q secure %v, want itself", p.CookieName(), p.SecureCookie())
	}
	dev := Tenant{ID: "acme", Dev: true, Origins: []string{"http://localhost:5173"}}
	p := dev.OverPlainLoopback()
	if p.SecureCookie() || p.CookieName() != "latchkey-acme" || !dev.SecureCookie() || dev.CookieName() != "__Host-latchkey-acme" {
		t.Errorf("dev copy %q secure %v, original %q secure %v", p.CookieName(), p.SecureCookie(), dev.CookieName(), dev.SecureCookie())
	}
	if p.OverPlainLoopback() != p || !slices.Equal(p.Origins, dev.Origins) || p.ID != dev.ID {
		t.Errorf("the copy differs from the tenant beyond its cookie: %+v", p)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "app.localhost": true, "127.0.0.1": true, "127.1.2.3": true, "[::1]": true, "::1": true,
		"localhost.example.com": false, "notlocalhost": false, "10.0.0.1": false, "[::2]": false, "": false, "::ffff:7f00:1": true,
	} {
		if got := IsLoopbackHost(h); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestSignupWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		signup bool
		v      Verification
		want   []string // substrings of the one warning; none for no warning
	}{
		{name: "required", signup: true, v: VerificationRequired},
		{name: "no signup, optional", v: VerificationOptional},
		{name: "no signup, off", v: VerificationOff},
		{name: "optional", signup: true, v: VerificationOptional, want: []string{"email_verification optional", "409 conflict", "whether it has an account", "set email_verification required"}},
		{name: "off", signup: true, v: VerificationOff, want: []string{"email_verification off", "409 conflict", "no address is ever proven"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := accountsTenant()
			tn.Accounts.Signup, tn.Accounts.EmailVerification = tt.signup, tt.v
			var ws []Warning
			for _, w := range tn.Warnings() {
				if strings.HasPrefix(w.Field, "accounts") {
					ws = append(ws, w)
				}
			}
			if len(tt.want) == 0 {
				if len(ws) != 0 {
					t.Errorf("Warnings() = %+v, want none on accounts", ws)
				}
				return
			}
			if len(ws) != 1 || ws[0].Field != "accounts.signup" || ws[0].Tenant != "acme" || ws[0].Engines != nil {
				t.Fatalf("Warnings() = %+v, want one on accounts.signup, for no engine", ws)
			}
			if got := ws[0].LogMessage(); strings.Contains(got, "cookie") {
				t.Errorf("LogMessage() = %q, a caveat that is not about cookies", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(ws[0].Message, w) {
					t.Errorf("warning %q does not contain %q", ws[0].Message, w)
				}
			}
		})
	}
	if tn := validTenant(); len(tn.Warnings()) != 0 {
		t.Errorf("a tenant without accounts warns %+v", tn.Warnings())
	}
}
