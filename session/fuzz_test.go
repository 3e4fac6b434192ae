package session

// Fuzz targets for the session package's parsers. `go test` runs each
// target's seeds (its f.Add calls and testdata/fuzz/<FuzzName>/) as
// ordinary regression tests; scripts/fuzz.sh fuzzes every target briefly.
// Each target asserts the rule it guards, not only the absence of a panic.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/jub0bs/cors"

	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

// fuzzParams keep argon2id cheap so that fixtures build fast.
var fuzzParams = PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// fuzzKey signs the fixtures' cookies. It is fixed so that a cookie signed
// by one process verifies in another (see cookieFixture).
var fuzzKey = bytes.Repeat([]byte{0x5a}, MinKeyLen)

// fuzzUser is the fixture's user. Its length decides the shape of the
// cookie: with 9 bytes the signed value's base64 ends in "==", so that
// mutations meet real padding and its unused bits (a 5-byte name, say,
// would leave none).
const fuzzUser = "alice.ops"

// cookieFixture is a Manager over a memstore with two tenants, acme and
// beta, each with the user fuzzUser, and one live session of that user's in
// acme.
type cookieFixture struct {
	m       *Manager
	acme    *Tenant
	sess    Session // the user's acme session
	genuine string  // its cookie value, as Login issued it
	beta    string  // the user's beta cookie: genuine, but for another tenant
}

