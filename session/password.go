package session

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

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

// Bounds on the parameters of any hash, whatever the Manager: a tenants
// file or an admin call supplies hashes, and without bounds one could make
// every check of it allocate gigabytes or run for seconds. A Manager also
// refuses a hash its hashing budget cannot hold (Manager.CheckPasswordHash).
const (
	maxHashMemory = 256 * 1024 // KiB
	maxHashTime   = 16
	// maxHashThreads is RFC 9106's recommended parallelism. Lanes add no
	// work, but each runs on a goroutine of its own: more would let one
	// check take more cores than a replica has.
	maxHashThreads = 4
	// maxHashWork bounds memory × passes (KiB), the CPU time of one check,
	// at eight times DefaultPasswordParams' (19456 KiB × 2): m=64 MiB with
	// t=3 or 128 MiB with t=2 pass, 256 MiB with t=2 does not.
	maxHashWork = 8 * 19456 * 2
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
	if err := checkCostBounds(m, t, p); err != nil {
		return phc{}, err
	}
	var err error
	if h.salt, err = b64.Strict().DecodeString(parts[4]); err != nil || !saltLenOK(len(h.salt)) {
		return phc{}, errors.New("argon2id salt must be 8 to 64 bytes in unpadded base64")
	}
	if h.key, err = b64.Strict().DecodeString(parts[5]); err != nil || !keyLenOK(len(h.key)) {
		return phc{}, errors.New("argon2id hash must be 16 to 64 bytes in unpadded base64")
	}
	h.p = PasswordParams{Memory: uint32(m), Time: uint32(t), Threads: uint8(p), SaltLen: uint32(len(h.salt)), KeyLen: uint32(len(h.key))}
	return h, nil
}

// checkCostBounds reports why argon2id parameters m (KiB), t and p are
// beyond the bounds every Manager keeps, or nil. It is the one owner of
// those bounds: parsePHC applies it to stored hashes, validate to the
// parameters a Manager hashes with.
func checkCostBounds(m, t, p uint64) error {
	switch {
	case m < 8*p || m > maxHashMemory:
		return fmt.Errorf("argon2id memory m=%d KiB is outside 8·p..%d", m, maxHashMemory)
	case t < 1 || t > maxHashTime:
		return fmt.Errorf("argon2id time t=%d is outside 1..%d", t, maxHashTime)
	case p < 1 || p > maxHashThreads:
		return fmt.Errorf("argon2id parallelism p=%d is outside 1..%d", p, maxHashThreads)
	case m*t > maxHashWork:
		return fmt.Errorf("argon2id cost m·t=%d KiB·passes is over %d, eight times the default's: lower m or t", m*t, maxHashWork)
	}
	return nil
}

// saltLenOK and keyLenOK bound the salt and the derived key, in bytes.
func saltLenOK(n int) bool { return n >= 8 && n <= 64 }
func keyLenOK(n int) bool  { return n >= 16 && n <= 64 }

// validate reports why a Manager cannot hash with p, or nil: the same
// bounds a stored hash must keep, so that every hash a Manager makes can
// be stored and checked again.
func (p PasswordParams) validate() error {
	if err := checkCostBounds(uint64(p.Memory), uint64(p.Time), uint64(p.Threads)); err != nil {
		return err
	}
	if !saltLenOK(int(p.SaltLen)) {
		return fmt.Errorf("argon2id salt length %d is outside 8..64 bytes", p.SaltLen)
	}
	if !keyLenOK(int(p.KeyLen)) {
		return fmt.Errorf("argon2id key length %d is outside 16..64 bytes", p.KeyLen)
	}
	return nil
}

// CheckPasswordHash reports why hash cannot be used by any Manager, or nil:
// it is not an argon2id PHC string, or its cost is beyond the bounds every
// Manager keeps. Manager.CheckPasswordHash also checks it against that
// Manager's hashing budget.
func CheckPasswordHash(hash string) error {
	_, err := parsePHC(hash)
	return err
}

// CheckPasswordHash reports why hash cannot be stored for a user of m, or
// nil: the package-level checks, and the memory one check of it takes
// must fit in m's hashing budget. A hash that did not could only be
// checked by allocating beyond the budget, at every other tenant's
// expense.
func (m *Manager) CheckPasswordHash(hash string) error {
	h, err := parsePHC(hash)
	if err != nil {
		return err
	}
	return m.checkCost(h.p)
}

