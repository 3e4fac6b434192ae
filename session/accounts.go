package session

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Verification is a tenant's choice of whether users must prove they own
// their email address.
type Verification string

// The Verification values. Required: a self-service user gets no session
// (signup answers "check your mail") and cannot log in until the address
// is verified. Optional: signup logs in at once, and the address is
// verified when the user follows the mailed link. Off: no verification
// mail is sent.
const (
	VerificationRequired Verification = "required"
	VerificationOptional Verification = "optional"
	VerificationOff      Verification = "off"
)

// AccountsPolicy is a tenant's self-service accounts: signup, email
// verification and password reset. A tenant without one (Tenant.Accounts
// nil) has none of them, and its users exist only as operators create
// them.
type AccountsPolicy struct {
	// Signup opens self-service signup (POST signup).
	Signup bool `json:"signup" yaml:"signup"`
	// EmailVerification is required, optional or off. Required.
	EmailVerification Verification `json:"email_verification" yaml:"email_verification"`
	// LoginWithEmail lets a login name the user by email address as well
	// as by username.
	LoginWithEmail bool `json:"login_with_email" yaml:"login_with_email"`
	// VerifyURL is the page of the tenant's SPA that verification links
	// open: one of the tenant's origins and a path, never a URL taken
	// from a request. The token goes in the fragment (#token=…), which
	// browsers send to no server and put in no Referer. Required unless
	// EmailVerification is off.
	VerifyURL string `json:"verify_url,omitempty" yaml:"verify_url"`
	// ResetURL is, likewise, the page that password-reset links open.
	// Empty turns password reset off.
	ResetURL string `json:"reset_url,omitempty" yaml:"reset_url"`
	// VerifyTokenTTL and ResetTokenTTL are how long a mailed token works.
	// Zero means DefaultVerifyTokenTTL and DefaultResetTokenTTL.
	VerifyTokenTTL Duration `json:"verify_token_ttl,omitzero" yaml:"verify_token_ttl"`
	ResetTokenTTL  Duration `json:"reset_token_ttl,omitzero" yaml:"reset_token_ttl"`
	// PasswordMinLength is the shortest new password accepted, in
	// characters. Zero means DefaultPasswordMinLength.
	PasswordMinLength int `json:"password_min_length,omitzero" yaml:"password_min_length"`
	// Limits bound the requests that send mail.
	Limits AccountLimits `json:"limits,omitzero" yaml:"limits"`
	// Templates replace the default mails, per kind. Optional.
	Templates map[MailKind]MailTemplate `json:"templates,omitempty" yaml:"templates"`
}

// AccountLimits bound signup, verification resends and reset requests, the
// requests that send mail, counted in the store so that every replica sees
// the same counts. Every such request counts, whether or not its address
// exists, so that the answer never depends on it.
type AccountLimits struct {
	PerIP      int      `json:"per_ip,omitzero" yaml:"per_ip"`           // requests per client IP per window
	PerAddress int      `json:"per_address,omitzero" yaml:"per_address"` // requests per email address per window
	Window     Duration `json:"window,omitzero" yaml:"window"`
}

// Defaults of an AccountsPolicy.
const (
	DefaultVerifyTokenTTL      = 24 * time.Hour
	DefaultResetTokenTTL       = 30 * time.Minute
	DefaultPasswordMinLength   = 8
	DefaultAccountsPerIP       = 20
	DefaultAccountsPerAddress  = 5
	DefaultAccountsLimitWindow = time.Hour
)

// MailKind names one of the mails Latchkey sends.
type MailKind string

// The mails.
const (
	// MailVerify carries an email-verification link.
	MailVerify MailKind = "verify"
	// MailReset carries a password-reset link.
	MailReset MailKind = "reset"
	// MailSignupTaken tells an address's owner that someone tried to sign
	// up with it (instead of telling the one signing up that it is taken).
	MailSignupTaken MailKind = "signup_taken"
	// MailPasswordChanged tells a user that their password was changed or
	// reset.
	MailPasswordChanged MailKind = "password_changed"
)

// MailTemplate is one mail's subject (text/template), plain-text body
// (text/template) and HTML body (html/template). Empty fields keep the
// default.
type MailTemplate struct {
	Subject string `json:"subject,omitempty" yaml:"subject"`
	Text    string `json:"text,omitempty" yaml:"text"`
	HTML    string `json:"html,omitempty" yaml:"html"`
}

// Mail is one rendered message, ready to send.
type Mail struct {
	Tenant  TenantID
	Kind    MailKind
	To      string // the address as the user typed it
	Subject string
	Text    string
	HTML    string
}

// Mailer sends mail. Send must not block on the network: implementations
// queue the message and deliver it in the background with retries, so that
// a request's answer, and its timing, never depend on the mail server.
// Send returns an error only when the message could not even be queued.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Bounds of an AccountsPolicy. These constants own them: openapi.yaml
// states the same numbers, and api's tests hold the two equal.
const (
	MinVerifyTokenTTL      = 5 * time.Minute
	MaxVerifyTokenTTL      = 7 * 24 * time.Hour
	MinResetTokenTTL       = 5 * time.Minute
	MaxResetTokenTTL       = 24 * time.Hour
	MaxAccountsPerIP       = 1_000_000
	MaxAccountsPerAddress  = 1000
	MinAccountsLimitWindow = time.Minute
	MaxAccountsLimitWindow = 24 * time.Hour
	MaxAccountsURLLen      = 2048 // bytes, of verify_url and reset_url
)

