package session

import (
	"fmt"
	"time"
)

// MailData is what a mail template may use.
type MailData struct {
	TenantName string
	Username   string
	Email      string
	Link       string
	Expires    time.Duration
}

// NeedsMail reports whether the tenant's configuration sends mail: every
// accounts block does (verification, reset, notices).
func (t *Tenant) NeedsMail() bool { return t.Accounts != nil }

// RenderMail renders the tenant's mail of kind k to d.Email. (Skeleton:
// replaced by the templates.)
func (t *Tenant) RenderMail(k MailKind, d MailData) (Mail, error) {
	return Mail{
		Tenant:  t.ID,
		Kind:    k,
		To:      d.Email,
		Subject: fmt.Sprintf("%s: %s", t.Name, k),
		Text:    fmt.Sprintf("%s\n%s\n", k, d.Link),
	}, nil
}
