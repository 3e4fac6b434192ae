package mail_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/mail"
	"github.com/latchkeyhq/latchkey/internal/smtptest"
	"github.com/latchkeyhq/latchkey/session"
)

func sample(to string) session.Mail {
	return session.Mail{
		Tenant:  "acme",
		Kind:    session.MailVerify,
		To:      to,
		Subject: "Verify your address for Acme ✓",
		Text:    "Hello,\n\nopen https://app.acme.test/verify#token=SECRET-TOKEN to verify.\n",
		HTML:    `<p>Hello, <a href="https://app.acme.test/verify#token=SECRET-TOKEN">verify</a>.</p>`,
	}
}

func newSMTP(t *testing.T, cfg mail.SMTPConfig) *mail.SMTP {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Acme Accounts <accounts@acme.test>"
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = 5 * time.Second
	}
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPDelivers(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Config{})
	s := newSMTP(t, mail.SMTPConfig{URL: srv.URL()})
	if err := s.Deliver(context.Background(), sample("Bob@Example.test")); err != nil {
		t.Fatal(err)
	}
	m := srv.WaitMessage(t, "bob@example.test", 5*time.Second)
	for _, c := range []struct{ name, got, want string }{
		{"From", m.From, "accounts@acme.test"},
		{"header From", m.Header.Get("From"), `"Acme Accounts" <accounts@acme.test>`},
		{"header To", m.Header.Get("To"), "<Bob@Example.test>"},
		{"Subject", m.Subject, "Verify your address for Acme ✓"},
		{"Text", m.Text, sample("").Text},
		{"HTML", m.HTML, sample("").HTML},
		{"Link", m.Link, "https://app.acme.test/verify#token=SECRET-TOKEN"},
		{"Auto-Submitted", m.Header.Get("Auto-Submitted"), "auto-generated"},
	} {
		if strings.TrimRight(c.got, "\r\n") != strings.TrimRight(c.want, "\r\n") {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if id := m.Header.Get("Message-Id"); !strings.HasSuffix(id, "@acme.test>") {
		t.Errorf("Message-Id = %q, want one on the sender's domain", id)
	}
	if m.Header.Get("Date") == "" {
		t.Error("no Date")
	}
}

func TestSMTPTextOnly(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Config{})
	s := newSMTP(t, mail.SMTPConfig{URL: srv.URL(), From: "accounts@acme.test"})
	m := sample("bob@example.test")
	m.HTML = ""
	if err := s.Deliver(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitMessage(t, "bob@example.test", 5*time.Second)
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	if got.HTML != "" || got.Link == "" {
		t.Errorf("HTML = %q, Link = %q", got.HTML, got.Link)
	}
}

func TestSMTPAuth(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Config{Username: "latchkey", Password: "p@ss word"})
	t.Run("in the URL", func(t *testing.T) {
		s := newSMTP(t, mail.SMTPConfig{URL: srv.URL()})
		if err := s.Deliver(context.Background(), sample("a@example.test")); err != nil {
			t.Fatal(err)
		}
		srv.WaitMessage(t, "a@example.test", 5*time.Second)
	})
	t.Run("file re-read at each connection", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "password")
		os.WriteFile(file, []byte("p@ss word\n"), 0o600)
		s := newSMTP(t, mail.SMTPConfig{URL: "smtp://latchkey@" + srv.Addr(), Password: readFile(file)})
		if err := s.Deliver(context.Background(), sample("b@example.test")); err != nil {
			t.Fatal(err)
		}
		srv.WaitMessage(t, "b@example.test", 5*time.Second)
		os.WriteFile(file, []byte("rotated-wrong\n"), 0o600)
		err := s.Deliver(context.Background(), sample("c@example.test"))
		var e *mail.Error
		if !errors.As(err, &e) || !e.Permanent || e.Code != 535 {
			t.Fatalf("Deliver with a wrong password = %#v, want a permanent 535", err)
		}
		if strings.Contains(err.Error(), "rotated-wrong") {
			t.Errorf("the error quotes the password: %v", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		s := newSMTP(t, mail.SMTPConfig{URL: "smtp://" + srv.Addr()})
		var e *mail.Error
		if err := s.Deliver(context.Background(), sample("d@example.test")); !errors.As(err, &e) || !e.Permanent {
			t.Fatalf("Deliver without credentials = %v, want a permanent error", err)
		}
	})
}

