// Package smtptest runs an SMTP server inside a test, on 127.0.0.1, that
// records the mails it accepts, parsed (envelope, subject, text and HTML
// parts, first link), for tests of code that sends mail.
//
// The server can be stopped and restarted on the same port (a mail server
// down at send time), made to answer the next recipients with chosen
// error replies (451 then accept, or 550), made to require AUTH PLAIN, and
// made to speak TLS (STARTTLS or implicit) with a certificate from a CA
// whose PEM file it writes. Every wait is bounded by a timeout.
//
// It accepts plain-text authentication (go-smtp's AllowInsecureAuth)
// because it listens on loopback only; it is for tests, never for serving.
package smtptest
