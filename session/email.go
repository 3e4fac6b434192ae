package session

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Bounds of an email address (RFC 5321 4.5.3.1: a path is at most 256
// octets with its angle brackets, a local part at most 64).
const (
	MaxEmailLen      = 254
	MaxEmailLocalLen = 64
)

// NormalizeEmail returns the form an address is unique and compared under,
// or, with normal "", a message saying why s is not an address.
//
// s must be a bare addr-spec (name@example.com: no display name, comment,
// quoting, angle brackets, spaces or control characters) of at most
// MaxEmailLen bytes, with a local part of at most MaxEmailLocalLen. The
// normal form is s in Unicode NFC with its local part lowercased and its
// domain in IDNA ASCII (punycode), lowercased, under the same bounds. No
// provider's own rules are applied (dots and +tags are kept): the address
// is the user's, and Latchkey cannot know which providers ignore them.
// The normal form is a fixed point: NormalizeEmail(normal) is normal.
//
// The form to show the user is norm.NFC.String(s), with its case kept.
func NormalizeEmail(s string) (normal string, msg string) {
	const notAddress = "must be an email address such as name@example.com"
	if len(s) > MaxEmailLen {
		return "", "must be at most 254 bytes long"
	}
	if !utf8.ValidString(s) {
		return "", notAddress
	}
	for _, r := range s {
		// net/mail takes any non-ASCII character for text, spaces and
		// invisible ones too: an address that looks like another's is
		// refused here.
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return "", notAddress
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", notAddress
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.HasPrefix(s[at+1:], "[") {
		return "", notAddress // domain literals ([192.0.2.1]) included
	}
	local := norm.NFC.String(strings.ToLower(norm.NFC.String(s[:at])))
	domain, err := idna.Lookup.ToASCII(s[at+1:])
	if err != nil || !validDomain(domain) {
		return "", "has a domain that is not a valid domain name"
	}
	domain = strings.ToLower(domain)
	if len(local) > MaxEmailLocalLen {
		return "", "the part before the @ must be at most 64 bytes long"
	}
	normal = local + "@" + domain
	if len(normal) > MaxEmailLen {
		return "", "must be at most 254 bytes long"
	}
	// The normal form must itself be an address, and its own normal form,
	// or a user could not be found again by it.
	if a, err := mail.ParseAddress(normal); err != nil || a.Address != normal {
		return "", notAddress
	}
	return normal, ""
}

// validDomain reports whether d, an IDNA ASCII domain, has 1 to 63 bytes
// in every label and no empty label.
func validDomain(d string) bool {
	if d == "" || len(d) > MaxHostnameLen {
		return false
	}
	for l := range strings.SplitSeq(d, ".") {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
	}
	return true
}
