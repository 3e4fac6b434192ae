package session

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jub0bs/cors"
	"github.com/jub0bs/cors/cfgerrors"
)

// TenantID names a tenant. It is part of every store key, every URL of the
// path form and every cookie name, so its alphabet is deliberately narrow:
// lowercase letters, digits and inner hyphens, 1 to 63 characters (a DNS
// label).
type TenantID string

// Valid reports whether id is a well-formed tenant ID.
func (id TenantID) Valid() bool { return validLabel(string(id)) }

// SameSite is a tenant's choice for the session cookie's SameSite attribute.
type SameSite string

// The SameSite values a tenant may choose. There is no default: the right
// value depends on whether the SPA and Latchkey are on the same site.
const (
	SameSiteStrict SameSite = "strict"
	SameSiteLax    SameSite = "lax"
	SameSiteNone   SameSite = "none"
)

// CookiePolicy says how a tenant's session cookie is scoped.
type CookiePolicy struct {
	SameSite SameSite `json:"same_site" yaml:"same_site"`
	// Partitioned adds the CHIPS attribute, which keeps a cross-site cookie
	// working where third-party cookies are blocked. It requires SameSite none.
	Partitioned bool `json:"partitioned" yaml:"partitioned"`
}

// SessionPolicy bounds a tenant's sessions. A session ends when it has been
// idle for IdleTimeout or has existed for AbsoluteLifetime, whichever comes
// first.
type SessionPolicy struct {
	IdleTimeout      Duration `json:"idle_timeout" yaml:"idle_timeout"`
	AbsoluteLifetime Duration `json:"absolute_lifetime" yaml:"absolute_lifetime"`
}

// LoginLimits bound failed logins, counted in the store so that every
// replica sees the same counts. Each password check takes a place under
// both limits before it runs; an attempt over either limit, counting the
// checks in flight, is refused with ErrRateLimited (a KindRateLimited *Error) before any password
// check, whether or not the user exists. A failed check counts; any other
// outcome gives its place back. A successful login resets its account's
// count.
type LoginLimits struct {
	PerAccount int      `json:"per_account,omitzero" yaml:"per_account"` // failures per username per window
	PerIP      int      `json:"per_ip,omitzero" yaml:"per_ip"`           // failures per client IP per window
	Window     Duration `json:"window,omitzero" yaml:"window"`
}

// Defaults of LoginLimits: OWASP's guidance of a handful of attempts per
// account; an IP gets more, since offices and mobile carriers share one.
const (
	DefaultLoginsPerAccount = 10
	DefaultLoginsPerIP      = 100
	DefaultLoginWindow      = 15 * time.Minute
)

// Defaults and bounds of a SessionPolicy.
const (
	DefaultIdleTimeout      = 12 * time.Hour
	DefaultAbsoluteLifetime = 7 * 24 * time.Hour
	MinIdleTimeout          = time.Minute
	// MaxAbsoluteLifetime is the 400-day cap browsers put on cookie lifetimes
	// (RFC 6265bis, cookie-lifetime-limits).
	MaxAbsoluteLifetime = 400 * 24 * time.Hour
)

// Tenant is one tenant's configuration: who may call it (its origin
// allowlist), where (its own hostnames), and how its cookie and sessions
// behave. A *Tenant handed out by this package is never mutated; a change
// produces a new value.
type Tenant struct {
	ID   TenantID `json:"id" yaml:"id"`
	Name string   `json:"name" yaml:"name"`
	// Dev marks a development tenant: only such a tenant may list localhost
	// or loopback origins, because any process on a user's machine can serve
	// those and would get credentialed access.
	Dev bool `json:"dev" yaml:"dev"`
	// Origins are the exact serialized origins allowed to call with
	// credentials. They alone drive both the CORS answers and the CSRF
	// origin check.
	Origins []string `json:"origins" yaml:"origins"`
	// Hostnames are this tenant's own domains (host form). Optional.
	Hostnames   []string      `json:"hostnames" yaml:"hostnames"`
	Cookie      CookiePolicy  `json:"cookie" yaml:"cookie"`
	Session     SessionPolicy `json:"session" yaml:"session"`
	LoginLimits LoginLimits   `json:"login_limits,omitzero" yaml:"login_limits"`
	// Accounts turns on self-service accounts (accounts.go). Nil: none.
	Accounts *AccountsPolicy `json:"accounts,omitempty" yaml:"accounts"`

	// plainLoopback marks the copy of a dev tenant that serves requests
	// sent over plain HTTP on the user's own machine (OverPlainLoopback).
	plainLoopback bool
}

