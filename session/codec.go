package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"
)

// MinKeyLen is the shortest accepted cookie signing key, in bytes: an
// HMAC-SHA-256 key shorter than the hash adds no strength and invites weak,
// typed-in keys.
const MinKeyLen = 32

// maxCookieLen bounds an encoded cookie value. Ours are about 150 bytes; the
// bound makes an oversized cookie a cheap decode failure.
const maxCookieLen = 1024

// Codec signs and verifies session cookie values with a ring of keys: the
// first key signs, every key verifies, so keys rotate without logging anyone
// out. The securecookie name covers the cookie name, which names the tenant,
// so a value minted for one tenant never verifies for another. Codec is safe
// for concurrent use; SetKeys swaps the ring atomically.
type Codec struct {
	ring atomic.Pointer[keyRing]
}

type keyRing struct {
	keys [][]byte
	// verifiers holds, per key, *verifier for verify to reuse.
	verifiers []*sync.Pool
	// byAge caches one codec list per maximum age (seconds). Tenants have few
	// distinct lifetimes, and securecookie's MaxAge is a per-codec setting.
	// A plain map: a sync.Map would box the int key on every lookup.
	mu    sync.RWMutex
	byAge map[int][]securecookie.Codec
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
	r := &keyRing{keys: keys, byAge: map[int][]securecookie.Codec{}}
	for _, k := range keys {
		r.verifiers = append(r.verifiers, &sync.Pool{New: func() any { return &verifier{mac: hmac.New(sha256.New, k)} }})
	}
	probe := []byte("probe")
	v, err := r.encode("probe", time.Hour, probe)
	if err != nil {
		return fmt.Errorf("session: cookie keys: %w", err)
	}
	if got, err := r.decode("probe", time.Hour, v); err != nil || string(got) != string(probe) {
		return fmt.Errorf("session: cookie keys do not round-trip: %v", err)
	}
	c.ring.Store(r)
	return nil
}

func (r *keyRing) codecs(maxAge time.Duration) []securecookie.Codec {
	age := int(maxAge / time.Second)
	r.mu.RLock()
	cs, ok := r.byAge[age]
	r.mu.RUnlock()
	if ok {
		return cs
	}
	cs = make([]securecookie.Codec, len(r.keys))
	for i, k := range r.keys {
		cs[i] = securecookie.New(k, nil).
			SetSerializer(securecookie.NopEncoder{}).
			MaxAge(age).
			MaxLength(maxCookieLen)
	}
	r.mu.Lock()
	r.byAge[age] = cs
	r.mu.Unlock()
	return cs
}

func (r *keyRing) encode(name string, maxAge time.Duration, payload []byte) (string, error) {
	return securecookie.EncodeMulti(name, payload, r.codecs(maxAge)[:1]...)
}

func (r *keyRing) decode(name string, maxAge time.Duration, value string) ([]byte, error) {
	now := time.Now().Unix()
	for i := range r.keys {
		if p, ok := r.verify(i, name, maxAge, value, now); ok {
			return p, nil
		}
	}
	return nil, errInvalidCookie
}

var errInvalidCookie = errors.New("session: invalid cookie value")

// verify checks value as securecookie's Decode does with key i, a NopEncoder
// serializer, no encryption and r's MaxLength and MaxAge, and returns the
// payload. It is that check without its per-call cost: securecookie builds
// a new HMAC (two SHA-256 states and their pads) and three decoded copies
// for every value, which made a cookie with a bad signature dearer than a
// preflight. Here the HMAC states are pooled and the decoding is done in
// stack buffers; only the returned payload is allocated. Values are still
// made by securecookie (encode), and FuzzCodecVerify checks that verify
// accepts exactly the values securecookie accepts, with the same payload.
//
// securecookie's format is base64url(date|base64url(payload)|mac), the MAC
// being HMAC-SHA-256 over name|date|base64url(payload).
func (r *keyRing) verify(i int, name string, maxAge time.Duration, value string, now int64) ([]byte, bool) {
	if len(value) > maxCookieLen {
		return nil, false
	}
	vf := r.verifiers[i].Get().(*verifier)
	defer r.verifiers[i].Put(vf)
	n, err := base64.URLEncoding.Decode(vf.dec[:], vf.raw[:copy(vf.raw[:], value)])
	if err != nil {
		return nil, false
	}
	b := vf.dec[:n]
	d := bytes.IndexByte(b, '|')
	if d < 0 {
		return nil, false
	}
	v := bytes.IndexByte(b[d+1:], '|')
	if v < 0 {
		return nil, false
	}
	v += d + 1
	date, enc, mac := b[:d], b[d+1:v], b[v+1:]

	// The MAC covers name|date|payload: the name and its '|' go through
	// the scratch buffer, which (unlike a []byte conversion) does not
	// allocate.
	vf.mac.Reset()
	vf.mac.Write(append(append(vf.raw[:0], name...), '|'))
	vf.mac.Write(b[:v])
	if !hmac.Equal(vf.mac.Sum(vf.sum[:0]), mac) {
		return nil, false
	}

	// securecookie parses the date with strconv.ParseInt, which also
	// takes a sign; it writes digits only, so a signed date was not made
	// by it (and would need the key): refusing it refuses nothing real.
	t, ok := parseDigits(date)
	if !ok || (maxAge >= time.Second && t < now-int64(maxAge/time.Second)) {
		return nil, false
	}
	p := make([]byte, base64.URLEncoding.DecodedLen(len(enc)))
	if n, err = base64.URLEncoding.Decode(p, enc); err != nil {
		return nil, false
	}
	return p[:n], true
}

// verifier is one key's HMAC state with the scratch space verify needs,
// pooled so that checking a cookie allocates nothing but its payload.
type verifier struct {
	mac      hash.Hash
	raw, dec [maxCookieLen]byte
	sum      [sha256.Size]byte
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

// encode signs payload under name; the value expires maxAge after now.
func (c *Codec) encode(name string, maxAge time.Duration, payload []byte) (string, error) {
	return c.ring.Load().encode(name, maxAge, payload)
}

// decode verifies value under name. Every failure, including an oversized
// value (which securecookie does not flag as a decode error), is invalid
// client input.
func (c *Codec) decode(name string, maxAge time.Duration, value string) ([]byte, error) {
	p, err := c.ring.Load().decode(name, maxAge, value)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return p, nil
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
func GenerateKey() []byte { return securecookie.GenerateRandomKey(MinKeyLen) }
