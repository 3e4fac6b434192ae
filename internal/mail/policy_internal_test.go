package mail

import (
	"testing"

	gomail "github.com/wneessen/go-mail"
)

// TestTLSPolicy checks what no loopback test server can: that mail to
// another host never goes out without TLS.
func TestTLSPolicy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url      string
		policy   gomail.TLSPolicy
		implicit bool
	}{
		{"smtp://mail.example.test", gomail.TLSMandatory, false},
		{"smtp://192.0.2.1:25", gomail.TLSMandatory, false},
		{"smtp://127.0.0.1:25", gomail.TLSOpportunistic, false},
		{"smtp://localhost:25", gomail.TLSOpportunistic, false},
		{"smtp://[::1]:25", gomail.TLSOpportunistic, false},
		{"smtps://mail.example.test", gomail.NoTLS, true},
	} {
		s, err := NewSMTP(SMTPConfig{URL: c.url, From: "a@b.test"})
		if err != nil {
			t.Fatal(err)
		}
		if s.tlsPolicy != c.policy || s.implicitTLS != c.implicit {
			t.Errorf("%s: policy %v, implicit %v; want %v, %v", c.url, s.tlsPolicy, s.implicitTLS, c.policy, c.implicit)
		}
		if s.tlsConfig.ServerName != s.host || s.tlsConfig.InsecureSkipVerify {
			t.Errorf("%s: TLS config %+v", c.url, s.tlsConfig)
		}
	}
}
