package session

import (
	"context"
	"errors"
	"net/http"
)

// Skeleton of issue 16's flows: the signatures are the contract between
// session and api; the bodies are replaced by the implementation.

var errTODO = errors.New("session: not implemented yet")

// StartInput is what a flow that ends in a new session (verification,
// reset, password change) knows of the browser it signs in.
type StartInput struct {
	UserAgent string
	ClientIP  string
	// Presented holds the values of session cookies that came with the
	// request; their sessions end with the new one's start.
	Presented []string
}

// SignupInput is what a signup presents.
type SignupInput struct {
	Username string
	Email    string
	Password string
	StartInput
}

// SignupResult is what a signup that was accepted did. With Session nil,
// the answer is "check your mail": verification is required, or the
// username or address was taken (which the answer never says).
type SignupResult struct {
	Session *Session
	Cookie  *http.Cookie
}

// Signup creates a self-service user.
func (m *Manager) Signup(ctx context.Context, t *Tenant, in SignupInput) (SignupResult, error) {
	return SignupResult{}, errTODO
}

// VerifyEmail spends a verification token, marks its user's address
// verified and signs the browser in.
func (m *Manager) VerifyEmail(ctx context.Context, t *Tenant, token string, in StartInput) (Session, *http.Cookie, error) {
	return Session{}, nil, errTODO
}

// ResendVerification mails a new verification link to email if it is an
// unverified user's; it answers the same whether or not it is.
func (m *Manager) ResendVerification(ctx context.Context, t *Tenant, email, clientIP string) error {
	return errTODO
}

// RequestPasswordReset mails a reset link to email if it is a user's; it
// answers the same, in the same time, whether or not it is.
func (m *Manager) RequestPasswordReset(ctx context.Context, t *Tenant, email, clientIP string) error {
	return errTODO
}

// ResetPassword spends a reset token, sets the new password, ends every
// session of the user and signs the browser in.
func (m *Manager) ResetPassword(ctx context.Context, t *Tenant, token, password string, in StartInput) (Session, *http.Cookie, error) {
	return Session{}, nil, errTODO
}

// ChangePassword checks the signed-in user's current password, sets the
// new one, ends all of the user's sessions and starts a new one for this
// browser.
func (m *Manager) ChangePassword(ctx context.Context, t *Tenant, s Session, current, next string, in StartInput) (Session, *http.Cookie, error) {
	return Session{}, nil, errTODO
}

// SendVerification mails a new verification link to the user (the admin
// API's resend).
func (m *Manager) SendVerification(ctx context.Context, t *Tenant, username string) error {
	return errTODO
}