// Bounds on a tenant's configuration, so that one tenant cannot make the
// others' lookups or preflights expensive. These constants own them:
// openapi.yaml states the same numbers, and api's tests hold the two equal.
const (
	MaxTenantIDLen        = 63  // a DNS label
	MaxHostnameLen        = 253 // a DNS name
	MaxTenantNameLen      = 200 // bytes
	MaxOrigins            = 100
	MaxHostnames          = 20
	MaxFailuresPerAccount = 1000
	MaxFailuresPerIP      = 1_000_000
	MinLoginWindow        = time.Minute
	MaxLoginWindow        = 24 * time.Hour
)

// CookieName returns the name of the tenant's session cookie. The __Host-
// prefix makes browsers insist on Secure, Path=/ and no Domain, so no
// sibling subdomain can set or shadow it; the tenant suffix keeps tenants
// that share a hostname (path form) from overwriting each other's cookie.
// The plain-HTTP copy of a dev tenant (OverPlainLoopback) has a cookie
// without Secure, which the prefix would forbid, under a name that no
// other tenant's cookie can have.
func (t *Tenant) CookieName() string {
	if t.plainLoopback {
		return "latchkey-" + string(t.ID)
	}
	return "__Host-latchkey-" + string(t.ID)
}

// SecureCookie reports whether the tenant's session cookie is Secure: always,
// but for the plain-HTTP copy of a dev tenant.
func (t *Tenant) SecureCookie() bool { return !t.plainLoopback }

// OverPlainLoopback returns the tenant as it answers a request that reached
// Latchkey over plain HTTP on the user's own machine: from a loopback peer,
// to a loopback name (http://localhost:8080), with no TLS on the way. For a
// dev tenant that is a copy whose session cookie is not Secure, because
// Safari stores no Secure cookie set over plain HTTP, http://localhost
// included (WebKit bug 281149), so a local set-up such as `make run` could
// never keep a session there; Chrome and Firefox store either. Dropping
// Secure costs nothing on loopback, which no network attacker sits on, and
// the cookie's own name keeps it apart from the Secure one: the MAC covers
// the name, so neither verifies as the other. Any other tenant is t: only a
// dev tenant may list the loopback origins that such a request comes from,
// and a SameSite=None cookie must be Secure in Chrome and Firefox (RFC
// 6265bis; Partitioned too), so a dev tenant whose cookie is None keeps it
// Secure, and WarningsOn says what that costs in Safari.
func (t *Tenant) OverPlainLoopback() *Tenant {
	if !t.Dev || t.plainLoopback || t.Cookie.SameSite == SameSiteNone {
		return t
	}
	c := *t
	c.plainLoopback = true
	return &c
}

