package spa

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

// Config configures Handler. It has no defaults: the zero value is refused.
type Config struct {
	// API is the Latchkey base URL the page calls, including the tenant
	// prefix and without a trailing slash: "http://localhost:8080/v1/t/example"
	// (path form) or "https://auth.acme.test:8443/v1" (host form). It must be
	// an absolute http or https URL with a host and no user information,
	// query or fragment. Its origin is the only one besides the page's own
	// that the page may connect to.
	API string
}

// Handler returns an http.Handler that serves the example SPA for cfg:
// "/" (index.html), "/verify" and "/reset" (index.html too: the pages a
// tenant's verify_url and reset_url name, whose links carry the token in
// the fragment, which app.js reads), "/app.js", "/latchkey-client.js" (the @latchkey/client
// module app.js imports), "/style.css" and the generated "/config.js".
// It answers GET and HEAD only (405 with Allow otherwise) and 404 for any
// other path. When cfg is invalid it returns every problem, joined.
func Handler(cfg Config) (http.Handler, error) {
	origin, err := apiOrigin(cfg.API)
	if err != nil {
		return nil, err
	}
	h := &handler{
		files: make(map[string]*file),
		// Exactly the directives of the contract: connect-src is the one
		// that matters, since it is what lets fetch() reach the API at all.
		csp: "default-src 'self'; connect-src 'self' " + origin +
			"; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
	}
	for _, s := range []struct{ path, name, contentType string }{
		{"/", "static/index.html", "text/html; charset=utf-8"},
		{"/index.html", "static/index.html", "text/html; charset=utf-8"},
		{"/verify", "static/index.html", "text/html; charset=utf-8"},
		{"/reset", "static/index.html", "text/html; charset=utf-8"},
		{"/app.js", "static/app.js", "text/javascript; charset=utf-8"},
		{"/latchkey-client.js", "static/latchkey-client.js", "text/javascript; charset=utf-8"},
		{"/style.css", "static/style.css", "text/css; charset=utf-8"},
	} {
		b, err := staticFS.ReadFile(s.name)
		if err != nil {
			return nil, fmt.Errorf("spa: embedded %s: %w", s.name, err) // a build bug
		}
		// no-cache, not no-store: the browser revalidates with the ETag,
		// so a rebuilt binary is picked up on the next reload.
		h.files[s.path] = newFile(s.name, s.contentType, "no-cache", b)
	}
	h.files["/config.js"] = newFile("config.js", "text/javascript; charset=utf-8", "no-store", configJS(cfg.API))
	return h, nil
}

// configJS renders /config.js. encoding/json escapes quotes, backslashes,
// line terminators (including U+2028 and U+2029) and <, > and &, so the
// API string can neither end the string literal nor the script.
func configJS(api string) []byte {
	b, _ := json.Marshal(api) // a string always marshals
	return []byte("window.LATCHKEY_CONFIG = {\"api\": " + string(b) + "};\n")
}

// file is one response body, built once.
type file struct {
	name, contentType, cacheControl, etag string
	body                                  []byte
}

func newFile(name, contentType, cacheControl string, body []byte) *file {
	sum := sha256.Sum256(body)
	return &file{
		name:         name,
		contentType:  contentType,
		cacheControl: cacheControl,
		etag:         `"` + hex.EncodeToString(sum[:8]) + `"`,
		body:         body,
	}
}

type handler struct {
	files map[string]*file
	csp   string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Security headers go on every response, errors included: a 404 page
	// is a page too.
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", h.csp)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, ok := h.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Cache-Control", f.cacheControl)
	if f.cacheControl != "no-store" {
		hdr.Set("ETag", f.etag)
	}
	// ServeContent handles HEAD, If-None-Match and ranges; the zero
	// modification time leaves Last-Modified out.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}

// apiOrigin validates api and returns its origin (scheme://host[:port]) for
// the Content-Security-Policy.
func apiOrigin(api string) (string, error) {
	if api == "" {
		return "", errors.New(`spa: Config.API is required, e.g. "http://localhost:8080/v1/t/example"`)
	}
	u, err := url.Parse(api)
	if err != nil {
		return "", fmt.Errorf("spa: Config.API: %w", err)
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("spa: Config.API %q: "+format, append([]any{api}, args...)...))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		add("the scheme must be http or https, got %q", u.Scheme)
	}
	switch {
	case u.Host == "":
		add("a host is required (an absolute URL such as http://localhost:8080/v1/t/example)")
	case !validHost(u):
		// The host goes into a response header: refuse anything that could
		// add a CSP source or directive.
		add("the host %q is not a DNS name or IP address", u.Host)
	case !validPort(u):
		add("the port of %q must be a number from 1 to 65535", u.Host)
	}
	if u.User != nil {
		// fetch() refuses URLs with credentials outright.
		add("user information is not allowed")
	}
	if u.RawQuery != "" || u.ForceQuery {
		add("a query is not allowed: the page appends paths such as /login")
	}
	if u.Fragment != "" || strings.Contains(api, "#") {
		add("a fragment is not allowed")
	}
	if strings.HasSuffix(u.EscapedPath(), "/") {
		add("remove the trailing slash: the page appends paths such as /login")
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// validPort reports whether u has no port or a port from 1 to 65535;
// url.Parse accepts any digits, and an empty port after a colon.
func validPort(u *url.URL) bool {
	p := u.Port()
	if p == "" {
		return !strings.HasSuffix(u.Host, ":")
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// validHost reports whether u's host is a DNS name or an IP address (IPv6
// in brackets, without a zone); url.Parse accepts characters such as ';'
// and ',' in hosts.
func validHost(u *url.URL) bool {
	name := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(name)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
