package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// userView and sessionView are the JSON shapes of openapi.yaml's User,
// SessionInfo and SessionView.
type userView struct {
	Username string `json:"username"`
}

type sessionInfo struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	UserAgent     string    `json:"user_agent"`
	Current       bool      `json:"current"`
}

type sessionView struct {
	User    userView    `json:"user"`
	Session sessionInfo `json:"session"`
}

// loginResult is openapi.yaml's LoginResult: the session view and the
// login receipt (session.Manager.Receipt), which the page may send back
// as Latchkey-Receipt.
type loginResult struct {
	sessionView
	Receipt string `json:"receipt"`
}

func infoOf(s session.Session, current bool) sessionInfo {
	return sessionInfo{
		ID:            s.ID,
		CreatedAt:     s.CreatedAt.UTC(),
		LastSeenAt:    s.LastSeenAt.UTC(),
		IdleExpiresAt: s.IdleExpiresAt.UTC(),
		ExpiresAt:     s.ExpiresAt.UTC(),
		UserAgent:     s.UserAgent,
		Current:       current,
	}
}

func viewOf(s session.Session) sessionView {
	return sessionView{User: userView{Username: s.Username}, Session: infoOf(s, true)}
}

// writeSessionView answers with s's view. It is never inlined, so that the
// view it builds stays out of its callers' stack frames, which are on the
// stack while they load the session: `me` runs deep enough that a few
// hundred bytes more made its goroutines grow their stacks again after
// every collection.
//
//go:noinline
func writeSessionView(w http.ResponseWriter, status int, s *session.Session) {
	v := viewOf(*s)
	writeView(w, status, &v)
}

// cookieValues returns every value of the tenant's session cookie in the
// request, appended to dst (nil for a new slice). More than one is refused
// by the session layer (CORS.md R4.9).
func cookieValues(dst []string, r *http.Request, t *session.Tenant) []string {
	for _, c := range r.CookiesNamed(t.CookieName()) {
		dst = append(dst, c.Value)
	}
	return dst
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

var (
	detailUsernameLen = fmt.Sprintf("username must be 1 to %d bytes", session.MaxUsernameLen)
	detailPasswordLen = fmt.Sprintf("password must be 1 to %d bytes", session.MaxPasswordLen)
)

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in loginRequest
	if err := decodeBody(w, r, maxLoginBody, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case in.Username == "" || len(in.Username) > session.MaxUsernameLen:
		s.writeError(w, r, errorf(kindBadRequest, detailUsernameLen))
		return
	case in.Password == "" || len(in.Password) > session.MaxPasswordLen:
		s.writeError(w, r, errorf(kindBadRequest, detailPasswordLen))
		return
	}
	sess, cookie, err := s.m.Login(r.Context(), t, session.LoginInput{
		Username:  in.Username,
		Password:  in.Password,
		UserAgent: r.UserAgent(),
		ClientIP:  s.clientNet(r),
		Presented: cookieValues(nil, r, t),
	})
	s.metrics.logins.WithLabelValues(string(t.ID), loginOutcome(err)).Inc()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeLogin(w, r, t, http.StatusOK, sess, cookie)
}

// writeLogin answers a new session, whatever started it (a login, a
// signup, a verification, a reset, a password change): it sets the cookie
// and sends the LoginResult with a fresh receipt, with status.
func (s *Server) writeLogin(w http.ResponseWriter, r *http.Request, t *session.Tenant, status int, sess session.Session, cookie *http.Cookie) {
	s.metrics.sessionsCreated.WithLabelValues(string(t.ID)).Inc()
	receipt, err := s.m.Receipt(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, cookie)
	v := loginResult{sessionView: viewOf(sess), Receipt: receipt}
	writeLoginResult(w, status, &v)
}

// loadSession returns the request's session, or writes the error. Only a
// request without the cookie has its Latchkey-Receipt header looked at:
// with a valid login receipt, it is the browser that dropped the cookie
// (cookieNotSent), not a session that ended.
func (s *Server) loadSession(w http.ResponseWriter, r *http.Request) (*session.Tenant, session.Session, bool) {
	t := tenantFromContext(r.Context())
	var one [1]string // what a browser sends: one value, kept on the stack
	values := cookieValues(one[:0], r, t)
	sess, err := s.m.Load(r.Context(), t, values)
	if err != nil {
		if len(values) == 0 {
			if rc := r.Header[session.ReceiptHeader]; len(rc) == 1 && s.m.CheckReceipt(t, rc[0]) {
				err = s.cookieNotSent(r, t)
			}
		}
		s.writeError(w, r, err)
		return nil, session.Session{}, false
	}
	return t, sess, true
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	if _, sess, ok := s.loadSession(w, r); ok {
		writeSessionView(w, http.StatusOK, &sess)
	}
}

// handleLogout ends the session and clears the cookie, and succeeds without
// a session: logging out twice is not an error. A body is optional: a body
// must be JSON (an empty object), but a POST with neither a body nor a
// Content-Type, which is what axios.post(url) and fetch(url, {method:
// "POST"}) send, logs out too. Such a request needs no preflight, so the
// CSRF origin check (CrossOriginProtection with the tenant's origins) is
// what refuses it from another site; the worst a forged logout could do is
// what the user can do with one click, and it is idempotent.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var empty struct{}
	if err := decodeOptionalBody(w, r, maxLoginBody, &empty); err != nil {
		s.writeError(w, r, err)
		return
	}
	presented := cookieValues(nil, r, t)
	if err := s.m.Logout(r.Context(), t, presented); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(presented) > 0 {
		s.metrics.sessionsRevoked.WithLabelValues(string(t.ID), "logout").Inc()
	}
	clearCookies(w, s.m.ClearCookies(t))
	w.WriteHeader(http.StatusNoContent)
}

func clearCookies(w http.ResponseWriter, cs []*http.Cookie) {
	for _, c := range cs {
		http.SetCookie(w, c)
	}
}

type sessionList struct {
	Sessions []sessionInfo `json:"sessions"`
}

func listOf(ss []session.Session, current string) sessionList {
	out := sessionList{Sessions: make([]sessionInfo, len(ss))}
	for i, x := range ss {
		out.Sessions[i] = infoOf(x, x.ID == current)
	}
	return out
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	t, sess, ok := s.loadSession(w, r)
	if !ok {
		return
	}
	ss, err := s.m.Sessions(r.Context(), t, sess.Username)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(ss, sess.ID))
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	t, sess, ok := s.loadSession(w, r)
	if !ok {
		return
	}
	id := pathParam(r, "id")
	if err := s.m.Revoke(r.Context(), t, sess.Username, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.sessionsRevoked.WithLabelValues(string(t.ID), "revoke").Inc()
	if id == sess.ID {
		clearCookies(w, s.m.ClearCookies(t))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleRevokeAllSessions(w http.ResponseWriter, r *http.Request) {
	t, sess, ok := s.loadSession(w, r)
	if !ok {
		return
	}
	if err := s.m.RevokeAll(r.Context(), t, sess.Username); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.sessionsRevoked.WithLabelValues(string(t.ID), "revoke_all").Inc()
	clearCookies(w, s.m.ClearCookies(t))
	w.WriteHeader(http.StatusNoContent)
}
