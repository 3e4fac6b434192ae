package session

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// MaxMailTemplateLen bounds each field of a MailTemplate, in bytes.
const MaxMailTemplateLen = 64 << 10

// MailData is what a mail is about. Templates see each field by its name
// ({{.TenantName}}, {{.Username}}, {{.Email}}, {{.Link}}), and Expires as
// words ({{.Expires}} is "24 hours", "30 minutes"; empty for zero).
type MailData struct {
	TenantName string // empty means the tenant's Name
	Username   string
	Email      string // the recipient, as the user gave it
	Link       string // the verification or reset link; empty in notices
	Expires    time.Duration
}

// mailView is MailData as templates see it.
type mailView struct {
	TenantName, Username, Email, Link, Expires string
}

// NeedsMail reports whether the tenant's configuration sends mail: every
// accounts block does (verification, reset, notices).
func (t *Tenant) NeedsMail() bool { return t.Accounts != nil }

// MailKinds are the kinds of mail, in the order documentation lists them.
var MailKinds = []MailKind{MailVerify, MailReset, MailSignupTaken, MailPasswordChanged}

// defaultMail holds the mails a tenant's Templates do not replace. They
// are plain: the tenant's name, the link and its expiry, and what to do if
// the mail is unexpected.
var defaultMail = map[MailKind]MailTemplate{
	MailVerify: {
		Subject: `Verify your email address for {{.TenantName}}`,
		Text: `Hello {{.Username}},

To verify your email address for {{.TenantName}}, open this link:

{{.Link}}

The link works once{{if .Expires}} and expires in {{.Expires}}{{end}}. If you did not sign up, you can ignore this mail.
`,
		HTML: `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Verify your email address</title></head><body>
<p>Hello {{.Username}},</p>
<p>To verify your email address for {{.TenantName}}, open this link:</p>
<p><a href="{{.Link}}">Verify my email address</a></p>
<p>Or copy it into your browser: {{.Link}}</p>
<p>The link works once{{if .Expires}} and expires in {{.Expires}}{{end}}. If you did not sign up, you can ignore this mail.</p>
</body></html>
`,
	},
	MailReset: {
		Subject: `Reset your password for {{.TenantName}}`,
		Text: `Hello {{.Username}},

Someone asked to reset the password of your account at {{.TenantName}}. To choose a new password, open this link:

{{.Link}}

The link works once{{if .Expires}} and expires in {{.Expires}}{{end}}. If you did not ask for it, you can ignore this mail: your password stays as it is.
`,
		HTML: `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Reset your password</title></head><body>
<p>Hello {{.Username}},</p>
<p>Someone asked to reset the password of your account at {{.TenantName}}. To choose a new password, open this link:</p>
<p><a href="{{.Link}}">Choose a new password</a></p>
<p>Or copy it into your browser: {{.Link}}</p>
<p>The link works once{{if .Expires}} and expires in {{.Expires}}{{end}}. If you did not ask for it, you can ignore this mail: your password stays as it is.</p>
</body></html>
`,
	},
	MailSignupTaken: {
		Subject: `Sign-up attempt at {{.TenantName}}`,
		Text: `Hello,

Someone, perhaps you, tried to sign up at {{.TenantName}} with this email address{{if .Username}} and the username {{.Username}}{{end}}. No account was created: the address or the username is already in use.

If it was you, sign in with your account{{if .Link}}, or reset your password here: {{.Link}}{{else}}, or reset your password if you have forgotten it{{end}}. If it was not you, you can ignore this mail.
`,
		HTML: `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign-up attempt</title></head><body>
<p>Hello,</p>
<p>Someone, perhaps you, tried to sign up at {{.TenantName}} with this email address{{if .Username}} and the username {{.Username}}{{end}}. No account was created: the address or the username is already in use.</p>
<p>If it was you, sign in with your account{{if .Link}}, or <a href="{{.Link}}">reset your password</a>{{else}}, or reset your password if you have forgotten it{{end}}. If it was not you, you can ignore this mail.</p>
</body></html>
`,
	},
	MailPasswordChanged: {
		Subject: `Your password for {{.TenantName}} was changed`,
		Text: `Hello {{.Username}},

The password of your account at {{.TenantName}} was just changed, and every session of the account was signed out.

If you did not change it, reset your password at once{{if .Link}}: {{.Link}}{{end}}
`,
		HTML: `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Your password was changed</title></head><body>
<p>Hello {{.Username}},</p>
<p>The password of your account at {{.TenantName}} was just changed, and every session of the account was signed out.</p>
<p>If you did not change it, {{if .Link}}<a href="{{.Link}}">reset your password</a>{{else}}reset your password{{end}} at once.</p>
</body></html>
`,
	},
}

