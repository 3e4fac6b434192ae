// Package mail delivers the mails of self-service accounts (session.Mail):
// an SMTP sender configured from a URL, a log sink for the demo, and the
// Outbox that queues mails off the request path and retries them.
//
// # Delivery
//
// An Outbox implements session.Mailer. Send only queues: a request's
// answer, and its timing, never depend on the mail server (a slow or down
// server must not tell an attacker whether an address has an account).
// Workers deliver queued mails, retrying transient failures (a refused or
// timed-out connection, a 4xx reply) with exponential backoff, and giving
// up at once on a permanent one (a 5xx reply). A full queue makes Send
// fail; the caller logs it, and the request's effect stands. Close stops
// taking mail and drains the queue until its context ends.
//
// # SMTP
//
// NewSMTP takes smtp://host[:port] (STARTTLS required, except on a
// loopback host, where it is used when offered) or smtps://host[:port]
// (TLS from the first byte). Credentials come from the URL's userinfo or,
// for the password, from a file read again at every connection, so that a
// rotated Secret applies without a restart. Authentication never sends a
// password over an unencrypted connection to another host.
//
// # Secrets and personal data
//
// The SMTP URL may hold a password: no error or log line quotes it. A
// mail's recipient, subject, body and link never reach a log line or an
// error text of this package (SMTP replies that echo the recipient are
// redacted), except in LogSink, the demo's deliberate exception, which
// prints whole mails so that `make run` works without a mail server.
package mail
