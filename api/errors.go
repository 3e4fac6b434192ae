package api

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/latchkeyhq/latchkey/session"
)

// problemTypePrefix prefixes every problem type. Types are stable URNs:
// clients switch on them, and the README lists each one.
const problemTypePrefix = "urn:latchkey:problem:"

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Pointer is the RFC 6901 JSON Pointer of what is wrong in a request
	// body that could not be decoded ("" is the whole body). Only
	// bad-request problems about a body have it.
	Pointer *string           `json:"pointer,omitempty"`
	Errors  []session.Problem `json:"errors,omitempty"`
}

// Problem kinds: slug, status and a title that never varies per occurrence.
type kind struct {
	slug   string
	status int
	title  string
}

var (
	kindBadRequest        = kind{"bad-request", http.StatusBadRequest, "The request is malformed"}
	kindInvalidConfig     = kind{"invalid-config", http.StatusBadRequest, "The configuration is invalid"}
	kindAdminUnauthorized = kind{"admin-unauthorized", http.StatusUnauthorized, "A valid admin token is required"}
	kindMetricsUnauth     = kind{"metrics-unauthorized", http.StatusUnauthorized, "A valid metrics token is required"}
	kindInvalidCreds      = kind{"invalid-credentials", http.StatusUnauthorized, "Invalid username or password"}
	kindUnauthenticated   = kind{"unauthenticated", http.StatusUnauthorized, "No valid session"}
	kindForbiddenOrigin   = kind{"forbidden-origin", http.StatusForbidden, "Cross-origin request refused"}
	kindForbidden         = kind{"forbidden", http.StatusForbidden, "Not allowed with these credentials"}
	kindRateLimited       = kind{"rate-limited", http.StatusTooManyRequests, "Too many failed logins"}
	kindNotFound          = kind{"not-found", http.StatusNotFound, "Not found"}
	kindMethodNotAllowed  = kind{"method-not-allowed", http.StatusMethodNotAllowed, "Method not allowed"}
	kindConflict          = kind{"conflict", http.StatusConflict, "Conflict"}
	kindTooLarge          = kind{"payload-too-large", http.StatusRequestEntityTooLarge, "The request body is too large"}
	kindUnsupportedMedia  = kind{"unsupported-media-type", http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	kindUnavailable       = kind{"unavailable", http.StatusServiceUnavailable, "Temporarily unavailable"}
	kindInternal          = kind{"internal", http.StatusInternalServerError, "Internal error"}
)

// httpError is an error the edge itself raises (bad input, wrong media
// type), carrying the kind it maps to and a detail safe to show.
type httpError struct {
	kind   kind
	detail string
}

func (e *httpError) Error() string { return e.kind.slug + ": " + e.detail }

func errorf(k kind, detail string) error { return &httpError{kind: k, detail: detail} }

// retryAfter is the Retry-After, in seconds, sent with a 503: long enough
// for a Redis failover, short enough that a user barely notices.
const retryAfter = 2

// writeError is the one place where errors become HTTP statuses. Only 5xx
// are logged, and internal error text never reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if err == session.ErrUnauthenticated {
		// Every logged-out page load: skip the errors.As walk below.
		writeCanned(w, problemUnauthenticated)
		return
	}
	var (
		be *bodyError
		he *httpError
		ve *session.ValidationError
		rl *session.RateLimitError
		p  problem
	)
	switch {
	case errors.As(err, &be):
		p = bodyProblem(be)
	case errors.As(err, &he):
		p = newProblem(he.kind, he.detail)
	case errors.As(err, &ve):
		p = newProblem(kindInvalidConfig, "see errors for each problem")
		p.Errors = ve.Problems
	case errors.As(err, &rl):
		// The same answer whether or not the user exists, and no password
		// was checked.
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, math.Ceil(rl.RetryAfter.Seconds())))))
		p = newProblem(kindRateLimited, "too many failed logins for this account or address; retry later")
	case errors.Is(err, session.ErrBusy):
		w.Header().Set("Retry-After", "1")
		p = newProblem(kindUnavailable, "too many logins in progress; retry shortly")
	case errors.Is(err, session.ErrForbidden):
		p = newProblem(kindForbidden, detailOf(err, session.ErrForbidden))
	case errors.Is(err, session.ErrInvalidCredentials):
		p = newProblem(kindInvalidCreds, "the username or password is wrong")
	case errors.Is(err, session.ErrUnauthenticated):
		writeCanned(w, problemUnauthenticated)
		return
	case errors.Is(err, session.ErrNotFound):
		p = newProblem(kindNotFound, detailOf(err, session.ErrNotFound))
	case errors.Is(err, session.ErrConflict):
		p = newProblem(kindConflict, detailOf(err, session.ErrConflict))
	case errors.Is(err, session.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		// An outage is never a 401: that would log users out.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		p = newProblem(kindUnavailable, "the session store is not answering; retry shortly")
		s.logServerError(r, "store unavailable", err)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		p = newProblem(kindUnavailable, "request cancelled")
	default:
		p = newProblem(kindInternal, "an internal error occurred; X-Request-Id identifies it in the logs")
		s.logServerError(r, "internal error", err)
	}
	writeProblem(w, p)
}

func newProblem(k kind, detail string) problem {
	if detail == "" {
		detail = k.title // clients may show detail as is; never leave it empty
	}
	return problem{Type: problemTypePrefix + k.slug, Title: k.title, Status: k.status, Detail: detail}
}