// newCookieFixture builds the fixture of FuzzCookieDecode.
//
// Fuzzing runs the target in several worker processes, each of which
// builds its own fixture, and hands them inputs mutated from the seeds of
// the coordinating process. For a mutated seed cookie to reach the store
// lookup (and, when the mutation is harmless, succeed), every process must
// hold the same session: acme's Login therefore runs with crypto/rand
// reading a fixed stream, so that the token, and so the session ID, is the
// same everywhere (fuzz targets run after every test of the package has
// returned, so nothing else reads crypto/rand meanwhile, and the reader is
// restored at once). The clock is fixed too, so sessions never expire and
// Load never writes. securecookie still stamps values with the wall clock,
// so processes issue different bytes for the same session; see issuedForm.
func newCookieFixture(tb testing.TB) *cookieFixture {
	tb.Helper()
	ctx := tb.Context()
	clock := storetest.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	m, err := NewManager(memstore.New(memstore.Config{Now: clock.Now}), Config{Keys: [][]byte{fuzzKey}, Now: clock.Now, Password: fuzzParams})
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	fx := &cookieFixture{m: m}
	pw := "correct horse"
	tenants := map[TenantID]*Tenant{}
	for _, tn := range []Tenant{
		{
			ID: "acme", Name: "Acme", Origins: []string{"https://app.acme.com"}, Hostnames: []string{"auth.acme.com"},
			Cookie: CookiePolicy{SameSite: SameSiteLax},
			// The longest lifetime: securecookie's MaxAge, so a committed
			// corpus cookie keeps verifying for 400 days after it was made.
			Session: SessionPolicy{IdleTimeout: Duration(12 * time.Hour), AbsoluteLifetime: Duration(MaxAbsoluteLifetime)},
		},
		{ID: "beta", Name: "Beta", Origins: []string{"https://app.beta.example"}, Cookie: CookiePolicy{SameSite: SameSiteNone, Partitioned: true}},
	} {
		saved, _, err := m.PutTenant(ctx, tn)
		if err != nil {
			tb.Fatalf("PutTenant(%s): %v", tn.ID, err)
		}
		tenants[tn.ID] = &saved
		if _, err := m.CreateUser(ctx, tn.ID, UserInput{Username: fuzzUser, Password: &pw}); err != nil {
			tb.Fatalf("CreateUser(%s/%s): %v", tn.ID, fuzzUser, err)
		}
	}
	fx.acme = tenants["acme"]
	login := func(t *Tenant) (Session, string) {
		s, c, err := m.Login(ctx, t, LoginInput{Username: fuzzUser, Password: pw, UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"})
		if err != nil {
			tb.Fatalf("Login(%s): %v", t.ID, err)
		}
		return s, c.Value
	}
	func() {
		prev := rand.Reader
		defer func() { rand.Reader = prev }()
		rand.Reader = mathrand.NewChaCha8([32]byte{'l', 'a', 't', 'c', 'h', 'k', 'e', 'y'})
		fx.sess, fx.genuine = login(fx.acme)
	}()
	_, fx.beta = login(tenants["beta"])
	return fx
}

// issuedForm reports whether value is, byte for byte, a value the codec can
// issue: the one padded base64url encoding of the bytes it holds, with
// nothing that a lenient decoder skips (line breaks) or ignores (non-zero
// padding bits). Only the key holder can make a value of this form that
// verifies, so a verified value of this form is a genuinely issued cookie,
// possibly issued by another process (at another second).
func issuedForm(value string) bool {
	raw, err := base64.URLEncoding.DecodeString(value)
	return err == nil && base64.URLEncoding.EncodeToString(raw) == value
}

// FuzzCookieDecode feeds Manager.Load one cookie value. Property: the
// genuine cookie loads its session; any other value is an error
// wrapping ErrUnauthenticated (never another error, never a panic), unless
// it is a byte-exact issued cookie for the same session (issuedForm), which
// only happens with a seed cookie issued by another fuzzing process.
func FuzzCookieDecode(f *testing.F) {
	fx := newCookieFixture(f)
	g := fx.genuine
	raw, err := base64.URLEncoding.DecodeString(g)
	if err != nil {
		f.Fatalf("the genuine cookie is not base64url: %v", err)
	}
	parts := bytes.SplitN(raw, []byte("|"), 3)
	if len(parts) != 3 {
		f.Fatalf("the genuine cookie decodes to %d parts, want date|value|mac", len(parts))
	}
	payload, err := base64.URLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		f.Fatalf("the genuine cookie's value is not base64url: %v", err)
	}
	joined := func(ps ...[]byte) string { return base64.URLEncoding.EncodeToString(bytes.Join(ps, []byte("|"))) }
	signed := func(c *Codec, name string, p []byte) string {
		v, err := c.encode(name, p)
		if err != nil {
			f.Fatalf("encode: %v", err)
		}
		return v
	}
	otherKey, err := NewCodec([][]byte{bytes.Repeat([]byte{0xa5}, MinKeyLen)})
	if err != nil {
		f.Fatal(err)
	}
	name := fx.acme.CookieName()
	for _, seed := range []string{
		g,
		fx.beta, // the user's cookie for beta: the MAC covers the cookie name
		"",
		g[:len(g)-1],
		g[:len(g)/2],
		g[1:],
		g + "=",
		g + g, // over the 1 KiB bound
		strings.TrimRight(g, "="),
		strings.NewReplacer("-", "+", "_", "/").Replace(g), // standard alphabet
		base64.RawURLEncoding.EncodeToString(raw),
		base64.StdEncoding.EncodeToString(raw),
		g[:10] + "\r\n" + g[10:],                    // line breaks, which securecookie skips
		strings.TrimSuffix(g, "==") + "%3D%3D",      // percent-encoded padding
		`"` + g + `"`,                               // quoted
		g[:len(g)-3] + string(g[len(g)-3]+1) + "==", // a padding bit set, which securecookie ignores
		g[:len(g)-2] + "AA",                         // tampered MAC
		joined(parts[0], []byte(base64.RawURLEncoding.EncodeToString(payload)), parts[2]), // value re-encoded: MAC covers it
		joined([]byte("+"+string(parts[0])), parts[1], parts[2]),                          // date re-written: MAC covers it
		joined(parts[0], parts[1]),
		signed(fx.m.codec, name, payload[:tokenLen]),                                     // a token and no username
		signed(fx.m.codec, name, append(bytes.Repeat([]byte{7}, tokenLen), fuzzUser...)), // never issued
		signed(fx.m.codec, name, append(bytes.Clone(payload[:tokenLen]), "mallory"...)),  // the session's token, another user
		signed(fx.m.codec, "__Host-latchkey-beta", payload),                              // right session, beta's name
		signed(otherKey, name, payload),                                                  // another key
		strings.Repeat("A", 4096),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		s, err := fx.m.Load(t.Context(), fx.acme, []string{value})
		switch {
		case value == fx.genuine:
			if err != nil {
				t.Fatalf("Load(genuine cookie) = %v, want the session it was issued for", err)
			}
		case err == nil:
			if !issuedForm(value) {
				t.Fatalf("Load(%q) = session %s of %q, want ErrUnauthenticated: the value is not byte-identical to an issued cookie (genuine: %q)", value, s.ID, s.Username, fx.genuine)
			}
		case !errors.Is(err, ErrUnauthenticated):
			t.Fatalf("Load(%q) = %v, want an error wrapping ErrUnauthenticated", value, err)
		default:
			return
		}
		if s.ID != fx.sess.ID || s.Username != fuzzUser || s.Tenant != "acme" {
			t.Errorf("Load(%q) = session %s of %s/%s, want %s of acme/%s", value, s.ID, s.Tenant, s.Username, fx.sess.ID, fuzzUser)
		}
	})
}

