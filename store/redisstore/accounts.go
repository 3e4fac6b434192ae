package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/store"
)

// Addresses and tokens; see the package documentation for their keys.
//
// An address is claimed in its own key (P e:T:<email>, value "<ms> <user>",
// the claim time and the holder) before the holder's record names it (P
// ue:{T:U}, in the user's slot), and released after the record stops
// naming it. The claim gives uniqueness across slots; the record is the
// truth: GetUserByEmail believes a claim only while the holder's record
// still names the address, so a claim left by a crash is harmless, and
// another user takes it over once it is older than claimLease.

// claimLease is how long a claim protects an address that its holder's
// record does not name (yet): the time a writer may take between claiming
// an address and writing the record. A writer stalled for longer may lose
// the address to another user, who then shares it.
const claimLease = time.Minute

// claimScript claims KEYS[1] with the value ARGV[1] for user ARGV[2]: if
// the key is missing, or holds exactly ARGV[3] (a stale claim the caller
// has checked; "" for none). It returns {1} when it claimed, {0} when
// ARGV[2] holds the claim already, and {2, value} when another does.
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp and string.sub(cur, sp + 1) == ARGV[2] then return {0} end
  if ARGV[3] == '' or cur ~= ARGV[3] then return {2, cur} end
end
redis.call('SET', KEYS[1], ARGV[1])
return {1}
`)

// releaseScript deletes the claim KEYS[1] if user ARGV[1] holds it.
var releaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local sp = string.find(cur, ' ', 1, true)
if sp and string.sub(cur, sp + 1) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// createUserScript writes a user only if its record does not exist, and
// drops whatever an earlier user of the name left: sessions and token
// pointers (whose IDs it returns, for the caller to delete the tokens).
//
// KEYS: user record, sessions, address, token pointers. ARGV: Data,
// address ("" for none), invalidation channel and message. Returns false
// if the user exists, else the token IDs.
var createUserScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local ids = redis.call('HVALS', KEYS[4])
redis.call('DEL', KEYS[4])
if redis.call('DEL', KEYS[2]) == 1 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] == '' then redis.call('DEL', KEYS[3]) else redis.call('SET', KEYS[3], ARGV[2]) end
return ids
`)

// putPointerScript makes ARGV[2] the user's token of kind ARGV[1] and
// returns the one it replaces ("" for none). The hash is kept like a
// sessions hash, by putSession: it lives until the latest expiry of its
// tokens, and a token expired already only ends the one it replaces.
//
// KEYS: token pointers. ARGV: kind, token ID, expiry, now (unix ms).
var putPointerScript = redis.NewScript(putSession + `
local old = redis.call('HGET', KEYS[1], ARGV[1])
putSession(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
return old or ''
`)

