package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/store"
)

// countScript adds ARGV[1] to the counter KEYS[1]: a positive delta creates
// it with a TTL of ARGV[2] ms (the fixed window), a negative one never does,
// and a value at or below zero removes it. It returns {value, ms left}.
var countScript = redis.NewScript(`
local delta = tonumber(ARGV[1])
local exists = redis.call('EXISTS', KEYS[1]) == 1
if not exists and delta <= 0 then return {0, 0} end
local n = redis.call('INCRBY', KEYS[1], delta)
if not exists then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n <= 0 then redis.call('DEL', KEYS[1]) return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) ttl = tonumber(ARGV[2]) end
return {n, ttl}
`)

// Count adds delta to a fixed-window counter; see store.Store. One script
// over one key, so it is atomic on every topology.
func (st *Store) Count(ctx context.Context, tenant, key string, delta int64, window time.Duration) (int64, time.Duration, error) {
	const op = "count"
	if err := st.check(ctx, op, tenant); err != nil {
		return 0, 0, err
	}
	res, err := countScript.Run(ctx, st.client, []string{st.counterKey(tenant, key)}, delta, max(window.Milliseconds(), 1)).Int64Slice()
	if err != nil {
		return 0, 0, st.fail(ctx, op, err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("redisstore: %s: unexpected reply %v", op, res)
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// ResetCount removes a counter.
func (st *Store) ResetCount(ctx context.Context, tenant, key string) error {
	const op = "reset count"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	if err := st.client.Del(ctx, st.counterKey(tenant, key)).Err(); err != nil {
		return st.fail(ctx, op, err)
	}
	return nil
}

// PutAdminKey adds the key's ID to its tenant's index, then stores the key
// (another slot). Index first: a crash between the two leaves at worst a
// listed ID without a key, which listing skips, never a key that
// DeleteTenant cannot find.
func (st *Store) PutAdminKey(ctx context.Context, k store.AdminKey) error {
	const op = "put admin key"
	if err := st.check(ctx, op, k.Tenant); err != nil {
		return err
	}
	if err := st.client.SAdd(ctx, st.adminIndexKey(k.Tenant), k.ID).Err(); err != nil {
		return st.fail(ctx, op, err)
	}
	if err := st.client.HSet(ctx, st.adminKey(k.ID), "tenant", k.Tenant, "data", k.Data).Err(); err != nil {
		return st.fail(ctx, op, err)
	}
	return nil
}

// GetAdminKey returns the admin key with that ID, or store.ErrNotFound.
func (st *Store) GetAdminKey(ctx context.Context, id string) (store.AdminKey, error) {
	const op = "get admin key"
	if err := ctx.Err(); err != nil {
		return store.AdminKey{}, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	vals, err := st.client.HMGet(ctx, st.adminKey(id), "tenant", "data").Result()
	if err != nil {
		return store.AdminKey{}, st.fail(ctx, op, err)
	}
	tenant, _ := vals[0].(string)
	data, _ := vals[1].(string)
	if tenant == "" {
		return store.AdminKey{}, fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	return store.AdminKey{ID: id, Tenant: tenant, Data: []byte(data)}, nil
}

// ListAdminKeys returns the tenant's admin keys: the index, then each key.
func (st *Store) ListAdminKeys(ctx context.Context, tenant string) ([]store.AdminKey, error) {
	const op = "list admin keys"
	if err := st.check(ctx, op, tenant); err != nil {
		return nil, err
	}
	ids, err := st.client.SMembers(ctx, st.adminIndexKey(tenant)).Result()
	if err != nil {
		return nil, st.fail(ctx, op, err)
	}
	out := make([]store.AdminKey, 0, len(ids))
	for _, id := range ids {
		k, err := st.GetAdminKey(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k.Tenant == tenant {
			out = append(out, k)
		}
	}
	return out, nil
}

// DeleteAdminKey removes the tenant's key with that ID; another tenant's
// key is left alone.
func (st *Store) DeleteAdminKey(ctx context.Context, tenant, id string) error {
	const op = "delete admin key"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	k, err := st.GetAdminKey(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case k.Tenant == tenant:
		if err := st.client.Del(ctx, st.adminKey(id)).Err(); err != nil {
			return st.fail(ctx, op, err)
		}
	default:
		return nil
	}
	if err := st.client.SRem(ctx, st.adminIndexKey(tenant), id).Err(); err != nil {
		return st.fail(ctx, op, err)
	}
	return nil
}

// deleteAdminKeys removes every admin key of a tenant.
func (st *Store) deleteAdminKeys(ctx context.Context, tenant string) error {
	ids, err := st.client.SMembers(ctx, st.adminIndexKey(tenant)).Result()
	if err != nil {
		return st.fail(ctx, "delete admin keys", err)
	}
	for _, id := range ids {
		if err := st.DeleteAdminKey(ctx, tenant, id); err != nil {
			return err
		}
	}
	return nil
}

// AppendAudit pushes an entry and trims the log in one transaction (one
// key, so one slot).
func (st *Store) AppendAudit(ctx context.Context, tenant string, entry []byte) error {
	const op = "append audit"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	_, err := st.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, st.auditKey(tenant), entry)
		p.LTrim(ctx, st.auditKey(tenant), 0, store.MaxAudit-1)
		return nil
	})
	if err != nil {
		return st.fail(ctx, op, err)
	}
	return nil
}

// ListAudit returns up to limit of the newest entries, newest first.
func (st *Store) ListAudit(ctx context.Context, tenant string, limit int) ([][]byte, error) {
	const op = "list audit"
	if err := st.check(ctx, op, tenant); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return [][]byte{}, nil
	}
	vals, err := st.client.LRange(ctx, st.auditKey(tenant), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, st.fail(ctx, op, err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}

func (st *Store) counterKey(tenant, key string) string { return st.prefix + "n:" + tenant + ":" + key }
func (st *Store) adminKey(id string) string            { return st.prefix + "ak:" + id }
func (st *Store) adminIndexKey(tenant string) string   { return st.prefix + "aks:" + tenant }
func (st *Store) auditKey(tenant string) string        { return st.prefix + "audit:" + tenant }
func (st *Store) appliedKey(tenant string) string      { return st.prefix + "applied:" + tenant }

// GetApplied returns the tenant's applied record, or store.ErrNotFound.
func (st *Store) GetApplied(ctx context.Context, tenant string) ([]byte, error) {
	const op = "get applied"
	if err := st.check(ctx, op, tenant); err != nil {
		return nil, err
	}
	data, err := st.client.Get(ctx, st.appliedKey(tenant)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, st.fail(ctx, op, err)
	}
	return data, nil
}

// swapAppliedScript sets KEYS[1] to ARGV[2] only if it holds ARGV[1], a
// missing key holding ""; an empty ARGV[2] deletes it.
var swapAppliedScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`)

// SwapApplied replaces the tenant's applied record if it still equals old,
// in one script over one key, so two replicas cannot both win.
// DeleteTenant leaves the key alone.
func (st *Store) SwapApplied(ctx context.Context, tenant string, old, data []byte) error {
	const op = "swap applied"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	n, err := swapAppliedScript.Run(ctx, st.client, []string{st.appliedKey(tenant)}, old, data).Int()
	if err != nil {
		return st.fail(ctx, op, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	return nil
}

// swapUserScript sets KEYS[1] to ARGV[2] only if it holds ARGV[1].
var swapUserScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// SwapUser replaces the user's record if it still equals old, in one
// script over one key.
func (st *Store) SwapUser(ctx context.Context, old, u store.User) error {
	const op = "swap user"
	if err := st.check(ctx, op, u.Tenant); err != nil {
		return err
	}
	if old.Tenant != u.Tenant || old.Name != u.Name {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	n, err := swapUserScript.Run(ctx, st.client, []string{st.userKey(u.Tenant, u.Name)}, old.Data, u.Data).Int()
	if err != nil {
		return st.fail(ctx, op, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	return nil
}
