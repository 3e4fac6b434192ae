package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkeyhq/latchkey/session"
)

// errFails is the doctor's verdict that a login fails in at least one
// browser profile, printed already: exit status 1, nothing on stderr.
var errFails = errors.New("the login fails in at least one browser profile")

// doctorHelp is the text of "latchkey doctor -h". Every flag of
// doctorFlagSet is in it (TestDoctorHelpListsEveryFlag).
const doctorHelp = `usage: latchkey doctor --tenants-file FILE --tenant ID --page-origin ORIGIN --api URL
         [--credentials include|same-origin|omit] [--content-type TYPE] [--format text|json]
       latchkey doctor --admin-url URL [--admin-token-file FILE] --tenant ID ...

Predicts, from a tenant's configuration, what each browser does with the
login of a page on ORIGIN calling Latchkey at URL, and with the me after it:
whether the CORS checks pass, whether the session cookie is stored and sent
back, why not, and the fix. Profiles: chrome (third-party cookies allowed),
chrome-3pc-blocked (blocked by the user, Incognito or the phase-out),
firefox (Total Cookie Protection, the default), firefox-strict (cross-site
cookies blocked), safari (26.2 and later: CHIPS), safari-no-chips (before
26.2, and WebKitGTK).

The tenant comes from a tenants file, validated as serve validates it (with
LATCHKEY_PUBLIC_HOSTS when set), or from a running Latchkey's admin API,
which answers from the tenant as stored; its token (the platform's, or a
tenant admin key) is read from LATCHKEY_ADMIN_TOKEN or --admin-token-file
and never printed.

Exit status: 0 when the login works in every profile, 1 when it fails in at
least one, 2 for bad input (flags, an unreadable or invalid tenants file, an
unknown tenant, an origin or API URL the doctor refuses) or an admin API
that did not answer.

flags:
  --tenants-file FILE     the YAML tenants file that declares the tenant
  --admin-url URL         instead: a running Latchkey's admin listener, e.g. http://127.0.0.1:8081
  --admin-token-file FILE the file holding the admin token for --admin-url (else LATCHKEY_ADMIN_TOKEN)
  --tenant ID             the tenant's id; by default the one a path-form --api
                          names (/v1/t/ID), or, with --tenants-file, the one
                          claiming a host-form --api's hostname
  --page-origin ORIGIN    the page's origin, as location.origin shows it, e.g. https://app.acme.com
  --api URL               the base URL the page calls: https://auth.acme.com/v1 (host form)
                          or https://auth.example/v1/t/acme (path form)
  --credentials MODE      fetch's credentials option: include (the default), same-origin or omit
  --content-type TYPE     the login's Content-Type (default application/json)
  --format FORMAT         text (the default, for people) or json (one Diagnosis object,
                          as POST /admin/v1/tenants/{tenant}/doctor answers it)
`

// doctorFlags are the doctor's flags, as given.
type doctorFlags struct {
	tenantsFile, adminURL, adminTokenFile string
	tenant, pageOrigin, api               string
	credentials, contentType, format      string
}

func doctorFlagSet(f *doctorFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("latchkey doctor", flag.ContinueOnError)
	fs.StringVar(&f.tenantsFile, "tenants-file", "", "")
	fs.StringVar(&f.adminURL, "admin-url", "", "")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "")
	fs.StringVar(&f.tenant, "tenant", "", "")
	fs.StringVar(&f.pageOrigin, "page-origin", "", "")
	fs.StringVar(&f.api, "api", "", "")
	fs.StringVar(&f.credentials, "credentials", session.CredentialsInclude, "")
	fs.StringVar(&f.contentType, "content-type", "application/json", "")
	fs.StringVar(&f.format, "format", "text", "")
	return fs
}

// doctor runs "latchkey doctor": it prints the diagnosis and returns nil
// when the login works in every profile, errFails when it does not, and
// any other error for bad input, every problem of which it reports.
func doctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f doctorFlags
	fs := doctorFlagSet(&f)
	// As for serve: only a bad flag's report is for stderr.
	var report bytes.Buffer
	fs.SetOutput(&report)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), `usage: latchkey doctor [flags]; "latchkey doctor -h" lists them`) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, doctorHelp)
			return nil
		}
		stderr.Write(report.Bytes())
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := f.check(); err != nil {
		return err
	}
	in := session.DoctorInput{PageOrigin: f.pageOrigin, API: f.api, Credentials: f.credentials, ContentType: f.contentType}
	var d session.Diagnosis
	var err error
	if f.tenantsFile != "" {
		d, err = doctorFromFile(&f, in, getenv)
	} else {
		d, err = doctorFromAdmin(ctx, &f, in, getenv)
	}
	if err != nil {
		return err
	}
	if f.format == "json" {
		// The admin API's encoder, so that both sources print the same
		// bytes.
		if err := json.NewEncoder(stdout).Encode(d); err != nil {
			return err
		}
	} else {
		writeDiagnosis(stdout, &d)
	}
	if !d.WorksEverywhere() {
		return errFails
	}
	return nil
}

