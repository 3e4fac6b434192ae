package session

// Tests of the cookie codec against gorilla/securecookie, whose format it
// owns: securecookie is the oracle here and nowhere else in the tree.

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

var (
	codecKey1 = bytes.Repeat([]byte{'k'}, MinKeyLen)
	codecKey2 = bytes.Repeat([]byte{'o'}, MinKeyLen)
)

const codecName = "__Host-latchkey-acme"

// oracle returns securecookie codecs over keys, configured as the codec's
// format is: no encryption, the payload as is, values of at most
// maxCookieLen bytes and at most maxAge old (none at 0).
func oracle(maxAge time.Duration, keys ...[]byte) []securecookie.Codec {
	cs := make([]securecookie.Codec, len(keys))
	for i, k := range keys {
		cs[i] = securecookie.New(k, nil).
			SetSerializer(securecookie.NopEncoder{}).
			MaxAge(int(maxAge / time.Second)).
			MaxLength(maxCookieLen)
	}
	return cs
}

func mustCodec(tb testing.TB, keys ...[]byte) *Codec {
	tb.Helper()
	c, err := NewCodec(keys)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// at returns a codec over c's keys whose clock reads t.
func at(c *Codec, t time.Time) *Codec {
	s := &Codec{now: func() time.Time { return t }}
	s.ring.Store(c.ring.Load())
	return s
}

func TestCodecSecurecookieFormat(t *testing.T) {
	t.Parallel()
	c := mustCodec(t, codecKey1, codecKey2)
	payload := cookiePayload(bytes.Repeat([]byte{9}, tokenLen), "alice")

	// Ours, read by securecookie.
	v, err := c.encode(codecName, payload)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := securecookie.DecodeMulti(codecName, v, &got, oracle(time.Hour, codecKey1)...); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("securecookie.Decode(our value) = %q, %v; want %q", got, err, payload)
	}

	// securecookie's, with either key of the ring, read by ours: the
	// cookies issued before this codec keep verifying.
	for i, k := range [][]byte{codecKey1, codecKey2} {
		sv, err := securecookie.EncodeMulti(codecName, payload, oracle(time.Hour, k)...)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.decode(codecName, time.Hour, sv); err != nil || !bytes.Equal(got, payload) {
			t.Errorf("decode(securecookie's value, key %d) = %q, %v; want %q", i+1, got, err, payload)
		}
	}
}

func TestCodecRefuses(t *testing.T) {
	t.Parallel()
	c := mustCodec(t, codecKey1)
	payload := []byte("0123456789abcdef0123456789abcdef" + "alice.ops") // its value ends in "=="
	v, err := c.encode(codecName, payload)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(v, "==") {
		t.Fatalf("value %q does not end in ==; pick a payload whose value has padding bits", v)
	}
	// The last character before "==" carries 4 unused bits.
	spare := v[:len(v)-3] + string(v[len(v)-3]+1) + "=="
	old, err := at(c, time.Now().Add(-2*time.Hour)).encode(codecName, payload)
	if err != nil {
		t.Fatal(err)
	}
	long, err := securecookie.New(codecKey1, nil).SetSerializer(securecookie.NopEncoder{}).MaxLength(0).
		Encode(codecName, bytes.Repeat([]byte{'x'}, maxCookieLen))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value, cookie string
		maxAge              time.Duration
		// lenient: securecookie accepts it (under no size bound), and the
		// codec refuses it on purpose.
		lenient bool
	}{
		{name: "line breaks inside", value: v[:10] + "\r\n" + v[10:], lenient: true},
		{name: "a trailing line break", value: v + "\n", lenient: true},
		{name: "non-zero padding bits", value: spare, lenient: true},
		{name: "over the size bound", value: long, lenient: true},
		{name: "unpadded", value: strings.TrimRight(v, "=")},
		{name: "outside the alphabet", value: v[:5] + "+" + v[6:]},
		{name: "another cookie's name", value: v, cookie: "__Host-latchkey-beta"},
		{name: "tampered MAC", value: v[:len(v)-4] + "AA=="},
		{name: "expired", value: old, maxAge: time.Hour},
		{name: "empty", value: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.cookie
			if name == "" {
				name = codecName
			}
			maxAge := tc.maxAge
			if maxAge == 0 {
				maxAge = time.Hour
			}
			if _, err := c.decode(name, maxAge, tc.value); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("decode(%q) = %v, want ErrUnauthenticated", tc.value, err)
			}
			var got []byte
			sc := securecookie.New(codecKey1, nil).SetSerializer(securecookie.NopEncoder{}).MaxAge(int(maxAge / time.Second)).MaxLength(0)
			if err := sc.Decode(name, tc.value, &got); (err == nil) != tc.lenient {
				t.Errorf("securecookie.Decode(%q) = %v, want it to accept: %v", tc.value, err, tc.lenient)
			}
		})
	}
}