// bodyProblem says why a request body could not be decoded and where, from
// the library's error: a 400 whose pointer names the offending member,
// element or level. The detail names members (as the pointer does) but
// never quotes a value, which may be a password.
func bodyProblem(be *bodyError) problem {
	var (
		syn    *jsontext.SyntacticError
		sem    *jsonv2.SemanticError
		ptr    jsontext.Pointer
		detail string
	)
	switch {
	case errors.As(be.err, &syn):
		ptr, detail = syn.JSONPointer, syntaxDetail(syn)
	case errors.As(be.err, &sem):
		ptr, detail = sem.JSONPointer, semanticDetail(sem)
	default:
		detail = "the body is not valid JSON"
	}
	p := newProblem(kindBadRequest, detail)
	p.Pointer = new(string(ptr))
	return p
}

func syntaxDetail(e *jsontext.SyntacticError) string {
	at := fmt.Sprintf("malformed JSON at byte %d", e.ByteOffset)
	switch msg := e.Err.Error(); {
	case errors.Is(e.Err, errEmptyBody):
		return "the body is empty; a JSON object is required"
	case errors.Is(e.Err, errTooDeep):
		return "the body is " + msg
	case errors.Is(e.Err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends in the middle of a value"
	case errors.Is(e.Err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("field %q is given twice", e.JSONPointer)
	case errors.Is(e.Err, jsontext.ErrNonStringName):
		return at + ": an object member name must be a string"
	// The library's other causes have no error value to match; their text
	// is matched instead, and anything else gets the offset alone.
	case msg == "invalid UTF-8":
		return fmt.Sprintf("the body is not valid UTF-8 (byte %d)", e.ByteOffset)
	case strings.HasPrefix(msg, "invalid escape sequence"), strings.HasPrefix(msg, "invalid surrogate pair"):
		// The library quotes the bytes after the escape, which may be part
		// of a password: say what is wrong instead.
		return at + `: invalid escape sequence in a string; \u takes four hex digits, and a surrogate (\ud800 to \udfff) only as half of a pair`
	case strings.HasPrefix(msg, "invalid character "):
		return at + ": " + msg // quotes one character
	default:
		return at
	}
}

func semanticDetail(e *jsonv2.SemanticError) string {
	what := fmt.Sprintf("field %q", e.JSONPointer)
	if e.JSONPointer == "" {
		what = "the body"
	}
	switch {
	case errors.Is(e.Err, jsonv2.ErrUnknownName):
		return fmt.Sprintf("unknown field %q (names are case-sensitive)", e.JSONPointer)
	case e.GoType == nil:
		return what + " is invalid"
	case e.JSONKind != 0 && jsonKindName(e.JSONKind) != jsonTypeOf(e.GoType):
		return fmt.Sprintf("%s must be %s, not %s", what, jsonTypeOf(e.GoType), jsonKindName(e.JSONKind))
	case e.GoType == reflect.TypeFor[time.Time]():
		return what + " must be an RFC 3339 time, such as 2030-01-31T12:00:00Z"
	case e.GoType.Kind() >= reflect.Int && e.GoType.Kind() <= reflect.Int64 && jsonTypeOf(e.GoType) == "a number":
		// A fraction, an exponent or a value out of range.
		bits := e.GoType.Bits()
		return fmt.Sprintf("%s must be an integer from %d to %d", what, int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)
	case e.Err != nil:
		// A value the type's own parser refused (a duration, a time): its
		// message is about the value's format.
		return what + ": " + e.Err.Error()
	default:
		return what + " is invalid"
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonTypeOf names the JSON type that a Go type is decoded from.
func jsonTypeOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Time]() || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "a number"
	}
}

func jsonKindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return k.String()
}

// detailOf returns the part of err's text after the sentinel's own text,
// which is the context the domain added ("user \"bob\""), safe to show.
func detailOf(err, sentinel error) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()+": "); i >= 0 {
		return msg[i+len(sentinel.Error())+2:]
	}
	return ""
}

// Header values shared by every response that sends them, assigned under
// their canonical names: Header.Set would canonicalize the name and
// allocate the value on every request. Sharing is safe because a slice of
// length and capacity one is copied, never written, by a later Add.
var (
	hdrProblemJSON = []string{"application/problem+json"}
	hdrJSON        = []string{"application/json"}
	hdrNoSniff     = []string{"nosniff"}
	hdrNoStore     = []string{"no-store"}
)

func writeProblem(w http.ResponseWriter, p problem) {
	h := w.Header()
	h["Content-Type"] = hdrProblemJSON
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// cannedProblem is a problem encoded once, for the refusals that every
// scanner and every logged-out page load trigger: answering them must cost
// no more than a preflight.
type cannedProblem struct {
	status int
	body   []byte
}

func canned(k kind, detail string) cannedProblem {
	var b bytes.Buffer
	p := newProblem(k, detail)
	if err := json.NewEncoder(&b).Encode(p); err != nil {
		panic(err) // a fixed struct of strings always encodes
	}
	return cannedProblem{status: p.Status, body: b.Bytes()}
}

var (
	problemUnauthenticated = canned(kindUnauthenticated, "log in first; the session cookie is missing, invalid or expired")
	problemUnknownTenant   = canned(kindNotFound, "no such tenant or route")
	problemForeignOrigin   = canned(kindForbiddenOrigin, "this origin may not call this tenant")
)

func writeCanned(w http.ResponseWriter, p cannedProblem) {
	h := w.Header()
	h["Content-Type"] = hdrProblemJSON
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(p.status)
	w.Write(p.body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