// withDefaults returns a copy of a with the documented defaults filled in;
// nil stays nil (a tenant without accounts has none).
func (a *AccountsPolicy) withDefaults() *AccountsPolicy {
	if a == nil {
		return nil
	}
	c := *a
	if c.VerifyTokenTTL == 0 {
		c.VerifyTokenTTL = Duration(DefaultVerifyTokenTTL)
	}
	if c.ResetTokenTTL == 0 {
		c.ResetTokenTTL = Duration(DefaultResetTokenTTL)
	}
	if c.PasswordMinLength == 0 {
		c.PasswordMinLength = DefaultPasswordMinLength
	}
	if c.Limits.PerIP == 0 {
		c.Limits.PerIP = DefaultAccountsPerIP
	}
	if c.Limits.PerAddress == 0 {
		c.Limits.PerAddress = DefaultAccountsPerAddress
	}
	if c.Limits.Window == 0 {
		c.Limits.Window = Duration(DefaultAccountsLimitWindow)
	}
	// No templates is one value, not two: JSON drops an empty map, so a
	// tenant read back would differ from the one stored.
	if len(c.Templates) == 0 {
		c.Templates = nil
	} else {
		c.Templates = maps.Clone(c.Templates)
	}
	return &c
}

// validateAccounts checks the tenant's accounts block, if any, adding
// every problem, under fields "accounts.…".
func (t *Tenant) validateAccounts(ps *problems) {
	a := t.Accounts
	if a == nil {
		return
	}
	switch a.EmailVerification {
	case VerificationRequired, VerificationOptional, VerificationOff:
	case "":
		ps.add("accounts.email_verification", "is required: required (a user signs in only once the address is verified), optional or off")
	default:
		ps.add("accounts.email_verification", "must be required, optional or off, got %q", a.EmailVerification)
	}
	switch {
	case a.VerifyURL != "":
		t.validateAccountsURL(ps, "accounts.verify_url", a.VerifyURL)
	case a.EmailVerification != VerificationOff:
		ps.add("accounts.verify_url", "is required unless email_verification is off: the page of the SPA that verification links open, on one of the tenant's origins (e.g. %s/verify)", firstOr(t.Origins, "https://app.example.com"))
	}
	if a.ResetURL != "" {
		t.validateAccountsURL(ps, "accounts.reset_url", a.ResetURL)
	}
	if d := time.Duration(a.VerifyTokenTTL); d < MinVerifyTokenTTL || d > MaxVerifyTokenTTL {
		ps.add("accounts.verify_token_ttl", "must be %s to %s, got %s", MinVerifyTokenTTL, MaxVerifyTokenTTL, d)
	}
	if d := time.Duration(a.ResetTokenTTL); d < MinResetTokenTTL || d > MaxResetTokenTTL {
		ps.add("accounts.reset_token_ttl", "must be %s to %s, got %s", MinResetTokenTTL, MaxResetTokenTTL, d)
	}
	if n := a.PasswordMinLength; n < MinPasswordMinLength || n > MaxPasswordMinLength {
		ps.add("accounts.password_min_length", "must be %d to %d characters, got %d", MinPasswordMinLength, MaxPasswordMinLength, n)
	}
	l := a.Limits
	if l.PerIP < 1 || l.PerIP > MaxAccountsPerIP {
		ps.add("accounts.limits.per_ip", "must be 1 to %d requests per window, got %d", MaxAccountsPerIP, l.PerIP)
	}
	if l.PerAddress < 1 || l.PerAddress > MaxAccountsPerAddress {
		ps.add("accounts.limits.per_address", "must be 1 to %d requests per window, got %d", MaxAccountsPerAddress, l.PerAddress)
	}
	if w := time.Duration(l.Window); w < MinAccountsLimitWindow || w > MaxAccountsLimitWindow {
		ps.add("accounts.limits.window", "must be %s to %s, got %s", MinAccountsLimitWindow, MaxAccountsLimitWindow, w)
	}
	validateTemplates(ps, t, a.Templates)
}

// validateAccountsURL checks a page of the tenant's SPA that mailed links
// open: an absolute URL on exactly one of the tenant's origins, with a
// path, without userinfo or fragment (the link's token goes in the
// fragment), written in ASCII.
func (t *Tenant) validateAccountsURL(ps *problems, field, s string) {
	if len(s) > MaxAccountsURLLen {
		ps.add(field, "is %d bytes long, at most %d allowed", len(s), MaxAccountsURLLen)
		return
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			ps.add(field, "must be written in ASCII without spaces (percent-encode the others), got %q", s)
			return
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "":
		ps.add(field, "must be an absolute URL on one of the tenant's origins, such as %s/verify, got %q", firstOr(t.Origins, "https://app.example.com"), s)
		return
	case u.User != nil:
		ps.add(field, "must not hold userinfo (user@), got %q", s)
		return
	case strings.Contains(s, "#"):
		ps.add(field, "must not have a fragment (#…): the link's token goes there, got %q", s)
		return
	case u.Path == "" || u.Path[0] != '/':
		ps.add(field, "must have a path, at least /, got %q", s)
		return
	}
	origin := canonicalOrigin(u)
	if !slices.Contains(t.Origins, origin) {
		ps.add(field, "must be on one of the tenant's origins, exactly: %s is not listed in origins", origin)
	}
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}
