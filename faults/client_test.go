package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// Problem types the tests check (README, "Errors").
const (
	problemUnavailable     = "urn:latchkey:problem:unavailable"
	problemUnauthenticated = "urn:latchkey:problem:unauthenticated"
	problemInvalidCreds    = "urn:latchkey:problem:invalid-credentials"
	problemNotFound        = "urn:latchkey:problem:not-found"
)

// result is one HTTP exchange: what came back and how long it took.
type result struct {
	Status int
	Header http.Header
	Body   []byte
	Dur    time.Duration
	Err    error // transport error; Status is 0
}

// Problem returns the problem type of an application/problem+json body,
// or "".
func (r result) Problem() string {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		return ""
	}
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(r.Body, &p) != nil {
		return ""
	}
	return p.Type
}

// String summarises r for failure messages and logs.
func (r result) String() string {
	if r.Err != nil {
		return fmt.Sprintf("error %v after %v", r.Err, r.Dur.Round(time.Millisecond))
	}
	s := fmt.Sprintf("%d", r.Status)
	if p := r.Problem(); p != "" {
		s += " " + strings.TrimPrefix(p, "urn:latchkey:problem:")
	}
	return s + " in " + r.Dur.Round(time.Millisecond).String()
}

// SessionID returns session.id of a login or me answer, or "".
func (r result) SessionID() string {
	var v struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &v) != nil {
		return ""
	}
	return v.Session.ID
}

// SessionIDs returns the ids of a GET sessions answer.
func (r result) SessionIDs(tb testing.TB) []string {
	tb.Helper()
	var v struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		tb.Fatalf("sessions body %q: %v", r.Body, err)
	}
	ids := make([]string, len(v.Sessions))
	for i, s := range v.Sessions {
		ids[i] = s.ID
	}
	return ids
}

// Cookie returns the value of the session cookie the answer sets, or ""
// (also for the clearing cookie of a logout).
func (r result) Cookie() string {
	if r.Header == nil {
		return ""
	}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == cookieName && c.Value != "" && c.MaxAge > 0 {
			return c.Value
		}
	}
	return ""
}

// apiClient calls the public API of tenant acme in path form, as the SPA at
// https://app.acme.test would: with its Origin, JSON bodies and the session
// cookie set by hand (a cookie jar would not send a Secure cookie over
// plain HTTP to 127.0.0.1).
type apiClient struct {
	base   string // e.g. http://127.0.0.1:1234/v1/t/acme
	client *http.Client
}

// newAPIClient returns a client of the public listener at publicURL. Every
// request times out after timeout, so no test can hang on a request.
func newAPIClient(publicURL string, timeout time.Duration) *apiClient {
	return &apiClient{
		base:   publicURL + "/v1/t/" + tenantID,
		client: &http.Client{Timeout: timeout},
	}
}

func (a *apiClient) do(method, path, cookie string, body any) result {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return result{Err: err}
	}
	req.Header.Set("Origin", appOrigin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	}
	return doRequest(a.client, req)
}

func doRequest(c *http.Client, req *http.Request) result {
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return result{Err: err, Dur: time.Since(start)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return result{Status: res.StatusCode, Header: res.Header, Body: b, Dur: time.Since(start), Err: err}
}

// Login posts the credentials with no session cookie.
func (a *apiClient) Login(user, password string) result {
	return a.do(http.MethodPost, "/login", "", map[string]string{"username": user, "password": password})
}

// LoginWith posts the credentials presenting cookie, whose session the
// login must end.
func (a *apiClient) LoginWith(cookie, user, password string) result {
	return a.do(http.MethodPost, "/login", cookie, map[string]string{"username": user, "password": password})
}

// Me gets the session of cookie.
func (a *apiClient) Me(cookie string) result { return a.do(http.MethodGet, "/me", cookie, nil) }

// Logout ends the session of cookie.
func (a *apiClient) Logout(cookie string) result {
	return a.do(http.MethodPost, "/logout", cookie, struct{}{})
}

// Sessions lists the live sessions of cookie's user.
func (a *apiClient) Sessions(cookie string) result {
	return a.do(http.MethodGet, "/sessions", cookie, nil)
}

// RevokeAll logs cookie's user out everywhere.
func (a *apiClient) RevokeAll(cookie string) result {
	return a.do(http.MethodDelete, "/sessions", cookie, nil)
}

// get fetches url (an admin or health endpoint) with client c.
func get(c *http.Client, url string) result {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return result{Err: err}
	}
	return doRequest(c, req)
}

// admin calls the admin API of p with its bearer token.
func admin(c *http.Client, p *proctest.Latchkey, method, path string, body any) result {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+p.Admin+"/admin/v1"+path, rd)
	if err != nil {
		return result{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return doRequest(c, req)
}

// pollUntil calls f every interval until it reports true or d has passed,
// and returns how long that took and whether f succeeded.
func pollUntil(d, interval time.Duration, f func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if f() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}
