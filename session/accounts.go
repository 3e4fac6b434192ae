package session

import (
	"context"
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
