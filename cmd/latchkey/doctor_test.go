package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/session"
)

// doctorFile is a tenants file of two tenants: acme on its own hostname
// with a Lax cookie, and beta, a dev tenant on the shared host with a
// partitioned SameSite=None cookie.
const doctorFile = `tenants:
  - id: acme
    name: Acme
    origins: [https://app.acme.com, https://admin.acme.com]
    hostnames: [auth.acme.com]
    cookie: {same_site: lax}
  - id: beta
    name: Beta
    dev: true
    origins: [http://localhost:5173]
    cookie: {same_site: none, partitioned: true}
`

func writeFile(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// doctorRun is one run of latchkey doctor, in process.
type doctorRun struct {
	status         int // the process's exit status
	stdout, stderr string
	err            error
}

func runDoctor(tb testing.TB, env map[string]string, args ...string) doctorRun {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"doctor"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return doctorRun{status: exitStatus(err), stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// wantDiagnosis is the doctor's own diagnosis for the tenant of the
// tenants file at path, JSON-encoded as the command prints it.
func wantDiagnosis(tb testing.TB, path, tenant string, in session.DoctorInput) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tf, err := session.ParseTenantsFile(f)
	if err != nil {
		tb.Fatal(err)
	}
	for _, spec := range tf.Tenants {
		if string(spec.ID) == tenant {
			d, err := spec.Tenant.Doctor(in)
			if err != nil {
				tb.Fatal(err)
			}
			b, err := json.Marshal(d)
			if err != nil {
				tb.Fatal(err)
			}
			return string(b) + "\n"
		}
	}
	tb.Fatalf("no tenant %s", tenant)
	return ""
}

// decodeDiagnosis decodes stdout as exactly one Diagnosis object, with no
// field the type lacks.
func decodeDiagnosis(tb testing.TB, stdout string) session.Diagnosis {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var d session.Diagnosis
	if err := dec.Decode(&d); err != nil {
		tb.Fatalf("stdout is not a Diagnosis: %v\n%s", err, stdout)
	}
	if dec.More() {
		tb.Fatalf("stdout holds more than one JSON value:\n%s", stdout)
	}
	return d
}

// TestDoctorFromFile runs the doctor on a tenants file for each exit
// status and format: the JSON is the doctor's Diagnosis exactly, the text
// says the same for people.
func TestDoctorFromFile(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "tenants.yaml", doctorFile)
	tests := []struct {
		name   string
		tenant string
		in     session.DoctorInput
		status int
		text   []string // in the text output
	}{
		{name: "own hostname on the page's site", tenant: "acme", in: session.DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1"}, status: 0,
			text: []string{"Tenant         acme\n", "Site relation  same-site\n", "✓ chrome              preflight ✓  stored ✓  sent ✓\n", "✓ safari-no-chips     preflight ✓  stored ✓  sent ✓\n", "Works in every profile (6).\n"}},
		{name: "an origin not listed", tenant: "acme", in: session.DoctorInput{PageOrigin: "https://app.acme.co", API: "https://auth.acme.com/v1"}, status: 1,
			text: []string{"the closest listed origin is\nhttps://app.acme.com, which differs in host.\n", "✗ chrome              preflight ✗  stored ✗  sent ✗\n",
				"    reasons  PreflightMissingAllowOriginHeader, OriginNotListed\n", "    advice   Load the page from https://app.acme.com", "    advice   as for chrome\n",
				"Fails in 6 of 6 profiles: chrome, chrome-3pc-blocked, firefox, firefox-strict,\nsafari, safari-no-chips.\n"}},
		{name: "partitioned on the shared host", tenant: "beta", in: session.DoctorInput{PageOrigin: "http://localhost:5173", API: "https://auth.example.com/v1/t/beta"}, status: 1,
			text: []string{"Site relation  cross-site\n", "✓ chrome ", "✗ firefox-strict      preflight ✓  stored ✗  sent ✗\n", "    reasons  PartitionedBlockedByUser\n",
				"    reasons  NoCHIPS\n    advice   as for firefox-strict\n", "Fails in 2 of 6 profiles: firefox-strict, safari-no-chips.\n"}},
		{name: "an origin written as no browser sends it", tenant: "acme", in: session.DoctorInput{PageOrigin: "https://APP.acme.com:443/", API: "https://auth.acme.com/v1"}, status: 0,
			text: []string{"from this page the browser sends\nhttps://app.acme.com, which is listed.\n", "Works in every profile (6).\n"}},
		{name: "credentials omitted", tenant: "acme", in: session.DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1", Credentials: "omit", ContentType: "application/json; charset=utf-8"}, status: 1,
			text: []string{"    reasons  CredentialsNotIncluded\n", "credentials: 'include'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--tenants-file", file, "--tenant", tt.tenant, "--page-origin", tt.in.PageOrigin, "--api", tt.in.API}
			if tt.in.Credentials != "" {
				args = append(args, "--credentials", tt.in.Credentials)
			}
			if tt.in.ContentType != "" {
				args = append(args, "--content-type", tt.in.ContentType)
			}

			r := runDoctor(t, nil, append(args, "--format", "json")...)
			if r.status != tt.status || r.stderr != "" {
				t.Fatalf("json: exit status %d (%v), stderr %q; want %d and nothing", r.status, r.err, r.stderr, tt.status)
			}
			if want := wantDiagnosis(t, file, tt.tenant, tt.in); r.stdout != want {
				t.Errorf("json: stdout\n%s\nwant the doctor's Diagnosis\n%s", r.stdout, want)
			}
			d := decodeDiagnosis(t, r.stdout)
			if d.Tenant != tt.tenant || d.PageOrigin != tt.in.PageOrigin || d.API != tt.in.API || len(d.Verdicts) != len(session.DoctorProfiles) || d.WorksEverywhere() != (tt.status == 0) {
				t.Errorf("json: %+v, want tenant %s, page %s, api %s, %d verdicts, works everywhere %v", d, tt.tenant, tt.in.PageOrigin, tt.in.API, len(session.DoctorProfiles), tt.status == 0)
			}

			r = runDoctor(t, nil, args...) // text, the default
			if r.status != tt.status || r.stderr != "" {
				t.Fatalf("text: exit status %d (%v), stderr %q; want %d and nothing", r.status, r.err, r.stderr, tt.status)
			}
			for _, w := range tt.text {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("text lacks %q:\n%s", w, r.stdout)
				}
			}
			for line := range strings.Lines(r.stdout) {
				if n := len([]rune(strings.TrimSuffix(line, "\n"))); n > textWidth {
					t.Errorf("text line of %d runes, over %d: %q", n, textWidth, line)
				}
			}
		})
	}
}

