package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/store"
)

// A counter (KEYS[1]) is a hash: field "n" holds its failures (absent at
// zero), and one field "r:<id>" per place taken by an attempt in flight.
// The key's TTL is the fixed window, set when the hash is created; Redis
// removes the hash when its last field goes.

// reserveScript takes a place for ARGV[1] under the limit ARGV[2], creating
// the counter with a window of ARGV[3] ms. It returns {1 if the place is
// held, else 0; ms left in the window}.
var reserveScript = redis.NewScript(`
local id, limit, window = 'r:' .. ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then
  if limit < 1 then return {0, 0} end
  redis.call('HSET', KEYS[1], id, 1)
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, window}
end
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], window) ttl = window end
if redis.call('HEXISTS', KEYS[1], id) == 1 then return {1, ttl} end
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or 0)
local places = redis.call('HLEN', KEYS[1])
if n > 0 then places = places - 1 end
if n + places >= limit then return {0, ttl} end
redis.call('HSET', KEYS[1], id, 1)
return {1, ttl}
`)

// settleScript ends the place of ARGV[1], counting a failure if ARGV[2] is
// "1" (go-redis sends true so). The failure is counted before the place
// goes, so that the hash (and its TTL) never disappears in between.
var settleScript = redis.NewScript(`
local id = 'r:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], id) == 0 then return 0 end
if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[1], 'n', 1) end
redis.call('HDEL', KEYS[1], id)
return 1
`)

// Reserve takes a place in a fixed-window counter; see store.Store. One
// script over one key, so it is atomic on every topology.
func (st *Store) Reserve(ctx context.Context, tenant, key, id string, limit int64, window time.Duration) (bool, time.Duration, error) {
	const op = "reserve"
	if err := st.check(ctx, op, tenant); err != nil {
		return false, 0, err
	}
	res, err := reserveScript.Run(ctx, st.client, []string{st.counterKey(tenant, key)}, id, limit, max(window.Milliseconds(), 1)).Int64Slice()
	if err != nil {
		return false, 0, st.wrap(ctx, op, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("redisstore: %s: unexpected reply %v", op, res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}

// Settle ends a place in a fixed-window counter; see store.Store.
func (st *Store) Settle(ctx context.Context, tenant, key, id string, failed bool) error {
	const op = "settle"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	return st.wrap(ctx, op, settleScript.Run(ctx, st.client, []string{st.counterKey(tenant, key)}, id, failed).Err())
}

// ResetCount forgets a counter's failures; see store.Store.
func (st *Store) ResetCount(ctx context.Context, tenant, key string) error {
	const op = "reset count"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	return st.wrap(ctx, op, st.client.HDel(ctx, st.counterKey(tenant, key), "n").Err())
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
		return st.wrap(ctx, op, err)
	}
	return st.wrap(ctx, op, st.client.HSet(ctx, st.adminKey(k.ID), "tenant", k.Tenant, "data", k.Data).Err())
}

// GetAdminKey returns the admin key with that ID, or store.ErrNotFound.
func (st *Store) GetAdminKey(ctx context.Context, id string) (store.AdminKey, error) {
	const op = "get admin key"
	if err := ctx.Err(); err != nil {
		return store.AdminKey{}, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	vals, err := st.client.HMGet(ctx, st.adminKey(id), "tenant", "data").Result()
	if err != nil {
		return store.AdminKey{}, st.wrap(ctx, op, err)
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
		return nil, st.wrap(ctx, op, err)
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
			return st.wrap(ctx, op, err)
		}
	default:
		return nil
	}
	return st.wrap(ctx, op, st.client.SRem(ctx, st.adminIndexKey(tenant), id).Err())
}

// deleteAdminKeys removes every admin key of a tenant.
func (st *Store) deleteAdminKeys(ctx context.Context, tenant string) error {
	ids, err := st.client.SMembers(ctx, st.adminIndexKey(tenant)).Result()
	if err != nil {
		return st.wrap(ctx, "delete admin keys", err)
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
	return st.wrap(ctx, op, err)
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
		return nil, st.wrap(ctx, op, err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}

func (st *Store) counterKey(tenant, key string) string { return st.prefix + "l:" + tenant + ":" + key }
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
	if err != nil {
		return nil, st.wrap(ctx, op, err)
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
		return st.wrap(ctx, op, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	return nil
}

// swapUserScript sets the user's record to ARGV[3] and address to ARGV[4]
// only if they hold ARGV[1] and ARGV[2] (a missing address holding "").
//
// KEYS: user record, address.
var swapUserScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
if ARGV[4] == '' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[4]) end
return 1
`)

// SwapUser replaces the user's record if it still equals old, in one
// script over one slot. A new address is claimed first (and released
// again if the swap fails); the old one is released after.
func (st *Store) SwapUser(ctx context.Context, old, u store.User) error {
	const op = "swap user"
	if err := st.check(ctx, op, u.Tenant); err != nil {
		return err
	}
	if old.Tenant != u.Tenant || old.Name != u.Name {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	fresh := false
	if u.Email != old.Email {
		var err error
		if fresh, err = st.claim(ctx, op, u); err != nil {
			return err
		}
	}
	keys := []string{st.userKey(u.Tenant, u.Name), st.userEmailKey(u.Tenant, u.Name)}
	n, err := swapUserScript.Run(ctx, st.client, keys, old.Data, old.Email, u.Data, u.Email).Int()
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	if n == 0 {
		if fresh {
			if err := st.release(ctx, op, u.Tenant, u.Name, u.Email); err != nil {
				return err
			}
		}
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	if u.Email != old.Email {
		return st.release(ctx, op, u.Tenant, u.Name, old.Email)
	}
	return nil
}