// TestCodecKeysAndAge checks rotation (the first key signs, every key
// verifies), the name binding and the age bound, against securecookie.
func TestCodecKeysAndAge(t *testing.T) {
	t.Parallel()
	c1 := mustCodec(t, codecKey1)
	payload := []byte("payload")
	v, err := c1.encode(codecName, payload)
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustCodec(t, codecKey2, codecKey1)
	if _, err := rotated.decode(codecName, time.Hour, v); err != nil {
		t.Errorf("decode(old key's value) after rotation = %v, want nil", err)
	}
	v2, err := rotated.encode(codecName, payload)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := securecookie.DecodeMulti(codecName, v2, &got, oracle(time.Hour, codecKey2)...); err != nil {
		t.Errorf("the rotated ring did not sign with its first key: %v", err)
	}
	if _, err := c1.decode(codecName, time.Hour, v2); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("decode(new key's value) by the old ring = %v, want ErrUnauthenticated", err)
	}
	if err := rotated.SetKeys([][]byte{codecKey2}); err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.decode(codecName, time.Hour, v); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("decode(retired key's value) = %v, want ErrUnauthenticated", err)
	}

	now := time.Now()
	for _, tc := range []struct {
		age, maxAge time.Duration
		ok          bool
	}{
		{age: time.Hour - 5*time.Second, maxAge: time.Hour, ok: true},
		{age: time.Hour + 5*time.Second, maxAge: time.Hour},
		{age: 400 * 24 * time.Hour, maxAge: 0, ok: true}, // no bound, as securecookie's MaxAge(0)
		{age: 2 * time.Second, maxAge: time.Second},
	} {
		v, err := at(c1, now.Add(-tc.age)).encode(codecName, payload)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c1.decode(codecName, tc.maxAge, v)
		werr := securecookie.DecodeMulti(codecName, v, &got, oracle(tc.maxAge, codecKey1)...)
		if (err == nil) != tc.ok || (werr == nil) != tc.ok {
			t.Errorf("a value %v old under a %v bound: decode = %v, securecookie = %v; want accepted: %v", tc.age, tc.maxAge, err, werr, tc.ok)
		}
	}
}

func TestCodecSizeBound(t *testing.T) {
	t.Parallel()
	c := mustCodec(t, codecKey1)
	// The longest payload whose value fits: what securecookie, with the
	// same MaxLength, also issues.
	fits := 0
	for n := range maxCookieLen {
		_, err := c.encode(codecName, make([]byte, n))
		_, werr := securecookie.EncodeMulti(codecName, make([]byte, n), oracle(0, codecKey1)...)
		if (err == nil) != (werr == nil) {
			t.Fatalf("encode(%d bytes) = %v, securecookie = %v", n, err, werr)
		}
		if err == nil {
			fits = n
		}
	}
	if v, err := c.encode(codecName, make([]byte, fits)); err != nil || len(v) > maxCookieLen {
		t.Errorf("encode(%d bytes) = %d bytes, %v; want at most %d", fits, len(v), err, maxCookieLen)
	}
	if fits < tokenLen+MaxUsernameLen {
		t.Errorf("the longest payload that fits is %d bytes, want room for a token and a %d-byte username", fits, MaxUsernameLen)
	}
}

