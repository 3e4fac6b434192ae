package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// answerOf writes err through writeError and returns the recorded answer
// and what was logged.
func answerOf(t *testing.T, err error) (*httptest.ResponseRecorder, problem, string) {
	t.Helper()
	var logs syncBuffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	w := httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest("POST", "/v1/login", nil), err)
	var p problem
	if jerr := json.Unmarshal(w.Body.Bytes(), &p); jerr != nil {
		t.Fatalf("%v: body %q is not a problem: %v", err, w.Body, jerr)
	}
	return w, p, logs.String()
}

// TestClassify checks every class of error: its status, problem type,
// detail, Retry-After, login outcome label and whether it is logged.
func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		typ        string
		detail     string // "" to skip
		retryAfter string
		outcome    string
		logged     bool
	}{
		{"unauthenticated", session.ErrUnauthenticated, 401, "unauthenticated", detailUnauthenticated, "", loginError, false},
		{"unauthenticated wrapped", fmt.Errorf("load: %w", session.ErrUnauthenticated), 401, "unauthenticated", detailUnauthenticated, "", loginError, false},
		{"unauthenticated with detail", &session.Error{Kind: session.KindUnauthenticated, Detail: "key abc"}, 401, "unauthenticated", detailUnauthenticated, "", loginError, false},
		{"invalid credentials", session.ErrInvalidCredentials, 401, "invalid-credentials", "the username or password is wrong", "", loginBadCreds, false},
		{"invalid credentials wrapped", fmt.Errorf("%w: %w", session.ErrInvalidCredentials, errors.New("not checked")), 401, "invalid-credentials", "the username or password is wrong", "", loginBadCreds, false},
		{"not found", session.ErrNotFound, 404, "not-found", "Not found", "", loginError, false},
		{"not found with detail", &session.Error{Kind: session.KindNotFound, Detail: `user "bob"`}, 404, "not-found", `user "bob"`, "", loginError, false},
		{"conflict", &session.Error{Kind: session.KindConflict, Detail: `user "bob" already exists`}, 409, "conflict", `user "bob" already exists`, "", loginError, false},
		{"forbidden", session.ErrForbidden, 403, "forbidden", "Not allowed with these credentials", "", loginError, false},
		{"rate limited", &session.Error{Kind: session.KindRateLimited, RetryAfter: 1500 * time.Millisecond}, 429, "rate-limited", "too many failed logins for this account or address; retry later", "2", loginRateLimited, false},
		{"rate limited under a second", &session.Error{Kind: session.KindRateLimited, RetryAfter: time.Millisecond}, 429, "rate-limited", "", "1", loginRateLimited, false},
		{"busy", session.ErrBusy, 503, "unavailable", "too many logins in progress; retry shortly", "1", loginBusy, false},
		{"invalid config", &session.ValidationError{Problems: []session.Problem{{Field: "origins", Message: "bad"}}}, 400, "invalid-config", "see errors for each problem", "", loginError, false},
		{"store unavailable", fmt.Errorf("get: %w", session.ErrUnavailable), 503, "unavailable", "the session store is not answering; retry shortly", "2", loginError, true},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), 503, "unavailable", "the session store is not answering; retry shortly", "2", loginError, true},
		{"cancelled", context.Canceled, 503, "unavailable", "request cancelled", "", loginError, false},
		{"internal", errors.New("boom"), 500, "internal", "an internal error occurred; X-Request-Id identifies it in the logs", "", loginError, true},
		{"unknown kind", &session.Error{Kind: 200, Detail: "x"}, 500, "internal", "", "", loginError, true},
		{"edge not found", errorf(kindNotFound, "no such route"), 404, "not-found", "no such route", "", loginError, false},
		{"edge bad request", errorf(kindBadRequest, "several Origin headers"), 400, "bad-request", "several Origin headers", "", loginError, false},
		{"edge media type", errorf(kindUnsupportedMedia, "Content-Type must be application/json"), 415, "unsupported-media-type", "", "", loginError, false},
		{"edge too large", errorf(kindTooLarge, "the body must be at most 4096 bytes"), 413, "payload-too-large", "", "", loginError, false},
		{"edge admin", errorf(kindAdminUnauthorized, "send a token"), 401, "admin-unauthorized", "send a token", "", loginError, false},
		{"body", &bodyError{err: errors.New("unexpected")}, 400, "bad-request", "the body is not valid JSON", "", loginError, false},
		{"invalid token", &session.Error{Kind: session.KindInvalidToken, Detail: "expired"}, 400, "invalid-token", "the link is invalid, expired or used already; ask for a new one", "", loginError, false},
		{"weak password", &session.Error{Kind: session.KindWeakPassword, Detail: "the password is one of the 10000 most common passwords"}, 400, "weak-password", "the password is one of the 10000 most common passwords", "", loginError, false},
		{"email unverified", session.ErrEmailUnverified, 403, "email-unverified", "", "", loginUnverified, false},
		{"not enabled", &session.Error{Kind: session.KindNotEnabled, Detail: "signup is not enabled for this tenant"}, 404, "not-enabled", "signup is not enabled for this tenant", "", loginError, false},
		{"cookie not sent", &cookieNotSentError{detail: "dropped", browser: "chrome", reasons: []string{"UserPreferences"}, advice: "fix"},
			401, "cookie-not-sent", "dropped", "", loginError, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, p, logs := answerOf(t, tt.err)
			if w.Code != tt.status || p.Status != tt.status || p.Type != problemTypePrefix+tt.typ {
				t.Errorf("status %d (body %d), type %s; want %d, %s", w.Code, p.Status, p.Type, tt.status, problemTypePrefix+tt.typ)
			}
			if tt.detail != "" && p.Detail != tt.detail {
				t.Errorf("Detail = %q, want %q", p.Detail, tt.detail)
			}
			if p.Detail == "" || p.Title == "" {
				t.Errorf("Detail = %q, Title = %q; want both set", p.Detail, p.Title)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if got := loginOutcome(tt.err); got != tt.outcome {
				t.Errorf("loginOutcome = %q, want %q", got, tt.outcome)
			}
			if (logs != "") != tt.logged {
				t.Errorf("logged %q, want logged=%v", logs, tt.logged)
			}
		})
	}
	if got := loginOutcome(nil); got != loginSuccess {
		t.Errorf("loginOutcome(nil) = %q, want %q", got, loginSuccess)
	}
}

