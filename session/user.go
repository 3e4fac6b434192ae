package session

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchkeyhq/latchkey/store"
)

// User is an account within one tenant.
type User struct {
	Username     string
	PasswordHash string // argon2id PHC string; never leaves this package's callers in a response
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// MaxUsernameLen bounds a username in bytes. Usernames are compared exactly
// (no case folding), so "Alice" and "alice" are two users.
const MaxUsernameLen = 128

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

// validUsername reports why name cannot be a username, or "".
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

// userRecord is the stored form of a User. JSON keeps it readable in a
// Redis console and easy to extend; users are read once per login, so its
// size does not matter the way a session's does.
type userRecord struct {
	PasswordHash string    `json:"password_hash"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func encodeUser(tenant TenantID, u User) store.User {
	data, _ := json.Marshal(userRecord{ // cannot fail: plain fields only
		PasswordHash: u.PasswordHash,
		Disabled:     u.Disabled,
		CreatedAt:    u.CreatedAt.UTC(),
		UpdatedAt:    u.UpdatedAt.UTC(),
	})
	return store.User{Tenant: string(tenant), Name: u.Username, Data: data}
}

func decodeUser(su store.User) (User, error) {
	var r userRecord
	if err := json.Unmarshal(su.Data, &r); err != nil {
		return User{}, fmt.Errorf("session: decode user: %w", err)
	}
	return User{
		Username:     su.Name,
		PasswordHash: r.PasswordHash,
		Disabled:     r.Disabled,
		CreatedAt:    r.CreatedAt,
		UpdatedAt:    r.UpdatedAt,
	}, nil
}
