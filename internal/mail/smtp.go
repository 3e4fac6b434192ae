package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/latchkeyhq/latchkey/session"
)

// Defaults of an SMTPConfig.
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultSendTimeout = 60 * time.Second
	// DefaultSMTPPort is the submission port (RFC 6409) of smtp:// URLs,
	// DefaultSMTPSPort that of smtps:// (RFC 8314).
	DefaultSMTPPort  = 587
	DefaultSMTPSPort = 465
)

// SMTPConfig configures an SMTP sender.
type SMTPConfig struct {
	// URL is smtp://[user[:password]@]host[:port] (STARTTLS, required
	// unless host is loopback; port 587 by default) or
	// smtps://[user[:password]@]host[:port] (implicit TLS, port 465). It
	// may hold a password: errors never quote it. Required.
	URL string
	// Password, if set, returns the password, at every connection, so
	// that a rotated secret file is read again (cmd reads it as it reads
	// its other secret files); the URL then holds a user and no password.
	Password func() (string, error)
	// CAFile, if set, is a PEM file of the CA certificates the server's
	// certificate must verify against, instead of the system's.
	CAFile string
	// From is the sender, "addr" or "Name <addr>". Required.
	From string
	// DialTimeout bounds connecting, TLS and authentication; SendTimeout
	// bounds a whole delivery, connection included. Zero means
	// DefaultDialTimeout and DefaultSendTimeout.
	DialTimeout time.Duration
	SendTimeout time.Duration
}

// SMTP is a Sender that delivers each mail over its own SMTP connection.
// It is safe for concurrent use.
type SMTP struct {
	host        string
	port        int
	implicitTLS bool
	tlsPolicy   gomail.TLSPolicy
	tlsConfig   *tls.Config
	user, pass  string
	passwordFn  func() (string, error)
	fromName    string
	fromAddr    string
	fromDomain  string
	dialTimeout time.Duration
	sendTimeout time.Duration
}

var _ Sender = (*SMTP)(nil)

// NewSMTP validates cfg, reporting every problem at once, and returns its
// sender. It connects to nothing. Error texts name the setting (URL, From,
// ...) and never quote the URL.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	s := &SMTP{
		passwordFn:  cfg.Password,
		dialTimeout: cfg.DialTimeout,
		sendTimeout: cfg.SendTimeout,
	}
	var errs []error
	if err := s.parseURL(cfg.URL); err != nil {
		errs = append(errs, fmt.Errorf("URL: %w", err))
	}
	if s.pass != "" && cfg.Password != nil {
		errs = append(errs, errors.New("the URL holds a password and a password file is given too: give one"))
	}
	if cfg.Password != nil && s.user == "" {
		errs = append(errs, errors.New("a password file needs a user in the URL (smtp://user@host)"))
	}
	if cfg.Password != nil {
		if _, err := s.password(); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.CAFile != "" && s.tlsConfig != nil {
		pem, err := os.ReadFile(cfg.CAFile)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("CA file: %w", err))
		case !pool.AppendCertsFromPEM(pem):
			errs = append(errs, fmt.Errorf("CA file %s holds no PEM certificate", cfg.CAFile))
		default:
			s.tlsConfig.RootCAs = pool
		}
	}
	if err := s.parseFrom(cfg.From); err != nil {
		errs = append(errs, fmt.Errorf("from: %w", err))
	}
	if s.dialTimeout < 0 || s.sendTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if s.dialTimeout == 0 {
		s.dialTimeout = DefaultDialTimeout
	}
	if s.sendTimeout == 0 {
		s.sendTimeout = DefaultSendTimeout
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mail: smtp: %w", err)
	}
	return s, nil
}

// parseURL sets the server and credentials from u; its errors never quote
// u, which may hold a password.
func (s *SMTP) parseURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("does not parse (smtp://host:port or smtps://host:port)")
	}
	switch u.Scheme {
	case "smtp":
		s.port = DefaultSMTPPort
	case "smtps":
		s.port, s.implicitTLS = DefaultSMTPSPort, true
	default:
		return errors.New("the scheme must be smtp:// (STARTTLS) or smtps:// (TLS)")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("only smtp[s]://[user[:password]@]host[:port], without a path, query or fragment")
	}
	s.host = u.Hostname()
	if s.host == "" {
		return errors.New("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return errors.New("the port must be from 1 to 65535")
		}
		s.port = n
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			return errors.New("credentials without a user")
		}
	}
	s.tlsConfig = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	switch {
	case s.implicitTLS:
		s.tlsPolicy = gomail.NoTLS // the connection is TLS already
	case isLoopback(s.host):
		s.tlsPolicy = gomail.TLSOpportunistic
	default:
		s.tlsPolicy = gomail.TLSMandatory
	}
	return nil
}

// CheckURL reports what is wrong with an SMTP URL, as NewSMTP would; its
// error never quotes the URL.
func CheckURL(raw string) error { return new(SMTP).parseURL(raw) }

// CheckFrom reports what is wrong with a sender address, as NewSMTP would.
func CheckFrom(from string) error { return new(SMTP).parseFrom(from) }

