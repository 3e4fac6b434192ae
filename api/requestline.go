package api

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// The request line is the one log line every request writes, so its cost
// is the log's. Under a load of preflights, slog.JSONHandler's formatting
// of it alone was 9 % of Latchkey's CPU, where the whole line may cost
// 5 %: the record's attributes (and their allocation), each value's
// generic append and the float's trip through encoding/json's reflection.
// So a handler that can (RequestLineHandler) gets the line's fields
// instead, and AppendJSON writes the bytes that JSONHandler would;
// FuzzRequestLineJSON checks them against JSONHandler for any field
// values. This file owns that format.

// RequestLine is the line instrument logs at info for each request: its
// fields, in the line's order. It never holds a username, a path, a query
// or a header.
type RequestLine struct {
	// Time is when the handler returned.
	Time time.Time
	// RequestID is also the answer's X-Request-Id.
	RequestID string
	// Listener is "public" or "admin".
	Listener string
	// Tenant is the tenant's ID, "" before or without one.
	Tenant string
	// Method is a standard method, or "other".
	Method string
	// Route is the route template, never the path.
	Route      string
	Status     int
	DurationMS float64
	// ClientIP is the zero Addr when unknown, logged as "". An address,
	// not its text: AppendJSON writes it without making a string.
	ClientIP netip.Addr
}

// Record returns the line as a slog.Record: the message "request" at
// info, with the attributes request_id, listener, tenant, method, route
// (strings), status (an int), duration_ms (a float64) and client_ip.
func (l RequestLine) Record() slog.Record {
	r := slog.NewRecord(l.Time, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("request_id", l.RequestID),
		slog.String("listener", l.Listener),
		slog.String("tenant", l.Tenant),
		slog.String("method", l.Method),
		slog.String("route", l.Route),
		slog.Int("status", l.Status),
		slog.Float64("duration_ms", l.DurationMS),
		slog.String("client_ip", addrText(l.ClientIP)),
	)
	return r
}

// addrText is a's text, or "" for the zero Addr.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// RequestLineHandler is a slog.Handler that writes a RequestLine without a
// slog.Record. HandleRequestLine must write exactly what Handle writes for
// l.Record(). When Config.Logger's handler is one, instrument hands it
// every request line so; otherwise it hands Handle the record.
type RequestLineHandler interface {
	slog.Handler
	// HandleRequestLine takes the line by value, so that the call
	// through the interface allocates nothing.
	HandleRequestLine(ctx context.Context, l RequestLine) error
}

// AppendJSON appends the line, newline included, as a slog.JSONHandler
// with no ReplaceAttr, no AddSource and no attributes or groups of its own
// writes l.Record(), and reports whether it could: it cannot for a Time
// outside the years 0 to 9999 or a DurationMS that is not finite, which
// JSONHandler writes as errors.
func (l RequestLine) AppendJSON(b []byte) ([]byte, bool) {
	b = append(b, '{')
	if !l.Time.IsZero() { // as JSONHandler: no time, no key
		t := l.Time.Round(0)
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	if math.IsInf(l.DurationMS, 0) || math.IsNaN(l.DurationMS) {
		return b, false
	}
	b = append(b, `"level":"INFO","msg":"request","request_id":"`...)
	b = appendLogString(b, l.RequestID)
	b = append(b, `","listener":"`...)
	b = appendLogString(b, l.Listener)
	b = append(b, `","tenant":"`...)
	b = appendLogString(b, l.Tenant)
	b = append(b, `","method":"`...)
	b = appendLogString(b, l.Method)
	b = append(b, `","route":"`...)
	b = appendLogString(b, l.Route)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(l.Status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendLogFloat(b, l.DurationMS)
	b = append(b, `,"client_ip":"`...)
	switch a := l.ClientIP; {
	case !a.IsValid():
	case a.Zone() == "":
		b = a.AppendTo(b) // digits, dots, colons and hex: nothing to escape
	default:
		b = appendLogString(b, a.String()) // a zone is any string
	}
	return append(b, "\"}\n"...), true
}

// appendLogFloat appends a finite f as JSONHandler does, through
// encoding/json: the shortest decimal that parses back to f, in exponent
// form below 1e-6 and from 1e21, without a leading zero in a negative
// exponent.
func appendLogFloat(b []byte, f float64) []byte {
	// A count of thousandths below 1e12, as a duration_ms (µs/1000) is: a
	// double's step there is far below 0.001, so the decimal k/1000 is
	// the shortest that parses back to f, with no search for it. -0 is
	// not one: encoding/json writes it "-0".
	if k := math.Round(f * 1000); k >= 0 && k < 1e15 && k/1000 == f && !math.Signbit(f) {
		n := int64(k)
		b = strconv.AppendInt(b, n/1000, 10)
		if frac := n % 1000; frac != 0 {
			d := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
			end := len(d)
			for d[end-1] == '0' {
				end--
			}
			b = append(b, d[:end]...)
		}
		return b
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendLogString appends s escaped as JSONHandler escapes strings,
// without the quotes. That is not encoding/json's escaping (see
// appendJSONString): `"`, `\` and control characters are escaped (\n, \r,
// \t, the others \u00XX), invalid UTF-8 becomes \ufffd and U+2028 and
// U+2029 are escaped, but <, > and & are not.
func appendLogString(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		// A run of plain ASCII, the common case, is one lookup a byte.
		for i < len(s) && logPlain[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// logPlain reports the bytes appendLogString copies as they are: ASCII
// but control characters, `"` and `\`.
var logPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