// TestDoctorBadInput: every kind of bad input is exit status 2, explained
// on stderr (a usage error) or in the error main prints, with nothing on
// stdout.
func TestDoctorBadInput(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "tenants.yaml", doctorFile)
	bad := writeFile(t, "bad.yaml", "tenants:\n  - id: acme\n    origins: ['*', 'null']\n    cookie: {same_site: lax}\n  - id: acme\n    name: Again\n    origins: [https://app.acme.com]\n    cookie: {same_site: lax}\n")
	page := []string{"--tenant", "acme", "--page-origin", "https://app.acme.com", "--api", "https://auth.acme.com/v1"}
	withFile := append([]string{"--tenants-file", file}, page...)
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		usage bool     // explained on stderr (errUsage)
		want  []string // in stderr for usage, else in the error
	}{
		{name: "an unknown flag", args: []string{"--nope"}, usage: true, want: []string{"flag provided but not defined: -nope", `"latchkey doctor -h"`}},
		{name: "no flag", want: []string{"give --tenants-file FILE, or --admin-url URL", "--tenant is required", "--page-origin is required", "--api is required"}},
		{name: "both sources", args: append([]string{"--tenants-file", file, "--admin-url", "http://127.0.0.1:1"}, page...), want: []string{"--tenants-file and --admin-url are both given"}},
		{name: "a token file without the admin API", args: append(withFile, "--admin-token-file", file), want: []string{"--admin-token-file: only meaningful with --admin-url"}},
		{name: "a bad tenant id and format", args: []string{"--tenants-file", file, "--tenant", "Acme", "--page-origin", "https://app.acme.com", "--api", "https://auth.acme.com/v1", "--format", "yaml"},
			want: []string{`--tenant: "Acme" is not a tenant id`, `--format: "yaml" is not text or json`}},
		{name: "an argument", args: append(withFile, "now"), want: []string{"unexpected arguments: now"}},
		{name: "an unreadable file", args: append([]string{"--tenants-file", filepath.Join(t.TempDir(), "missing.yaml")}, page...), want: []string{"--tenants-file: open ", "missing.yaml"}},
		{name: "an invalid file, every problem", args: append([]string{"--tenants-file", bad}, page...),
			want: []string{"--tenants-file " + bad + ": invalid configuration:", `line 2: tenant "acme": name: is required`, `origins[0]: "*" is a wildcard pattern`, `origins[1]: "null" is prohibited`, `tenant "acme" is declared twice`}},
		{name: "a hostname that is a public host", env: map[string]string{"LATCHKEY_PUBLIC_HOSTS": "auth.acme.com"}, args: withFile,
			want: []string{`hostnames[0]: "auth.acme.com" is a public host`}},
		{name: "bad public hosts", env: map[string]string{"LATCHKEY_PUBLIC_HOSTS": "Auth.Example.com,https://x"}, args: withFile,
			want: []string{`LATCHKEY_PUBLIC_HOSTS: "Auth.Example.com" is not a lowercase DNS name`, `LATCHKEY_PUBLIC_HOSTS: "https://x"`}},
		{name: "an unknown tenant", args: []string{"--tenants-file", file, "--tenant", "gamma", "--page-origin", "https://app.acme.com", "--api", "https://auth.acme.com/v1"},
			want: []string{`--tenant: ` + file + ` declares no tenant "gamma"; it declares acme, beta`}},
		{name: "no tenant of the file claims the host-form API's host", args: []string{"--tenants-file", file, "--page-origin", "https://app.acme.com", "--api", "https://auth.other.com/v1"},
			want: []string{"--tenant: no tenant of " + file + " claims auth.other.com, the host of --api; give --tenant"}},
		{name: "host form over the admin API names no tenant", args: []string{"--admin-url", "http://127.0.0.1:1", "--page-origin", "https://app.acme.com", "--api", "https://auth.acme.com/v1"},
			want: []string{"--tenant is required"}},
		{name: "input the doctor refuses, every field", args: []string{"--tenants-file", file, "--tenant", "acme", "--page-origin", "app.acme.com", "--api", "https://auth.example.com/v1", "--credentials", "always"},
			want: []string{"the doctor cannot judge this input:", `--page-origin: must be an http or https origin`, "--api: https://auth.example.com/v1 is the host form", `--credentials: must be include, same-origin or omit, got "always"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runDoctor(t, tt.env, tt.args...)
			if r.status != 2 || r.stdout != "" {
				t.Fatalf("exit status %d (%v), stdout %q; want 2 and nothing", r.status, r.err, r.stdout)
			}
			if errors.Is(r.err, errUsage) != tt.usage {
				t.Errorf("err = %v, usage error %v; want %v", r.err, errors.Is(r.err, errUsage), tt.usage)
			}
			got := r.err.Error()
			if tt.usage {
				got = r.stderr
			} else if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing (main prints the error)", r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s lacks %q:\n%s", map[bool]string{true: "stderr", false: "the error"}[tt.usage], w, got)
				}
			}
		})
	}
}

// TestDoctorFromAdmin asks a running Latchkey's admin API, which answers
// from the tenant as stored what the tenants file's doctor answers; the
// token is never printed.
func TestDoctorFromAdmin(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "tenants.yaml", doctorFile)
	const token = "doctor-admin-token-0123456789"
	_, adm, _ := boot(t, map[string]string{"LATCHKEY_TENANTS_FILE": file, "LATCHKEY_ADMIN_TOKEN": token})
	tokenFile := writeFile(t, "token", token+"\n")
	status, body, _ := call(t, "POST", adm+"/admin/v1/tenants/acme/keys", token, "", "", `{"name":"doctor"}`)
	var created struct{ Key string }
	if json.Unmarshal([]byte(body), &created); status != 201 || created.Key == "" {
		t.Fatalf("create a key of acme: %d %s", status, body)
	}
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	secrets := []string{token, created.Key}
	env := map[string]string{"LATCHKEY_ADMIN_TOKEN": token}
	notListed := []string{"--tenant", "acme", "--page-origin", "https://app.acme.co", "--api", "https://auth.acme.com/v1"}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		status int
		want   []string // in stdout for status 0 and 1, else in the error
	}{
		{name: "json, the platform token in the environment", env: env, args: append([]string{"--admin-url", adm, "--format", "json"}, notListed...), status: 1},
		{name: "text, the token in a file, an admin URL with a slash", args: []string{"--admin-url", adm + "/", "--admin-token-file", tokenFile, "--tenant", "acme", "--page-origin", "https://app.acme.com", "--api", "https://auth.acme.com/v1"},
			status: 0, want: []string{"Works in every profile (6).\n"}},
		{name: "text, the tenant's own key", env: map[string]string{"LATCHKEY_ADMIN_TOKEN": created.Key}, args: append([]string{"--admin-url", adm}, notListed...),
			status: 1, want: []string{"which differs in host.\n", "Fails in 6 of 6 profiles"}},
		{name: "another tenant, the key", env: map[string]string{"LATCHKEY_ADMIN_TOKEN": created.Key}, args: []string{"--admin-url", adm, "--tenant", "beta", "--page-origin", "http://localhost:5173", "--api", "https://auth.example.com/v1/t/beta"},
			status: 2, want: []string{"answered 404 not-found for tenant \"beta\""}},
		{name: "an unknown tenant", env: env, args: []string{"--admin-url", adm, "--tenant", "gamma", "--page-origin", "https://app.acme.com", "--api", "https://auth.acme.com/v1"},
			status: 2, want: []string{"--tenant: " + adm + " answered 404 not-found for tenant \"gamma\""}},
		{name: "input the doctor refuses", env: env, args: []string{"--admin-url", adm, "--tenant", "acme", "--page-origin", "null", "--api", "https://auth.acme.com/v1/t/acme", "--content-type", "text/plain"},
			status: 2, want: []string{"the doctor cannot judge this input:\n  --api: auth.acme.com is this tenant's own hostname"}},
		{name: "a wrong token", env: map[string]string{"LATCHKEY_ADMIN_TOKEN": "wrong-admin-token-0123456789"}, args: append([]string{"--admin-url", adm}, notListed...),
			status: 2, want: []string{"refused the token (401 admin-unauthorized)"}},
		{name: "no token", args: append([]string{"--admin-url", adm}, notListed...), status: 2, want: []string{"--admin-url needs the admin token"}},
		{name: "two tokens", env: env, args: append([]string{"--admin-url", adm, "--admin-token-file", tokenFile}, notListed...), status: 2, want: []string{"LATCHKEY_ADMIN_TOKEN and --admin-token-file are both set"}},
		{name: "a short token", env: map[string]string{"LATCHKEY_ADMIN_TOKEN": "short"}, args: append([]string{"--admin-url", adm}, notListed...), status: 2, want: []string{"LATCHKEY_ADMIN_TOKEN: must be at least 16 bytes"}},
		{name: "a token in the URL", env: env, args: append([]string{"--admin-url", "http://admin:" + token + "@" + strings.TrimPrefix(adm, "http://")}, notListed...), status: 2, want: []string{"--admin-url: holds a user or password"}},
		{name: "not a URL", env: env, args: append([]string{"--admin-url", "127.0.0.1:8081"}, notListed...), status: 2, want: []string{`--admin-url: "127.0.0.1:8081" is not an http or https URL`}},
		{name: "nothing listening", env: env, args: append([]string{"--admin-url", closed}, notListed...), status: 2, want: []string{"--admin-url: the admin API did not answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runDoctor(t, tt.env, tt.args...)
			if r.status != tt.status || r.stderr != "" {
				t.Fatalf("exit status %d (%v), stderr %q; want %d and nothing", r.status, r.err, r.stderr, tt.status)
			}
			got := r.stdout
			if tt.status == 2 {
				got = r.err.Error()
				if r.stdout != "" {
					t.Errorf("stdout = %q, want nothing", r.stdout)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Error("a token reached the output")
				}
			}
		})
	}

	// The admin API's JSON is the tenants file's, byte for byte.
	for _, page := range []session.DoctorInput{
		{PageOrigin: "https://app.acme.co", API: "https://auth.acme.com/v1"},
		{PageOrigin: "https://admin.acme.com", API: "https://auth.acme.com/v1", Credentials: "same-origin"},
	} {
		args := []string{"--tenant", "acme", "--page-origin", page.PageOrigin, "--api", page.API, "--format", "json"}
		if page.Credentials != "" {
			args = append(args, "--credentials", page.Credentials)
		}
		fromAdmin := runDoctor(t, env, append([]string{"--admin-url", adm}, args...)...)
		fromFile := runDoctor(t, nil, append([]string{"--tenants-file", file}, args...)...)
		if fromAdmin.status != 1 || fromAdmin.status != fromFile.status || fromAdmin.stdout != fromFile.stdout {
			t.Errorf("%+v: the admin API's exit status %d and JSON\n%s\nthe file's %d and\n%s", page, fromAdmin.status, fromAdmin.stdout, fromFile.status, fromFile.stdout)
		}
		if want := wantDiagnosis(t, file, "acme", page); fromAdmin.stdout != want {
			t.Errorf("%+v: the admin API's JSON\n%s\nwant the doctor's Diagnosis\n%s", page, fromAdmin.stdout, want)
		}
	}
}

// TestDoctorHelpListsEveryFlag keeps the hand-written help in step with
// the flags.
func TestDoctorHelpListsEveryFlag(t *testing.T) {
	t.Parallel()
	doctorFlagSet(&doctorFlags{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(doctorHelp, "\n  --"+f.Name+" ") {
			t.Errorf("the help lists no --%s", f.Name)
		}
	})
}

// TestExitStatus: main exits 0 for success, 1 for the doctor's verdict
// that a login fails, and 2 for every error.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errFails, 1},
		{errUsage, 2},
		{errors.New("LATCHKEY_ADDR: bad"), 2},
	} {
		if got := exitStatus(tt.err); got != tt.want {
			t.Errorf("exitStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestDoctorREADMEExample keeps the README's example output what the
// command prints: each of its lines, in order ("…" skips some).
func TestDoctorREADMEExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```text\n$ latchkey doctor ")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("README.md has no ```text block starting with $ latchkey doctor")
	}
	// The acme tenant of the README's tenants file, as far as the doctor
	// reads it.
	file := writeFile(t, "tenants.yaml", "tenants:\n  - id: acme\n    name: Acme Inc.\n    origins: [https://app.acme.com, https://admin.acme.com]\n    hostnames: [auth.acme.com]\n    cookie: {same_site: lax}\n")
	r := runDoctor(t, nil, "--tenants-file", file, "--tenant", "acme", "--page-origin", "http://app.acme.com", "--api", "https://auth.acme.com/v1")
	if r.status != 1 {
		t.Fatalf("exit status %d (%v), want 1", r.status, r.err)
	}
	lines := strings.Split(block, "\n")[2:] // after the command's two lines
	out, matched := r.stdout, 0
	for _, line := range lines {
		if line == "" || line == "…" {
			continue
		}
		i := strings.Index(out, line+"\n")
		if i < 0 {
			t.Fatalf("the README's line %q is not in the output (in order):\n%s", line, r.stdout)
		}
		out, matched = out[i+len(line)+1:], matched+1
	}
	if matched < 10 {
		t.Errorf("only %d lines of the README's example were checked", matched)
	}
}

// TestDoctorFindsTheTenant: without --tenant, the path form names its
// tenant, and a tenants file maps a host-form hostname to the tenant that
// claims it.
func TestDoctorFindsTheTenant(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "tenants.yaml", doctorFile)
	for _, args := range [][]string{
		{"--page-origin", "https://app.acme.com", "--api", "https://auth.acme.com/v1"},
		{"--page-origin", "http://localhost:5173", "--api", "https://auth.example.com/v1/t/beta"},
	} {
		r := runDoctor(t, nil, append([]string{"--tenants-file", file, "--format", "json"}, args...)...)
		if r.status > 1 || r.stderr != "" {
			t.Fatalf("%v: exit status %d (%v), stderr %q", args, r.status, r.err, r.stderr)
		}
		want := "acme"
		if strings.Contains(args[3], "/t/beta") {
			want = "beta"
		}
		if d := decodeDiagnosis(t, r.stdout); d.Tenant != want {
			t.Errorf("%v: diagnosed tenant %q, want %q", args, d.Tenant, want)
		}
	}
}
