package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MinKeyLen is the shortest accepted cookie signing key, in bytes: an
// HMAC-SHA-256 key shorter than the hash adds no strength and invites weak,
// typed-in keys.
const MinKeyLen = 32

// maxCookieLen bounds an encoded cookie value. Ours are 128 to 348 bytes
// (a 1- to 128-byte username); the bound makes an oversized cookie a cheap decode failure, and no value
// over it is ever issued.
const maxCookieLen = 1024

// Codec signs and verifies session cookie values with a ring of keys: the
// first key signs, every key verifies, so keys rotate without logging anyone
// out. The MAC covers the cookie name, which names the tenant, so a value
// minted for one tenant never verifies for another. Codec is safe for
// concurrent use; SetKeys swaps the ring atomically.
//
// This file is the one owner of the value's format, which is
// gorilla/securecookie's (HMAC-SHA-256, no encryption, a NopEncoder
// serializer), so that every cookie issued before keeps verifying:
//
//	value = b64(date "|" b64(payload) "|" mac)
//	mac   = HMAC-SHA-256(key, name "|" date "|" b64(payload))
//
// where b64 is padded base64url and date the issue time in decimal Unix
// seconds. securecookie itself is only the tests' oracle (FuzzCodec checks
// that each side accepts what the other issues, and that nothing it refuses
// is accepted here). Verifying here costs one base64 pass into pooled
// buffers and pooled HMAC states, where securecookie's Decode builds a new
// HMAC and three decoded copies per value. Unlike securecookie, decode
// accepts only the exact bytes encode emits: its lenient base64 (CR and LF
// skipped, spare bits under the padding ignored) would let one session
// answer to several cookie values.
type Codec struct {
	ring atomic.Pointer[keyRing]
	// now, when set (by tests), is the clock of encode and decode; the
	// default is the wall clock, as securecookie's.
	now func() time.Time
}

type keyRing struct {
	keys [][]byte
	// states holds *codecState, so that a value is made or checked
	// without allocating anything but its result.
	states sync.Pool
}

// codecState is the scratch space of one encode or decode: the HMAC state of
// each key (made on first use) and buffers for the value's bytes.
type codecState struct {
	macs []hash.Hash
	// in holds a copy of the value (decode) or the encoded value (encode).
	in [maxCookieLen]byte
	// raw holds name "|" date "|" b64(payload) "|" mac: the MAC input
	// followed by the MAC. Names are bounded (a tenant ID is a DNS label),
	// so they fit beside the longest value; a longer one gets a buffer of
	// its own.
	raw [2 * maxCookieLen]byte
	sum [sha256.Size]byte
}

// mac returns key i's HMAC, reset.
func (st *codecState) mac(r *keyRing, i int) hash.Hash {
	h := st.macs[i]
	if h == nil {
		h = hmac.New(sha256.New, r.keys[i])
		st.macs[i] = h
	} else {
		h.Reset()
	}
	return h
}

// NewCodec returns a Codec over keys (the first signs). It round-trips a
// probe value so that unusable keys fail at start-up, not at first login.
func NewCodec(keys [][]byte) (*Codec, error) {
	c := &Codec{}
	if err := c.SetKeys(keys); err != nil {
		return nil, err
	}
	return c, nil
}

