package session

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRenderMailDefaults(t *testing.T) {
	t.Parallel()
	tn := accountsTenant()
	link := "https://app.acme.com/reset?from=mail#token=" + strings.Repeat("A", 43)
	tests := []struct {
		kind    MailKind
		expires time.Duration
		subject string
		text    []string // substrings of the text body, and of the HTML one
	}{
		{MailVerify, DefaultVerifyTokenTTL, "Verify your email address for Acme Inc.", []string{"Hello alice,", "expires in 24 hours"}},
		{MailReset, DefaultResetTokenTTL, "Reset your password for Acme Inc.", []string{"Hello alice,", "expires in 30 minutes", "your password stays as it is"}},
		{MailSignupTaken, 0, "Sign-up attempt at Acme Inc.", []string{"tried to sign up at Acme Inc.", "the username alice"}},
		{MailPasswordChanged, 0, "Your password for Acme Inc. was changed", []string{"Hello alice,", "every session of the account was signed out"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			m, err := tn.RenderMail(tt.kind, MailData{Username: "alice", Email: "Alice@Example.com", Link: link, Expires: tt.expires})
			if err != nil {
				t.Fatalf("RenderMail: %v", err)
			}
			if m.Tenant != tn.ID || m.Kind != tt.kind || m.To != "Alice@Example.com" {
				t.Errorf("Mail = %+v, want tenant %s, kind %s, to the address as given", m, tn.ID, tt.kind)
			}
			if m.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.subject)
			}
			for _, w := range tt.text {
				if !strings.Contains(m.Text, w) {
					t.Errorf("Text does not contain %q:\n%s", w, m.Text)
				}
				if !strings.Contains(m.HTML, w) {
					t.Errorf("HTML does not contain %q:\n%s", w, m.HTML)
				}
			}
			if !strings.Contains(m.Text, link) {
				t.Errorf("Text does not contain the link:\n%s", m.Text)
			}
			// html/template escapes & in an attribute; the link still works.
			if href := `href="` + strings.ReplaceAll(link, "&", "&amp;") + `"`; !strings.Contains(m.HTML, href) {
				t.Errorf("HTML does not contain %s:\n%s", href, m.HTML)
			}
			if tt.expires == 0 && strings.Contains(m.Text, "expires") {
				t.Errorf("a mail without expiry says one:\n%s", m.Text)
			}
		})
	}
	// Notices without a link say so in words, with no empty href.
	for _, k := range []MailKind{MailSignupTaken, MailPasswordChanged} {
		m, err := tn.RenderMail(k, MailData{Username: "alice", Email: "a@example.com"})
		if err != nil {
			t.Fatalf("RenderMail(%s): %v", k, err)
		}
		if strings.Contains(m.HTML, "href") || !strings.Contains(m.Text, "reset your password") {
			t.Errorf("%s without a link:\n%s\n%s", k, m.Text, m.HTML)
		}
	}
}