// FuzzParseTenantsFile parses arbitrary bytes as a tenants file. Property:
// no panic; either a file whose every tenant validates, with unique IDs,
// unclaimed-twice hostnames, and valid unique users and hashes, or a
// *ValidationError listing at least one problem, each with a message.
// Read failures and files over the size bound are plain errors, which a
// bytes.Reader of fuzzer-sized input cannot produce; TestParseTenantsFileReadFailures
// covers them.
func FuzzParseTenantsFile(f *testing.F) {
	hash, err := HashPassword("correct horse", fuzzParams)
	if err != nil {
		f.Fatal(err)
	}
	valid := `tenants:
  - id: acme
    name: Acme Inc.
    origins: [https://app.acme.com, https://admin.acme.com]
    hostnames: [auth.acme.com]
    cookie: {same_site: lax}
    session: {idle_timeout: 12h, absolute_lifetime: 168h}
    users:
      - username: alice
        password_hash: "` + hash + `"
  - id: beta
    name: Beta
    dev: true
    origins: [http://localhost:5173]
    cookie: {same_site: none, partitioned: true}
`
	for _, seed := range []string{
		valid,
		"",
		"tenants: []",
		"tenants: {}",
		"tenants:\n  - id: acme\n    colour: red\n",
		"tenants:\n  - id: acme\n    name: A\n    origins: ['*', null, 'http://evil.example']\n    cookie: {same_site: lax, partitioned: true}\n",
		"tenants:\n  - &t {id: acme, name: A, origins: [https://a.example], cookie: {same_site: lax}}\n  - *t\n",
		"tenants:\n  - id: a\n    name: A\n    origins: [https://a.example]\n    hostnames: [x.example]\n    cookie: {same_site: lax}\n  - id: b\n    name: B\n    origins: [https://b.example]\n    hostnames: [x.example]\n    cookie: {same_site: lax}\n",
		"tenants:\n  - id: acme\n    name: A\n    origins: [https://a.example]\n    cookie: {same_site: lax}\n    session: {idle_timeout: 5, absolute_lifetime: -1h}\n",
		"tenants:\n  - id: acme\n    name: A\n    origins: [https://a.example]\n    cookie: {same_site: lax}\n    users: [{username: al ice, password_hash: x}, {username: b, password_hash: x}, {username: b}]\n",
		"tenants:\n  - id: acme\n    name: !!binary AAE=\n",
		"tenants:\n  - <<: {id: acme, name: A}\n    origins: [https://a.example]\n    cookie: {same_site: lax}\n",
		"a: &a [*a, *a]\n",
		"tenants:\n\t- id: acme\n",
		"--- \ntenants: []\n--- \ntenants: [{}]\n",
		"tenants: [{id: acme, name: \"\\xff\", origins: [https://a.example], cookie: {same_site: lax}}]",
		"\xff\xfe",
		"tenants: [{id: acme, name: A, origins: [https://a.example], cookie: {same_site: lax}, session: {idle_timeout: 99999999999999h}}]",
		"tenants:\n  - id: acme\n    name: A\n    origins: [https://a.example]\n    cookie: {same_site: lax}\n    accounts:\n      signup: true\n      email_verification: required\n      verify_url: https://a.example/verify\n      reset_url: https://a.example/reset\n      limits: {per_ip: 3, window: 10m}\n      templates:\n        verify: &v {subject: \"Hi {{.Username}}\", html: \"<a href='{{.Link}}'>go</a>\"}\n        reset: {<<: *v, text: \"{{.Link}} {{.Expires}}\"}\n",
		"tenants:\n  - id: acme\n    name: A\n    origins: [https://a.example]\n    cookie: {same_site: lax}\n    accounts: {email_verification: off, templates: {x: {}, verify: ~, reset: {text: '{{range 9}}{{end}}'}, [1]: 2}}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseTenantsFile(bytes.NewReader(data))
		if err != nil {
			if file != nil {
				t.Errorf("ParseTenantsFile returned a file and the error %v", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ParseTenantsFile error %T %q, want a *ValidationError", err, err)
			}
			if len(ve.Problems) == 0 {
				t.Fatalf("ParseTenantsFile returned a *ValidationError without problems")
			}
			for i, p := range ve.Problems {
				if strings.TrimSpace(p.Message) == "" {
					t.Errorf("Problems[%d] = %+v, want a message", i, p)
				}
			}
			if ve.Error() == "" {
				t.Error("ValidationError.Error() is empty")
			}
			return
		}
		if file == nil || len(file.Tenants) == 0 {
			t.Fatalf("ParseTenantsFile = %v, nil; want at least one tenant or an error", file)
		}
		ids := map[TenantID]bool{}
		ts := make([]Tenant, 0, len(file.Tenants))
		for i, spec := range file.Tenants {
			if err := spec.Tenant.Validate(); err != nil {
				t.Errorf("tenants[%d] was accepted but Validate() = %v", i, err)
			}
			if ids[spec.ID] {
				t.Errorf("tenants[%d]: tenant %q accepted twice", i, spec.ID)
			}
			ids[spec.ID] = true
			ts = append(ts, spec.Tenant)
			users := map[string]bool{}
			for j, u := range spec.Users {
				if msg := validUsername(u.Username); msg != "" {
					t.Errorf("tenants[%d].users[%d]: username %q accepted but %s", i, j, u.Username, msg)
				}
				if users[u.Username] {
					t.Errorf("tenants[%d].users[%d]: user %q accepted twice", i, j, u.Username)
				}
				users[u.Username] = true
				if err := CheckPasswordHash(u.PasswordHash); err != nil {
					t.Errorf("tenants[%d].users[%d]: hash accepted but %v", i, j, err)
				}
			}
		}
		if ps := checkHostnameClaims(ts); len(ps) > 0 {
			t.Errorf("accepted a hostname claimed twice: %+v", ps)
		}
	})
}

