package session

import (
	"fmt"
	"unicode/utf8"
)

// CheckNewPassword reports, as a KindWeakPassword *Error, why password
// cannot be a self-service user's new password. (Skeleton: replaced by
// the full policy: the common-password list, username and address.)
func (t *Tenant) CheckNewPassword(password, username, email string) error {
	min := DefaultPasswordMinLength
	if t.Accounts != nil && t.Accounts.PasswordMinLength > 0 {
		min = t.Accounts.PasswordMinLength
	}
	if n := utf8.RuneCountInString(password); n < min {
		return errorf(KindWeakPassword, "password must be at least %d characters long", min)
	}
	if len(password) > MaxPasswordLen {
		return errorf(KindWeakPassword, "password must be at most %d bytes long", MaxPasswordLen)
	}
	_ = fmt.Sprint
	return nil
}
