package mail

import (
	"context"
	"log/slog"
	"regexp"

	"github.com/latchkeyhq/latchkey/session"
)

// LogSink returns a Sender that writes every mail whole (recipient,
// subject, plain text and its first link) to log instead of sending it.
// It is for the demo only, and the one deliberate exception to keeping
// mails out of the log: with it, `make run` needs no mail server, and the
// verification and reset links are read in the log. Never use it where
// the log is shared: the links sign their reader in.
func LogSink(log *slog.Logger) Sender { return logSink{log} }

type logSink struct{ log *slog.Logger }

// firstLink finds the link that a mail's text carries.
var firstLink = regexp.MustCompile(`https?://[^\s<>"]+`)

func (s logSink) Deliver(ctx context.Context, m session.Mail) error {
	s.log.InfoContext(ctx, "demo mail (printed here, not sent)",
		"tenant", string(m.Tenant), "kind", string(m.Kind),
		"to", m.To, "subject", m.Subject, "link", firstLink.FindString(m.Text), "text", m.Text)
	return nil
}