func TestRenderMailOverrides(t *testing.T) {
	t.Parallel()
	tn := accountsTenant()
	tn.Accounts.Templates = map[MailKind]MailTemplate{
		MailVerify: {Subject: "Welcome,\n  {{.Username}}\r\nBcc: evil@example.com", HTML: `<p>{{.TenantName}} <a href="{{.Link}}">{{.Email}}</a></p>`},
		MailReset:  {Text: "reset {{.Link}} within {{.Expires}}"},
	}
	if err := tn.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	m, err := tn.RenderMail(MailVerify, MailData{TenantName: "Acme", Username: "bob", Email: "bob@example.com", Link: "https://app.acme.com/verify#token=x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Welcome, bob Bcc: evil@example.com"; m.Subject != want {
		t.Errorf("Subject = %q, want %q (one line)", m.Subject, want)
	}
	if want := `<p>Acme <a href="https://app.acme.com/verify#token=x">bob@example.com</a></p>`; m.HTML != want {
		t.Errorf("HTML = %q, want %q", m.HTML, want)
	}
	if !strings.Contains(m.Text, "To verify your email address for Acme") {
		t.Errorf("Text = %q, want the default text (only subject and html are overridden)", m.Text)
	}
	m, err = tn.RenderMail(MailReset, MailData{Username: "bob", Link: "L", Expires: 90 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "reset L within 1 hour and 30 minutes" || m.Subject != "Reset your password for Acme Inc." {
		t.Errorf("reset = %q / %q, want the overridden text and default subject", m.Subject, m.Text)
	}
}

// TestRenderMailEscapes: a tenant name, username, address or link crafted
// to carry markup cannot add any to the HTML body.
func TestRenderMailEscapes(t *testing.T) {
	t.Parallel()
	tn := accountsTenant()
	tn.Name = `Acme <script>alert(1)</script>`
	evil := MailData{
		Username: `"><img src=x onerror=alert(1)>`,
		Email:    `x@example.com"><b>`,
		Link:     `https://app.acme.com/verify?a="><script>alert(2)</script>#token=abc`,
	}
	for _, k := range MailKinds {
		m, err := tn.RenderMail(k, evil)
		if err != nil {
			t.Fatalf("RenderMail(%s): %v", k, err)
		}
		for _, bad := range []string{"<script", "<img", "<b>", "onerror=alert(1)>", `a="`} {
			if strings.Contains(m.HTML, bad) {
				t.Errorf("%s HTML contains %q:\n%s", k, bad, m.HTML)
			}
		}
		if !strings.Contains(m.HTML, "Acme &lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s HTML does not show the escaped tenant name:\n%s", k, m.HTML)
		}
	}
	m, err := tn.RenderMail(MailVerify, MailData{Username: "u", Link: "javascript:alert(1)"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Errorf("a javascript: link reached an href:\n%s", m.HTML)
	}
}

func TestRenderMailErrors(t *testing.T) {
	t.Parallel()
	tn := accountsTenant()
	if _, err := tn.RenderMail("welcome", MailData{}); err == nil {
		t.Error("RenderMail of an unknown kind = nil error")
	}
	// A template that was never validated fails to render, not panics.
	tn.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {HTML: "{{.Nope}}"}, MailVerify: {Text: "{{range 5}}{{end}}"}}
	for _, k := range []MailKind{MailReset, MailVerify} {
		if _, err := tn.RenderMail(k, MailData{}); err == nil || !strings.Contains(err.Error(), "session: "+string(k)+" mail:") {
			t.Errorf("RenderMail(%s) with a broken template = %v, want an error naming the mail", k, err)
		}
	}
	// A tenant without accounts renders the defaults.
	plain := validTenant()
	if m, err := plain.RenderMail(MailVerify, MailData{Link: "L"}); err != nil || !strings.Contains(m.Text, "L") {
		t.Errorf("RenderMail on a tenant without accounts = %+v, %v", m, err)
	}
	if plain.NeedsMail() || !tn.NeedsMail() {
		t.Errorf("NeedsMail = %v without accounts, %v with", plain.NeedsMail(), tn.NeedsMail())
	}
}

// TestRenderMailKeepsTenantsEqual: rendering leaves nothing on the tenant,
// which the tenant view compares with reflect.DeepEqual, and is safe from
// many goroutines at once.
func TestRenderMailKeepsTenantsEqual(t *testing.T) {
	t.Parallel()
	a, b := accountsTenant(), accountsTenant()
	tmpl := map[MailKind]MailTemplate{MailVerify: {Subject: "Hi {{.Username}} " + t.Name()}}
	a.Accounts.Templates, b.Accounts.Templates = tmpl, map[MailKind]MailTemplate{MailVerify: tmpl[MailVerify]}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for _, k := range MailKinds {
				if _, err := a.RenderMail(k, MailData{Username: "u", Link: "https://app.acme.com/verify#token=x", Expires: time.Duration(i) * time.Hour}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if !a.equal(&b) {
		t.Error("a tenant that rendered mail is no longer equal to its twin")
	}
}

func TestParseMailTemplateCache(t *testing.T) {
	t.Parallel()
	src := "cached {{.Link}} " + t.Name()
	e1, err := parseMailTemplate(false, src)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := parseMailTemplate(false, src)
	if e1 != e2 {
		t.Error("the same text was parsed twice")
	}
	h, _ := parseMailTemplate(true, src)
	if h == e1 {
		t.Error("the HTML parse of a text is its text/template parse")
	}
	_, err = parseMailTemplate(false, "{{template \"x\"}}")
	if err == nil {
		t.Errorf("parseMailTemplate({{template}}) = %v, want a refusal", err)
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{-time.Hour, ""},
		{20 * time.Second, ""},
		{30 * time.Second, "1 minute"},
		{time.Minute, "1 minute"},
		{5 * time.Minute, "5 minutes"},
		{30 * time.Minute, "30 minutes"},
		{time.Hour, "1 hour"},
		{61 * time.Minute, "1 hour and 1 minute"},
		{90 * time.Minute, "1 hour and 30 minutes"},
		{24 * time.Hour, "24 hours"},
		{36 * time.Hour, "36 hours"},
		{48 * time.Hour, "2 days"},
		{7 * 24 * time.Hour, "7 days"},
		{49 * time.Hour, "49 hours"},
	} {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