// takeTokenScript reads and deletes a token in one step, so that of
// concurrent takes exactly one gets it. KEYS: token. Returns {user, kind,
// data, exp}, or false if the token is missing.
var takeTokenScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'user', 'kind', 'data', 'exp')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
return v
`)

// takePointerScript removes the pointer of kind ARGV[1] if it names token
// ARGV[2], and reports whether it did: a token is valid only while its
// user's pointer names it.
var takePointerScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// deletePointersScript deletes a user's token pointers and returns the
// token IDs they held.
var deletePointersScript = redis.NewScript(`
local ids = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
return ids
`)

// GetUserByEmail reads the address's claim, then the holder's record and
// address (one MGET, one slot), and returns the holder only if its record
// still names the address.
func (st *Store) GetUserByEmail(ctx context.Context, tenant, email string) (store.User, error) {
	const op = "get user by email"
	if err := st.check(ctx, op, tenant); err != nil {
		return store.User{}, err
	}
	notFound := fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	if email == "" {
		return store.User{}, notFound
	}
	v, err := st.client.Get(ctx, st.claimKey(tenant, email)).Result()
	if err != nil {
		return store.User{}, st.wrap(ctx, op, err)
	}
	_, name, ok := parseClaim(v)
	if !ok {
		return store.User{}, notFound
	}
	u, err := st.getUser(ctx, op, tenant, name)
	if err != nil {
		return store.User{}, err
	}
	if u.Email != email {
		return store.User{}, notFound
	}
	return u, nil
}

// CreateUser claims the address, then writes the record with a script that
// refuses an existing user, releasing the claim if it made it and the
// script refused. Of concurrent creates for one address, the claim lets
// one through; for one name, the script does.
func (st *Store) CreateUser(ctx context.Context, u store.User) error {
	const op = "create user"
	if err := st.check(ctx, op, u.Tenant); err != nil {
		return err
	}
	fresh, err := st.claim(ctx, op, u)
	if err != nil {
		return err
	}
	if err := st.client.SAdd(ctx, st.indexKey(u.Tenant), u.Name).Err(); err != nil {
		return st.wrap(ctx, op, err)
	}
	keys := []string{st.userKey(u.Tenant, u.Name), st.sessionsKey(u.Tenant, u.Name), st.userEmailKey(u.Tenant, u.Name), st.pointersKey(u.Tenant, u.Name)}
	ids, err := createUserScript.Run(ctx, st.client, keys, u.Data, u.Email, st.invalidationsKey(), invalidation(u.Tenant, u.Name)).StringSlice()
	if errors.Is(err, redis.Nil) {
		if fresh {
			if err := st.release(ctx, op, u.Tenant, u.Name, u.Email); err != nil {
				return err
			}
		}
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	return st.wrap(ctx, op, st.deleteTokenKeys(ctx, u.Tenant, ids))
}

// PutToken indexes the token in its tenant, stores it, makes it its user's
// token of its kind, and deletes the token that was.
func (st *Store) PutToken(ctx context.Context, t store.Token) error {
	const op = "put token"
	if err := st.check(ctx, op, t.Tenant); err != nil {
		return err
	}
	at := expiryMillis(t.Expires)
	index, key := st.tokenIndexKey(t.Tenant), st.tokenKey(t.Tenant, t.ID)
	// Index first, so that DeleteTenant finds every stored token; expired
	// entries go, their keys having expired in Redis.
	_, err := st.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, index, "-inf", strconv.FormatInt(st.nowMillis(), 10))
		p.ZAdd(ctx, index, redis.Z{Score: float64(at), Member: t.ID})
		return nil
	})
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	_, err = st.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "user", t.User, "kind", t.Kind, "data", t.Data, "exp", at)
		p.PExpireAt(ctx, key, time.UnixMilli(at))
		return nil
	})
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	old, err := putPointerScript.Run(ctx, st.client, []string{st.pointersKey(t.Tenant, t.User)}, t.Kind, t.ID, at, st.nowMillis()).Text()
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	if old == "" || old == t.ID {
		return nil
	}
	return st.wrap(ctx, op, st.deleteTokenKeys(ctx, t.Tenant, []string{old}))
}

// TakeToken reads and deletes the token in one script, then, in one
// pipeline, drops its index entry and removes its user's pointer to it:
// only a token its pointer still names counts (not one replaced, or
// deleted with its user), and only an unexpired one.
func (st *Store) TakeToken(ctx context.Context, tenant, id string) (store.Token, error) {
	const op = "take token"
	if err := st.check(ctx, op, tenant); err != nil {
		return store.Token{}, err
	}
	v, err := takeTokenScript.Run(ctx, st.client, []string{st.tokenKey(tenant, id)}).Slice()
	if err != nil {
		return store.Token{}, st.wrap(ctx, op, err)
	}
	t, err := decodeToken(tenant, id, v)
	if err != nil {
		return store.Token{}, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	// One round trip for the index entry and the pointer (two slots).
	var ptr *redis.Cmd
	_, _ = st.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		// Best effort: an entry left behind goes when it expires.
		p.ZRem(ctx, st.tokenIndexKey(tenant), id)
		ptr = takePointerScript.Eval(ctx, p, []string{st.pointersKey(tenant, t.User)}, t.Kind, id)
		return nil
	})
	n, err := ptr.Int()
	if err != nil {
		return store.Token{}, st.wrap(ctx, op, err)
	}
	if n == 0 || !t.Expires.After(st.now()) {
		return store.Token{}, fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	return t, nil
}

// DeleteTokens deletes the user's token pointers in one step, which ends
// the tokens, then the tokens themselves.
func (st *Store) DeleteTokens(ctx context.Context, tenant, user string) error {
	const op = "delete tokens"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	ids, err := deletePointersScript.Run(ctx, st.client, []string{st.pointersKey(tenant, user)}).StringSlice()
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	return st.wrap(ctx, op, st.deleteTokenKeys(ctx, tenant, ids))
}

// deleteTokenKeys deletes the tenant's tokens with those IDs, one slot
// each, then their index entries.
func (st *Store) deleteTokenKeys(ctx context.Context, tenant string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := st.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Del(ctx, st.tokenKey(tenant, id))
		}
		return nil
	})
	if err != nil {
		return err
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	return st.client.ZRem(ctx, st.tokenIndexKey(tenant), members...).Err()
}

// claim claims u.Email for u.Name, if set, and reports whether it made
// the claim (false: none needed, or u.Name held it already). Held by
// another user, the address is taken over only if that user's record no
// longer names it and the claim is older than claimLease; otherwise claim
// returns store.ErrConflict.
func (st *Store) claim(ctx context.Context, op string, u store.User) (bool, error) {
	if u.Email == "" {
		return false, nil
	}
	// Index first, so that DeleteTenant finds every claim.
	if err := st.client.SAdd(ctx, st.emailIndexKey(u.Tenant), u.Email).Err(); err != nil {
		return false, st.wrap(ctx, op, err)
	}
	key := st.claimKey(u.Tenant, u.Email)
	value := strconv.FormatInt(st.nowMillis(), 10) + " " + u.Name
	stale := ""
	for range 2 {
		res, err := claimScript.Run(ctx, st.client, []string{key}, value, u.Name, stale).Slice()
		if err != nil {
			return false, st.wrap(ctx, op, err)
		}
		if len(res) == 0 {
			return false, fmt.Errorf("redisstore: %s: unexpected reply", op)
		}
		switch res[0] {
		case int64(0):
			return false, nil
		case int64(1):
			return true, nil
		}
		if stale != "" || len(res) != 2 {
			break // the stale claim changed under us
		}
		cur, _ := res[1].(string)
		at, holder, ok := parseClaim(cur)
		if ok && time.UnixMilli(at).Add(claimLease).After(st.now()) {
			break
		}
		if ok {
			email, err := st.client.Get(ctx, st.userEmailKey(u.Tenant, holder)).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return false, st.wrap(ctx, op, err)
			}
			if email == u.Email {
				break
			}
		}
		stale = cur
	}
	return false, fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
}

// release gives up user's claim on email, unless the user's record names
// the address again (a concurrent change back), then its index entry,
// re-adding the entry if another user claimed the address meanwhile.
func (st *Store) release(ctx context.Context, op, tenant, user, email string) error {
	if email == "" {
		return nil
	}
	cur, err := st.client.Get(ctx, st.userEmailKey(tenant, user)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return st.wrap(ctx, op, err)
	}
	if cur == email {
		return nil
	}
	key := st.claimKey(tenant, email)
	if err := releaseScript.Run(ctx, st.client, []string{key}, user).Err(); err != nil {
		return st.wrap(ctx, op, err)
	}
	return st.wrap(ctx, op, st.unindex(ctx, st.emailIndexKey(tenant), []string{email},
		func(e string) string { return st.claimKey(tenant, e) }))
}

// deleteTenantAccounts deletes what DeleteTenant's deletion of the users
// left of the tenant's addresses and tokens, in batches, until their
// indexes are empty.
func (st *Store) deleteTenantAccounts(ctx context.Context, tenant string) error {
	for index := st.emailIndexKey(tenant); ; {
		emails, err := st.client.SRandMemberN(ctx, index, deleteBatch).Result()
		if err != nil || len(emails) == 0 {
			if err != nil {
				return err
			}
			break
		}
		_, err = st.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range emails {
				p.Del(ctx, st.claimKey(tenant, e))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := st.client.SRem(ctx, index, emails).Err(); err != nil {
			return err
		}
	}
	for index := st.tokenIndexKey(tenant); ; {
		ids, err := st.client.ZRange(ctx, index, 0, deleteBatch-1).Result()
		if err != nil || len(ids) == 0 {
			return err
		}
		if err := st.deleteTokenKeys(ctx, tenant, ids); err != nil {
			return err
		}
	}
}

// parseClaim splits a claim's value "<ms> <user>".
func parseClaim(v string) (at int64, user string, ok bool) {
	ms, user, ok := strings.Cut(v, " ")
	if !ok {
		return 0, "", false
	}
	at, err := strconv.ParseInt(ms, 10, 64)
	return at, user, err == nil
}

// decodeToken parses takeTokenScript's reply.
func decodeToken(tenant, id string, v []any) (store.Token, error) {
	bad := errors.New("malformed token record")
	if len(v) != 4 {
		return store.Token{}, bad
	}
	var f [4]string
	for i, x := range v {
		s, ok := x.(string)
		if !ok {
			return store.Token{}, bad
		}
		f[i] = s
	}
	at, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return store.Token{}, bad
	}
	return store.Token{Tenant: tenant, ID: id, User: f[0], Kind: f[1], Data: []byte(f[2]), Expires: time.UnixMilli(at)}, nil
}

func (st *Store) claimKey(tenant, email string) string {
	return st.prefix + "e:" + tenant + ":" + email
}
func (st *Store) emailIndexKey(tenant string) string { return st.prefix + "es:" + tenant }
func (st *Store) tokenKey(tenant, id string) string  { return st.prefix + "tk:" + tenant + ":" + id }
func (st *Store) tokenIndexKey(tenant string) string { return st.prefix + "tks:" + tenant }

func (st *Store) userEmailKey(tenant, user string) string {
	return st.prefix + "ue:{" + tenant + ":" + user + "}"
}

func (st *Store) pointersKey(tenant, user string) string {
	return st.prefix + "tkp:{" + tenant + ":" + user + "}"
}
