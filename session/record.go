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

// recordVersion prefixes every encoded session so the format can evolve.
const recordVersion = 1

// encodeRecord packs the parts of s that are not in its store key into a
// few dozen bytes: every live session costs Redis memory, so the format is
// binary (unix seconds as varints, then the user-agent summary).
func encodeRecord(s *Session) []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+len(s.UserAgent))
	b = append(b, recordVersion)
	for _, t := range []time.Time{s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt} {
		b = binary.AppendVarint(b, t.Unix())
	}
	return append(b, s.UserAgent...)
}

var errBadRecord = errors.New("session: malformed session record")

func decodeRecord(b []byte, s *Session) error {
	if len(b) == 0 || b[0] != recordVersion {
		return errBadRecord
	}
	b = b[1:]
	for _, t := range []*time.Time{&s.CreatedAt, &s.LastSeenAt, &s.IdleExpiresAt, &s.ExpiresAt} {
		v, n := binary.Varint(b)
		if n <= 0 {
			return errBadRecord
		}
		*t = time.Unix(v, 0).UTC()
		b = b[n:]
	}
	s.UserAgent = string(b)
	return nil
}
