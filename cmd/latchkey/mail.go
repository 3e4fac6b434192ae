package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkeyhq/latchkey/internal/mail"
	"github.com/latchkeyhq/latchkey/session"
)

// mailDrainTimeout bounds how long shutdown waits, after the HTTP servers
// have drained, for the flows' background work and the mails still queued: with shutdownTimeout it stays
// under Kubernetes' default 30 s grace period.
const mailDrainTimeout = 5 * time.Second

// newOutbox returns the outbox of the mails of self-service accounts:
// through LATCHKEY_SMTP_URL when it is set, else, for the demo, printed to
// the log; nil when neither (a tenant with accounts is then refused). Its
// errors name the setting and never quote the URL.
func newOutbox(cfg *config, log *slog.Logger, reg *prometheus.Registry, demo bool) (*mail.Outbox, error) {
	var sender mail.Sender
	switch {
	case cfg.SMTPURL != "":
		// Check the files here, so that their errors name their setting.
		var errs []error
		if cfg.SMTPPasswordFile != "" {
			if pw, err := readSecretFile(cfg.SMTPPasswordFile); err != nil {
				errs = append(errs, fmt.Errorf("LATCHKEY_SMTP_PASSWORD_FILE: %w", err))
			} else if pw == "" {
				errs = append(errs, fmt.Errorf("LATCHKEY_SMTP_PASSWORD_FILE: %s is empty", cfg.SMTPPasswordFile))
			}
		}
		if cfg.SMTPCAFile != "" {
			if pem, err := os.ReadFile(cfg.SMTPCAFile); err != nil {
				errs = append(errs, fmt.Errorf("LATCHKEY_SMTP_CA_FILE: %w", err))
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("LATCHKEY_SMTP_CA_FILE: %s holds no PEM certificate", cfg.SMTPCAFile))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		var password func() (string, error)
		if path := cfg.SMTPPasswordFile; path != "" {
			password = func() (string, error) { return readSecretFile(path) }
		}
		s, err := mail.NewSMTP(mail.SMTPConfig{URL: cfg.SMTPURL, Password: password, CAFile: cfg.SMTPCAFile, From: cfg.MailFrom})
		if err != nil {
			return nil, fmt.Errorf("LATCHKEY_SMTP_URL: %w", err)
		}
		log.Info("mail goes out through SMTP", "server", s.Server())
		sender = s
	case demo:
		log.Warn("demo: mails are printed to this log, links included, and not sent; set LATCHKEY_SMTP_URL to send them")
		sender = mail.LogSink(log)
	default:
		return nil, nil
	}
	return mail.NewOutbox(sender, mail.OutboxConfig{Logger: log, Registry: reg})
}

// checkMailNeeded fails when no mail can be sent and a tenant needs it: one
// of the tenants file, or one the store holds that the file does not
// replace. Every such tenant is named.
func (a *app) checkMailNeeded(ctx context.Context) error {
	if a.outbox != nil {
		return nil
	}
	var errs []error
	inFile := map[session.TenantID]bool{}
	if a.file != nil {
		for _, spec := range a.file.Tenants {
			inFile[spec.ID] = true
			if spec.Tenant.NeedsMail() {
				errs = append(errs, mailNeeded(spec.ID))
			}
		}
	}
	stored, err := a.m.ListTenants(ctx)
	if err != nil {
		return fmt.Errorf("list the stored tenants: %w", err)
	}
	for _, t := range stored {
		if !inFile[t.ID] && t.NeedsMail() {
			errs = append(errs, mailNeeded(t.ID))
		}
	}
	return errors.Join(errs...)
}

func mailNeeded(id session.TenantID) error {
	return fmt.Errorf("tenant %q: accounts need mail: set LATCHKEY_SMTP_URL and LATCHKEY_MAIL_FROM", id)
}

// finishMail, on shutdown, lets the manager finish its background work
// (the lookups and tokens behind the mails of requests answered already),
// then delivers the mails still queued, within timeout for both, and logs
// what it gives up.
func (a *app) finishMail(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.m.Close(ctx); err != nil {
		a.log.Error("the self-service flows' background work did not finish at shutdown", "err", err)
	}
	a.closeOutbox(ctx)
}

// closeOutbox delivers the mails still queued, until ctx is done, and logs
// those it gives up. It may be called more than once.
func (a *app) closeOutbox(ctx context.Context) {
	if a.outbox == nil {
		return
	}
	if n := a.outbox.Pending(); n > 0 {
		a.log.Info("delivering the queued mails", "mails", n)
	}
	if err := a.outbox.Close(ctx); err != nil {
		a.log.Error("mails not delivered at shutdown", "err", err)
	}
}

// expired is a context that is done already: closing the outbox with it
// gives up at once what is queued (nothing, before the service started).
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