// check reports every problem with the flags at once.
func (f *doctorFlags) check() error {
	var errs []error
	switch {
	case f.tenantsFile == "" && f.adminURL == "":
		errs = append(errs, errors.New("give --tenants-file FILE, or --admin-url URL of a running Latchkey"))
	case f.tenantsFile != "" && f.adminURL != "":
		errs = append(errs, errors.New("--tenants-file and --admin-url are both given: give one"))
	}
	if f.adminTokenFile != "" && f.adminURL == "" {
		errs = append(errs, errors.New("--admin-token-file: only meaningful with --admin-url"))
	}
	if f.tenant == "" {
		f.tenant = tenantOfAPI(f.api)
	}
	required := []struct{ name, value string }{{"--page-origin", f.pageOrigin}, {"--api", f.api}}
	if f.tenant == "" && (f.tenantsFile == "" || !hostFormAPI(f.api)) {
		// The host form names its tenant by a hostname only a tenants
		// file maps (doctorFromFile); the path form names it.
		required = append(required, struct{ name, value string }{"--tenant", ""})
	}
	for _, req := range required {
		if req.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", req.name))
		}
	}
	if f.tenant != "" && !session.TenantID(f.tenant).Valid() {
		errs = append(errs, fmt.Errorf("--tenant: %q is not a tenant id ([a-z0-9-], 1 to %d characters, no leading or trailing hyphen)", clipped(f.tenant), session.MaxTenantIDLen))
	}
	if f.format != "text" && f.format != "json" {
		errs = append(errs, fmt.Errorf("--format: %q is not text or json", clipped(f.format)))
	}
	return errors.Join(errs...)
}

// clipped bounds what of an argument an error quotes.
func clipped(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// doctorFields are the doctor's input fields by the flag that gives each.
var doctorFields = map[string]string{"page_origin": "--page-origin", "api": "--api", "credentials": "--credentials", "content_type": "--content-type"}

// doctorInputError reports the doctor's refusal of its input, from the
// file or the admin API alike, naming the flags.
func doctorInputError(ve *session.ValidationError) error {
	var b strings.Builder
	b.WriteString("the doctor cannot judge this input:")
	for _, p := range ve.Problems {
		field := p.Field
		if flag, ok := doctorFields[field]; ok {
			field = flag
		}
		b.WriteString("\n  ")
		if field != "" {
			b.WriteString(field + ": ")
		}
		b.WriteString(p.Message)
	}
	return errors.New(b.String())
}

// doctorFromFile diagnoses with the tenant of a tenants file, which is
// validated as serve validates it: every problem is reported.
func doctorFromFile(f *doctorFlags, in session.DoctorInput, getenv func(string) string) (session.Diagnosis, error) {
	hosts, err := list(publicHost)(getenv("LATCHKEY_PUBLIC_HOSTS"))
	if err != nil {
		var errs []error
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("LATCHKEY_PUBLIC_HOSTS: %w", e))
		}
		return session.Diagnosis{}, errors.Join(errs...)
	}
	tf, err := readTenantsFile("--tenants-file", f.tenantsFile, hosts)
	if err != nil {
		return session.Diagnosis{}, err
	}
	var ids []string
	for _, spec := range tf.Tenants {
		if string(spec.ID) == f.tenant || (f.tenant == "" && slices.Contains(spec.Hostnames, apiHost(f.api))) {
			d, err := spec.Tenant.Doctor(in)
			var ve *session.ValidationError
			if errors.As(err, &ve) {
				return d, doctorInputError(ve)
			}
			return d, err
		}
		ids = append(ids, string(spec.ID))
	}
	if len(ids) > 10 {
		ids = append(ids[:10], "…")
	}
	if f.tenant == "" {
		return session.Diagnosis{}, fmt.Errorf("--tenant: no tenant of %s claims %s, the host of --api; give --tenant (it declares %s)", f.tenantsFile, clipped(apiHost(f.api)), strings.Join(ids, ", "))
	}
	return session.Diagnosis{}, fmt.Errorf("--tenant: %s declares no tenant %q; it declares %s", f.tenantsFile, f.tenant, strings.Join(ids, ", "))
}

