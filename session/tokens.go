package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// The kinds of mailed token: a user holds at most one of each (a newer one
// supersedes it, store.PutToken).
const (
	tokenVerify = "verify"
	tokenReset  = "reset"
)

// mailTokenLen is a mailed token's secret: 256 bits from crypto/rand, sent
// as 43 characters of unpadded base64url.
const mailTokenLen = 32

// tokenData is a token's record (store.Token.Data): what the user was
// when it was issued. A token works only while its user still has that
// address and that password hash, so that a changed address or password
// invalidates every token issued before, on every replica, without the
// store having to find them.
type tokenData struct {
	Email    string    `json:"email"`    // the normalized address it was mailed to
	Password string    `json:"password"` // passwordFingerprint of the hash then
	IssuedAt time.Time `json:"issued_at"`
}

// passwordFingerprint stands for a password hash in a token's record:
// the first 16 hex digits of its SHA-256, enough to notice a change and
// useless to anybody reading the store.
func passwordFingerprint(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:8])
}

// tokenTTL is how long a token of kind works under the tenant's policy.
func (t *Tenant) tokenTTL(kind string) time.Duration {
	a := t.Accounts
	if a == nil {
		a = &AccountsPolicy{}
	}
	if kind == tokenReset {
		return cmp.Or(time.Duration(a.ResetTokenTTL), DefaultResetTokenTTL)
	}
	return cmp.Or(time.Duration(a.VerifyTokenTTL), DefaultVerifyTokenTTL)
}

// issueToken stores a new token of kind for u, superseding the user's
// earlier one of that kind, and returns its secret and lifetime. Only a
// hash of the secret is stored. The secret is never logged.
func (m *Manager) issueToken(ctx context.Context, t *Tenant, u User, kind string) (string, time.Duration, error) {
	secret := make([]byte, mailTokenLen)
	rand.Read(secret) // never fails (crypto/rand)
	now := m.now().UTC().Truncate(time.Second)
	ttl := t.tokenTTL(kind)
	data, _ := json.Marshal(tokenData{ // cannot fail: plain fields only
		Email:    emailKey(u.Email),
		Password: passwordFingerprint(u.PasswordHash),
		IssuedAt: now,
	})
	err := m.st.PutToken(ctx, store.Token{
		Tenant:  string(t.ID),
		ID:      sessionID(secret),
		User:    u.Username,
		Kind:    kind,
		Data:    data,
		Expires: now.Add(ttl),
	})
	if err != nil {
		return "", 0, fmt.Errorf("session: store token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(secret), ttl, nil
}

// spentToken is a token taken from the store, and its user as it now is.
type spentToken struct {
	tok store.Token
	su  store.User
	u   User
}

// takeToken spends the token whose secret the user presents: of
// concurrent uses on any replica, one gets it. Anything but a live token
// of kind whose user still has the address and the password it was issued
// for, and is not disabled, is ErrInvalidToken; which it was is never
// told.
func (m *Manager) takeToken(ctx context.Context, t *Tenant, secret, kind string) (spentToken, error) {
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != mailTokenLen {
		return spentToken{}, ErrInvalidToken
	}
	tok, err := m.st.TakeToken(ctx, string(t.ID), sessionID(raw))
	if errors.Is(err, store.ErrNotFound) {
		return spentToken{}, ErrInvalidToken
	}
	if err != nil {
		return spentToken{}, err
	}
	if tok.Kind != kind || !m.now().Before(tok.Expires) {
		return spentToken{}, ErrInvalidToken
	}
	look, err := m.lookupUser(ctx, t, tok.User)
	if err != nil {
		return spentToken{}, err
	}
	if !look.found || !tokenMatches(tok, look.u) {
		return spentToken{}, ErrInvalidToken
	}
	return spentToken{tok: tok, su: look.su, u: look.u}, nil
}

// tokenMatches reports whether tok still belongs to u as it is: same
// address, same password, not disabled.
func tokenMatches(tok store.Token, u User) bool {
	var d tokenData
	if json.Unmarshal(tok.Data, &d) != nil {
		return false
	}
	return !u.Disabled && u.Email != "" && d.Email == emailKey(u.Email) && d.Password == passwordFingerprint(u.PasswordHash)
}

// putBack restores a token that was taken but not used (the new password
// it came with was refused), so that a typo does not cost the user the
// link. It is the newest of its kind, or it could not have been taken.
func (m *Manager) putBack(ctx context.Context, t *Tenant, tok store.Token) {
	if err := m.st.PutToken(context.WithoutCancel(ctx), tok); err != nil {
		m.log.WarnContext(ctx, "could not restore a token after a refused password; the user needs a new link", "tenant", t.ID, "err", err)
	}
}
