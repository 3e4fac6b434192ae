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
	"unicode/utf8"

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
	// Browser, Reasons and Advice are the extension members of a
	// cookie-not-sent problem: the browser family of the request's
	// User-Agent, the doctor's reasons and its fix.
	Browser string   `json:"browser,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	Advice  string   `json:"advice,omitempty"`
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
	kindCookieNotSent     = kind{"cookie-not-sent", http.StatusUnauthorized, "The browser did not send the session cookie"}
	kindForbiddenOrigin   = kind{"forbidden-origin", http.StatusForbidden, "Cross-origin request refused"}
	kindForbidden         = kind{"forbidden", http.StatusForbidden, "Not allowed with these credentials"}
	kindRateLimited       = kind{"rate-limited", http.StatusTooManyRequests, "Too many requests"}
	kindNotFound          = kind{"not-found", http.StatusNotFound, "Not found"}
	kindMethodNotAllowed  = kind{"method-not-allowed", http.StatusMethodNotAllowed, "Method not allowed"}
	kindConflict          = kind{"conflict", http.StatusConflict, "Conflict"}
	kindTooLarge          = kind{"payload-too-large", http.StatusRequestEntityTooLarge, "The request body is too large"}
	kindUnsupportedMedia  = kind{"unsupported-media-type", http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	kindUnavailable       = kind{"unavailable", http.StatusServiceUnavailable, "Temporarily unavailable"}
	kindInternal          = kind{"internal", http.StatusInternalServerError, "Internal error"}
	kindInvalidToken      = kind{"invalid-token", http.StatusBadRequest, "The link is invalid or has expired"}
	kindWeakPassword      = kind{"weak-password", http.StatusBadRequest, "The password is too weak"}
	kindEmailUnverified   = kind{"email-unverified", http.StatusForbidden, "The email address is not verified"}
	kindNotEnabled        = kind{"not-enabled", http.StatusNotFound, "Not enabled for this tenant"}
)

// httpError is an error the edge itself raises (bad input, wrong media
// type), carrying the kind it maps to and a detail safe to show.
type httpError struct {
	kind   kind
	detail string
}

func (e *httpError) Error() string { return e.kind.slug + ": " + e.detail }

func errorf(k kind, detail string) error { return &httpError{kind: k, detail: detail} }

// cookieNotSentError is a request to a session route without the session
// cookie but with a valid login receipt: the browser dropped the cookie it
// was given, and the doctor says why (doctor.go).
type cookieNotSentError struct {
	detail  string
	browser string   // the User-Agent's family
	reasons []string // the doctor's, never empty
	advice  string
}

func (e *cookieNotSentError) Error() string { return "cookie not sent: " + e.reasons[0] }

// retryAfter is the Retry-After, in seconds, sent with a 503: long enough
// for a Redis failover, short enough that a user barely notices.
const retryAfter = 2

// class is what the edge makes of one kind of error: the problem it
// answers, the outcome label the metrics count it under, and whether it is
// logged. Every 5xx class has a fixed detail, so that no error's own text
// reaches a client.
type class struct {
	kind       kind
	detail     string // the answer's detail; "" for the error's own
	retryAfter string // Retry-After header; "" for none
	outcome    string // latchkey_logins_total's outcome label
	log        string // the log message; "" logs nothing
}

const detailUnauthenticated = "log in first; the session cookie is missing, invalid or expired"

// domainClasses maps each session.Kind to its class.
var domainClasses = [...]class{
	session.KindUnauthenticated:    {kind: kindUnauthenticated, detail: detailUnauthenticated, outcome: loginError},
	session.KindInvalidCredentials: {kind: kindInvalidCreds, detail: "the username or password is wrong", outcome: loginBadCreds},
	session.KindNotFound:           {kind: kindNotFound, outcome: loginError},
	session.KindConflict:           {kind: kindConflict, outcome: loginError},
	session.KindForbidden:          {kind: kindForbidden, outcome: loginError},
	// The same answer whether or not the user exists, and no password was
	// checked; Retry-After comes from the error.
	session.KindRateLimited: {kind: kindRateLimited, detail: "too many failed logins for this account or address; retry later", outcome: loginRateLimited},
	// Not logged: a flood of logins would flood the logs.
	session.KindBusy: {kind: kindUnavailable, detail: "too many logins in progress; retry shortly", retryAfter: "1", outcome: loginBusy},
	// Unknown, expired, used and superseded tokens are never told apart,
	// whatever the session layer knows.
	session.KindInvalidToken: {kind: kindInvalidToken, detail: "the link is invalid, expired or used already; ask for a new one", outcome: loginError},
	// The detail says which rule the password broke.
	session.KindWeakPassword:    {kind: kindWeakPassword, outcome: loginError},
	session.KindEmailUnverified: {kind: kindEmailUnverified, detail: "the password is right, but the email address is not verified yet: follow the link in the verification mail, or ask for a new one", outcome: loginUnverified},
	session.KindNotEnabled:      {kind: kindNotEnabled, outcome: loginError},
}

// The details that the self-service account routes (accounts.go) give
// instead of login's: their rate limits count the requests that send mail
// (or, for a password change, wrong current passwords), not failed logins,
// and a signup that collides says the same whichever of the username and
// the address is taken.
const (
	detailAccountsRateLimited = "too many requests for this email address or from this network; retry later"
	detailChangeRateLimited   = "too many wrong passwords for this account or from this network; retry later"
	detailSignupConflict      = "this username or email address cannot be used"
	detailFieldProblems       = "see errors for each problem"
)

var (
	classInvalid = class{kind: kindInvalidConfig, detail: "see errors for each problem", outcome: loginError}
	// An outage is never a 401: that would log users out.
	classUnavailable = class{kind: kindUnavailable, detail: "the session store is not answering; retry shortly", retryAfter: strconv.Itoa(retryAfter), outcome: loginError, log: "store unavailable"}
	// The client went away; nobody reads this answer.
	classCancelled = class{kind: kindUnavailable, detail: "request cancelled", outcome: loginError}
	classInternal  = class{kind: kindInternal, detail: "an internal error occurred; X-Request-Id identifies it in the logs", outcome: loginError, log: "internal error"}
	classEdge      = class{outcome: loginError} // an *httpError: its own kind and detail
)

// answer is what the edge says about one error.
type answer struct {
	class
	problem
}

// classify is the one map from a non-nil error to its answer and its
// outcome label. Errors are read with errors.As, never by their text.
func classify(err error) answer {
	var (
		de *session.Error
		be *bodyError
		he *httpError
		ve *session.ValidationError
		ce *cookieNotSentError
	)
	switch {
	case errors.As(err, &ce):
		c := classEdge
		c.kind = kindCookieNotSent
		a := c.answer(ce.detail)
		a.Browser, a.Reasons, a.Advice = ce.browser, ce.reasons, ce.advice
		return a
	case errors.As(err, &de):
		if int(de.Kind) >= len(domainClasses) || domainClasses[de.Kind].kind.slug == "" {
			return classInternal.answer("")
		}
		a := domainClasses[de.Kind].answer(de.Detail)
		if de.Kind == session.KindRateLimited {
			a.retryAfter = strconv.Itoa(int(max(1, math.Ceil(de.RetryAfter.Seconds()))))
		}
		return a
	case errors.As(err, &be):
		return answer{class: classEdge, problem: bodyProblem(be)}
	case errors.As(err, &he):
		c := classEdge
		c.kind = he.kind
		return c.answer(he.detail)
	case errors.As(err, &ve):
		a := classInvalid.answer("")
		a.Errors = ve.Problems
		return a
	case errors.Is(err, session.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return classUnavailable.answer("")
	case errors.Is(err, context.Canceled):
		return classCancelled.answer("")
	default:
		return classInternal.answer("")
	}
}

// answer is c's answer to an error whose own detail is detail.
func (c class) answer(detail string) answer {
	switch {
	case c.detail != "":
		detail = c.detail
	case c.kind.status >= 500:
		detail = "" // the title: never an error's own text on a 5xx
	}
	return answer{class: c, problem: newProblem(c.kind, detail)}
}

// accountsRoute names a self-service account route, for the words of its
// errors and its metrics label.
type accountsRoute string

// The self-service account routes (accounts.go).
const (
	routeSignup         accountsRoute = "signup"
	routeVerify         accountsRoute = "verify"
	routeResend         accountsRoute = "resend"
	routeResetRequest   accountsRoute = "reset_request"
	routeReset          accountsRoute = "reset"
	routeChangePassword accountsRoute = "change_password"
)

// classifyAccounts is classify for the self-service account routes: the
// same map, with the details of their rate limits and conflicts, and field
// problems of the input (a *session.ValidationError: a username or address
// that is not one) answered as the bad-request they are, with errors,
// rather than as a configuration problem.
func classifyAccounts(err error, route accountsRoute) answer {
	var (
		de *session.Error
		ve *session.ValidationError
	)
	switch {
	case errors.As(err, &de) && de.Kind == session.KindRateLimited:
		a := classify(err)
		a.Detail = detailAccountsRateLimited
		if route == routeChangePassword {
			a.Detail = detailChangeRateLimited
		}
		return a
	case errors.As(err, &de) && de.Kind == session.KindConflict:
		a := classify(err)
		a.Detail = detailSignupConflict
		return a
	case errors.As(err, &ve):
		c := classEdge
		c.kind = kindBadRequest
		a := c.answer(detailFieldProblems)
		a.Errors = ve.Problems
		return a
	}
	return classify(err)
}

// writeAccountsError is writeError for a self-service account route.
func (s *Server) writeAccountsError(w http.ResponseWriter, r *http.Request, route accountsRoute, err error) {
	s.writeAnswer(w, r, err, classifyAccounts(err, route))
}

// writeError is the one place where errors become HTTP statuses. Only the
// classes that say so are logged, and an error's own text reaches the
// client only as the client-safe detail of a 4xx.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if err == session.ErrUnauthenticated {
		// Every logged-out page load: skip the errors.As walk.
		writeCanned(w, problemUnauthenticated)
		return
	}
	s.writeAnswer(w, r, err, classify(err))
}

// writeAnswer writes a, the answer to err.
func (s *Server) writeAnswer(w http.ResponseWriter, r *http.Request, err error, a answer) {
	if a.log != "" {
		s.logServerError(r, a.log, err)
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	writeProblem(w, a.problem)
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

// Header values shared by every response that sends them, assigned under
// their canonical names: Header.Set would canonicalize the name and
// allocate the value on every request. Sharing is safe because a slice of
// length and capacity one is copied, never written, by a later Add.
var (
	hdrProblemJSON = []string{"application/problem+json"}
	hdrJSON        = []string{"application/json"}
	hdrNoSniff     = []string{"nosniff"}
	hdrNoStore     = []string{"no-store"}
	hdrVaryOrigin  = []string{"Origin"}
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
	problemUnauthenticated = canned(kindUnauthenticated, detailUnauthenticated)
	problemUnknownTenant   = canned(kindNotFound, "no such tenant or route")
)

// maxQuotedOrigin bounds the bytes of a refused Origin that a problem's
// detail or a log line quotes: a browser's Origin is far shorter, and
// a client's own is its text, not ours to repeat at length.
const maxQuotedOrigin = 200

// quoteOrigin is origin cut to maxQuotedOrigin bytes, on a rune boundary,
// with "…" when cut.
func quoteOrigin(origin string) string {
	if len(origin) <= maxQuotedOrigin {
		return origin
	}
	i := maxQuotedOrigin
	for i > 0 && !utf8.RuneStart(origin[i]) {
		i--
	}
	return origin[:i] + "…"
}

// foreignOriginDetail is the detail of the 403 that refuses a request from
// origin, which names it, so that whoever reads the answer (a developer in
// the network panel, an operator replaying it) sees which origin to list.
func foreignOriginDetail(origin string) string {
	return detailForeignHead + quoteOrigin(origin) + detailForeignTail
}

const (
	detailForeignHead = "the origin "
	detailForeignTail = " is not one of this tenant's origins"
)

// problemForeignOriginHead is the forbidden-origin problem up to its
// detail's value, encoded once: every scanner's request is refused with
// it, and the answer must cost no more than a preflight.
var problemForeignOriginHead = func() []byte {
	p := newProblem(kindForbiddenOrigin, "-")
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // a fixed struct of strings always encodes
	}
	return b[:bytes.LastIndex(b, []byte(`"-"`))]
}()

// writeForeignOrigin answers 403 forbidden-origin naming origin: the bytes
// json.Encoder writes for newProblem(kindForbiddenOrigin,
// foreignOriginDetail(origin)) (TestForeignOriginDetail), without its
// reflection.
func writeForeignOrigin(w http.ResponseWriter, origin string) {
	h := w.Header()
	h["Content-Type"] = hdrProblemJSON
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(http.StatusForbidden)
	bp := viewBufs.Get().(*[]byte)
	b := append((*bp)[:0], problemForeignOriginHead...)
	// The detail's parts escaped one by one (appendJSONChars): the same
	// bytes as the joined detail's, without the joining.
	b = appendJSONChars(append(b, '"'), detailForeignHead)
	b = appendJSONChars(b, quoteOrigin(origin))
	b = appendJSONChars(b, detailForeignTail)
	*bp = append(b, "\"}\n"...)
	w.Write(*bp)
	viewBufs.Put(bp)
}

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
