package smtptest_test

import (
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/smtptest"
)

func TestParse(t *testing.T) {
	t.Parallel()
	raw := strings.ReplaceAll(`From: a@b.test
To: c@d.test
Subject: =?UTF-8?q?R=C3=A9initialiser?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=XX

--XX
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

T3BlbiBodHRwczovL2EudGVzdC9yZXNldCN0b2tlbj1h
YmMgbm93Lg==
--XX
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<a href=3D"https://a.test/reset#token=3Dabc">reset</a>
--XX--
`, "\n", "\r\n")
	m, err := smtptest.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"Subject", m.Subject, "Réinitialiser"},
		{"Text", m.Text, "Open https://a.test/reset#token=abc now."},
		{"HTML", m.HTML, `<a href="https://a.test/reset#token=abc">reset</a>`},
		{"Link", m.Link, "https://a.test/reset#token=abc"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestServer drives the server with the standard library's client: a
// failure reply, a delivery, a stop and a restart on the same port.
func TestServer(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t, smtptest.Config{})
	body := []byte("Subject: hi\r\n\r\nsee http://x.test/y\r\n")
	s.FailNext(550, "no")
	if err := smtp.SendMail(s.Addr(), nil, "a@b.test", []string{"C@d.test"}, body); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("SendMail after FailNext(550) = %v", err)
	}
	if err := smtp.SendMail(s.Addr(), nil, "a@b.test", []string{"C@d.test"}, body); err != nil {
		t.Fatal(err)
	}
	m := s.WaitMessage(t, "c@D.test", time.Second)
	if m.Subject != "hi" || m.Link != "http://x.test/y" || m.From != "a@b.test" {
		t.Errorf("message = %+v", m)
	}
	if n := s.Attempts(); n != 2 {
		t.Errorf("Attempts() = %d, want 2", n)
	}
	s.Stop()
	if err := smtp.SendMail(s.Addr(), nil, "a@b.test", []string{"c@d.test"}, body); err == nil {
		t.Fatal("SendMail to a stopped server worked")
	}
	s.Restart(t)
	if err := smtp.SendMail(s.Addr(), nil, "a@b.test", []string{"c@d.test"}, body); err != nil {
		t.Fatal(err)
	}
	s.WaitMessage(t, "c@d.test", time.Second)
	s.NoMessage(t, "c@d.test", 10*time.Millisecond)
	if n := len(s.Messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}
