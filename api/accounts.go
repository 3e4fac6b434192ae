package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"

	"github.com/latchkeyhq/latchkey/session"
)

// The self-service account routes: signup, email verification and
// password reset and change (DESIGN of issue 16). They sit in the
// refuseForeign group with login, so that they have its two URL forms,
// its CORS and its CSRF origin check, and take JSON only (415 otherwise),
// at most maxLoginBody bytes. Their errors go through writeAccountsError,
// the one map's account variant (errors.go).
//
// Enumeration: resend and reset-request answer 202 {} once the input is
// checked and the abuse limits counted; whether the address is anyone's is
// looked up in the session layer's background work, never before the
// answer. A signup that needs verification answers 202 whatever was
// taken.

// Input bounds checked before the session layer sees a request, as login's
// are: they keep what one request can make it hash or look up small.
const (
	// maxEmailLen is the bound session.NormalizeEmail enforces (RFC
	// 5321's), checked here first as login checks a username's length.
	maxEmailLen = session.MaxEmailLen
	// maxTokenLen bounds a mailed token: they are 43 characters
	// (32 bytes of unpadded base64url); anything much longer is no token
	// and is refused without a store lookup.
	maxTokenLen = 64
)

var (
	detailEmailLen = fmt.Sprintf("email must be 1 to %d bytes", maxEmailLen)
	detailTokenLen = "token is required: the text after #token= in the mailed link"

	detailNewPasswordLen     = fmt.Sprintf("new_password must be 1 to %d bytes", session.MaxPasswordLen)
	detailCurrentPasswordLen = fmt.Sprintf("current_password must be 1 to %d bytes", session.MaxPasswordLen)
)

type signupRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type emailRequest struct {
	Email string `json:"email"`
}

type resetRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// signupPending is the answer to a signup that needs the address verified
// (or collided, which it does not say).
type signupPending struct {
	Status string `json:"status"`
}

// accepted is the body of the 202 of resend and reset-request: the same
// bytes whatever the address.
type accepted struct{}

// startInput is what a flow that ends in a new session knows of the
// browser it signs in.
func (s *Server) startInput(r *http.Request, t *session.Tenant) session.StartInput {
	return session.StartInput{UserAgent: r.UserAgent(), ClientIP: s.clientNet(r), Presented: cookieValues(nil, r, t)}
}

// checkToken refuses a token that cannot be one: empty (bad-request), or
// too long to be one (invalid-token, as an unknown one is).
func checkToken(token string) error {
	switch {
	case token == "":
		return errorf(kindBadRequest, detailTokenLen)
	case len(token) > maxTokenLen:
		return session.ErrInvalidToken
	}
	return nil
}

func checkEmail(email string) error { return checkLen(email, maxEmailLen, detailEmailLen) }

// checkLen refuses a field that is empty or longer than max bytes, with
// detail.
func checkLen(v string, max int, detail string) error {
	if v == "" || len(v) > max {
		return errorf(kindBadRequest, detail)
	}
	return nil
}

// accountsDone counts one answered account request and writes err, when
// there is one; it reports whether the handler should go on.
func (s *Server) accountsDone(w http.ResponseWriter, r *http.Request, t *session.Tenant, route accountsRoute, err error) bool {
	s.metrics.accounts.WithLabelValues(string(t.ID), string(route), accountsOutcome(err, route)).Inc()
	if err != nil {
		s.writeAccountsError(w, r, route, err)
		return false
	}
	return true
}

func (s *Server) handleSignup(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in signupRequest
	err := decodeBody(w, r, maxLoginBody, &in)
	if err == nil {
		err = cmp.Or(checkLen(in.Username, session.MaxUsernameLen, detailUsernameLen),
			checkEmail(in.Email), checkLen(in.Password, session.MaxPasswordLen, detailPasswordLen))
	}
	var res session.SignupResult
	if err == nil {
		res, err = s.m.Signup(r.Context(), t, session.SignupInput{
			Username: in.Username, Email: in.Email, Password: in.Password, StartInput: s.startInput(r, t),
		})
	}
	if !s.accountsDone(w, r, t, routeSignup, err) {
		return
	}
	if res.Session == nil {
		writeJSON(w, http.StatusAccepted, signupPending{Status: "verification_sent"})
		return
	}
	s.writeLogin(w, r, t, http.StatusCreated, *res.Session, res.Cookie)
}