func TestSMTPTLS(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  smtptest.Config
	}{
		{"smtps", smtptest.Config{ImplicitTLS: true, Username: "u", Password: "pw"}},
		{"STARTTLS", smtptest.Config{TLS: true, Username: "u", Password: "pw"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, c.cfg)
			s := newSMTP(t, mail.SMTPConfig{URL: srv.URL(), CAFile: srv.CAFile()})
			if err := s.Deliver(context.Background(), sample("t@example.test")); err != nil {
				t.Fatal(err)
			}
			m := srv.WaitMessage(t, "t@example.test", 5*time.Second)
			if m.Link == "" {
				t.Error("no link")
			}
		})
	}
	t.Run("unknown CA", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Config{ImplicitTLS: true})
		s := newSMTP(t, mail.SMTPConfig{URL: srv.URL()})
		if err := s.Deliver(context.Background(), sample("t@example.test")); err == nil {
			t.Fatal("delivered to a server whose certificate does not verify")
		}
	})
}

func TestSMTPErrorsClassified(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Config{})
	s := newSMTP(t, mail.SMTPConfig{URL: srv.URL()})
	to := "Carol.Secret@Example.test"
	for _, c := range []struct {
		code      int
		permanent bool
	}{{451, false}, {550, true}} {
		srv.FailNext(c.code, "mailbox <carol.secret@example.test> unavailable")
		err := s.Deliver(context.Background(), sample(to))
		var e *mail.Error
		if !errors.As(err, &e) || e.Code != c.code || e.Permanent != c.permanent {
			t.Fatalf("Deliver after %d = %#v, want Code %d, Permanent %v", c.code, err, c.code, c.permanent)
		}
		if strings.Contains(strings.ToLower(err.Error()), "carol") {
			t.Errorf("the error names the recipient: %v", err)
		}
	}
	srv.Stop()
	err := s.Deliver(context.Background(), sample(to))
	var e *mail.Error
	if !errors.As(err, &e) || e.Permanent || e.Code != 0 {
		t.Fatalf("Deliver to a stopped server = %#v, want a transient error", err)
	}
}

func TestSMTPSendTimeout(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never greets.
	ln := listenSilent(t)
	s := newSMTP(t, mail.SMTPConfig{URL: "smtp://" + ln, SendTimeout: 200 * time.Millisecond, DialTimeout: 5 * time.Second})
	start := time.Now()
	err := s.Deliver(context.Background(), sample("x@example.test"))
	var e *mail.Error
	if !errors.As(err, &e) || e.Permanent {
		t.Fatalf("Deliver = %v, want a transient error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Deliver took %v, want about the 200ms send timeout", d)
	}
}

func TestNewSMTPErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(file, []byte("x\n"), 0o600)
	for _, c := range []struct {
		name string
		cfg  mail.SMTPConfig
		want string
	}{
		{"no URL", mail.SMTPConfig{From: "a@b.test"}, "URL: required"},
		{"scheme", mail.SMTPConfig{URL: "http://u:hunter2@h", From: "a@b.test"}, "scheme"},
		{"path", mail.SMTPConfig{URL: "smtp://u:hunter2@h/x", From: "a@b.test"}, "path"},
		{"port", mail.SMTPConfig{URL: "smtp://u:hunter2@h:0", From: "a@b.test"}, "port"},
		{"no host", mail.SMTPConfig{URL: "smtp://u:hunter2@:25", From: "a@b.test"}, "no host"},
		{"unparsable", mail.SMTPConfig{URL: "smtp://u:hunter2@h:x y", From: "a@b.test"}, "does not parse"},
		{"no From", mail.SMTPConfig{URL: "smtp://u:hunter2@h"}, "from: required"},
		{"bad From", mail.SMTPConfig{URL: "smtp://h", From: "not an address"}, "not an address"},
		{"two passwords", mail.SMTPConfig{URL: "smtp://u:hunter2@h", From: "a@b.test", Password: readFile(file)}, "give one"},
		{"file without user", mail.SMTPConfig{URL: "smtp://h", From: "a@b.test", Password: readFile(file)}, "needs a user"},
		{"missing file", mail.SMTPConfig{URL: "smtp://u@h", From: "a@b.test", Password: readFile(file + ".missing")}, "password file"},
		{"missing CA", mail.SMTPConfig{URL: "smtps://h", From: "a@b.test", CAFile: file + ".missing"}, "CA file"},
		{"not a CA", mail.SMTPConfig{URL: "smtps://h", From: "a@b.test", CAFile: file}, "no PEM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := mail.NewSMTP(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewSMTP = %v, want an error with %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error quotes the password: %v", err)
			}
		})
	}
}

func TestSMTPServer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, want string }{
		{"smtp://mail.example.test", "mail.example.test:587"},
		{"smtps://mail.example.test", "mail.example.test:465"},
		{"smtp://[::1]:2525", "[::1]:2525"},
	} {
		s, err := mail.NewSMTP(mail.SMTPConfig{URL: c.url, From: "a@b.test"})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Server(); got != c.want {
			t.Errorf("Server() of %s = %s, want %s", c.url, got, c.want)
		}
	}
}

// readFile is a Password that reads the file at path, as cmd's secret
// files are read: the content without its trailing newline.
func readFile(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		return strings.TrimRight(string(b), "\r\n"), err
	}
}