// withDefaults fills in the optional settings that have documented defaults.
func (t Tenant) withDefaults() Tenant {
	if t.Session.IdleTimeout == 0 {
		t.Session.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if t.Session.AbsoluteLifetime == 0 {
		t.Session.AbsoluteLifetime = Duration(DefaultAbsoluteLifetime)
	}
	if t.LoginLimits.PerAccount == 0 {
		t.LoginLimits.PerAccount = DefaultLoginsPerAccount
	}
	if t.LoginLimits.PerIP == 0 {
		t.LoginLimits.PerIP = DefaultLoginsPerIP
	}
	if t.LoginLimits.Window == 0 {
		t.LoginLimits.Window = Duration(DefaultLoginWindow)
	}
	if t.Origins == nil {
		t.Origins = []string{}
	}
	if t.Hostnames == nil {
		t.Hostnames = []string{}
	}
	t.Accounts = t.Accounts.withDefaults()
	return t
}

// Problem is one reason a configuration was refused.
type Problem struct {
	Tenant  string `json:"tenant,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Line is the line of a tenants file the problem concerns, 0 for none.
	Line int `json:"line,omitempty"`
}

// ValidationError lists every problem found in a configuration, so that a
// user fixes them all in one go rather than one per attempt.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		if p.Tenant != "" {
			fmt.Fprintf(&b, "tenant %q: ", p.Tenant)
		}
		if p.Field != "" {
			b.WriteString(p.Field + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// problems collects Problems for one tenant.
type problems struct {
	tenant string
	list   []Problem
}

func (ps *problems) add(field, format string, args ...any) {
	ps.list = append(ps.list, Problem{Tenant: ps.tenant, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.list}
}

// Validate reports every problem with t, as a *ValidationError. It applies
// no defaults: call it on a tenant as it will be stored.
func (t *Tenant) Validate() error {
	ps := &problems{tenant: string(t.ID)}
	t.validate(ps)
	return ps.err()
}

func (t *Tenant) validate(ps *problems) {
	if !t.ID.Valid() {
		ps.add("id", "must be 1 to %d lowercase letters, digits or inner hyphens, got %q", MaxTenantIDLen, t.ID)
	}
	switch n := len(t.Name); {
	case strings.TrimSpace(t.Name) == "":
		ps.add("name", "is required")
	case n > MaxTenantNameLen:
		ps.add("name", "is %d bytes long, at most %d allowed", n, MaxTenantNameLen)
	case !validText(t.Name):
		ps.add("name", "must be UTF-8 text without control characters")
	}
	validateOrigins(ps, t.Origins, t.Dev)
	validateHostnames(ps, t.Hostnames)

	switch t.Cookie.SameSite {
	case SameSiteStrict, SameSiteLax, SameSiteNone:
	case "":
		ps.add("cookie.same_site", "is required: strict or lax when the SPA is on the same site as Latchkey's hostname, none (with partitioned) when it is cross-site")
	default:
		ps.add("cookie.same_site", "must be strict, lax or none, got %q", t.Cookie.SameSite)
	}
	if t.Cookie.Partitioned && t.Cookie.SameSite != SameSiteNone {
		ps.add("cookie.partitioned", "requires same_site none: a partitioned cookie is meant for cross-site use")
	}

	idle, abs := time.Duration(t.Session.IdleTimeout), time.Duration(t.Session.AbsoluteLifetime)
	if idle < MinIdleTimeout {
		ps.add("session.idle_timeout", "must be at least %s, got %s", MinIdleTimeout, idle)
	}
	if abs > MaxAbsoluteLifetime {
		ps.add("session.absolute_lifetime", "must be at most %s (browsers cap cookies at 400 days), got %s", MaxAbsoluteLifetime, abs)
	}
	if abs < idle {
		ps.add("session.absolute_lifetime", "must not be shorter than idle_timeout (%s), got %s", idle, abs)
	}
	ll := t.LoginLimits
	if ll.PerAccount < 1 || ll.PerAccount > MaxFailuresPerAccount {
		ps.add("login_limits.per_account", "must be 1 to %d failures per window, got %d", MaxFailuresPerAccount, ll.PerAccount)
	}
	if ll.PerIP < 1 || ll.PerIP > MaxFailuresPerIP {
		ps.add("login_limits.per_ip", "must be 1 to %d failures per window, got %d", MaxFailuresPerIP, ll.PerIP)
	}
	if w := time.Duration(ll.Window); w < MinLoginWindow || w > MaxLoginWindow {
		ps.add("login_limits.window", "must be %s to %s, got %s", MinLoginWindow, MaxLoginWindow, w)
	}
	t.validateAccounts(ps)
}

// validateOrigins checks the allowlist. The syntax and safety of each origin
// is judged by jub0bs/cors, the library that will enforce it, so that the
// two can never disagree; on top of that Latchkey refuses wildcard patterns
// (COP trusts exact origins only, and one list must drive both CORS and
// CSRF), duplicates, and loopback origins on non-dev tenants.
func validateOrigins(ps *problems, origins []string, dev bool) {
	switch {
	case len(origins) == 0:
		ps.add("origins", "at least one origin is required")
		return
	case len(origins) > MaxOrigins:
		ps.add("origins", "has %d entries, at most %d allowed", len(origins), MaxOrigins)
		return
	}
	// Collect this list's problems apart, each with the index of the origin
	// it concerns (-1 for the whole list), then report them in list order.
	type indexed struct {
		i int
		p Problem
	}
	var found []indexed
	add := func(i int, format string, args ...any) {
		field := "origins"
		if i >= 0 {
			field = fmt.Sprintf("origins[%d]", i)
		}
		found = append(found, indexed{i, Problem{Tenant: ps.tenant, Field: field, Message: fmt.Sprintf(format, args...)}})
	}
	defer func() {
		slices.SortStableFunc(found, func(a, b indexed) int { return a.i - b.i })
		for _, f := range found {
			ps.list = append(ps.list, f.p)
		}
	}()
	index := make(map[string]int, len(origins))
	var exact []string
	for i, o := range origins {
		if j, dup := index[o]; dup {
			add(i, "%q is listed twice (also origins[%d])", o, j)
			continue
		}
		index[o] = i
		if strings.Contains(o, "*") {
			add(i, "%q is a wildcard pattern; list each exact origin (credentialed CORS and the CSRF check trust exact origins only)", o)
			continue
		}
		u, err := url.Parse(o)
		switch {
		case o == "null" || strings.HasPrefix(o, "file:"):
			add(i, "%q is prohibited: null and file origins can be produced by any page", o)
			continue
		case err != nil || (u.Scheme != "https" && u.Scheme != "http"):
			add(i, "%q is not an https origin (http is allowed for localhost and loopback on a dev tenant only)", o)
			continue
		case !dev && isLoopbackOrigin(o):
			add(i, "%q is a localhost or loopback origin, which any local process can serve; allow it only on a tenant marked dev: true", o)
			continue
		}
		// The CSRF check must be able to trust exactly this origin too.
		if err := http.NewCrossOriginProtection().AddTrustedOrigin(o); err != nil {
			add(i, "%q is not a serialized origin: use scheme://host[:port] in lowercase, with no path, trailing slash, userinfo or default port", o)
			continue
		}
		exact = append(exact, o)
	}
	if len(exact) == 0 {
		return
	}
	_, err := cors.NewMiddleware(corsConfig(exact))
	if err == nil {
		return
	}
	for e := range cfgerrors.All(err) {
		var (
			value, msg string
			uop        *cfgerrors.UnacceptableOriginPatternError
			iop        *cfgerrors.IncompatibleOriginPatternError
		)
		switch {
		case errors.As(e, &uop):
			value = uop.Value
			switch {
			case uop.Value == "null" || strings.HasPrefix(uop.Value, "file:"):
				msg = "is prohibited: null and file origins can be produced by any page"
			case uop.Reason == "prohibited":
				msg = "is not allowed: leave out default ports (:443, :80), write IP addresses in their canonical form, and use punycode for non-ASCII hosts"
			default:
				msg = "is not a serialized origin: use scheme://host[:port] in lowercase, with no path, trailing slash, userinfo or default port"
			}
		case errors.As(e, &iop):
			value = iop.Value
			switch iop.Reason {
			case "insecure":
				msg = "is insecure: credentialed access needs https (http only for localhost or loopback on a dev tenant)"
			case "psl":
				msg = "covers subdomains of a public suffix"
			default:
				msg = "cannot be combined with credentials"
			}
		default:
			add(-1, "%v", e)
			continue
		}
		i, ok := index[value]
		if !ok {
			i = -1
		}
		add(i, "%q %s", value, msg)
	}
}

// corsConfig is the CORS configuration of a tenant whose origins are
// exactly origins. It lives here, beside the validation, so that what is
// validated is what is enforced.
func corsConfig(origins []string) cors.Config {
	return cors.Config{
		Origins:      origins,
		Credentialed: true,
		// GET, HEAD and POST are safelisted; DELETE ends sessions.
		Methods: []string{"DELETE"},
		// Latchkey-Receipt carries a login receipt (receipt.go) back, so
		// that a call whose cookie the browser dropped is told apart.
		RequestHeaders: []string{"Content-Type", ReceiptHeader},
		// 600 s is honoured by every engine (WebKit caps at 600).
		MaxAgeInSeconds: 600,
		// Retry-After tells a client when to try again after a 503 or 429;
		// X-Request-Id ties an error to a log line; the CORS headers and Vary
		// are exposed so that a page (the example SPA) can show a developer
		// why a call worked. Set-Cookie can never be exposed.
		ResponseHeaders: []string{"Retry-After", "X-Request-Id", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Vary"},
	}
}

// CORSConfig returns the credentialed CORS configuration for t's origins.
func (t *Tenant) CORSConfig() cors.Config { return corsConfig(slices.Clone(t.Origins)) }

func isLoopbackOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && IsLoopbackHost(u.Hostname())
}

// IsLoopbackHost reports whether host (a name or an IP address, without a
// port; brackets and a trailing dot allowed) names this machine in every
// browser: localhost, a name under .localhost, or a loopback address.
func IsLoopbackHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validLabel reports whether l matches ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$:
// a lowercase DNS label, which is also the form of a tenant ID. It is a
// loop rather than a regexp because every public request resolves its
// tenant through it (a regexp match cost a tenth of a preflight).
func validLabel(l string) bool {
	if len(l) == 0 || len(l) > MaxTenantIDLen || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validHostname reports whether h is a lowercase DNS name without port or
// trailing dot: exactly what NormalizeHost produces from a Host header.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > MaxHostnameLen {
		return false
	}
	for l := range strings.SplitSeq(h, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

func validateHostnames(ps *problems, hosts []string) {
	if len(hosts) > MaxHostnames {
		ps.add("hostnames", "has %d entries, at most %d allowed", len(hosts), MaxHostnames)
		return
	}
	seen := make(map[string]int, len(hosts))
	for i, h := range hosts {
		field := fmt.Sprintf("hostnames[%d]", i)
		if j, dup := seen[h]; dup {
			ps.add(field, "%q is listed twice (also hostnames[%d])", h, j)
			continue
		}
		seen[h] = i
		if !validHostname(h) {
			ps.add(field, "%q is not a lowercase DNS name (no scheme, port or trailing dot)", h)
		}
	}
}

// ValidPublicHost reports why h cannot be a public host (the hostname of
// the shared public API, which serves every tenant in path form), or "".
func ValidPublicHost(h string) string {
	if !validHostname(h) {
		return fmt.Sprintf("%q is not a lowercase DNS name (no scheme, port or trailing dot)", h)
	}
	return ""
}

// checkPublicHosts refuses a tenant's claim on a public host: a hostname
// chooses the tenant it serves, in host form only (see the api package), so
// a claim on the host that serves the path form would take the path form
// away from every other tenant.
func checkPublicHosts(ps *problems, hostnames, public []string) {
	for i, h := range hostnames {
		if slices.Contains(public, h) {
			ps.add(fmt.Sprintf("hostnames[%d]", i), "%q is a public host (LATCHKEY_PUBLIC_HOSTS): it serves every tenant in path form (/v1/t/{tenant}/…), which a tenant claiming it would take away from all the others; give the tenant a hostname of its own", h)
		}
	}
}

// NormalizeHost turns a request's Host into the form tenant hostnames are
// stored in: lowercase, without port or a trailing dot. It returns "" for a
// host that no tenant could have claimed.
func NormalizeHost(host string) string {
	// Only a host with a colon can have a port; SplitHostPort allocates an
	// error for every host without one, the common case.
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if !validHostname(host) {
		return ""
	}
	return host
}

// checkHostnameClaims reports hostnames claimed by more than one tenant: a
// hostname chooses the tenant, so it must be unambiguous.
func checkHostnameClaims(ts []Tenant) []Problem {
	var out []Problem
	for _, c := range hostnameClaims(ts) {
		out = append(out, c.Problem)
	}
	return out
}

// hostnameClaim is a problem of checkHostnameClaims with the index, in
// its list, of the tenant it is reported on.
type hostnameClaim struct {
	Problem
	tenant int
}

func hostnameClaims(ts []Tenant) []hostnameClaim {
	owner := make(map[string]TenantID)
	var out []hostnameClaim
	for k, t := range ts {
		for i, h := range t.Hostnames {
			if o, ok := owner[h]; ok && o != t.ID {
				out = append(out, hostnameClaim{Problem{
					Tenant:  string(t.ID),
					Field:   fmt.Sprintf("hostnames[%d]", i),
					Message: fmt.Sprintf("%q is already claimed by tenant %q", h, o),
				}, k})
				continue
			}
			owner[h] = t.ID
		}
	}
	return out
}

// Duration is a time.Duration written as a Go duration string ("12h",
// "90m") in YAML and JSON.
type Duration time.Duration

// MarshalText renders d like time.Duration.String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as 12h or 90m", b)
	}
	*d = Duration(v)
	return nil
}
