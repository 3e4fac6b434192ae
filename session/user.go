package session

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"

	"github.com/latchkeyhq/latchkey/store"
)

// User is an account within one tenant.
type User struct {
	Username     string
	PasswordHash string // argon2id PHC string; never leaves this package's callers in a response
	Disabled     bool
	// Email is the user's address as typed (case kept), or "" for none;
	// NormalizeEmail gives the form it is unique under.
	Email string
	// EmailVerified reports whether the user proved they own Email.
	EmailVerified bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// MaxUsernameLen bounds a username in bytes, as typed and once normalized.
const MaxUsernameLen = 128

// usernameProfile is how usernames are compared: the PRECIS
// UsernameCasePreserved profile (RFC 8265 §3.4). It maps fullwidth and
// halfwidth forms to their usual ones and puts the name in NFC, and
// refuses what a reader cannot tell apart from something else (spaces,
// control, format and zero-width characters outside the contexts that need
// them, symbols, unassigned code points) and what the bidi rule forbids.
// Case is preserved and significant, as it always was here: "Alice" and
// "alice" stay two users, so no existing account merges with another or
// changes its name, and the name an SPA gets from `me` is the one created.
// Case differences are visible; the look-alikes PRECIS removes are not.
var usernameProfile = precis.UsernameCasePreserved

// validText reports whether s is UTF-8 without control characters.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// validUsername reports why name cannot be a username, or "": what a login
// or a lookup may present. A new username must also pass newUsername.
func validUsername(name string) string {
	switch {
	case name == "":
		return "is required"
	case len(name) > MaxUsernameLen:
		return fmt.Sprintf("is %d bytes long, at most %d allowed", len(name), MaxUsernameLen)
	case !validText(name):
		return "must be UTF-8 text without control characters"
	}
	for _, r := range name {
		if unicode.IsSpace(r) {
			return "must not contain white space"
		}
	}
	return ""
}

// newUsername returns the normalized form of a username being created, the
// form it is stored and compared under, or why it cannot be one. Beyond
// the profile, a username must be one URL path segment however the URL
// travels (the admin API addresses users as /users/{username}): no '/',
// and no '\', which WHATWG URL parsers read as '/'; no '%', so that a
// proxy decoding a path once more than it should cannot turn one name into
// another; and not "." or "..", which clients and proxies remove as dot
// segments (RFC 3986 §5.2.4). The check runs after mapping, which turns
// the fullwidth solidus and percent sign into '/' and '%'.
func newUsername(name string) (string, string) {
	if msg := validUsername(name); msg != "" {
		return "", msg
	}
	n, err := usernameProfile.String(name)
	if err != nil {
		return "", "must be letters, digits and ASCII punctuation, without spaces, symbols, emoji, or control, format or zero-width characters (the PRECIS UsernameCasePreserved profile, RFC 8265)"
	}
	switch {
	case len(n) > MaxUsernameLen:
		return "", fmt.Sprintf("is %d bytes long once normalized, at most %d allowed", len(n), MaxUsernameLen)
	case strings.ContainsAny(n, `/\%`):
		return "", `must not contain "/", "\" or "%": a username must be one URL path segment, which proxies may split or decode again at those characters`
	case n == "." || n == "..":
		return "", "must not be . or ..: URL clients and proxies remove such path segments"
	}
	return n, ""
}

// normalUsername returns name in the form usernames are stored and
// compared under, or name itself when the profile refuses it: no stored
// user has such a name, so a lookup by it finds nobody.
func normalUsername(name string) string {
	if n, err := usernameProfile.String(name); err == nil {
		return n
	}
	return name
}

// userRecord is the stored form of a User. JSON keeps it readable in a
// Redis console and easy to extend; users are read once per login, so its
// size does not matter the way a session's does.
type userRecord struct {
	PasswordHash string `json:"password_hash"`
	Disabled     bool   `json:"disabled,omitempty"`
	// Email is the address as typed (the display form); the store keeps
	// the normalized one beside the record (store.User.Email).
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func encodeUser(tenant TenantID, u User) store.User {
	data, _ := json.Marshal(userRecord{ // cannot fail: plain fields only
		PasswordHash:  u.PasswordHash,
		Disabled:      u.Disabled,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		CreatedAt:     u.CreatedAt.UTC(),
		UpdatedAt:     u.UpdatedAt.UTC(),
	})
	return store.User{Tenant: string(tenant), Name: u.Username, Email: emailKey(u.Email), Data: data}
}

// emailKey is the normalized form of a user's address, the one the store
// keeps it unique under, or "" for none. Every address stored passed
// NormalizeEmail; one that no longer does (the rules tightened since) is
// kept under its lowercased form, so that it stays unique and findable.
func emailKey(display string) string {
	if display == "" {
		return ""
	}
	if n, msg := NormalizeEmail(display); msg == "" {
		return n
	}
	return strings.ToLower(display)
}

// displayEmail is the form an address is kept and shown in: as typed,
// case kept, in NFC.
func displayEmail(s string) string { return norm.NFC.String(s) }

func decodeUser(su store.User) (User, error) {
	var r userRecord
	if err := json.Unmarshal(su.Data, &r); err != nil {
		return User{}, fmt.Errorf("session: decode user: %w", err)
	}
	return User{
		Username:      su.Name,
		PasswordHash:  r.PasswordHash,
		Disabled:      r.Disabled,
		Email:         r.Email,
		EmailVerified: r.EmailVerified,
		CreatedAt:     r.CreatedAt,
		UpdatedAt:     r.UpdatedAt,
	}, nil
}