// SetKeys replaces the key ring after the same checks as NewCodec.
func (c *Codec) SetKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("session: at least one cookie key is required")
	}
	var errs []error
	for i, k := range keys {
		if len(k) < MinKeyLen {
			errs = append(errs, fmt.Errorf("session: cookie key %d is %d bytes, at least %d required", i+1, len(k), MinKeyLen))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r := &keyRing{keys: keys}
	r.states.New = func() any { return &codecState{macs: make([]hash.Hash, len(keys))} }
	probe := []byte("probe")
	now := c.unix()
	v, err := c.encodeWith(r, "probe", probe, now)
	if err != nil {
		return fmt.Errorf("session: cookie keys: %w", err)
	}
	if got, err := c.decodeWith(r, nil, "probe", time.Hour, v, now); err != nil || !bytes.Equal(got, probe) {
		return fmt.Errorf("session: cookie keys do not round-trip: %v", err)
	}
	c.ring.Store(r)
	return nil
}

func (c *Codec) unix() int64 {
	if c.now != nil {
		return c.now().Unix()
	}
	return time.Now().Unix()
}

// encode signs payload under name with the first key.
func (c *Codec) encode(name string, payload []byte) (string, error) {
	return c.encodeWith(c.ring.Load(), name, payload, c.unix())
}

// encodeAt is encode dated now rather than by the codec's clock: values
// whose lifetime the Manager's clock enforces (receipts) are dated by it.
func (c *Codec) encodeAt(name string, payload []byte, now time.Time) (string, error) {
	return c.encodeWith(c.ring.Load(), name, payload, now.Unix())
}

func (c *Codec) encodeWith(r *keyRing, name string, payload []byte, now int64) (string, error) {
	var date [20]byte
	d := strconv.AppendInt(date[:0], now, 10)
	head := len(name) + 1
	n := head + len(d) + 1 + base64.URLEncoding.EncodedLen(len(payload)) + 1 + sha256.Size
	if m := base64.URLEncoding.EncodedLen(n - head); m > maxCookieLen {
		return "", fmt.Errorf("session: cookie value of %d bytes, at most %d allowed", m, maxCookieLen)
	}
	st := r.states.Get().(*codecState)
	defer r.states.Put(st)
	raw := st.raw[:0]
	if n > len(st.raw) {
		raw = make([]byte, 0, n)
	}
	raw = append(append(raw, name...), '|')
	raw = append(append(raw, d...), '|')
	raw = base64.URLEncoding.AppendEncode(raw, payload)
	h := st.mac(r, 0)
	h.Write(raw)
	raw = h.Sum(append(raw, '|'))
	out := st.in[:base64.URLEncoding.EncodedLen(len(raw)-head)]
	base64.URLEncoding.Encode(out, raw[head:])
	return string(out), nil
}

// strictB64 decodes the outer base64url and refuses spare bits under the
// padding; decode refuses the CR and LF it skips by the length check.
var strictB64 = base64.URLEncoding.Strict()

// decode verifies value under name and returns its payload. A value older
// than maxAge (none at 0, as securecookie's MaxAge) is refused. Every
// failure is ErrUnauthenticated: a cookie is client input.
func (c *Codec) decode(name string, maxAge time.Duration, value string) ([]byte, error) {
	return c.decodeWith(c.ring.Load(), nil, name, maxAge, value, 0)
}

// decodeAppend is decode appending the payload to dst, so that a caller's
// array can hold it: `me` decodes a cookie on every page load.
func (c *Codec) decodeAppend(dst []byte, name string, maxAge time.Duration, value string) ([]byte, error) {
	return c.decodeWith(c.ring.Load(), dst, name, maxAge, value, 0)
}

// decodeAt is decode with its age measured at now (see encodeAt),
// appending the payload to dst.
func (c *Codec) decodeAt(dst []byte, name string, maxAge time.Duration, value string, now time.Time) ([]byte, error) {
	return c.decodeWith(c.ring.Load(), dst, name, maxAge, value, now.Unix())
}

// decodeWith measures a value's age at now, in Unix seconds; 0 means the
// codec's clock, read only once the MAC holds, so that a forged cookie
// costs no clock read.
func (c *Codec) decodeWith(r *keyRing, dst []byte, name string, maxAge time.Duration, value string, now int64) ([]byte, error) {
	if len(value) > maxCookieLen {
		return nil, ErrUnauthenticated
	}
	st := r.states.Get().(*codecState)
	defer r.states.Put(st)
	head := len(name) + 1
	raw := st.raw[:]
	if head+len(value) > len(raw) {
		raw = make([]byte, head+len(value))
	}
	copy(raw, name)
	raw[len(name)] = '|'
	n, err := strictB64.Decode(raw[head:], st.in[:copy(st.in[:], value)])
	// A value of exactly the encoded length of what it decodes to holds no
	// skipped CR or LF: with strict padding, it is the one encoding of
	// those bytes.
	if err != nil || base64.URLEncoding.EncodedLen(n) != len(value) {
		return nil, ErrUnauthenticated
	}
	b := raw[head : head+n]
	dp := bytes.IndexByte(b, '|')
	if dp < 0 {
		return nil, ErrUnauthenticated
	}
	vp := bytes.IndexByte(b[dp+1:], '|')
	if vp < 0 {
		return nil, ErrUnauthenticated
	}
	vp += dp + 1
	signed, mac := raw[:head+vp], b[vp+1:]
	ok := false
	for i := range r.keys {
		h := st.mac(r, i)
		h.Write(signed)
		if hmac.Equal(h.Sum(st.sum[:0]), mac) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, ErrUnauthenticated
	}
	// securecookie parses the date with strconv.ParseInt, which also takes
	// a sign; it writes digits only, as encode does, so a signed date was
	// made by neither (and needs the key): refusing it refuses nothing
	// issued.
	t, ok := parseDigits(b[:dp])
	if ok && maxAge >= time.Second && now == 0 {
		now = c.unix()
	}
	if !ok || (maxAge >= time.Second && t < now-int64(maxAge/time.Second)) {
		return nil, ErrUnauthenticated
	}
	p, err := strictB64.AppendDecode(dst, b[dp+1:vp])
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return p, nil
}

// parseDigits parses 1 to 18 decimal digits (a unix time in seconds).
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var t int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		t = t*10 + int64(c-'0')
	}
	return t, true
}

// ParseKeys parses a comma-separated list of base64 keys (standard or URL
// alphabet, padded or not), as given in LATCHKEY_COOKIE_KEYS. The error
// names the position of a bad key, never its value.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	var errs []error
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		k, err := decodeBase64(part)
		switch {
		case part == "":
			errs = append(errs, fmt.Errorf("cookie key %d is empty", i+1))
		case err != nil:
			errs = append(errs, fmt.Errorf("cookie key %d is not base64", i+1))
		case len(k) < MinKeyLen:
			errs = append(errs, fmt.Errorf("cookie key %d is %d bytes once decoded, at least %d required", i+1, len(k), MinKeyLen))
		default:
			keys = append(keys, k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// GenerateKey returns a new random signing key.
func GenerateKey() []byte {
	k := make([]byte, MinKeyLen)
	rand.Read(k) // never fails (crypto/rand)
	return k
}