// RenderMail renders the tenant's mail of kind k about d, to d.Email:
// each field from the tenant's Templates where it sets one, else from the
// default. The subject is one line (its runs of white space, new lines
// included, become one space); the HTML body is escaped by html/template
// in context, so no value in d can add markup or a link.
func (t *Tenant) RenderMail(k MailKind, d MailData) (Mail, error) {
	src, ok := defaultMail[k]
	if !ok {
		return Mail{}, fmt.Errorf("session: no mail of kind %q", k)
	}
	if t.Accounts != nil {
		o := t.Accounts.Templates[k]
		src.Subject = cmpOr(o.Subject, src.Subject)
		src.Text = cmpOr(o.Text, src.Text)
		src.HTML = cmpOr(o.HTML, src.HTML)
	}
	if d.TenantName == "" {
		d.TenantName = t.Name
	}
	v := mailView{TenantName: d.TenantName, Username: d.Username, Email: d.Email, Link: d.Link, Expires: humanDuration(d.Expires)}
	m := Mail{Tenant: t.ID, Kind: k, To: d.Email}
	var err error
	if m.Subject, err = executeMail(false, src.Subject, v); err != nil {
		return Mail{}, fmt.Errorf("session: %s mail: subject: %w", k, err)
	}
	m.Subject = strings.Join(strings.Fields(m.Subject), " ")
	if m.Text, err = executeMail(false, src.Text, v); err != nil {
		return Mail{}, fmt.Errorf("session: %s mail: text: %w", k, err)
	}
	if m.HTML, err = executeMail(true, src.HTML, v); err != nil {
		return Mail{}, fmt.Errorf("session: %s mail: html: %w", k, err)
	}
	return m, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// executeMail runs the template src, an html/template when html, on v.
func executeMail(html bool, src string, v mailView) (string, error) {
	tmpl, err := parseMailTemplate(html, src)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// executor is a parsed text/template or html/template.
type executor interface {
	Execute(w io.Writer, data any) error
}

// Parsed templates are cached by their text, for every tenant at once: a
// tenant's templates are parsed when it is validated and found here when
// its mail is rendered. A cache outside the Tenant keeps Tenant values
// comparable (tenantview.go compares them with reflect.DeepEqual). It is
// bounded: past maxParsedTemplates it starts again empty, which costs a
// parse per template at worst.
const maxParsedTemplates = 512

type templateKey struct {
	html bool
	src  string
}

var parsedTemplates struct {
	sync.Mutex
	m map[templateKey]executor
}

// parseMailTemplate parses src as an html/template (html) or a
// text/template, refusing what templates of a mail have no use for and
// that could make rendering cost more than its size.
func parseMailTemplate(html bool, src string) (executor, error) {
	key := templateKey{html, src}
	parsedTemplates.Lock()
	e, ok := parsedTemplates.m[key]
	parsedTemplates.Unlock()
	if ok {
		return e, nil
	}
	var (
		tree  *parse.Tree
		count int
	)
	if html {
		t, err := htmltemplate.New("mail").Parse(src)
		if err != nil {
			return nil, err
		}
		tree, count, e = t.Tree, len(t.Templates()), t
	} else {
		t, err := texttemplate.New("mail").Parse(src)
		if err != nil {
			return nil, err
		}
		tree, count, e = t.Tree, len(t.Templates()), t
	}
	if count > 1 {
		return nil, errors.New("defines templates ({{define}} or {{block}}), which a mail has no use for")
	}
	if tree != nil && tree.Root != nil {
		if err := checkMailNode(tree.Root); err != nil {
			return nil, err
		}
	}
	parsedTemplates.Lock()
	if len(parsedTemplates.m) >= maxParsedTemplates || parsedTemplates.m == nil {
		parsedTemplates.m = make(map[templateKey]executor)
	}
	parsedTemplates.m[key] = e
	parsedTemplates.Unlock()
	return e, nil
}

// mailFuncs are the template functions a mail may call: none that loops,
// calls out or pads (printf's width could make a gigabyte of one byte).
var mailFuncs = map[string]bool{
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"len": true, "index": true, "slice": true, "print": true, "println": true, "html": true, "js": true, "urlquery": true,
}

// checkMailNode refuses the actions a mail's template may not use: range
// (the data has no lists, and range over a number loops as long as it
// says), {{template}} (which could call one template many times over), and
// every function but mailFuncs. What is left runs in time linear in the
// template's size.
func checkMailNode(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkMailNode(c); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkMailNode(n.Pipe)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode)
	case *parse.RangeNode:
		return errors.New("uses {{range}}, which a mail has no use for")
	case *parse.TemplateNode:
		return errors.New("uses {{template}}, which a mail has no use for")
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkMailNode(c); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkMailNode(a); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return checkMailNode(n.Node)
	case *parse.IdentifierNode:
		if !mailFuncs[n.Ident] {
			return fmt.Errorf("calls %s, which a mail may not (it may call %s)", n.Ident, strings.Join(slices.Sorted(maps.Keys(mailFuncs)), ", "))
		}
	}
	return nil
}