// TestParseTenantsFileReadFailures documents the two failures of
// ParseTenantsFile that are not about the file's content: they are plain
// errors, not *ValidationError, since there is nothing to list per tenant.
func TestParseTenantsFileReadFailures(t *testing.T) {
	t.Parallel()
	errRead := errors.New("disk on fire")
	tests := []struct {
		name string
		r    io.Reader
		is   error  // the error must wrap this, if set
		text string // the error text must contain this
	}{
		{"read error", iotest.ErrReader(errRead), errRead, "read tenants file"},
		{"one byte over the bound", io.LimitReader(spaces{}, maxTenantsFile+1), nil, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file, err := ParseTenantsFile(tt.r)
			if file != nil || err == nil {
				t.Fatalf("ParseTenantsFile = %v, %v; want an error", file, err)
			}
			var ve *ValidationError
			if errors.As(err, &ve) {
				t.Errorf("error = %T, want a plain error", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error = %v, want it to wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error = %q, want it to contain %q", err, tt.text)
			}
		})
	}
}

// spaces is an endless reader of blanks.
type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// isLoopbackHost reports whether h is a localhost name or a loopback
// address, with or without a trailing dot: what any local process can serve.
func isLoopbackHost(h string) bool {
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// FuzzTenantValidate builds a tenant from fuzzed fields and validates it.
// Property: no panic; a refusal is a *ValidationError whose problems all
// name the tenant and carry a message; an accepted tenant has only exact,
// canonical origins (lowercase, no path or trailing slash, no '*', not
// null, no userinfo, no default or malformed port, scheme https, or http
// only for localhost or loopback on a dev tenant; localhost and loopback
// only on a dev tenant), each one serializing back from url.Parse to
// scheme://host[:port]; every hostname is its own NormalizeHost; and the
// policy the api builds from it (jub0bs/cors and CrossOriginProtection)
// builds, so the tenant can be served.
func FuzzTenantValidate(f *testing.F) {
	f.Add("acme", "Acme Inc.", "https://app.acme.com", "https://admin.acme.com", true, "auth.acme.com", "lax", false, false)
	f.Add("beta", "Beta", "http://localhost:5173", "http://[::1]:5173", true, "", "none", true, true)
	f.Add("acme", "Acme", "http://localhost:5173", "", false, "", "lax", false, false)
	f.Add("acme", "Acme", "https://App.acme.com", "", false, "Auth.acme.com", "Lax", false, false)
	f.Add("acme", "Acme", "https://app.acme.com/", "https://app.acme.com", true, "auth.acme.com.", "strict", false, false)
	f.Add("acme", "Acme", "https://*.acme.com", "null", true, "auth.acme.com:443", "none", false, false)
	f.Add("acme", "Acme", "https://app.acme.com:443", "https://u@app.acme.com", true, "", "lax", true, false)
	f.Add("acme", "Acme", "http://app.acme.com", "file:///etc/passwd", true, "", "lax", false, false)
	f.Add("acme", "Acme", "https://app.acme.com:8443", "https://[2001:db8::1]", true, "xn--bcher-kva.example", "lax", false, false)
	f.Add("acme", "Acme", "https://localhost", "http://127.0.0.1:8080", true, "", "lax", false, false)
	f.Add("-acme", " ", "https://app.acme.com?x", "https://app.acme.com#x", true, "a..b", "", false, false)
	f.Add("acme", "Acme\x00", "https://app.acme.com", "https://app.acme.com", true, "", "lax", false, true)
	f.Fuzz(func(t *testing.T, id, name, origin1, origin2 string, two bool, hostname, sameSite string, partitioned, dev bool) {
		origins := []string{origin1}
		if two {
			origins = append(origins, origin2)
		}
		var hosts []string
		if hostname != "" {
			hosts = []string{hostname}
		}
		tn := Tenant{
			ID: TenantID(id), Name: name, Dev: dev, Origins: origins, Hostnames: hosts,
			Cookie: CookiePolicy{SameSite: SameSite(sameSite), Partitioned: partitioned},
		}.withDefaults()
		err := tn.Validate()
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Validate() = %T %v, want a *ValidationError with problems", err, err)
			}
			for i, p := range ve.Problems {
				if p.Message == "" || p.Tenant != id {
					t.Errorf("Problems[%d] = %+v, want a message and tenant %q", i, p, id)
				}
			}
			return
		}
		if !tn.ID.Valid() || strings.TrimSpace(tn.Name) == "" || !utf8.ValidString(tn.Name) {
			t.Errorf("accepted id %q, name %q", tn.ID, tn.Name)
		}
		if tn.Cookie.Partitioned && tn.Cookie.SameSite != SameSiteNone {
			t.Errorf("accepted partitioned with same_site %q", tn.Cookie.SameSite)
		}
		for _, o := range tn.Origins {
			if why := originProblem(o, dev); why != "" {
				t.Errorf("accepted origin %q (dev %v): %s", o, dev, why)
			}
		}
		for _, h := range tn.Hostnames {
			if n := NormalizeHost(h); n != h {
				t.Errorf("accepted hostname %q, whose NormalizeHost is %q", h, n)
			}
		}
		// What the api builds for every tenant it serves (api/cors.go).
		if _, err := cors.NewMiddleware(tn.CORSConfig()); err != nil {
			t.Errorf("accepted origins %q, but jub0bs/cors refuses them: %v", tn.Origins, err)
		}
		cop := http.NewCrossOriginProtection()
		for _, o := range tn.Origins {
			if err := cop.AddTrustedOrigin(o); err != nil {
				t.Errorf("accepted origin %q, but CrossOriginProtection refuses it, so the tenant cannot be served: %v", o, err)
			}
		}
	})
}

