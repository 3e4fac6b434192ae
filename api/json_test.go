package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// problemOf returns the problem a request body's decoding error becomes.
func problemOf(t *testing.T, err error) problem {
	t.Helper()
	var be *bodyError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v (%T), want a *bodyError", err, err)
	}
	return bodyProblem(be)
}

// TestDecodeJSONStrict checks what decodeJSON refuses, and that each
// refusal is a 400 whose pointer names what is wrong.
func TestDecodeJSONStrict(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name    string
		body    string
		want    loginRequest // when accepted
		pointer string       // when refused
		detail  string       // a part of the refusal's detail
	}{
		{name: "exact", body: `{"username":"alice","password":"pw"}`, want: loginRequest{"alice", "pw"}},
		{name: "escapes", body: `{"username":"\u0061lice","password":"\ud83d\ude00\/"}`, want: loginRequest{"alice", "😀/"}},
		{name: "null", body: `null`},
		{name: "null member", body: `{"username":null,"password":"pw"}`, want: loginRequest{Password: "pw"}},

		{name: "empty", body: ``, pointer: "", detail: "the body is empty"},
		{name: "whitespace", body: " \n\t", pointer: "", detail: "the body is empty"},
		{name: "truncated", body: `{"username":"alice"`, pointer: "", detail: "ends in the middle"},
		{name: "trailing data", body: `{"username":"alice"} {}`, pointer: "", detail: "after top-level value"},
		{name: "array", body: `[]`, pointer: "", detail: "must be an object, not an array"},
		{name: "string", body: `"alice"`, pointer: "", detail: "must be an object, not a string"},
		{name: "byte order mark", body: "\ufeff{}", pointer: "", detail: "invalid character"},
		{name: "unknown member", body: `{"username":"a","admin":true}`, pointer: "/admin", detail: `unknown field "/admin"`},
		{name: "case-folded name", body: `{"USERNAME":"alice","password":"pw"}`, pointer: "/USERNAME", detail: "case-sensitive"},
		{name: "Kelvin sign name", body: `{"username":"alice","passwor\u212a":"pw"}`, pointer: "/passwor\u212a", detail: "unknown field"},
		{name: "duplicate name", body: `{"username":"mallory","username":"alice"}`, pointer: "/username", detail: "given twice"},
		{name: "duplicate by escape", body: `{"username":"a","\u0075sername":"b"}`, pointer: "/username", detail: "given twice"},
		{name: "wrong type", body: `{"username":1}`, pointer: "/username", detail: `field "/username" must be a string, not a number`},
		{name: "nested value", body: `{"username":{"first":"a"}}`, pointer: "/username", detail: "not an object"},
		{name: "invalid UTF-8", body: "{\"username\":\"al\xffice\"}", pointer: "/username", detail: "not valid UTF-8"},
		{name: "invalid UTF-8 in a name", body: "{\"user\xffname\":\"alice\"}", pointer: "", detail: "not valid UTF-8"},
		{name: "lone high surrogate", body: `{"username":"\ud800x","password":"pw"}`, pointer: "/username", detail: "surrogate"},
		{name: "lone high surrogate at the end", body: `{"password":"\ud800"}`, pointer: "/password", detail: "surrogate"},
		{name: "lone low surrogate", body: `{"password":"\udc00"}`, pointer: "/password", detail: "surrogate"},
		{name: "reversed pair", body: `{"password":"\ude00\ud83d"}`, pointer: "/password", detail: "surrogate"},
		{name: "short escape", body: `{"password":"\u00x"}`, pointer: "/password", detail: "escape"},
		{name: "control character", body: "{\"password\":\"a\x01\"}", pointer: "/password", detail: "invalid character"},
		{name: "32 levels", body: `{"username":` + deep(31) + `}`, pointer: "/username", detail: "not an array"},
		{name: "33 levels", body: `{"username":` + deep(32) + `}`, pointer: "/username" + strings.Repeat("/0", 31), detail: "more than 32 levels"},
		{name: "4 KiB of open arrays", body: `{"username":` + strings.Repeat("[", 4080), pointer: "/username" + strings.Repeat("/0", 31), detail: "more than 32 levels"},
		{name: "4 KiB of bare open arrays", body: strings.Repeat("[", 4096), pointer: strings.Repeat("/0", 32), detail: "more than 32 levels"},
		{name: "deep objects", body: strings.Repeat(`{"a":`, 40), pointer: strings.Repeat("/a", 32), detail: "more than 32 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got loginRequest
			err := decodeJSON([]byte(tt.body), &got)
			if tt.detail == "" {
				if err != nil || got != tt.want {
					t.Fatalf("decodeJSON = %+v, %v; want %+v, nil", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("decodeJSON = %+v, nil; want a refusal", got)
			}
			p := problemOf(t, err)
			if p.Status != http.StatusBadRequest || p.Type != problemTypePrefix+"bad-request" {
				t.Errorf("problem %s %d, want bad-request 400", p.Type, p.Status)
			}
			if p.Pointer == nil || *p.Pointer != tt.pointer {
				t.Errorf("pointer = %v, want %q", p.Pointer, tt.pointer)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tt.detail)
			}
		})
	}
}

