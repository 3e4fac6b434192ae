package redisstore

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/store"
)

// The tenants hash (P tenants) has two companions, which TenantsSince
// reads: P tenants:rev{P tenants}, a hash holding the epoch and the count
// n of changes, and P tenants:log{P tenants}, a sorted set of tenant IDs
// scored by the revision of their latest put or deletion. Their hash tag
// is the tenants hash's own name, which puts all three in its Redis
// Cluster slot, so that one script changes a tenant and its revision
// together and TenantsSince reads a consistent state.

// changeTenantScript sets tenant ARGV[1] to ARGV[3] or, without ARGV[3],
// removes it, and records a revision, creating the epoch (ARGV[2]) if
// there is none. Removing a missing tenant changes nothing and records no
// revision.
var changeTenantScript = redis.NewScript(`
if #ARGV == 3 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
elseif redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSETNX', KEYS[2], 'epoch', ARGV[2])
local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('ZADD', KEYS[3], n, ARGV[1])
return n
`)

// tenantsSinceScript answers TenantsSince for the revision (ARGV[1],
// ARGV[2]) with {epoch, n, all, flat}: with all = 1, flat is HGETALL of
// the tenants; otherwise it alternates the IDs changed after ARGV[2] and
// their configuration, false (a nil reply) for a deleted one. A missing
// epoch is created (ARGV[3]), so that the answer's revision can be asked
// about next time.
var tenantsSinceScript = redis.NewScript(`
redis.call('HSETNX', KEYS[2], 'epoch', ARGV[3])
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')
local since = tonumber(ARGV[2])
if epoch ~= ARGV[1] or since > n then
  return {epoch, n, 1, redis.call('HGETALL', KEYS[1])}
end
local out = {}
if since < n then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[2], '+inf')) do
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', KEYS[1], id)
  end
end
return {epoch, n, 0, out}
`)

func (st *Store) tenantKeys() []string {
	h := st.tenantsKey()
	return []string{h, h + ":rev{" + h + "}", h + ":log{" + h + "}"}
}

// changeTenant sets tenant id to data or, with no data, removes it, then
// publishes the change. Not pipelined: on Cluster the two may go to
// different nodes, and subscribers must not reload before the write is
// done.
func (st *Store) changeTenant(ctx context.Context, op, id string, data ...any) error {
	args := append([]any{id, rand.Text()}, data...)
	if err := changeTenantScript.Run(ctx, st.client, st.tenantKeys(), args...).Err(); err != nil {
		return st.wrap(ctx, op, err)
	}
	return st.wrap(ctx, op, st.client.Publish(ctx, st.changesKey(), id).Err())
}

// PutTenant creates or replaces a tenant's configuration, with a new
// revision in the same script (see TenantsSince), and then publishes a
// change to every replica.
func (st *Store) PutTenant(ctx context.Context, id string, data []byte) error {
	const op = "put tenant"
	if err := st.check(ctx, op, id); err != nil {
		return err
	}
	return st.changeTenant(ctx, op, id, data)
}

// DeleteTenant removes the tenant's configuration (with a new revision in
// the same script), publishes the change, then deletes the tenant's admin
// keys, users and their sessions, then its addresses and tokens, in
// batches. If it fails part way, calling it again finishes the job.
func (st *Store) DeleteTenant(ctx context.Context, id string) error {
	const op = "delete tenant"
	if err := st.check(ctx, op, id); err != nil {
		return err
	}
	if err := st.changeTenant(ctx, op, id); err != nil {
		return err
	}
	if err := st.client.Publish(ctx, st.invalidationsKey(), invalidation(id, "")).Err(); err != nil {
		return st.wrap(ctx, op, err)
	}
	if err := st.deleteAdminKeys(ctx, id); err != nil {
		return err // already wrapped by DeleteAdminKey
	}
	// Until the index is empty rather than one SMEMBERS and a DEL of the
	// index: a user added meanwhile must not be left out of the index.
	// The set key vanishes with its last member.
	index := st.indexKey(id)
	for {
		names, err := st.client.SRandMemberN(ctx, index, deleteBatch).Result()
		if err != nil {
			return st.wrap(ctx, op, err)
		}
		if len(names) == 0 {
			break
		}
		// What they held goes below, with every other address and token.
		if _, _, err := st.deleteUsers(ctx, id, names); err != nil {
			return st.wrap(ctx, op, err)
		}
	}
	return st.wrap(ctx, op, st.deleteTenantAccounts(ctx, id))
}

// GetTenant returns one tenant's configuration (one HGET), or
// store.ErrNotFound.
func (st *Store) GetTenant(ctx context.Context, id string) ([]byte, error) {
	const op = "get tenant"
	if err := st.check(ctx, op, id); err != nil {
		return nil, err
	}
	data, err := st.client.HGet(ctx, st.tenantsKey(), id).Bytes()
	if err != nil {
		return nil, st.wrap(ctx, op, err)
	}
	return data, nil
}

// TenantsSince returns the tenants changed after since, in one script:
// two HGETs when nothing changed, a ZRANGEBYSCORE and one HGET per change
// otherwise; see store.Store.
func (st *Store) TenantsSince(ctx context.Context, since store.TenantRevision) (store.TenantChanges, error) {
	const op = "tenants since"
	if err := ctx.Err(); err != nil {
		return store.TenantChanges{}, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	res, err := tenantsSinceScript.Run(ctx, st.client, st.tenantKeys(), since.Epoch, since.N, rand.Text()).Slice()
	if err != nil {
		return store.TenantChanges{}, st.wrap(ctx, op, err)
	}
	bad := fmt.Errorf("redisstore: %s: unexpected reply", op)
	if len(res) != 4 {
		return store.TenantChanges{}, bad
	}
	epoch, ok1 := res[0].(string)
	n, ok2 := res[1].(int64)
	all, ok3 := res[2].(int64)
	flat, ok4 := res[3].([]any)
	if !ok1 || !ok2 || !ok3 || !ok4 || len(flat)%2 != 0 {
		return store.TenantChanges{}, bad
	}
	out := store.TenantChanges{Rev: store.TenantRevision{Epoch: epoch, N: n}, All: all == 1, Put: make(map[string][]byte, len(flat)/2)}
	for i := 0; i < len(flat); i += 2 {
		id, ok := flat[i].(string)
		if !ok {
			return store.TenantChanges{}, bad
		}
		switch data := flat[i+1].(type) {
		case nil:
			out.Deleted = append(out.Deleted, id)
		case string:
			out.Put[id] = []byte(data)
		default:
			return store.TenantChanges{}, bad
		}
	}
	return out, nil
}