// originProblem says why o is not an exact, canonical, safe serialized
// origin for a tenant with the given dev flag, or "".
func originProblem(o string, dev bool) string {
	switch {
	case o != strings.ToLower(o):
		return "not lowercase"
	case strings.Contains(o, "*"):
		return "a wildcard"
	case o == "null":
		return "null"
	}
	u, err := url.Parse(o)
	if err != nil {
		return "url.Parse: " + err.Error()
	}
	switch {
	case u.Opaque != "" || u.User != nil || u.Path != "" || u.RawPath != "" || u.ForceQuery || u.RawQuery != "" || u.Fragment != "":
		return "more than scheme://host[:port]"
	case o != u.Scheme+"://"+u.Host:
		return "does not serialize back to scheme://host[:port]"
	case u.Hostname() == "":
		return "no host"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		switch {
		case err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p:
			return "malformed port"
		case u.Scheme == "https" && n == 443 || u.Scheme == "http" && n == 80:
			return "default port"
		}
	}
	loopback := isLoopbackHost(u.Hostname())
	switch {
	case loopback && !dev:
		return "localhost or loopback on a tenant without dev"
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
	default:
		return "scheme " + u.Scheme + ": want https, or http for localhost or loopback"
	}
	return ""
}

// isDNSName reports whether s is a lowercase DNS name of LDH labels without
// a trailing dot, checked independently of the package's own validator.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// FuzzNormalizeHost checks NormalizeHost on arbitrary Host headers.
// Property: no panic; the result is "" or a lowercase DNS name without port
// or trailing dot; NormalizeHost is idempotent; a valid hostname is its own
// normal form; and the upper-case, trailing-dot and with-port forms of a
// result normalize back to it.
func FuzzNormalizeHost(f *testing.F) {
	for _, seed := range []string{
		"auth.acme.com", "AUTH.Acme.COM", "auth.acme.com:8443", "auth.acme.com.", "auth.acme.com.:443",
		"[::1]:8080", "127.0.0.1", "127.0.0.1:80", "[auth.acme.com]:80", "", ".", "..", ":", ":80", "a:b:c",
		"bad_host", "a..b", "-a.b", "a-.b", "xn--bcher-kva.example", "b\u00fccher.example", "\u212aelvin.example",
		strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 127) + "a",
		"auth.acme.com:", "auth.acme.com..", "auth.acme.com%00", "auth.acme.com\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got := NormalizeHost(host)
		if got != "" && !isDNSName(got) {
			t.Fatalf("NormalizeHost(%q) = %q, want \"\" or a lowercase DNS name without port or trailing dot", host, got)
		}
		if again := NormalizeHost(got); again != got {
			t.Errorf("NormalizeHost(NormalizeHost(%q)) = %q, want %q (idempotent)", host, again, got)
		}
		if validHostname(host) && got != host {
			t.Errorf("NormalizeHost(%q) = %q, want the valid hostname unchanged", host, got)
		}
		if got == "" {
			return
		}
		for _, v := range []string{strings.ToUpper(got), got + ".", got + ":443", strings.ToUpper(got) + ".:8443"} {
			if n := NormalizeHost(v); n != got {
				t.Errorf("NormalizeHost(%q) = %q, want %q like NormalizeHost(%q)", v, n, got, host)
			}
		}
	})
}