// tenantOfAPI is the tenant a path-form API URL names (.../v1/t/{id}),
// "" for any other.
func tenantOfAPI(api string) string {
	u, err := url.Parse(api)
	if err != nil {
		return ""
	}
	id, ok := strings.CutPrefix(strings.TrimSuffix(u.Path, "/"), "/v1/t/")
	if !ok || strings.Contains(id, "/") || !session.TenantID(id).Valid() {
		return ""
	}
	return id
}

// hostFormAPI reports whether api is a host-form base URL (.../v1).
func hostFormAPI(api string) bool {
	u, err := url.Parse(api)
	return err == nil && strings.TrimSuffix(u.Path, "/") == "/v1"
}

// apiHost is the host name of an API URL, as a tenant's hostnames name it.
func apiHost(api string) string {
	u, err := url.Parse(api)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// Bounds of the admin API call: an admin listener on the same network
// answers the doctor in milliseconds; one that does not within the
// timeout will not.
const (
	doctorTimeout   = 10 * time.Second
	maxDoctorAnswer = 1 << 20
)

// doctorFromAdmin asks a running Latchkey's admin API for the diagnosis
// (POST /admin/v1/tenants/{tenant}/doctor). No error quotes the token.
func doctorFromAdmin(ctx context.Context, f *doctorFlags, in session.DoctorInput, getenv func(string) string) (session.Diagnosis, error) {
	base, urlErr := adminBase(f.adminURL)
	tok, tokErr := doctorToken(f.adminTokenFile, getenv)
	if err := errors.Join(urlErr, tokErr); err != nil {
		return session.Diagnosis{}, err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return session.Diagnosis{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	target := base + "/admin/v1/tenants/" + url.PathEscape(f.tenant) + "/doctor"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return session.Diagnosis{}, fmt.Errorf("--admin-url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	// A redirect is not followed: it would carry the token elsewhere.
	client := &http.Client{Timeout: doctorTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		return session.Diagnosis{}, fmt.Errorf("--admin-url: the admin API did not answer: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxDoctorAnswer+1))
	switch {
	case err != nil:
		return session.Diagnosis{}, fmt.Errorf("--admin-url: reading the admin API's answer: %w", err)
	case len(b) > maxDoctorAnswer:
		return session.Diagnosis{}, fmt.Errorf("--admin-url: the admin API's answer is larger than %d bytes", maxDoctorAnswer)
	}
	if res.StatusCode == http.StatusOK {
		var d session.Diagnosis
		if err := json.Unmarshal(b, &d); err != nil || len(d.Verdicts) == 0 {
			return session.Diagnosis{}, fmt.Errorf("--admin-url: %s answered 200 without a diagnosis: is it a Latchkey admin listener?", base)
		}
		return d, nil
	}
	return session.Diagnosis{}, adminRefusal(base, f.tenant, res, b)
}

// adminRefusal says why the admin API did not diagnose: its problem's
// detail and, for the doctor's own refusal, every problem of the input.
func adminRefusal(base, tenant string, res *http.Response, body []byte) error {
	var p struct {
		Type   string            `json:"type"`
		Detail string            `json:"detail"`
		Errors []session.Problem `json:"errors"`
	}
	if json.Unmarshal(body, &p) != nil || !strings.HasPrefix(p.Type, "urn:latchkey:problem:") {
		return fmt.Errorf("--admin-url: %s answered %s, not a Latchkey problem: is it a Latchkey admin listener?", base, res.Status)
	}
	slug := strings.TrimPrefix(p.Type, "urn:latchkey:problem:")
	switch {
	case slug == "invalid-config" && len(p.Errors) > 0:
		return doctorInputError(&session.ValidationError{Problems: p.Errors})
	case res.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("--admin-url: %s refused the token (%d %s): check LATCHKEY_ADMIN_TOKEN or --admin-token-file", base, res.StatusCode, slug)
	case res.StatusCode == http.StatusNotFound:
		return fmt.Errorf("--tenant: %s answered %d %s for tenant %q: %s", base, res.StatusCode, slug, tenant, clipped(p.Detail))
	}
	return fmt.Errorf("--admin-url: %s answered %d %s: %s", base, res.StatusCode, slug, clipped(p.Detail))
}

// adminBase checks --admin-url, an http or https URL of the admin
// listener (a path prefix allowed, for one behind a proxy), and returns
// it without a trailing slash. The token never goes in it: errors of the
// client would print it.
func adminBase(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case (err != nil || u.User != nil) && strings.Contains(s, "@"):
		// A user or password, perhaps the token: never quoted.
		return "", errors.New("--admin-url: holds a user or password; give the token in LATCHKEY_ADMIN_TOKEN or --admin-token-file instead")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", fmt.Errorf("--admin-url: %q is not an http or https URL such as http://127.0.0.1:8081", clipped(s))
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("--admin-url: %q has a query or fragment; give the listener's base URL", clipped(s))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// doctorToken returns the admin token for --admin-url: from the file when
// one is given, else from LATCHKEY_ADMIN_TOKEN; one of the two, as for
// serve. Errors never quote it.
func doctorToken(file string, getenv func(string) string) (string, error) {
	env := getenv("LATCHKEY_ADMIN_TOKEN")
	switch {
	case env != "" && file != "":
		return "", errors.New("LATCHKEY_ADMIN_TOKEN and --admin-token-file are both set: give one")
	case file != "":
		s, err := readSecretFile(file)
		if err == nil && s == "" {
			err = fmt.Errorf("%s is empty", file)
		}
		if err == nil {
			s, err = token(s)
		}
		if err != nil {
			return "", fmt.Errorf("--admin-token-file: %w", err)
		}
		return s, nil
	case env != "":
		s, err := token(env)
		if err != nil {
			return "", fmt.Errorf("LATCHKEY_ADMIN_TOKEN: %w", err)
		}
		return s, nil
	}
	return "", errors.New("--admin-url needs the admin token or a tenant admin key: set LATCHKEY_ADMIN_TOKEN or give --admin-token-file")
}

// writeDiagnosis prints d for people: what was judged, then a line per
// profile with its reasons and the fix, then the sum.
func writeDiagnosis(w io.Writer, d *session.Diagnosis) {
	fmt.Fprintf(w, "Tenant         %s\nPage origin    %s\nAPI            %s\nSite relation  %s\n", d.Tenant, d.PageOrigin, d.API, d.SiteRelation)
	if h := d.Closest; h != nil {
		var line string
		if slices.ContainsFunc(h.Differs, func(p string) bool { return p != "path" }) {
			line = "The page's origin is not listed; the closest listed origin is " + h.Origin + ", which differs in " + strings.Join(h.Differs, " and ") + "."
		} else {
			// Only the spelling differs: the browser sends the listed one.
			line = "The page's origin as given is not how a browser writes it (an origin is lowercase, with no default port and no path); from this page the browser sends " + h.Origin + ", which is listed."
		}
		fmt.Fprint(w, wrap(line, 0, ""))
	}
	fmt.Fprintln(w)
	width := 0
	for _, v := range d.Verdicts {
		width = max(width, len(v.Browser))
	}
	adviceOf := map[string]string{} // advice given, by the first profile to give it
	var failing []string
	for _, v := range d.Verdicts {
		fmt.Fprintf(w, "%s %-*s  preflight %s  stored %s  sent %s\n", mark(v.Works), width, v.Browser, mark(v.PreflightOK), mark(v.CookieStored), mark(v.CookieSent))
		if v.Works {
			continue
		}
		failing = append(failing, v.Browser)
		if len(v.Reasons) > 0 {
			fmt.Fprint(w, wrap(strings.Join(v.Reasons, ", "), 4, "reasons  "))
		}
		if first, ok := adviceOf[v.Advice]; ok {
			fmt.Fprintf(w, "    advice   as for %s\n", first)
			continue
		}
		adviceOf[v.Advice] = v.Browser
		fmt.Fprint(w, wrap(v.Advice, 4, "advice   "))
	}
	fmt.Fprintln(w)
	if len(failing) == 0 {
		fmt.Fprintf(w, "Works in every profile (%d).\n", len(d.Verdicts))
		return
	}
	fmt.Fprint(w, wrap(fmt.Sprintf("Fails in %d of %d profiles: %s.", len(failing), len(d.Verdicts), strings.Join(failing, ", ")), 0, ""))
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// textWidth is the width the text output wraps at.
const textWidth = 78

// wrap breaks s into lines of at most textWidth runes: the first starts
// with indent spaces and label, the others are indented to align with the
// first word. A word longer than a line stands alone.
func wrap(s string, indent int, label string) string {
	var b strings.Builder
	line := strings.Repeat(" ", indent) + label
	hang := strings.Repeat(" ", utf8.RuneCountInString(line))
	fresh := true // nothing on the line yet but its indentation
	for _, word := range strings.Fields(s) {
		switch n := utf8.RuneCountInString(line) + 1 + utf8.RuneCountInString(word); {
		case fresh:
		case n > textWidth:
			b.WriteString(line + "\n")
			line = hang
		default:
			line += " "
		}
		line += word
		fresh = false
	}
	b.WriteString(line + "\n")
	return b.String()
}
