package session

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
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
		name        string
		s           Session
		wantVersion byte
		maxLen      int // 0: no bound
	}{
		{"fresh login", managerSession(n, n, "Firefox on Linux"), recordV2, 5},
		{"seen 90 minutes later", managerSession(n, n.Add(90*time.Minute+7*time.Second), "Chrome on Android"), recordV2, 6},
		{"seen 6 days later", managerSession(n, n.Add(6*24*time.Hour+13*time.Second), "Go HTTP client"), recordV2, 7},
		{"idle expiry capped", managerSession(n, n.Add(160*time.Hour+13*time.Second), "Edge on Windows"), recordV2, 6},
		{"browser only", managerSession(n, n, "curl"), recordV2, 5},
		{"system only", managerSession(n, n, "Unknown browser on iPadOS"), recordV2, 5},
		{"no user agent", managerSession(n, n, ""), recordV2, 5},
		{"product token as text", managerSession(n, n, "PostmanRuntime/7.36.0"), recordV2, 5 + len("PostmanRuntime/7.36.0")},
		{"code-like text", managerSession(n, n, "Firefox on Plan 9"), recordV2, 5 + len("Firefox on Plan 9")},
		{"odd durations", Session{CreatedAt: n, LastSeenAt: n.Add(time.Second), IdleExpiresAt: n.Add(91 * time.Second), ExpiresAt: n.Add(400*24*time.Hour + time.Second), UserAgent: "Safari on iOS"}, recordV2, 0},
		{"everything at once", Session{CreatedAt: n, LastSeenAt: n, IdleExpiresAt: n, ExpiresAt: n}, recordV2, 0},
		// Not what Manager makes: written as version 1, which holds anything.
		{"idle expiry after the absolute one", Session{CreatedAt: n, LastSeenAt: n, IdleExpiresAt: n.Add(2 * time.Hour), ExpiresAt: n.Add(time.Hour), UserAgent: "Firefox on Linux"}, recordV1, 0},
		{"seen before created", Session{CreatedAt: n, LastSeenAt: n.Add(-time.Second), IdleExpiresAt: n.Add(time.Hour), ExpiresAt: n.Add(2 * time.Hour)}, recordV1, 0},
		{"before 1970", managerSession(time.Unix(-1000, 0).UTC(), time.Unix(-1000, 0).UTC(), "curl"), recordV1, 0},
		{"after 2106", managerSession(time.Unix(1<<32, 0).UTC(), time.Unix(1<<32, 0).UTC(), "curl"), recordV1, 0},
		{"lifetime over maxSpan", Session{CreatedAt: time.Unix(0, 0).UTC(), LastSeenAt: n, IdleExpiresAt: n, ExpiresAt: time.Unix(maxSpan+1, 0).UTC()}, recordV1, 0},
		{"zero", Session{CreatedAt: time.Unix(0, 0).UTC(), LastSeenAt: time.Unix(0, 0).UTC(), IdleExpiresAt: time.Unix(0, 0).UTC(), ExpiresAt: time.Unix(0, 0).UTC()}, recordV2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := encodeRecord(&tt.s)
			if b[0] != tt.wantVersion {
				t.Errorf("version=%d, want %d", b[0], tt.wantVersion)
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

// TestRecordSizeOverLifetime checks the size that the memory budget per
// session rests on (docs/operations.md): under the default policy a
// record with a coded user agent stays within 7 bytes whenever Manager
// refreshes it, to its last second.
func TestRecordSizeOverLifetime(t *testing.T) {
	t.Parallel()
	step := refreshAfter(DefaultIdleTimeout) + 1234*time.Millisecond
	for seen := recordNow; seen.Before(recordNow.Add(DefaultAbsoluteLifetime)); seen = seen.Add(step).Truncate(time.Second) {
		s := managerSession(recordNow, seen, "Chrome on macOS")
		if b := encodeRecord(&s); b[0] != recordV2 || len(b) > 7 {
			t.Fatalf("record seen %v after login = %x (%d bytes), want version 2 in at most 7", seen.Sub(recordNow), b, len(b))
		}
	}
}

// TestRecordVersion1StillReads decodes a record as the previous release
// wrote it (version 1), byte for byte: sessions in Redis from before an
// upgrade must keep working.
func TestRecordVersion1StillReads(t *testing.T) {
	t.Parallel()
	b, err := hex.DecodeString("0180c3cbb00db097ccb00db0bad1b00d80ad95b10d46697265666f78206f6e204c696e7578")
	if err != nil {
		t.Fatal(err)
	}
	want := Session{
		CreatedAt:     recordNow,
		LastSeenAt:    recordNow.Add(90 * time.Minute),
		IdleExpiresAt: recordNow.Add(90*time.Minute + 12*time.Hour),
		ExpiresAt:     recordNow.Add(168 * time.Hour),
		UserAgent:     "Firefox on Linux",
	}
	var got Session
	// The anchor is not used by version 1: any value reads the same.
	for _, expires := range []time.Time{want.expires(), {}, time.UnixMilli(1)} {
		if err := decodeRecord(b, expires, &got); err != nil {
			t.Fatalf("decodeRecord(v1, %v)=%v, want nil", expires, err)
		}
		if !sameSession(want, got) {
			t.Errorf("decodeRecord(v1)=%+v, want %+v", got, want)
		}
	}
	if v1 := encodeRecordV1(&want); hex.EncodeToString(v1) != hex.EncodeToString(b) {
		t.Errorf("encodeRecordV1=%x, want the previous release's %x", v1, b)
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
		{"unknown version", "09", anchor},
		{"version 0", "00", anchor},
		{"v1 without times", "01", anchor},
		{"v1 truncated varint", "0180", anchor},
		{"v1 three times", "01020202", anchor},
		{"v2 without head", "02", anchor},
		{"v2 without seen", "0218", anchor},
		{"v2 without lifetime", "021800", anchor},
		{"v2 without idle", "021800" + "1f", anchor},
		{"v2 truncated idle", "021800" + "1f" + "80", anchor},
		{"v2 seen over lifetime", "0298" + "02" + "00", anchor},
		{"v2 seen over maxSpan", "0298" + "8080808020" + "1f", anchor},
		{"v2 lifetime over maxSpan", "0298" + "00" + "ffffffff7f", anchor},
		{"v2 lifetime varint overflow", "0298" + "00" + "ffffffffffffffffffff01", anchor},
		{"v2 absolute expiry before idle", "021800" + "06" + "32", anchor},
		{"v2 code out of the browser table", "02f8" + "00" + "1f", anchor},
		{"v2 code with trailing bytes", "0298" + "00" + "1f" + "41", anchor},
		{"v2 anchor before 1970", "0298" + "00" + "1f", time.Unix(-1, 0)},
		{"v2 anchor after 2106", "0298" + "00" + "1f", time.Unix(maxSpan+1, 0)},
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

// TestLoadServesVersion1Records stores a session as the previous release
// did and checks that Manager serves and lists it, then rewrites it in
// the current format on its next refresh.
func TestLoadServesVersion1Records(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, v := f.login(t, f.m)
	ctx := t.Context()
	old := store.Session{Tenant: "acme", User: "alice", ID: s.ID, Data: encodeRecordV1(&s), Expires: s.expires()}
	if err := f.st.UpdateSession(ctx, old); err != nil {
		t.Fatalf("UpdateSession(v1)=%v, want nil", err)
	}
	list, err := f.m.Sessions(ctx, f.t, "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("Sessions=%v, %v, want one session", list, err)
	}
	if !sameSession(s, list[0]) {
		t.Errorf("Sessions over a version 1 record=%+v, want %+v", list[0], s)
	}
	got, err := f.m.Load(ctx, f.t, []string{v})
	if err != nil {
		t.Fatalf("Load=%v, want nil", err)
	}
	if !sameSession(s, got) {
		t.Errorf("Load over a version 1 record=%+v, want %+v", got, s)
	}

	f.clock.Advance(refreshAfter(time.Hour) + time.Second)
	got, err = f.m.Load(ctx, f.t, []string{v})
	if err != nil {
		t.Fatalf("Load after refreshAfter=%v, want nil", err)
	}
	rec, err := f.st.GetSession(ctx, "acme", "alice", s.ID)
	if err != nil {
		t.Fatalf("GetSession=%v, want nil", err)
	}
	if rec.Data[0] != recordV2 {
		t.Errorf("record after a refresh has version %d, want %d", rec.Data[0], recordV2)
	}
	var back Session
	if err := decodeRecord(rec.Data, rec.Expires, &back); err != nil {
		t.Fatalf("decodeRecord(refreshed)=%v, want nil", err)
	}
	back.ID, back.Tenant, back.Username = got.ID, got.Tenant, got.Username
	if !sameSession(got, back) {
		t.Errorf("refreshed record=%+v, want %+v", back, got)
	}
}

// sameSession reports whether a and b are equal, their times compared
// with Equal.
func sameSession(a, b Session) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && a.Username == b.Username && a.UserAgent == b.UserAgent &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastSeenAt.Equal(b.LastSeenAt) &&
		a.IdleExpiresAt.Equal(b.IdleExpiresAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}
