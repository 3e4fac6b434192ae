package session

import (
	"encoding/binary"
	"errors"
	"time"
)

// Session is one login of one user, as the API shows it.
type Session struct {
	ID            string // public ID: a hash of the secret token
	Tenant        TenantID
	Username      string
	CreatedAt     time.Time
	LastSeenAt    time.Time
	IdleExpiresAt time.Time
	ExpiresAt     time.Time // absolute expiry
	UserAgent     string    // short summary such as "Firefox on Linux"
}

// expires is when the session stops being valid.
func (s *Session) expires() time.Time {
	if s.IdleExpiresAt.Before(s.ExpiresAt) {
		return s.IdleExpiresAt
	}
	return s.ExpiresAt
}

// A session record is the part of a session that is not in its store
// key. Every live session costs Redis memory, a user's only session most
// (see docs/operations.md), so a record is a handful of bytes. It leans
// on the store: store.Session.Expires is the earlier of the idle and
// absolute expiry, which every store keeps and returns, so the record
// holds only what that anchor does not give, as durations, which are
// small and, for the ones a tenant configures, round:
//
//	0x02     recordVersion
//	head     bit 7: the idle expiry is capped at the absolute one (equal);
//	         bits 0-6: the user-agent code (uaCodes), 0 when the summary is
//	         not in the table and follows as text at the end
//	uvarint  seen: LastSeenAt - CreatedAt, in seconds
//	duration lifetime: ExpiresAt - CreatedAt
//	duration idle: IdleExpiresAt - LastSeenAt, only when not capped
//	text     the summary, only with code 0
//
// where a duration is a uvarint of n<<2|unit, the time being n seconds,
// minutes, hours or days (units 0-3). With the anchor E: not capped,
// IdleExpiresAt = E, LastSeenAt = E - idle, CreatedAt = LastSeenAt - seen
// and ExpiresAt = CreatedAt + lifetime; capped, IdleExpiresAt = ExpiresAt
// = E, CreatedAt = E - lifetime and LastSeenAt = CreatedAt + seen. A
// session of the default policy takes 5 to 7 bytes.
//
// A record holds sessions as Manager makes them: CreatedAt <= LastSeenAt
// <= IdleExpiresAt <= ExpiresAt, whole seconds, the anchor within
// 1970-2106 and the spans under maxSpan.

// recordVersion is the first byte of every record, so that a record in
// any other layout is refused rather than misread.
const recordVersion = 2

// maxSpan bounds the spans of a record, in seconds (136 years), and its
// anchor, so that decoding cannot overflow whatever the bytes.
const maxSpan = 1<<32 - 1

// capped is the head bit of a record whose idle expiry equals its
// absolute expiry.
const capped = 0x80

// unitSeconds are the units of a duration.
var unitSeconds = [4]int64{1, 60, 3600, 86400}

var (
	errBadRecord = errors.New("session: malformed session record")
	// errUnrecordable is a session that no record holds: one Manager
	// never makes, or a clock outside 1970-2106.
	errUnrecordable = errors.New("session: session times out of order or out of range for a record")
)

// encodeRecord packs the parts of s that are not in its store key. The
// store must keep s.expires() with it, to the second, and hand it back to
// decodeRecord. It returns errUnrecordable for a session that a record
// cannot hold.
func encodeRecord(s *Session) ([]byte, error) {
	created, seen, idleAt, at := s.CreatedAt.Unix(), s.LastSeenAt.Unix(), s.IdleExpiresAt.Unix(), s.ExpiresAt.Unix()
	if created < 0 || created > seen || seen > idleAt || idleAt > at || idleAt > maxSpan || at-created > maxSpan {
		return nil, errUnrecordable
	}
	code := uaCodes[s.UserAgent] // 0, as text, when not in the table
	head := code
	if idleAt == at {
		head |= capped
	}
	b := make([]byte, 0, 2+3*binary.MaxVarintLen64+len(s.UserAgent))
	b = append(b, recordVersion, head)
	b = binary.AppendUvarint(b, uint64(seen-created))
	b = appendDuration(b, at-created)
	if head&capped == 0 {
		b = appendDuration(b, idleAt-seen)
	}
	if code == 0 {
		b = append(b, s.UserAgent...)
	}
	return b, nil
}