// CheckTenantsFile reports, as a *ValidationError, every problem of f that
// only m can see: password hashes its hashing budget cannot hold. Apply
// calls it before changing anything; ParseTenantsFile checks the rest.
func (m *Manager) CheckTenantsFile(f *TenantsFile) error {
	var ps []Problem
	for _, spec := range f.Tenants {
		for j, u := range spec.Users {
			if err := m.CheckPasswordHash(u.PasswordHash); err != nil {
				ps = append(ps, Problem{Tenant: string(spec.ID), Field: fmt.Sprintf("users[%d].password_hash", j),
					Message: err.Error() + "; make one with `latchkey hash-password`"})
			}
		}
	}
	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}

func (m *Manager) checkCost(p PasswordParams) error {
	if w := p.memKiB(); w > m.hashMemKiB {
		return fmt.Errorf("argon2id memory m=%d KiB (%d KiB allocated) is over the hashing budget of %d KiB (LATCHKEY_HASH_MEMORY_MIB): lower m", p.Memory, w, m.hashMemKiB)
	}
	return nil
}

// memKiB is the memory argon2.IDKey allocates for a hash of cost p, in KiB:
// Memory rounded down to a whole number of 4·Threads blocks of 1 KiB, and
// at least 8·Threads blocks (golang.org/x/crypto/argon2, deriveKey). The
// hashing budget reserves exactly this (TestHashBudgetReservesAllocation).
func (p PasswordParams) memKiB() int64 {
	lanes := 4 * uint64(max(p.Threads, 1))
	return int64(max(uint64(p.Memory)/lanes*lanes, 2*lanes))
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

// withHashMemory runs f holding kib of the hashing budget, waiting until
// waitUntil at most. A flood of logins then queues briefly and fails with
// ErrBusy instead of allocating 19 MiB each until the process dies;
// requests that do not hash (me, preflights, logout) never wait here.
// kib never exceeds the budget: every hash computed has passed checkCost.
func (m *Manager) withHashMemory(ctx context.Context, waitUntil time.Time, kib int64, f func()) error {
	wctx, cancel := context.WithDeadline(ctx, waitUntil)
	defer cancel()
	if err := m.hashMem.Acquire(wctx, kib); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ErrBusy
	}
	defer m.hashMem.Release(kib)
	f()
	return nil
}

// hashToCheck returns the hash a login checks a password against: the
// stored one, or the dummy hash when there is none, or it is corrupt or
// costlier than the budget holds (stored by an older release, or before
// the budget was lowered). Every failure then takes the time an unknown
// user's does, and no check ever allocates beyond the budget. real
// reports whether it is the stored hash, and why says why it is not.
func (m *Manager) hashToCheck(stored string, found bool) (h *phc, real bool, why error) {
	if !found {
		return &m.dummy, false, nil
	}
	p, err := parsePHC(stored)
	if err == nil {
		err = m.checkCost(p.p)
	}
	if err != nil {
		return &m.dummy, false, err
	}
	return &p, true, nil
}

// verify checks password against the stored hash (see hashToCheck) within
// the hashing budget. It reports false for a stored hash it cannot check,
// logging why without the hash or the user.
func (m *Manager) verify(ctx context.Context, t TenantID, waitUntil time.Time, stored string, found bool, password string) (bool, error) {
	h, real, why := m.hashToCheck(stored, found)
	if why != nil {
		m.log.ErrorContext(ctx, "a stored password hash cannot be checked; set the user's password again", "tenant", t, "err", why)
	}
	ok := false
	err := m.withHashMemory(ctx, waitUntil, h.p.memKiB(), func() {
		if m.onCheck != nil {
			m.onCheck(ctx)
		}
		ok = h.matches(password)
	})
	return ok && real, err
}

// hash hashes password within the hashing budget.
func (m *Manager) hash(ctx context.Context, password string) (string, error) {
	var (
		out string
		err error
	)
	if werr := m.withHashMemory(ctx, time.Now().Add(m.hashWait), m.params.memKiB(), func() { out, err = HashPassword(password, m.params) }); werr != nil {
		return "", werr
	}
	return out, err
}