// TestClassifyEveryKind checks that every session.Kind has a class of its
// own: a new kind without one would answer 500.
func TestClassifyEveryKind(t *testing.T) {
	t.Parallel()
	n := 0
	for k := session.Kind(1); !strings.HasPrefix(k.String(), "kind("); k++ {
		n++
		if a := classify(&session.Error{Kind: k}); a.kind == kindInternal {
			t.Errorf("kind %v answers %s, want a class of its own", k, a.Type)
		}
		if !errors.Is(&session.Error{Kind: k, Detail: "d"}, &session.Error{Kind: k}) {
			t.Errorf("kind %v with a detail does not match its sentinel", k)
		}
	}
	if n != len(domainClasses)-1 {
		t.Errorf("%d kinds, %d classes; want a class for each kind", n, len(domainClasses)-1)
	}
}

// TestServerErrorsLeakNothing checks that a 5xx never shows the client any
// of its error's text, whatever the error carries: addresses, credentials
// and internal messages go to the log only.
func TestServerErrorsLeakNothing(t *testing.T) {
	t.Parallel()
	const secret = "hunter2"
	for _, err := range []error{
		fmt.Errorf("redisstore: dial 10.9.8.7:6379 as %s: %w", secret, session.ErrUnavailable),
		fmt.Errorf("redisstore: %s: %w", secret, context.DeadlineExceeded),
		fmt.Errorf("%s: %w", secret, context.Canceled),
		fmt.Errorf("session: decode user %s: unexpected end", secret),
		fmt.Errorf("%w: %s", session.ErrBusy, secret),
		&session.Error{Kind: session.KindBusy, Detail: secret},
		&session.Error{Kind: 200, Detail: secret},
		errorf(kindInternal, secret),
	} {
		w, p, logs := answerOf(t, err)
		if w.Code < 500 {
			t.Errorf("%v: status %d, want a 5xx", err, w.Code)
		}
		if strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), "10.9.8.7") {
			t.Errorf("%v: the answer %s shows the error's text", err, w.Body)
		}
		if p.Detail == "" {
			t.Errorf("%v: empty detail", err)
		}
		if logs != "" && !strings.Contains(logs, secret) {
			t.Errorf("%v: logged %s without the error", err, logs)
		}
	}
}

// TestClassifyAccounts checks the account routes' variant of the map: its
// rate limits speak of requests (and never of failed logins), a signup
// conflict has one detail, field problems are a bad-request with errors,
// and everything else is answered as elsewhere.
func TestClassifyAccounts(t *testing.T) {
	t.Parallel()
	limited := &session.Error{Kind: session.KindRateLimited, RetryAfter: 90 * time.Second}
	for _, tt := range []struct {
		name   string
		route  accountsRoute
		err    error
		status int
		typ    string
		detail string
		errs   int
	}{
		{"reset request limited", routeResetRequest, limited, 429, "rate-limited", detailAccountsRateLimited, 0},
		{"signup limited", routeSignup, limited, 429, "rate-limited", detailAccountsRateLimited, 0},
		{"change limited", routeChangePassword, limited, 429, "rate-limited", detailChangeRateLimited, 0},
		{"signup conflict", routeSignup, &session.Error{Kind: session.KindConflict, Detail: `user "carol" already exists`}, 409, "conflict", detailSignupConflict, 0},
		{"fields", routeSignup, &session.ValidationError{Problems: []session.Problem{{Field: "email", Message: "must be an email address"}}}, 400, "bad-request", detailFieldProblems, 1},
		{"weak", routeReset, &session.Error{Kind: session.KindWeakPassword, Detail: "too short"}, 400, "weak-password", "too short", 0},
		{"outage", routeVerify, fmt.Errorf("x: %w", session.ErrUnavailable), 503, "unavailable", "the session store is not answering; retry shortly", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := classifyAccounts(tt.err, tt.route)
			if a.Status != tt.status || a.Type != problemTypePrefix+tt.typ || a.Detail != tt.detail || len(a.Errors) != tt.errs {
				t.Errorf("got %d %s %q errors %v; want %d %s %q with %d errors", a.Status, a.Type, a.Detail, a.Errors, tt.status, tt.typ, tt.detail, tt.errs)
			}
			if strings.Contains(strings.ToLower(a.Title+a.Detail), "failed login") {
				t.Errorf("title %q, detail %q speak of failed logins", a.Title, a.Detail)
			}
			if tt.typ == "rate-limited" && a.retryAfter != "90" {
				t.Errorf("Retry-After %q, want 90", a.retryAfter)
			}
			if got := accountsOutcome(tt.err, tt.route); got != tt.typ {
				t.Errorf("outcome %q, want %q", got, tt.typ)
			}
		})
	}
}