// appendDuration appends d (seconds, 0 <= d <= maxSpan) in the largest
// unit that divides it.
func appendDuration(b []byte, d int64) []byte {
	unit := len(unitSeconds) - 1
	for unit > 0 && d%unitSeconds[unit] != 0 {
		unit--
	}
	return binary.AppendUvarint(b, uint64(d/unitSeconds[unit])<<2|uint64(unit))
}

// decodeRecord fills s from b and expires, the session's expiry as the
// store returned it. It returns errBadRecord, never panics, on any bytes
// that encodeRecord did not write.
func decodeRecord(b []byte, expires time.Time, s *Session) error {
	anchor := expires.Unix()
	if len(b) < 2 || b[0] != recordVersion || anchor < 0 || anchor > maxSpan {
		return errBadRecord
	}
	head := b[1]
	b = b[2:]
	seen, n := binary.Uvarint(b)
	if n <= 0 || seen > maxSpan {
		return errBadRecord
	}
	b = b[n:]
	lifetime, n := readDuration(b)
	if n <= 0 || seen > uint64(lifetime) {
		return errBadRecord
	}
	b = b[n:]
	var created, lastSeen, idleAt, at int64
	if head&capped != 0 {
		at, idleAt = anchor, anchor
		created = at - lifetime
		lastSeen = created + int64(seen)
	} else {
		idle, n := readDuration(b)
		if n <= 0 {
			return errBadRecord
		}
		b = b[n:]
		idleAt = anchor
		lastSeen = idleAt - idle
		created = lastSeen - int64(seen)
		at = created + lifetime
		if at < idleAt {
			return errBadRecord
		}
	}
	if created < 0 {
		return errBadRecord // before 1970, which encodeRecord never writes
	}
	ua := string(b)
	if code := head &^ capped; code != 0 {
		var ok bool
		if ua, ok = uaSummary(code); !ok || len(b) != 0 {
			return errBadRecord
		}
	}
	s.CreatedAt = time.Unix(created, 0).UTC()
	s.LastSeenAt = time.Unix(lastSeen, 0).UTC()
	s.IdleExpiresAt = time.Unix(idleAt, 0).UTC()
	s.ExpiresAt = time.Unix(at, 0).UTC()
	s.UserAgent = ua
	return nil
}

// readDuration reads a duration of a record, returning its
// seconds and the bytes read, or n <= 0 if b does not start with one.
func readDuration(b []byte) (int64, int) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, n
	}
	unit := unitSeconds[v&3]
	if v>>2 > maxSpan/uint64(unit) {
		return 0, -1
	}
	return int64(v>>2) * unit, n
}

// User-agent codes of records: browser index << 3 | system
// index, into the tables below (0: none). They are stored, so the tables
// only ever grow at their ends, and a name past a full table (15
// browsers, 7 systems) is stored as text. summarizeUserAgent's names must
// all be here (TestUserAgentCodes).
var (
	uaBrowsers = [...]string{1: "Edge", "Opera", "Firefox", "Chrome", "Headless Chrome", "Chromium", "Safari", "curl", "Go HTTP client"}
	uaSystems  = [...]string{1: "Windows", "iOS", "iPadOS", "macOS", "Android", "ChromeOS", "Linux"}
	// uaCodes maps every summary with a code to it.
	uaCodes = func() map[string]byte {
		m := map[string]byte{}
		for b := range uaBrowsers {
			for o := range uaSystems {
				if code := byte(b<<3 | o); code != 0 {
					m[summary(uaBrowsers[b], uaSystems[o])] = code
				}
			}
		}
		return m
	}()
)

// uaSummary returns the summary of a non-zero user-agent code, or false
// for a code outside the tables.
func uaSummary(code byte) (string, bool) {
	b, o := int(code>>3), int(code&7)
	if code == 0 || b >= len(uaBrowsers) || o >= len(uaSystems) {
		return "", false
	}
	return summary(uaBrowsers[b], uaSystems[o]), true
}
