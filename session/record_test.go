package session

import (
	"encoding/hex"
	"testing"
	"time"
)

// recordNow is a whole second, as every time Manager stores.
var recordNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// managerSession returns the session Manager holds after a login at
// created and a last refresh at seen, under the default policy.
func managerSession(created, seen time.Time, ua string) Session {
	s := Session{CreatedAt: created, LastSeenAt: seen, IdleExpiresAt: seen.Add(DefaultIdleTimeout), ExpiresAt: created.Add(DefaultAbsoluteLifetime), UserAgent: ua}
	if s.IdleExpiresAt.After(s.ExpiresAt) {
		s.IdleExpiresAt = s.ExpiresAt
	}
	return s
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	n := recordNow
	tests := []struct {
		name   string
		s      Session
		maxLen int // 0: no bound
	}{
		{"fresh login", managerSession(n, n, "Firefox on Linux"), 5},
		{"seen 90 minutes later", managerSession(n, n.Add(90*time.Minute+7*time.Second), "Chrome on Android"), 6},
		{"seen 6 days later", managerSession(n, n.Add(6*24*time.Hour+13*time.Second), "Go HTTP client"), 7},
		{"idle expiry capped", managerSession(n, n.Add(160*time.Hour+13*time.Second), "Edge on Windows"), 6},
		{"browser only", managerSession(n, n, "curl"), 5},
		{"system only", managerSession(n, n, "Unknown browser on iPadOS"), 5},
		{"no user agent", managerSession(n, n, ""), 5},
		{"product token as text", managerSession(n, n, "PostmanRuntime/7.36.0"), 5 + len("PostmanRuntime/7.36.0")},
		{"code-like text", managerSession(n, n, "Firefox on Plan 9"), 5 + len("Firefox on Plan 9")},
		{"odd durations", Session{CreatedAt: n, LastSeenAt: n.Add(time.Second), IdleExpiresAt: n.Add(91 * time.Second), ExpiresAt: n.Add(400*24*time.Hour + time.Second), UserAgent: "Safari on iOS"}, 0},
		{"everything at once", Session{CreatedAt: n, LastSeenAt: n, IdleExpiresAt: n, ExpiresAt: n}, 0},
		{"zero", Session{CreatedAt: time.Unix(0, 0).UTC(), LastSeenAt: time.Unix(0, 0).UTC(), IdleExpiresAt: time.Unix(0, 0).UTC(), ExpiresAt: time.Unix(0, 0).UTC()}, 0},
		{"anchor at its last second", managerSession(time.Unix(maxSpan-36*3600, 0).UTC(), time.Unix(maxSpan-12*3600, 0).UTC(), "curl"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := encodeRecord(&tt.s)
			if err != nil {
				t.Fatalf("encodeRecord=%v, want nil", err)
			}
			if b[0] != recordVersion {
				t.Errorf("version=%d, want %d", b[0], recordVersion)
			}
			if tt.maxLen > 0 && len(b) > tt.maxLen {
				t.Errorf("len(record)=%d (%x), want at most %d", len(b), b, tt.maxLen)
			}
			// As redisstore hands it back: unix milliseconds.
			expires := time.UnixMilli(tt.s.expires().UnixMilli())
			var got Session
			if err := decodeRecord(b, expires, &got); err != nil {
				t.Fatalf("decodeRecord(%x)=%v, want nil", b, err)
			}
			if !sameSession(tt.s, got) {
				t.Errorf("decodeRecord(encodeRecord(s))=%+v, want %+v", got, tt.s)
			}
		})
	}
}

// TestEncodeRecordRefuses checks that a session no record holds, which
// Manager never makes, is refused rather than written wrong.
func TestEncodeRecordRefuses(t *testing.T) {
	t.Parallel()
	n := recordNow
	tests := []struct {
		name string
		s    Session
	}{
		{"idle expiry after the absolute one", Session{CreatedAt: n, LastSeenAt: n, IdleExpiresAt: n.Add(2 * time.Hour), ExpiresAt: n.Add(time.Hour), UserAgent: "Firefox on Linux"}},
		{"seen before created", Session{CreatedAt: n, LastSeenAt: n.Add(-time.Second), IdleExpiresAt: n.Add(time.Hour), ExpiresAt: n.Add(2 * time.Hour)}},
		{"idle expiry before seen", Session{CreatedAt: n, LastSeenAt: n.Add(time.Hour), IdleExpiresAt: n, ExpiresAt: n.Add(2 * time.Hour)}},
		{"before 1970", managerSession(time.Unix(-1000, 0).UTC(), time.Unix(-1000, 0).UTC(), "curl")},
		{"after 2106", managerSession(time.Unix(1<<32, 0).UTC(), time.Unix(1<<32, 0).UTC(), "curl")},
		{"lifetime over maxSpan", Session{CreatedAt: time.Unix(0, 0).UTC(), LastSeenAt: n, IdleExpiresAt: n, ExpiresAt: time.Unix(maxSpan+1, 0).UTC()}},
		{"zero value", Session{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if b, err := encodeRecord(&tt.s); err != errUnrecordable {
				t.Errorf("encodeRecord(%+v)=%x, %v, want %v", tt.s, b, err, errUnrecordable)
			}
		})
	}
}