// FuzzDecodeRecord decodes arbitrary bytes as a stored session record,
// anchored on an arbitrary store expiry (unix milliseconds, as redisstore
// keeps it). Property: no panic; a refusal is errBadRecord; a record
// decodes to ordered times (created, last seen, idle expiry, absolute
// expiry); and whatever decodes comes back unchanged through encodeRecord
// and decodeRecord anchored on its own expiry.
func FuzzDecodeRecord(f *testing.F) {
	fresh := managerSession(recordNow, recordNow, "Firefox on Linux")
	late := managerSession(recordNow, recordNow.Add(163*time.Hour+5*time.Second), "Go HTTP client")
	text := managerSession(recordNow, recordNow.Add(time.Minute), "PostmanRuntime/7.36.0")
	for _, s := range []Session{fresh, late, text} {
		b, err := encodeRecord(&s)
		if err != nil {
			f.Fatalf("encodeRecord(%+v)=%v", s, err)
		}
		f.Add(b, s.expires().UnixMilli())
	}
	f.Add([]byte{}, int64(0))
	f.Add([]byte{recordVersion, capped | 31, 0x80}, fresh.expires().UnixMilli())
	f.Fuzz(func(t *testing.T, b []byte, expiresMilli int64) {
		var s Session
		err := decodeRecord(b, time.UnixMilli(expiresMilli), &s)
		if err != nil {
			if err != errBadRecord {
				t.Fatalf("decodeRecord(%x)=%v, want nil or %v", b, err, errBadRecord)
			}
			return
		}
		if s.LastSeenAt.Before(s.CreatedAt) || s.IdleExpiresAt.Before(s.LastSeenAt) || s.ExpiresAt.Before(s.IdleExpiresAt) {
			t.Errorf("decodeRecord(%x)=%+v, want ordered times", b, s)
		}
		again, err := encodeRecord(&s)
		if err != nil {
			t.Fatalf("encodeRecord(decodeRecord(%x))=%v, want nil", b, err)
		}
		var back Session
		if err := decodeRecord(again, s.expires(), &back); err != nil {
			t.Fatalf("decodeRecord(encodeRecord(%+v))=%v, want nil", s, err)
		}
		if !sameSession(s, back) {
			t.Errorf("decodeRecord(encodeRecord(s))=%+v, want %+v", back, s)
		}
	})
}

