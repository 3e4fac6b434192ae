package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The session view is what `me` answers on every page load of every SPA,
// so it is encoded by hand: encoding/json's reflection, its four
// time.Time marshalers and the re-validation of their output were a
// quarter of a `me`. The output is byte for byte what json.Encoder writes
// (FuzzSessionViewJSON checks it): the same field order, the same
// HTML-safe escaping, RFC 3339 times and the trailing newline.

// viewBufs holds the buffers views are encoded into: a Write must not
// retain what it is given (io.Writer), so a buffer is free again as soon
// as Write returns.
var viewBufs = sync.Pool{New: func() any { return new([]byte) }}

func writeView(w http.ResponseWriter, status int, v *sessionView) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(status)
	bp := viewBufs.Get().(*[]byte)
	*bp = v.appendJSON((*bp)[:0])
	w.Write(*bp)
	viewBufs.Put(bp)
}

func (v *sessionView) appendJSON(b []byte) []byte {
	return append(v.appendMembers(b), "}\n"...)
}

// appendMembers is the view without its closing brace.
func (v *sessionView) appendMembers(b []byte) []byte {
	b = append(b, `{"user":{"username":`...)
	b = appendJSONString(b, v.User.Username)
	b = append(b, `},"session":`...)
	return v.Session.appendJSON(b)
}

// writeLoginResult is writeView for a login's answer.
func writeLoginResult(w http.ResponseWriter, status int, v *loginResult) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(status)
	bp := viewBufs.Get().(*[]byte)
	*bp = v.appendJSON((*bp)[:0])
	w.Write(*bp)
	viewBufs.Put(bp)
}

func (v *loginResult) appendJSON(b []byte) []byte {
	b = append(v.sessionView.appendMembers(b), `,"receipt":`...)
	b = appendJSONString(b, v.Receipt)
	return append(b, "}\n"...)
}

func (i *sessionInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, i.ID)
	b = appendJSONTime(append(b, `,"created_at":`...), i.CreatedAt)
	b = appendJSONTime(append(b, `,"last_seen_at":`...), i.LastSeenAt)
	b = appendJSONTime(append(b, `,"idle_expires_at":`...), i.IdleExpiresAt)
	b = appendJSONTime(append(b, `,"expires_at":`...), i.ExpiresAt)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, i.UserAgent)
	b = strconv.AppendBool(append(b, `,"current":`...), i.Current)
	return append(b, '}')
}

// appendJSONTime is time.Time.MarshalJSON without its allocation. Session
// times are well within the years 0 to 9999 it insists on.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does by default: control
// characters, '"', '\\', and the HTML-sensitive '<', '>', '&' escaped,
// U+2028 and U+2029 escaped for JavaScript, invalid UTF-8 replaced by
// U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	return append(appendJSONChars(append(b, '"'), s), '"')
}

// appendJSONChars is appendJSONString without the quotes. Escaping goes
// byte by byte, or rune by rune for valid UTF-8, so the escapes of two
// strings, the first ending on a rune boundary, are the escape of the two
// joined.
func appendJSONChars(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
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
