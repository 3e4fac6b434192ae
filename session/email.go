package session

import (
	"net/mail"
	"strings"
)

// NormalizeEmail returns the form an address is unique and compared under,
// or why s is not an address. (Skeleton: replaced by the full rules of
// DESIGN: NFC, lowercase, IDNA domain, bounds.)
func NormalizeEmail(s string) (normal string, msg string) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", "must be an email address such as name@example.com"
	}
	return strings.ToLower(s), ""
}