// TestDecodeJSONTypes checks the problems of the admin bodies' types: each
// names the member by its pointer and says what it must be.
func TestDecodeJSONTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dst     any
		body    string
		pointer string
		detail  string
	}{
		{"unknown nested member", &tenantInput{}, `{"cookie":{"same_site":"lax","x":1}}`, "/cookie/x", `unknown field "/cookie/x"`},
		{"origins not a list", &tenantInput{}, `{"origins":"https://a.example"}`, "/origins", "must be an array, not a string"},
		{"origin not a string", &tenantInput{}, `{"origins":["https://a.example",1]}`, "/origins/1", "must be a string, not a number"},
		{"bool as string", &tenantInput{}, `{"dev":"true"}`, "/dev", "must be a boolean, not a string"},
		{"duration as number", &tenantInput{}, `{"session":{"idle_timeout":3600}}`, "/session/idle_timeout", "must be a string, not a number"},
		{"bad duration", &tenantInput{}, `{"session":{"idle_timeout":"soon"}}`, "/session/idle_timeout", "use a Go duration"},
		{"fraction", &tenantInput{}, `{"login_limits":{"per_account":1.5}}`, "/login_limits/per_account", "must be an integer"},
		{"huge number", &tenantInput{}, `{"login_limits":{"per_ip":1e999}}`, "/login_limits/per_ip", "must be an integer"},
		{"bad time", &keyInput{}, `{"name":"k","expires_at":"tomorrow"}`, "/expires_at", "RFC 3339"},
		{"time as number", &keyInput{}, `{"name":"k","expires_at":1}`, "/expires_at", "must be a string, not a number"},
		{"disabled as number", &userPatch{}, `{"disabled":1}`, "/disabled", "must be a boolean, not a number"},
		{"case-folded patch", &userPatch{}, `{"Disabled":true}`, "/Disabled", "unknown field"},
		{"logout member", &struct{}{}, `{"all":true}`, "/all", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := problemOf(t, decodeJSON([]byte(tt.body), tt.dst))
			if p.Pointer == nil || *p.Pointer != tt.pointer || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("pointer %v, detail %q; want %q and a detail with %q", p.Pointer, p.Detail, tt.pointer, tt.detail)
			}
		})
	}
	// The embedded session.Tenant is decoded as its own members.
	var in tenantInput
	if err := decodeJSON([]byte(`{"id":"x","name":"X","cookie":{"same_site":"lax"},"session":{"idle_timeout":"1h"}}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.ID != "x" || in.Name != "X" || in.Cookie.SameSite != "lax" || time.Duration(in.Session.IdleTimeout) != time.Hour {
		t.Errorf("tenantInput = %+v", in)
	}
}

// TestDecodeJSONQuotesNoValue checks that no problem detail repeats a
// value of the body: a password may be one.
func TestDecodeJSONQuotesNoValue(t *testing.T) {
	t.Parallel()
	const secret = "hunter2secret"
	for _, body := range []string{
		`{"username":"a","password":"\ud800` + secret + `"}`,
		`{"username":"a","password":"\u00` + secret + `"}`,
		`{"username":"a","password":"` + secret + "\x01\"}",
		`{"username":"a","password":"` + secret + "\xff\"}",
		`{"username":"a","password":["` + secret + `"]}`,
		`{"username":"a","password":"` + secret + `"} "` + secret + `"`,
		`{"username":"a","password":"` + secret,
	} {
		p := problemOf(t, decodeJSON([]byte(body), &loginRequest{}))
		b, _ := json.Marshal(p)
		if strings.Contains(string(b), secret[:6]) || strings.Contains(string(b), secret[len(secret)-6:]) {
			t.Errorf("body %q: problem %s repeats the password", body, b)
		}
	}
}

// allocatedBy returns the bytes f allocates, on average over n runs.
func allocatedBy(n int, f func()) uint64 {
	var before, after runtime.MemStats
	f() // warm any pools
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// TestDecodeJSONMemoryLinear checks that what a body costs to refuse is
// linear in its size whatever its nesting: a 4 KiB login body of open
// arrays once cost 27 MB, a 20,000-deep one 650 MB, because a path string
// was built at every level. It is not parallel, so that other tests'
// allocations stay out of the count; the bound is generous (a few times
// the body, plus the decoder), the failure it catches is a thousand times
// over it.
func TestDecodeJSONMemoryLinear(t *testing.T) {
	for _, body := range []string{
		`{"username":` + strings.Repeat("[", maxLoginBody-len(`{"username":`)),
		strings.Repeat("[", maxLoginBody),
		strings.Repeat("[", 20000),
		strings.Repeat(`{"a":`, maxAdminBody/5),
		strings.Repeat("[", maxAdminBody),
		`{"origins":[` + strings.Repeat(`[],`, maxAdminBody/3-8) + `[]]}`,
	} {
		t.Run(fmt.Sprintf("%.12s…%d", body, len(body)), func(t *testing.T) {
			got := allocatedBy(20, func() {
				var in tenantInput
				if decodeJSON([]byte(body), &in) == nil {
					t.Fatal("decodeJSON accepted it")
				}
			})
			if limit := uint64(4*len(body) + 32<<10); got > limit {
				t.Errorf("decodeJSON allocated %d bytes for a %d-byte body, want at most %d", got, len(body), limit)
			}
		})
	}
}