// isLoopback reports whether host names this machine: only there may mail
// go out without TLS (a local relay, a test server).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (s *SMTP) parseFrom(from string) error {
	if from == "" {
		return errors.New("required")
	}
	a, err := netmail.ParseAddress(from)
	if err != nil {
		return fmt.Errorf("%q is not an address or Name <address>", from)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return fmt.Errorf("%q has no domain", from)
	}
	s.fromName, s.fromAddr, s.fromDomain = a.Name, a.Address, a.Address[at+1:]
	return nil
}

// password returns the password: the URL's, else the file's current one.
func (s *SMTP) password() (string, error) {
	if s.passwordFn == nil {
		return s.pass, nil
	}
	pw, err := s.passwordFn()
	switch {
	case err != nil:
		return "", fmt.Errorf("password file: %w", err)
	case pw == "":
		return "", errors.New("password file: empty")
	}
	return pw, nil
}

// Server returns the server's host:port, for logs.
func (s *SMTP) Server() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Deliver sends m over a new connection, within the send timeout. Its
// error is an *Error, whose text names no recipient.
func (s *SMTP) Deliver(ctx context.Context, m session.Mail) error {
	msg, err := s.message(m)
	if err != nil {
		return &Error{Permanent: true, msg: redact(err.Error(), m.To)}
	}
	pw, err := s.password()
	if err != nil {
		return &Error{msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.sendTimeout)
	defer cancel()
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.dialTimeout),
		gomail.WithTLSPolicy(s.tlsPolicy),
		gomail.WithTLSConfig(s.tlsConfig),
		gomail.WithDialContextFunc(s.dialer(ctx)),
	}
	if s.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	}
	if s.user != "" {
		// Opportunistic picks the first of these the server offers;
		// PLAIN and LOGIN refuse to send the password unencrypted to a
		// host other than loopback.
		opts = append(opts, gomail.WithUsername(s.user), gomail.WithPassword(pw), gomail.WithOpportunisticSMTPAuth(
			gomail.SMTPAuthSCRAMSHA256PLUS, gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1PLUS, gomail.SMTPAuthSCRAMSHA1,
			gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return &Error{Permanent: true, msg: "smtp client: " + redact(err.Error(), m.To)}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return classify(err, m.To)
	}
	return nil
}

// dialer returns the connection function of one delivery: a TCP (or, for
// smtps, TLS) connection that is closed when ctx ends, which bounds the
// whole delivery (go-mail's own timeout bounds each command).
func (s *SMTP) dialer(ctx context.Context) gomail.DialContextFunc {
	return func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{Timeout: s.dialTimeout}
		var conn net.Conn
		var err error
		if s.implicitTLS {
			// A *tls.Conn, which go-mail recognises as encrypted.
			conn, err = (&tls.Dialer{NetDialer: d, Config: s.tlsConfig}).DialContext(dctx, network, addr)
		} else {
			conn, err = d.DialContext(dctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
}

// message builds m's MIME message: text/plain, or multipart/alternative
// with the HTML part when m has one.
func (s *SMTP) message(m session.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	var err error
	if s.fromName != "" {
		err = msg.FromFormat(s.fromName, s.fromAddr)
	} else {
		err = msg.From(s.fromAddr)
	}
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, errors.New("the recipient is not an address")
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(rand.Text() + "@" + s.fromDomain)
	// RFC 3834: no vacation replies to a machine's mail.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// Error is a failed delivery. Its text holds the stage, the SMTP reply code
// and reply text, and never the recipient.
type Error struct {
	// Permanent reports whether trying again cannot help: the server
	// rejected the mail with a 5xx reply, or it could not be built.
	Permanent bool
	// Code is the SMTP reply code, 0 when there was no reply (a refused
	// connection, a timeout).
	Code int
	msg  string
}

func (e *Error) Error() string { return "mail: " + e.msg }

// classify turns go-mail's error into an *Error: 5xx replies are
// permanent, anything else (4xx, network errors, timeouts) transient.
func classify(err error, to string) *Error {
	e := &Error{msg: redact(err.Error(), to)}
	var se *gomail.SendError
	var tp *textproto.Error
	switch {
	case errors.As(err, &se):
		e.Code = se.ErrorCode()
		e.Permanent = !se.IsTemp() && e.Code >= 500
	case errors.As(err, &tp):
		e.Code = tp.Code
		e.Permanent = tp.Code >= 500
	}
	return e
}

// redact removes every occurrence of the recipient's address from an error
// text: go-mail names the affected recipients, and servers often echo the
// address in their reply.
func redact(s, to string) string {
	addrs := []string{to}
	if a, err := netmail.ParseAddress(to); err == nil && a.Address != to {
		addrs = append(addrs, a.Address)
	}
	for _, a := range addrs {
		if a != "" {
			s = regexp.MustCompile("(?i)"+regexp.QuoteMeta(a)).ReplaceAllLiteralString(s, "[recipient]")
		}
	}
	return s
}