// TestRecordSizeOverLifetime checks the size that the memory budget per
// session rests on (docs/operations.md): under the default policy a
// record with a coded user agent stays within 7 bytes whenever Manager
// refreshes it, to its last second.
func TestRecordSizeOverLifetime(t *testing.T) {
	t.Parallel()
	step := refreshAfter(DefaultIdleTimeout) + 1234*time.Millisecond
	for seen := recordNow; seen.Before(recordNow.Add(DefaultAbsoluteLifetime)); seen = seen.Add(step).Truncate(time.Second) {
		s := managerSession(recordNow, seen, "Chrome on macOS")
		if b, err := encodeRecord(&s); err != nil || len(b) > 7 {
			t.Fatalf("record seen %v after login = %x (%d bytes), %v, want at most 7 bytes", seen.Sub(recordNow), b, len(b), err)
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	t.Parallel()
	anchor := recordNow.Add(12 * time.Hour)
	tests := []struct {
		name    string
		b       string // hex
		expires time.Time
	}{
		{"empty", "", anchor},
		{"version 0", "00", anchor},
		{"version 1", "01" + "1800" + "1f", anchor},
		{"another layout", "0180c3cbb00db097ccb00db0bad1b00d80ad95b10d46697265666f78206f6e204c696e7578", anchor},
		{"unknown version", "09", anchor},
		{"without head", "02", anchor},
		{"without seen", "0218", anchor},
		{"without lifetime", "021800", anchor},
		{"without idle", "021800" + "1f", anchor},
		{"truncated idle", "021800" + "1f" + "80", anchor},
		{"seen over lifetime", "0298" + "02" + "00", anchor},
		{"seen over maxSpan", "0298" + "8080808020" + "1f", anchor},
		{"lifetime over maxSpan", "0298" + "00" + "ffffffff7f", anchor},
		{"lifetime varint overflow", "0298" + "00" + "ffffffffffffffffffff01", anchor},
		{"absolute expiry before idle", "021800" + "06" + "32", anchor},
		{"code out of the browser table", "02f8" + "00" + "1f", anchor},
		{"code with trailing bytes", "0298" + "00" + "1f" + "41", anchor},
		{"anchor before 1970", "0298" + "00" + "1f", time.Unix(-1, 0)},
		{"created before 1970", "0298" + "00" + "1f", time.Unix(3600, 0)},
		{"anchor after 2106", "0298" + "00" + "1f", time.Unix(maxSpan+1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := hex.DecodeString(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			var s Session
			if err := decodeRecord(b, tt.expires, &s); err != errBadRecord {
				t.Errorf("decodeRecord(%s)=%v, want %v (session %+v)", tt.b, err, errBadRecord, s)
			}
		})
	}
}

// TestUserAgentCodes checks that every summary summarizeUserAgent makes
// from its tokens is stored as a one-byte code, and that codes decode back.
func TestUserAgentCodes(t *testing.T) {
	t.Parallel()
	browsers, systems := []string{""}, []string{""}
	for _, e := range browserTokens {
		browsers = append(browsers, e[1])
	}
	for _, e := range systemTokens {
		systems = append(systems, e[1])
	}
	for _, b := range browsers {
		for _, o := range systems {
			s := summary(b, o)
			code, ok := uaCodes[s]
			if s == "" {
				if ok {
					t.Errorf("the empty summary has code %d, want none (text)", code)
				}
				continue
			}
			if !ok || code == 0 || code&capped != 0 {
				t.Errorf("summary %q has code %d (%v), want one in 1..127", s, code, ok)
				continue
			}
			if back, ok := uaSummary(code); !ok || back != s {
				t.Errorf("uaSummary(%d)=%q, %v, want %q", code, back, ok, s)
			}
		}
	}
	// Stored codes must never change meaning.
	for code, want := range map[byte]string{1: "Unknown browser on Windows", 8: "Edge", 31: "Firefox on Linux", 39: "Chrome on Linux", 72: "Go HTTP client"} {
		if got, ok := uaSummary(code); !ok || got != want {
			t.Errorf("uaSummary(%d)=%q, %v, want %q", code, got, ok, want)
		}
	}
}

// sameSession reports whether a and b are equal, their times compared
// with Equal.
func sameSession(a, b Session) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && a.Username == b.Username && a.UserAgent == b.UserAgent &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastSeenAt.Equal(b.LastSeenAt) &&
		a.IdleExpiresAt.Equal(b.IdleExpiresAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}
