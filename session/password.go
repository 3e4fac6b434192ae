package session

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id cost parameters.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultPasswordParams follow OWASP's Password Storage Cheat Sheet for
// argon2id (m=19 MiB, t=2, p=1): about 19 MiB and a few tens of
// milliseconds per hash on one core.
var DefaultPasswordParams = PasswordParams{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read from a stored hash. A tenants file or an admin
// call supplies hashes; without bounds one could make every login allocate
// gigabytes.
const (
	maxHashMemory  = 256 * 1024 // KiB
	maxHashTime    = 16
	maxHashThreads = 16
)

// Password length bounds, in bytes. The upper one stops a megabyte password
// from becoming a hashing cost; argon2 has no such limit of its own.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

var b64 = base64.RawStdEncoding

// HashPassword returns the argon2id hash of password as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func HashPassword(password string, p PasswordParams) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("session: hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// phc is a parsed argon2id PHC string.
type phc struct {
	p    PasswordParams
	salt []byte
	key  []byte
}

var errBadHash = errors.New("not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")

func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return phc{}, fmt.Errorf("unsupported argon2 version %q, want v=%d", parts[2], argon2.Version)
	}
	var h phc
	var m, t, p uint64
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 || fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return phc{}, errBadHash
	}
	switch {
	case m < 8*p || m > maxHashMemory:
		return phc{}, fmt.Errorf("argon2id memory m=%d KiB is outside 8·p..%d", m, maxHashMemory)
	case t < 1 || t > maxHashTime:
		return phc{}, fmt.Errorf("argon2id time t=%d is outside 1..%d", t, maxHashTime)
	case p < 1 || p > maxHashThreads:
		return phc{}, fmt.Errorf("argon2id parallelism p=%d is outside 1..%d", p, maxHashThreads)
	}
	var err error
	if h.salt, err = b64.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return phc{}, errors.New("argon2id salt must be 8 to 64 bytes in unpadded base64")
	}
	if h.key, err = b64.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return phc{}, errors.New("argon2id hash must be 16 to 64 bytes in unpadded base64")
	}
	h.p = PasswordParams{Memory: uint32(m), Time: uint32(t), Threads: uint8(p), SaltLen: uint32(len(h.salt)), KeyLen: uint32(len(h.key))}
	return h, nil
}

// CheckPasswordHash reports why hash cannot be used, or nil.
func CheckPasswordHash(hash string) error {
	_, err := parsePHC(hash)
	return err
}

// verifyPassword reports whether password matches hash, comparing in
// constant time. A malformed hash never matches.
func verifyPassword(hash, password string) bool {
	h, err := parsePHC(hash)
	if err != nil {
		return false
	}
	return h.matches(password)
}

func (h *phc) matches(password string) bool {
	key := argon2.IDKey([]byte(password), h.salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// withHashMemory runs f holding memKiB of the hashing budget, waiting at
// most m.hashWait for it. A flood of logins then queues briefly and fails
// with ErrBusy instead of allocating 19 MiB each until the process dies;
// requests that do not hash (me, preflights, logout) never wait here.
func (m *Manager) withHashMemory(ctx context.Context, memKiB uint32, f func()) error {
	w := min(int64(memKiB), m.hashMemKiB)
	wctx, cancel := context.WithTimeout(ctx, m.hashWait)
	defer cancel()
	if err := m.hashMem.Acquire(wctx, w); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ErrBusy
	}
	defer m.hashMem.Release(w)
	f()
	return nil
}

// verify checks password against hash within the hashing budget.
func (m *Manager) verify(ctx context.Context, hash, password string) (bool, error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, nil // validated on save; a corrupt hash never matches
	}
	ok := false
	err = m.withHashMemory(ctx, h.p.Memory, func() { ok = h.matches(password) })
	return ok, err
}

// hash hashes password within the hashing budget.
func (m *Manager) hash(ctx context.Context, password string) (string, error) {
	var (
		out string
		err error
	)
	if werr := m.withHashMemory(ctx, m.params.Memory, func() { out, err = HashPassword(password, m.params) }); werr != nil {
		return "", werr
	}
	return out, err
}
