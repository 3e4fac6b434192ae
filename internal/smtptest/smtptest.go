package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Config configures a Server. The zero value accepts every mail, without
// authentication or TLS.
type Config struct {
	// Username and Password, when set, make AUTH PLAIN required (over
	// plain text: the server is on loopback).
	Username, Password string
	// TLS offers STARTTLS; ImplicitTLS serves TLS from the first byte
	// (smtps). Both use a certificate for 127.0.0.1 and localhost from
	// a CA whose PEM file CAFile names.
	TLS, ImplicitTLS bool
}

// Message is one mail the server accepted.
type Message struct {
	From string   // envelope sender
	To   []string // envelope recipients
	// Header is the message's header; Subject is decoded (RFC 2047).
	Header  netmail.Header
	Subject string
	// Text and HTML are the decoded text/plain and text/html parts, their
	// lines ending in LF.
	Text, HTML string
	// Link is the first http:// or https:// link in Text.
	Link string
	Raw  []byte
}

// A Reply is an SMTP error reply the server gives instead of accepting.
type Reply struct {
	Code    int
	Message string
}

// Server is an SMTP server on 127.0.0.1 that records the mails it accepts.
// It is safe for concurrent use.
type Server struct {
	cfg    Config
	addr   string
	tlsCfg *tls.Config
	caFile string

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener // closed by Stop too: Close can run before Serve registers it
	msgs     []Message
	taken    []bool // by WaitMessage
	fails    []Reply
	attempts int
	changed  chan struct{} // closed and replaced when msgs changes
}

// Start starts a server on 127.0.0.1:0, closed when the test ends.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s := &Server{cfg: cfg, changed: make(chan struct{})}
	if cfg.TLS || cfg.ImplicitTLS {
		s.tlsCfg, s.caFile = newTLS(tb)
	}
	ln, err := s.listen("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.cfg.ImplicitTLS {
		ln = tls.NewListener(ln, s.tlsCfg)
	}
	return ln, nil
}

// serve serves ln with a new smtp.Server: one cannot serve again once
// closed.
func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // loopback only
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	srv.ErrorLog = log.New(io.Discard, "", 0) // a failed handshake is a test's expected outcome
	if s.cfg.TLS {
		srv.TLSConfig = s.tlsCfg
	}
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the server's smtp:// URL (smtps:// with ImplicitTLS), with
// the configured credentials.
func (s *Server) URL() string {
	scheme := "smtp"
	if s.cfg.ImplicitTLS {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: s.addr}
	if s.cfg.Username != "" {
		u.User = url.UserPassword(s.cfg.Username, s.cfg.Password)
	}
	return u.String()
}

// CAFile returns the PEM file of the CA of the server's certificate, ""
// without TLS.
func (s *Server) CAFile() string { return s.caFile }

// Stop closes the listener and every connection: the server is down, and
// connections to its port are refused, until Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		ln.Close()
		srv.Close()
	}
}

// Restart serves again on the same port after Stop.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = s.listen(s.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		tb.Fatalf("smtptest: restart on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// FailNext makes the server answer the next RCPT command with code and
// message instead of accepting it (451: try again later; 550: rejected).
// Calls queue up: each reply is used once, in order.
func (s *Server) FailNext(code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, Reply{Code: code, Message: message})
}

// Attempts returns how many RCPT commands the server received, accepted
// or failed: one per delivery attempt of a one-recipient mail.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Messages returns the mails accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitMessage returns the oldest mail to the address to (an envelope
// recipient, compared case-insensitively) that no earlier WaitMessage
// returned, waiting for it at most timeout; it fails the test without one.
func (s *Server) WaitMessage(tb testing.TB, to string, timeout time.Duration) Message {
	tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		for i, m := range s.msgs {
			if !s.taken[i] && hasRecipient(m, to) {
				s.taken[i] = true
				s.mu.Unlock()
				return m
			}
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("smtptest: no mail to %s within %v (%d received)", to, timeout, len(s.Messages()))
			return Message{}
		}
	}
}

// NoMessage fails the test if a mail to the address to that no
// WaitMessage returned arrives within d.
func (s *Server) NoMessage(tb testing.TB, to string, d time.Duration) {
	tb.Helper()
	time.Sleep(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.msgs {
		if !s.taken[i] && hasRecipient(m, to) {
			tb.Errorf("smtptest: unexpected mail to %s: %q", to, m.Subject)
		}
	}
}

func hasRecipient(m Message, to string) bool {
	for _, r := range m.To {
		if strings.EqualFold(r, to) {
			return true
		}
	}
	return false
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	s.taken = append(s.taken, false)
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextFailure counts a RCPT and returns the reply to give instead of
// accepting it, if any.
func (s *Server) nextFailure() *smtp.SMTPError {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if len(s.fails) == 0 {
		return nil
	}
	r := s.fails[0]
	s.fails = s.fails[1:]
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: r.Message}
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

// session is one connection's transaction.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.cfg.Username || password != ss.s.cfg.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.cfg.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.nextFailure(); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "smtptest: " + err.Error()}
	}
	m.From, m.To = ss.from, ss.to
	ss.s.record(m)
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Parse parses a raw mail: its header, and its text/plain and text/html
// parts, whether the body is one of them or a multipart/alternative (or
// mixed) of them.
func Parse(raw []byte) (Message, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	m := Message{Header: msg.Header, Raw: raw}
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, fmt.Errorf("subject: %w", err)
	}
	if err := m.part(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return Message{}, err
	}
	m.Link = linkRE.FindString(m.Text)
	return m, nil
}

func (m *Message) part(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content-type: %w", err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.part(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &stripNewlines{r: body})
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s part: %w", mt, err)
	}
	// Lines end in CRLF on the wire; tests compare with Go strings.
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch mt {
	case "text/plain":
		m.Text = text
	case "text/html":
		m.HTML = text
	}
	return nil
}

// stripNewlines drops CR and LF, which base64 bodies break lines with.
type stripNewlines struct{ r io.Reader }

func (s *stripNewlines) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// newTLS returns a server TLS config with a certificate for 127.0.0.1
// and localhost, and the PEM file of its (self-signed) CA.
func newTLS(tb testing.TB) (*tls.Config, string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "smtptest-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, file
}