func (s *Server) handleVerifyEmail(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in tokenRequest
	err := decodeBody(w, r, maxLoginBody, &in)
	if err == nil {
		err = checkToken(in.Token)
	}
	var (
		sess   session.Session
		cookie *http.Cookie
	)
	if err == nil {
		sess, cookie, err = s.m.VerifyEmail(r.Context(), t, in.Token, s.startInput(r, t))
	}
	if s.accountsDone(w, r, t, routeVerify, err) {
		s.writeLogin(w, r, t, http.StatusOK, sess, cookie)
	}
}

// handleResendVerification answers 202 {} for any well-formed address
// within the limits: known, unknown or verified already.
func (s *Server) handleResendVerification(w http.ResponseWriter, r *http.Request) {
	s.serveByAddress(w, r, routeResend, s.m.ResendVerification)
}

// handleRequestPasswordReset answers 202 {} for any well-formed address
// within the limits, whether or not it is a user's.
func (s *Server) handleRequestPasswordReset(w http.ResponseWriter, r *http.Request) {
	s.serveByAddress(w, r, routeResetRequest, s.m.RequestPasswordReset)
}

// serveByAddress serves a request that names an address and mails it if
// it is a user's (fn): 202 {} whatever the address, once it is checked and
// fn has counted the limits.
func (s *Server) serveByAddress(w http.ResponseWriter, r *http.Request, route accountsRoute, fn func(ctx context.Context, t *session.Tenant, email, clientIP string) error) {
	t := tenantFromContext(r.Context())
	var in emailRequest
	err := decodeBody(w, r, maxLoginBody, &in)
	if err == nil {
		err = checkEmail(in.Email)
	}
	if err == nil {
		err = fn(r.Context(), t, in.Email, s.clientNet(r))
	}
	if s.accountsDone(w, r, t, route, err) {
		writeJSON(w, http.StatusAccepted, accepted{})
	}
}

func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in resetRequest
	err := decodeBody(w, r, maxLoginBody, &in)
	if err == nil {
		err = cmp.Or(checkToken(in.Token), checkLen(in.Password, session.MaxPasswordLen, detailPasswordLen))
	}
	var (
		sess   session.Session
		cookie *http.Cookie
	)
	if err == nil {
		sess, cookie, err = s.m.ResetPassword(r.Context(), t, in.Token, in.Password, s.startInput(r, t))
	}
	if s.accountsDone(w, r, t, routeReset, err) {
		s.writeLogin(w, r, t, http.StatusOK, sess, cookie)
	}
}

// handleChangePassword changes the signed-in user's password. Every
// session of the user ends, this one too, and the answer carries the new
// one's cookie.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	var in changePasswordRequest
	err := decodeBody(w, r, maxLoginBody, &in)
	if err == nil {
		err = cmp.Or(checkLen(in.CurrentPassword, session.MaxPasswordLen, detailCurrentPasswordLen),
			checkLen(in.NewPassword, session.MaxPasswordLen, detailNewPasswordLen))
	}
	if err != nil {
		s.accountsDone(w, r, t, routeChangePassword, err)
		return
	}
	_, cur, ok := s.loadSession(w, r)
	if !ok {
		s.metrics.accounts.WithLabelValues(string(t.ID), string(routeChangePassword), kindUnauthenticated.slug).Inc()
		return
	}
	sess, cookie, err := s.m.ChangePassword(r.Context(), t, cur, in.CurrentPassword, in.NewPassword, s.startInput(r, t))
	if s.accountsDone(w, r, t, routeChangePassword, err) {
		s.writeLogin(w, r, t, http.StatusOK, sess, cookie)
	}
}