// FuzzCodec checks the codec against securecookie both ways. Each input
// gives a payload, a signing time (age seconds ago), a maximum age, and a
// value: the fuzzed one as is, or, with flip >= 0, the codec's value for
// the payload with one byte flipped. Properties:
//   - what the codec issues, securecookie accepts with the same payload,
//     and the codec too, under the same age rule; under another name, or
//     by a ring without the signing key, it is refused;
//   - what securecookie issues, with either key of the ring, the codec
//     accepts with the same payload when it fits the size bound;
//   - a value securecookie refuses, the codec refuses; one the codec accepts,
//     securecookie accepts with the same payload; one only securecookie
//     accepts is not the exact base64url of its bytes (securecookie skips
//     line breaks and ignores padding bits).
func FuzzCodec(f *testing.F) {
	ring := mustCodec(f, codecKey1, codecKey2)
	other := mustCodec(f, codecKey2)
	genuine, err := ring.encode(codecName, []byte("0123456789abcdef0123456789abcdefalice"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine, []byte(nil), int64(0), int64(3600), -1)
	f.Add("", []byte("payload"), int64(60), int64(3600), -1)
	f.Add("", []byte("old"), int64(7200), int64(3600), -1)
	f.Add("", []byte("flip"), int64(0), int64(0), 5)
	f.Add("", []byte("pipe|in|payload"), int64(1), int64(60), 40)
	f.Add("", []byte(""), int64(0), int64(0), -1)
	f.Add("", bytes.Repeat([]byte{'x'}, 800), int64(0), int64(0), -1)
	f.Add(genuine[:20]+"\n"+genuine[20:], []byte(nil), int64(0), int64(1), -1)
	f.Add("not base64 !", []byte(nil), int64(0), int64(1), -1)
	f.Fuzz(func(t *testing.T, value string, payload []byte, age, maxAge int64, flip int) {
		now := time.Now()
		// Bounds that keep the arithmetic in range, and dates positive,
		// as a real clock's.
		maxAge %= 1 << 33
		if maxAge < 0 {
			maxAge = -maxAge
		}
		if age < 0 {
			age = -age
		}
		age %= now.Unix()
		// Too close to the age bound, the codec and securecookie may read
		// the clock on either side of it.
		boundary := maxAge > 0 && age-maxAge > -3 && age-maxAge < 3
		ttl := time.Duration(maxAge) * time.Second

		// The codec's value, read by securecookie.
		// The size bound is securecookie's MaxLength.
		_, err := ring.encode(codecName, payload)
		_, werr := securecookie.EncodeMulti(codecName, payload, oracle(0, codecKey1)...)
		if (err == nil) != (werr == nil) {
			t.Fatalf("encode = %v, securecookie's = %v, for %d bytes", err, werr, len(payload))
		}
		// An earlier date has no more digits: what fits now fitted then.
		var want []byte
		v, verr := at(ring, now.Add(-time.Duration(age)*time.Second)).encode(codecName, payload)
		if verr != nil && err == nil {
			t.Fatalf("encode %d s ago = %v, but it fits now", age, verr)
		}
		if verr == nil {
			werr := securecookie.DecodeMulti(codecName, v, &want, oracle(ttl, codecKey1)...)
			got, gerr := ring.decode(codecName, ttl, v)
			if !boundary && (werr == nil) != (gerr == nil) {
				t.Fatalf("our value %q: decode = %v, securecookie = %v", v, gerr, werr)
			}
			if werr == nil && gerr == nil && (!bytes.Equal(got, payload) || !bytes.Equal(want, payload)) {
				t.Fatalf("our value: decode = %q, securecookie = %q, want %q", got, want, payload)
			}
			if _, err := ring.decode(codecName+"x", 0, v); err == nil {
				t.Fatalf("our value for %q verified under another name", codecName)
			}
			if _, err := other.decode(codecName, 0, v); err == nil {
				t.Fatal("our value verified under a ring without its key")
			}
		}

		// securecookie's value, read by the codec.
		for i, k := range [][]byte{codecKey1, codecKey2} {
			sv, err := securecookie.New(k, nil).SetSerializer(securecookie.NopEncoder{}).MaxLength(0).Encode(codecName, payload)
			if err != nil {
				t.Fatalf("securecookie.Encode: %v", err)
			}
			got, err := ring.decode(codecName, time.Hour, sv)
			if fits := len(sv) <= maxCookieLen; (err == nil) != fits || fits && !bytes.Equal(got, payload) {
				t.Fatalf("decode(securecookie's value with key %d, %d bytes) = %q, %v; want %q", i+1, len(sv), got, err, payload)
			}
		}

		// Any value.
		if flip >= 0 && v != "" {
			b := []byte(v)
			b[flip%len(b)] ^= byte(flip>>8) | 1
			value = string(b)
		}
		want = nil
		werr = securecookie.DecodeMulti(codecName, value, &want, oracle(ttl, codecKey1, codecKey2)...)
		got, gerr := ring.decode(codecName, ttl, value)
		switch {
		case gerr != nil && !errors.Is(gerr, ErrUnauthenticated):
			t.Fatalf("decode(%q) = %v, want nil or ErrUnauthenticated", value, gerr)
		case gerr == nil && werr != nil && !boundary:
			t.Fatalf("decode(%q) accepted what securecookie refuses (%v)", value, werr)
		case gerr == nil && werr == nil && !bytes.Equal(got, want):
			t.Fatalf("decode(%q) = %q, securecookie %q", value, got, want)
		case gerr != nil && werr == nil && !boundary && issuedForm(value):
			t.Fatalf("decode(%q) = %v, but securecookie accepts it and it is an exact encoding", value, gerr)
		}
	})
}