// FuzzRecordRoundTrip encodes sessions with arbitrary times (unix seconds)
// and user agents. Property: a session ordered as Manager makes them,
// within 1970-2106, is encoded in at most a few bytes more than its user
// agent in text, and decodeRecord, anchored on the session's expiry,
// gives it back; any other is refused with errUnrecordable.
func FuzzRecordRoundTrip(f *testing.F) {
	n := recordNow.Unix()
	f.Add(n, n, n+43200, n+604800, "Firefox on Linux")
	f.Add(n, n+5, n+5+43200, n+604800, "PostmanRuntime/7.36.0")
	f.Add(n, n+600000, n+604800, n+604800, "")
	f.Add(n, n, n+7200, n+3600, "Chrome on Linux")
	f.Add(int64(-1), int64(0), int64(1<<32), int64(1<<62), "\xff")
	f.Fuzz(func(t *testing.T, created, seen, idleAt, at int64, ua string) {
		s := Session{
			CreatedAt: time.Unix(created, 0).UTC(), LastSeenAt: time.Unix(seen, 0).UTC(),
			IdleExpiresAt: time.Unix(idleAt, 0).UTC(), ExpiresAt: time.Unix(at, 0).UTC(), UserAgent: ua,
		}
		b, err := encodeRecord(&s)
		recordable := 0 <= created && created <= seen && seen <= idleAt && idleAt <= at && idleAt <= maxSpan && at-created <= maxSpan
		if !recordable {
			if err != errUnrecordable {
				t.Errorf("encodeRecord(%+v)=%x, %v, want %v", s, b, err, errUnrecordable)
			}
			return
		}
		if err != nil {
			t.Fatalf("encodeRecord(%+v)=%v, want nil", s, err)
		}
		if len(b) > 2+3*5+len(ua) {
			t.Errorf("encodeRecord(%+v)=%x, want at most %d bytes", s, b, 2+3*5+len(ua))
		}
		var got Session
		if err := decodeRecord(b, s.expires(), &got); err != nil {
			t.Fatalf("decodeRecord(encodeRecord(%+v))=%v, want nil", s, err)
		}
		if !sameSession(s, got) {
			t.Errorf("decodeRecord(encodeRecord(s))=%+v, want %+v", got, s)
		}
	})
}
