package session

import (
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // "" means refused
		msg  string // a substring of the refusal
	}{
		{name: "plain", in: "alice@example.com", want: "alice@example.com"},
		{name: "case folded", in: "Alice.Smith@Example.COM", want: "alice.smith@example.com"},
		{name: "dots and tags kept", in: "a.l.i.c.e+news@gmail.com", want: "a.l.i.c.e+news@gmail.com"},
		{name: "subdomain", in: "bob@mail.corp.example.co.uk", want: "bob@mail.corp.example.co.uk"},
		{name: "dotless domain", in: "root@localhost", want: "root@localhost"},
		{name: "idn domain", in: "jose@BÜCHER.example", want: "jose@xn--bcher-kva.example"},
		{name: "punycode domain kept", in: "jose@xn--bcher-kva.example", want: "jose@xn--bcher-kva.example"},
		{name: "unicode local lowercased", in: "ÉLODIE@example.fr", want: "élodie@example.fr"},
		{name: "NFD local composed", in: "e\u0301lodie@example.fr", want: "\u00e9lodie@example.fr"},
		{name: "local at 64 bytes", in: strings.Repeat("a", 64) + "@example.com", want: strings.Repeat("a", 64) + "@example.com"},
		{name: "254 bytes", in: strings.Repeat("a", 64) + "@" + longDomain(254-65), want: strings.Repeat("a", 64) + "@" + longDomain(254-65)},

		{name: "empty", in: "", msg: "must be an email address"},
		{name: "no at", in: "alice", msg: "must be an email address"},
		{name: "no local", in: "@example.com", msg: "must be an email address"},
		{name: "no domain", in: "alice@", msg: "must be an email address"},
		{name: "display name", in: "Alice <alice@example.com>", msg: "must be an email address"},
		{name: "angle brackets", in: "<alice@example.com>", msg: "must be an email address"},
		{name: "comment", in: "alice@example.com (Alice)", msg: "must be an email address"},
		{name: "quoted local", in: `"alice"@example.com`, msg: "must be an email address"},
		{name: "quoted space", in: `"al ice"@example.com`, msg: "must be an email address"},
		{name: "leading space", in: " alice@example.com", msg: "must be an email address"},
		{name: "trailing newline", in: "alice@example.com\n", msg: "must be an email address"},
		{name: "control char", in: "ali\x01ce@example.com", msg: "must be an email address"},
		{name: "zero width space", in: "alice\u200b@example.com", msg: "must be an email address"},
		{name: "nbsp", in: "alice\u00a0@example.com", msg: "must be an email address"},
		{name: "invalid utf-8", in: "ali\xffce@example.com", msg: "must be an email address"},
		{name: "two ats", in: "a@b@example.com", msg: "must be an email address"},
		{name: "double dot", in: "al..ice@example.com", msg: "must be an email address"},
		{name: "trailing dot in domain", in: "alice@example.com.", msg: "must be an email address"},
		{name: "domain literal", in: "alice@[192.0.2.1]", msg: "must be an email address"},
		{name: "list", in: "alice@example.com, bob@example.com", msg: "must be an email address"},
		{name: "underscore domain", in: "alice@exa_mple.com", msg: "not a valid domain name"},
		{name: "label over 63", in: "alice@" + strings.Repeat("a", 64) + ".com", msg: "not a valid domain name"},
		{name: "hyphen label edge", in: "alice@-example.com", msg: "not a valid domain name"},
		{name: "local over 64", in: strings.Repeat("a", 65) + "@example.com", msg: "at most 64 bytes"},
		{name: "255 bytes", in: strings.Repeat("a", 64) + "@" + longDomain(255-65), msg: "at most 254 bytes"},
		{name: "long after punycode", in: "a@" + strings.Repeat("ü", 60) + ".example", msg: "not a valid domain name"},
		{name: "huge", in: strings.Repeat("a", 1<<20) + "@example.com", msg: "at most 254 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, msg := NormalizeEmail(tt.in)
			if got != tt.want {
				t.Fatalf("NormalizeEmail(%q) = %q, %q; want %q", tt.in, got, msg, tt.want)
			}
			if tt.want == "" && !strings.Contains(msg, tt.msg) {
				t.Errorf("NormalizeEmail(%q) message = %q, want it to contain %q", tt.in, msg, tt.msg)
			}
			if tt.want != "" && msg != "" {
				t.Errorf("NormalizeEmail(%q) message = %q with a normal form", tt.in, msg)
			}
		})
	}
}

// longDomain returns a valid domain of exactly n bytes (n >= 5).
func longDomain(n int) string {
	var b strings.Builder
	for b.Len() < n-4 {
		rest := n - 4 - b.Len()
		if b.Len() > 0 {
			b.WriteByte('.')
			rest--
		}
		b.WriteString(strings.Repeat("d", max(1, min(63, rest))))
	}
	b.WriteString(".com")
	return b.String()[:n]
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "Alice.Smith@Example.COM", "jose@BÜCHER.example", "ÉLODIE@example.fr",
		"e\u0301lodie@example.fr", "İstanbul@example.tr", "ǅ@example.com", "ß@straße.de", "a@xn--bcher-kva.example",
		`"a"@b.c`, "a@[192.0.2.1]", "Alice <a@b.c>", "a@b@c", "a\u200b@b.c", "ﬀ@example.com", "K@example.com",
		strings.Repeat("a", 64) + "@" + longDomain(189), "a@" + strings.Repeat("ü", 60) + ".example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		normal, msg := NormalizeEmail(s)
		if normal == "" {
			if msg == "" {
				t.Fatalf("NormalizeEmail(%q) = \"\", \"\": a refusal needs a message", s)
			}
			return
		}
		if msg != "" {
			t.Fatalf("NormalizeEmail(%q) = %q, %q: a message with a normal form", s, normal, msg)
		}
		at := strings.LastIndexByte(normal, '@')
		if len(normal) > MaxEmailLen || at < 1 || at > MaxEmailLocalLen {
			t.Fatalf("NormalizeEmail(%q) = %q: over the bounds", s, normal)
		}
		if !utf8.ValidString(normal) || !norm.NFC.IsNormalString(normal) {
			t.Fatalf("NormalizeEmail(%q) = %q: not NFC text", s, normal)
		}
		if a, err := mail.ParseAddress(normal); err != nil || a.Address != normal {
			t.Fatalf("NormalizeEmail(%q) = %q, which net/mail does not take as is", s, normal)
		}
		if again, msg := NormalizeEmail(normal); again != normal {
			t.Fatalf("NormalizeEmail(%q) = %q, but NormalizeEmail(%q) = %q, %q", s, normal, normal, again, msg)
		}
		if strings.ContainsAny(normal[at:], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("NormalizeEmail(%q) = %q: domain not lowercased", s, normal)
		}
	})
}
