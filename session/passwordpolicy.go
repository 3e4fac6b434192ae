package session

import (
	_ "embed"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Bounds of AccountsPolicy.PasswordMinLength, in characters. NIST SP
// 800-63B asks at least 8 of a password a user chooses; past 64 a minimum
// only refuses passphrases.
const (
	MinPasswordMinLength = 8
	MaxPasswordMinLength = 64
)

// commonPasswordsText is the 10,000 most common passwords, one a line,
// lowercased, most common first: the first 10,000 entries of
// src/passwords.json of the npm package @zxcvbn-ts/language-common 4.1.3
// (https://github.com/zxcvbn-ts/zxcvbn), whose MIT licence is in
// commonpasswords.LICENSE beside it. It ships in the binary, so that the
// check needs nothing fetched at run time.
//
//go:embed commonpasswords.txt
var commonPasswordsText string

// commonPasswordsCount is the number of entries commonPasswordsText holds,
// as the refusal states it.
const commonPasswordsCount = 10000

// commonPasswords returns the list sorted, for binary search. Its strings
// point into the embedded text: the slice headers (about 160 KB) are all
// it allocates, less than a map of the same keys.
var commonPasswords = sync.OnceValue(func() []string {
	list := strings.Split(strings.TrimSuffix(commonPasswordsText, "\n"), "\n")
	slices.Sort(list)
	return slices.Compact(list)
})

// isCommonPassword reports whether password, lowercased, is on the list.
func isCommonPassword(password string) bool {
	_, found := slices.BinarySearch(commonPasswords(), strings.ToLower(password))
	return found
}

// CheckNewPassword reports, as a KindWeakPassword *Error whose Detail
// names the rule, why password cannot be the new password of the
// self-service user username with address email (either may be empty).
// A password must have at least the tenant's PasswordMinLength characters
// (DefaultPasswordMinLength without an accounts block), at most
// MaxPasswordLen bytes, must not be one of the 10,000 most common
// passwords, and must not be the username, the address or the address's
// local part, compared case-insensitively. Operators' passwords (the
// admin API, the tenants file) are not checked: that is their choice.
func (t *Tenant) CheckNewPassword(password, username, email string) error {
	minLen := DefaultPasswordMinLength
	if t.Accounts != nil && t.Accounts.PasswordMinLength > 0 {
		minLen = t.Accounts.PasswordMinLength
	}
	// The byte bound first: counting the runes of a huge input is work
	// for nothing.
	if len(password) > MaxPasswordLen {
		return errorf(KindWeakPassword, "password must be at most %d bytes long", MaxPasswordLen)
	}
	if utf8.RuneCountInString(password) < minLen {
		return errorf(KindWeakPassword, "password must be at least %d characters long", minLen)
	}
	if username != "" && strings.EqualFold(password, username) {
		return errorf(KindWeakPassword, "password must not be the username")
	}
	if email != "" {
		if strings.EqualFold(password, email) {
			return errorf(KindWeakPassword, "password must not be the email address")
		}
		if at := strings.LastIndexByte(email, '@'); at > 0 && strings.EqualFold(password, email[:at]) {
			return errorf(KindWeakPassword, "password must not be the part of the email address before the @")
		}
	}
	if isCommonPassword(password) {
		return errorf(KindWeakPassword, "password is one of the %d most common passwords; choose another", commonPasswordsCount)
	}
	return nil
}
