package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// AdminKey is a tenant admin key: a bearer secret that manages one tenant's
// origins, cookie policy, users and sessions, and nothing else. The secret
// is shown once, at creation; the store keeps its SHA-256 (the ID), which is
// enough to find it and useless for presenting it.
type AdminKey struct {
	ID        string
	Tenant    TenantID
	Name      string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// adminKeyPrefix marks Latchkey admin keys, so that secret scanners and
// people can tell one from other tokens.
const adminKeyPrefix = "lk_admin_"

// maxKeySecretLen bounds a presented admin key before it is hashed: ours
// are 52 bytes, and a longer one cannot be ours however it was made.
const maxKeySecretLen = 200

// MaxKeyNameLen bounds an admin key's name, in bytes.
const MaxKeyNameLen = 100

type adminKeyRecord struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func adminKeyID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Expired reports whether the key has expired at now.
func (k *AdminKey) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// CreateAdminKey makes a new admin key for tenant t and returns it with its
// secret, which is not stored and cannot be shown again.
func (m *Manager) CreateAdminKey(ctx context.Context, t TenantID, name string, expiresAt time.Time) (AdminKey, string, error) {
	ps := &problems{tenant: string(t)}
	now := m.now().UTC().Truncate(time.Second)
	switch {
	case strings.TrimSpace(name) == "":
		ps.add("name", "is required: say who or what uses the key")
	case len(name) > MaxKeyNameLen || !validText(name):
		ps.add("name", "must be at most %d bytes of text without control characters", MaxKeyNameLen)
	}
	if !expiresAt.IsZero() && !expiresAt.After(now) {
		ps.add("expires_at", "must be in the future")
	}
	if err := ps.err(); err != nil {
		return AdminKey{}, "", err
	}
	secret := adminKeyPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	k := AdminKey{ID: adminKeyID(secret), Tenant: t, Name: name, CreatedAt: now, ExpiresAt: expiresAt.UTC().Truncate(time.Second)}
	data, _ := json.Marshal(adminKeyRecord{Name: k.Name, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt})
	if err := m.st.PutAdminKey(ctx, store.AdminKey{ID: k.ID, Tenant: string(t), Data: data}); err != nil {
		return AdminKey{}, "", err
	}
	return k, secret, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

func decodeAdminKey(sk store.AdminKey) (AdminKey, error) {
	var r adminKeyRecord
	if err := json.Unmarshal(sk.Data, &r); err != nil {
		return AdminKey{}, fmt.Errorf("session: decode admin key: %w", err)
	}
	return AdminKey{ID: sk.ID, Tenant: TenantID(sk.Tenant), Name: r.Name, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}, nil
}

// AdminKeyFor returns the live admin key whose secret this is, or
// ErrUnauthenticated. The lookup is by hash, so its timing says nothing
// about the secret.
func (m *Manager) AdminKeyFor(ctx context.Context, secret string) (AdminKey, error) {
	if !strings.HasPrefix(secret, adminKeyPrefix) || len(secret) > maxKeySecretLen {
		return AdminKey{}, ErrUnauthenticated
	}
	sk, err := m.st.GetAdminKey(ctx, adminKeyID(secret))
	if errors.Is(err, store.ErrNotFound) {
		return AdminKey{}, ErrUnauthenticated
	}
	if err != nil {
		return AdminKey{}, err
	}
	k, err := decodeAdminKey(sk)
	if err != nil || k.Expired(m.now()) {
		return AdminKey{}, ErrUnauthenticated
	}
	return k, nil
}

// ListAdminKeys returns tenant t's admin keys, oldest first, expired ones
// included (marked by ExpiresAt) so that they can be cleaned up.
func (m *Manager) ListAdminKeys(ctx context.Context, t TenantID) ([]AdminKey, error) {
	sks, err := m.st.ListAdminKeys(ctx, string(t))
	if err != nil {
		return nil, err
	}
	out := decodeEach(ctx, m.log, "unreadable admin key", t, sks, decodeAdminKey)
	slices.SortFunc(out, func(a, b AdminKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteAdminKey revokes one of tenant t's admin keys. Revoking a missing
// key is not an error.
func (m *Manager) DeleteAdminKey(ctx context.Context, t TenantID, id string) error {
	return m.st.DeleteAdminKey(ctx, string(t), id)
}

// AuditEntry is one administrative change: who, what, when, and for
// configuration the value before and after. Entries never hold secrets:
// passwords, hashes and key secrets are recorded as the fact of a change.
type AuditEntry struct {
	Time   time.Time       `json:"time"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target,omitempty"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// Audit records e in tenant t's audit log, stamping its time.
func (m *Manager) Audit(ctx context.Context, t TenantID, e AuditEntry) error {
	e.Time = m.now().UTC()
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("session: encode audit entry: %w", err)
	}
	return m.st.AppendAudit(ctx, string(t), data)
}

// ListAudit returns up to limit of tenant t's newest audit entries.
func (m *Manager) ListAudit(ctx context.Context, t TenantID, limit int) ([]AuditEntry, error) {
	raw, err := m.st.ListAudit(ctx, string(t), limit)
	if err != nil {
		return nil, err
	}
	return decodeEach(ctx, m.log, "unreadable audit entry", t, raw, func(r []byte) (AuditEntry, error) {
		var e AuditEntry
		err := json.Unmarshal(r, &e)
		return e, err
	}), nil
}

// MaxAudit is how many entries a tenant's audit log keeps.
const MaxAudit = store.MaxAudit