func checkBranch(b *parse.BranchNode) error {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := checkMailNode(n); err != nil {
			return err
		}
	}
	return nil
}

// sampleMail is the data templates are tried on when a tenant is
// validated.
func sampleMail(t *Tenant) mailView {
	return mailView{
		TenantName: t.Name, Username: "alice", Email: "alice@example.com",
		Link:    "https://app.example.com/verify#token=" + strings.Repeat("A", 43),
		Expires: humanDuration(DefaultVerifyTokenTTL),
	}
}

// validateTemplates checks the tenant's Templates: known kinds only, and
// each field of at most MaxMailTemplateLen bytes of UTF-8 that parses and
// runs on sample data.
func validateTemplates(ps *problems, t *Tenant, templates map[MailKind]MailTemplate) {
	sample := sampleMail(t)
	for _, k := range slices.Sorted(maps.Keys(templates)) {
		field := "accounts.templates." + string(k)
		if _, ok := defaultMail[k]; !ok {
			ps.add(field, "%q is not a kind of mail (the kinds: verify, reset, signup_taken, password_changed)", k)
			continue
		}
		tm := templates[k]
		for _, f := range []struct{ name, src string }{{"subject", tm.Subject}, {"text", tm.Text}, {"html", tm.HTML}} {
			if f.src == "" {
				continue
			}
			sub := field + "." + f.name
			if len(f.src) > MaxMailTemplateLen {
				ps.add(sub, "is %d bytes long, at most %d allowed", len(f.src), MaxMailTemplateLen)
				continue
			}
			if !utf8.ValidString(f.src) {
				ps.add(sub, "must be UTF-8 text")
				continue
			}
			out, err := executeMail(f.name == "html", f.src, sample)
			if err != nil {
				msg := strings.ReplaceAll(err.Error(), "in type session.mailView", "in a mail's data (.TenantName, .Username, .Email, .Link, .Expires)")
				ps.add(sub, "does not render: %s", msg)
				continue
			}
			if f.name == "subject" && strings.TrimSpace(out) == "" {
				ps.add(sub, "renders an empty subject")
			}
		}
	}
}

// humanDuration writes d in words: "24 hours", "30 minutes", "7 days",
// "1 hour and 30 minutes"; "" for zero or less. It rounds to the minute.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d <= 0 {
		return ""
	}
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	const day = 24 * time.Hour
	if d >= 2*day && d%day == 0 {
		return unit(int64(d/day), "day")
	}
	h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return unit(m, "minute")
	case m == 0:
		return unit(h, "hour")
	}
	return unit(h, "hour") + " and " + unit(m, "minute")
}
