package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/store"
)

var _ store.Store = (*Store)(nil)

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "latchkey:"

const (
	// A stored session is expiryMark, its expiry in unix milliseconds as
	// 6 bytes, big-endian, then its Data. The mark makes a value in any
	// other layout malformed rather than misread, here and in the Lua
	// scripts (expiryOf).
	expiryMark = 0x01
	expiryLen  = 1 + 6
	// maxExpiry is the latest expiry 6 bytes hold (the year 10889).
	maxExpiry = 1<<48 - 1

	// deleteBatch is how many users DeleteTenant deletes per round trip.
	deleteBatch = 500

	// subscribeTimeout bounds how long Changes waits for Redis to confirm
	// its subscription before returning anyway.
	subscribeTimeout = 5 * time.Second
)

// Config holds the settings of a Store.
type Config struct {
	// Prefix starts every key and the change channel, so that several
	// deployments, or tests, can share one Redis. Empty means
	// DefaultPrefix. It must not contain '{' or '}', which would change
	// the Redis Cluster hash slots, nor whitespace.
	Prefix string

	// Now returns the current time, against which session expiry is
	// checked. Nil means time.Now.
	Now func() time.Time
}

// Store is a store.Store on Redis. It is safe for concurrent use. Create
// one with New.
type Store struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time
}

// New returns a Store that keeps its records in client under cfg.Prefix.
// It does not contact Redis; use Ping for that.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("redisstore: client is nil"))
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := CheckPrefix(prefix); err != nil {
		errs = append(errs, fmt.Errorf("redisstore: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Store{client: client, prefix: prefix, now: now}, nil
}

// CheckPrefix reports why prefix cannot be a Config.Prefix, or nil: a
// brace would change the Redis Cluster hash slots, and whitespace or a
// control character has no place in a key name an operator types.
func CheckPrefix(prefix string) error {
	var errs []error
	if strings.ContainsAny(prefix, "{}") {
		errs = append(errs, fmt.Errorf("prefix %q contains a brace, which would change Redis Cluster hash slots", prefix))
	}
	if strings.ContainsFunc(prefix, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		errs = append(errs, fmt.Errorf("prefix %q contains whitespace or a control character", prefix))
	}
	return errors.Join(errs...)
}

// expiryOf is shared Lua: it returns the expiry (unix ms) of a stored
// session value, or nil if the value is malformed.
const expiryOf = `
local function expiryOf(v)
  if #v < 7 or string.byte(v, 1) ~= 1 then return nil end
  return (struct.unpack('>I6', v, 2))
end
`

// putSession is shared Lua: it stores the session value v as field id of
// the sessions hash key, or drops the field if the session has expired by
// now, and keeps the hash's TTL at the latest expiry of its fields. GT
// alone would never set a first TTL, because Redis treats a key without
// one as expiring never.
const putSession = `
local function putSession(key, id, v, at, now)
  if at <= now then
    redis.call('HDEL', key, id)
    return 1
  end
  redis.call('HSET', key, id, v)
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIREAT', key, at)
  else
    redis.call('PEXPIREAT', key, at, 'GT')
  end
  return 1
end
`

// createScript writes a session only while the user's record equals the
// owner the caller read, closing the race with a concurrent disable,
// password change or delete. The two keys share a hash slot.
//
// KEYS: user record, sessions hash. ARGV: owner Data, session ID, stored
// value, expiry, now (both unix ms). Returns 0 on conflict, 1 otherwise.
var createScript = redis.NewScript(putSession + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
return putSession(KEYS[2], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
`)

// updateScript replaces a session only if it exists and has not expired,
// so that a refresh racing a revocation cannot resurrect the session.
//
// KEYS: sessions hash. ARGV: session ID, stored value, expiry, now (both
// unix ms). Returns 0 if the session is missing or expired, 1 otherwise.
var updateScript = redis.NewScript(putSession + expiryOf + `
local old = redis.call('HGET', KEYS[1], ARGV[1])
local now = tonumber(ARGV[4])
local oldAt = old and expiryOf(old)
if not oldAt or oldAt <= now then
  return 0
end
return putSession(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), now)
`)

// pruneScript drops the given sessions if they are still expired: a
// session that was read as expired cannot have been refreshed since, but
// re-checking keeps the deletion safe whatever happened in between.
//
// KEYS: sessions hash. ARGV: now (unix ms), then session IDs.
var pruneScript = redis.NewScript(expiryOf + `
local now = tonumber(ARGV[1])
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    local at = expiryOf(v)
    if at ~= nil and at <= now then
      redis.call('HDEL', KEYS[1], ARGV[i])
    end
  end
end
return 0
`)

// CreateSession stores s if the user's record still equals owner, or
// returns store.ErrConflict; see store.Store.
func (st *Store) CreateSession(ctx context.Context, s store.Session, owner store.User) error {
	const op = "create session"
	if err := st.check(ctx, op, s.Tenant); err != nil {
		return err
	}
	if owner.Tenant != s.Tenant || owner.Name != s.User {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	keys := []string{st.userKey(s.Tenant, s.User), st.sessionsKey(s.Tenant, s.User)}
	ok, err := createScript.Run(ctx, st.client, keys,
		owner.Data, s.ID, encodeSession(s), expiryMillis(s.Expires), st.nowMillis()).Int()
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	if ok == 0 {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrConflict)
	}
	return nil
}

// GetSession returns the session, or store.ErrNotFound if it is missing
// or expired.
func (st *Store) GetSession(ctx context.Context, tenant, user, id string) (store.Session, error) {
	const op = "get session"
	if err := st.check(ctx, op, tenant); err != nil {
		return store.Session{}, err
	}
	v, err := st.client.HGet(ctx, st.sessionsKey(tenant, user), id).Result()
	if err != nil {
		return store.Session{}, st.wrap(ctx, op, err)
	}
	s, at, err := decodeSession(tenant, user, id, v)
	if err != nil {
		return store.Session{}, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if at <= st.nowMillis() {
		return store.Session{}, fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	return s, nil
}

// UpdateSession replaces an existing, unexpired session, or returns
// store.ErrNotFound and stores nothing.
func (st *Store) UpdateSession(ctx context.Context, s store.Session) error {
	const op = "update session"
	if err := st.check(ctx, op, s.Tenant); err != nil {
		return err
	}
	ok, err := updateScript.Run(ctx, st.client, []string{st.sessionsKey(s.Tenant, s.User)},
		s.ID, encodeSession(s), expiryMillis(s.Expires), st.nowMillis()).Int()
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	if ok == 0 {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// DeleteSession removes one session. Deleting a missing one is not an
// error.
func (st *Store) DeleteSession(ctx context.Context, tenant, user, id string) error {
	const op = "delete session"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	_, err := st.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, st.sessionsKey(tenant, user), id)
		st.publishInvalidation(ctx, p, tenant, user)
		return nil
	})
	return st.wrap(ctx, op, err)
}

// ListSessions returns the user's unexpired sessions with one HGETALL and
// drops the expired ones it saw, on a best-effort basis.
func (st *Store) ListSessions(ctx context.Context, tenant, user string) ([]store.Session, error) {
	const op = "list sessions"
	if err := st.check(ctx, op, tenant); err != nil {
		return nil, err
	}
	key := st.sessionsKey(tenant, user)
	all, err := st.client.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, st.wrap(ctx, op, err)
	}
	now := st.nowMillis()
	list := make([]store.Session, 0, len(all))
	var expired []any
	for id, v := range all {
		s, at, err := decodeSession(tenant, user, id, v)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s: %w", op, err)
		}
		if at <= now {
			expired = append(expired, id)
			continue
		}
		list = append(list, s)
	}
	if len(expired) > 0 {
		// Best effort: the TTL of the hash bounds what a failure leaves.
		_ = pruneScript.Run(ctx, st.client, []string{key}, append([]any{now}, expired...)...).Err()
	}
	return list, nil
}

// DeleteSessions removes every session of the user with one DEL.
func (st *Store) DeleteSessions(ctx context.Context, tenant, user string) error {
	const op = "delete sessions"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	_, err := st.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, st.sessionsKey(tenant, user))
		st.publishInvalidation(ctx, p, tenant, user)
		return nil
	})
	return st.wrap(ctx, op, err)
}

// GetUser returns the user, or store.ErrNotFound.
func (st *Store) GetUser(ctx context.Context, tenant, name string) (store.User, error) {
	const op = "get user"
	if err := st.check(ctx, op, tenant); err != nil {
		return store.User{}, err
	}
	return st.getUser(ctx, op, tenant, name)
}

// getUser reads the user's record and address with one MGET (one slot).
func (st *Store) getUser(ctx context.Context, op, tenant, name string) (store.User, error) {
	vals, err := st.client.MGet(ctx, st.userKey(tenant, name), st.userEmailKey(tenant, name)).Result()
	if err != nil {
		return store.User{}, st.wrap(ctx, op, err)
	}
	u, ok := decodeUser(tenant, name, vals)
	if !ok {
		return store.User{}, fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	return u, nil
}

// decodeUser reads the reply of MGET of a user's record and address, and
// reports whether the record exists.
func decodeUser(tenant, name string, vals []any) (store.User, bool) {
	if len(vals) != 2 {
		return store.User{}, false
	}
	data, ok := vals[0].(string)
	if !ok {
		return store.User{}, false
	}
	email, _ := vals[1].(string)
	return store.User{Tenant: tenant, Name: name, Email: email, Data: []byte(data)}, true
}

// putUserScript writes a user's record and address and, with ARGV[3] =
// "1", deletes its sessions and publishes the invalidation, as one step.
// It returns the address the record named before ("" for none).
//
// KEYS: user record, sessions, address. ARGV: Data, address, endSessions,
// invalidation channel and message.
var putUserScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[3]) or ''
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] == '' then redis.call('DEL', KEYS[3]) else redis.call('SET', KEYS[3], ARGV[2]) end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return prev
`)

// PutUser claims the user's address, writes the record and address and,
// with endSessions, deletes its sessions in one script, then releases the
// address the record named before.
func (st *Store) PutUser(ctx context.Context, u store.User, endSessions bool) error {
	const op = "put user"
	if err := st.check(ctx, op, u.Tenant); err != nil {
		return err
	}
	if _, err := st.claim(ctx, op, u); err != nil {
		return err
	}
	index := st.indexKey(u.Tenant)
	// Index first: a failure after it leaves a name ListUsers skips.
	if err := st.client.SAdd(ctx, index, u.Name).Err(); err != nil {
		return st.wrap(ctx, op, err)
	}
	keys := []string{st.userKey(u.Tenant, u.Name), st.sessionsKey(u.Tenant, u.Name), st.userEmailKey(u.Tenant, u.Name)}
	prev, err := putUserScript.Run(ctx, st.client, keys, u.Data, u.Email, endSessions,
		st.invalidationsKey(), invalidation(u.Tenant, u.Name)).Text()
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	// Again, for a concurrent DeleteUser that removed the name between
	// the first SADD and the SET; see deleteUsers.
	if err := st.client.SAdd(ctx, index, u.Name).Err(); err != nil {
		return st.wrap(ctx, op, err)
	}
	if prev != u.Email {
		return st.release(ctx, op, u.Tenant, u.Name, prev)
	}
	return nil
}

// deleteUserScript deletes a user's record, sessions, address and token
// pointers and publishes the invalidation, as one step. It returns the
// address ("" for none) and the token IDs, for the caller to release and
// delete.
var deleteUserScript = redis.NewScript(`
local email = redis.call('GET', KEYS[3]) or ''
local ids = redis.call('HVALS', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {email, ids}
`)

// DeleteUser removes the user, its sessions and token pointers (which end
// its tokens) in one script, then releases its address and deletes the
// tokens. Deleting a missing user is not an error.
func (st *Store) DeleteUser(ctx context.Context, tenant, name string) error {
	const op = "delete user"
	if err := st.check(ctx, op, tenant); err != nil {
		return err
	}
	emails, ids, err := st.deleteUsers(ctx, tenant, []string{name})
	if err != nil {
		return st.wrap(ctx, op, err)
	}
	for _, e := range emails {
		if err := st.release(ctx, op, tenant, name, e); err != nil {
			return err
		}
	}
	return st.wrap(ctx, op, st.deleteTokenKeys(ctx, tenant, ids))
}

// deleteUsers deletes the users' records, sessions, addresses and token
// pointers, then their index entries, and returns the addresses and token
// IDs they held. It then re-adds the entries of users that exist again:
// with PutUser's second SADD, that keeps a PutUser racing a DeleteUser
// from leaving a user that ListUsers and DeleteTenant cannot see.
func (st *Store) deleteUsers(ctx context.Context, tenant string, names []string) (emails, ids []string, err error) {
	cmds, err := st.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, name := range names {
			// One script over one slot: the deletion and its invalidation
			// are atomic, also on Cluster.
			deleteUserScript.Eval(ctx, p, []string{st.userKey(tenant, name), st.sessionsKey(tenant, name),
				st.userEmailKey(tenant, name), st.pointersKey(tenant, name)},
				st.invalidationsKey(), invalidation(tenant, name))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, cmd := range cmds {
		res, _ := cmd.(*redis.Cmd).Slice()
		if len(res) != 2 {
			return nil, nil, errors.New("unexpected reply")
		}
		if e, _ := res[0].(string); e != "" {
			emails = append(emails, e)
		}
		list, _ := res[1].([]any)
		for _, id := range list {
			if id, ok := id.(string); ok {
				ids = append(ids, id)
			}
		}
	}
	if err := st.unindex(ctx, st.indexKey(tenant), names, func(name string) string { return st.userKey(tenant, name) }); err != nil {
		return nil, nil, err
	}
	return emails, ids, nil
}

// unindex removes members from the set index, then puts back those whose
// key exists again: a writer that recreated one between its own SADD and
// our SREM must not be left out of the index.
func (st *Store) unindex(ctx context.Context, index string, members []string, key func(string) string) error {
	if err := st.client.SRem(ctx, index, members).Err(); err != nil {
		return err
	}
	cmds, err := st.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range members {
			p.Exists(ctx, key(m))
		}
		return nil
	})
	if err != nil {
		return err
	}
	var back []string
	for i, cmd := range cmds {
		if cmd.(*redis.IntCmd).Val() > 0 {
			back = append(back, members[i])
		}
	}
	if len(back) > 0 {
		return st.client.SAdd(ctx, index, back).Err()
	}
	return nil
}

// ListUsers returns the tenant's users: the index, then the records in one
// pipeline, skipping index entries whose record is missing.
func (st *Store) ListUsers(ctx context.Context, tenant string) ([]store.User, error) {
	const op = "list users"
	if err := st.check(ctx, op, tenant); err != nil {
		return nil, err
	}
	names, err := st.client.SMembers(ctx, st.indexKey(tenant)).Result()
	if err != nil {
		return nil, st.wrap(ctx, op, err)
	}
	if len(names) == 0 {
		return []store.User{}, nil
	}
	cmds, err := st.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, name := range names {
			p.MGet(ctx, st.userKey(tenant, name), st.userEmailKey(tenant, name))
		}
		return nil
	})
	if err != nil {
		return nil, st.wrap(ctx, op, err)
	}
	users := make([]store.User, 0, len(names))
	for i, cmd := range cmds {
		vals, err := cmd.(*redis.SliceCmd).Result()
		if err != nil {
			return nil, st.wrap(ctx, op, err)
		}
		// A missing record is an index entry to skip.
		if u, ok := decodeUser(tenant, names[i], vals); ok {
			users = append(users, u)
		}
	}
	return users, nil
}

// Changes subscribes to tenant changes published by every Store sharing
// the prefix, in this process or another. It waits up to a few seconds for
// Redis to confirm the subscription, so that changes made after it returns
// are seen. The channel also receives a value whenever the subscription is
// re-established after a dropped connection, because changes may have
// been missed meanwhile. Values coalesce: the channel holds at most one.
// The channel is closed, and the subscription's connection released, when
// ctx is done.
func (st *Store) Changes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if ctx.Err() != nil {
		close(ch)
		return ch
	}
	ps := st.client.Subscribe(ctx, st.changesKey())
	// An error is not fatal: the subscription keeps reconnecting on its
	// own, and its confirmation then arrives below as a value.
	_, _ = ps.ReceiveTimeout(ctx, subscribeTimeout)
	msgs := ps.ChannelWithSubscriptions()
	go func() {
		defer close(ch)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return // the client was closed
				}
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch
}

// Ping reports whether Redis answers a PING.
func (st *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return st.wrap(ctx, op, st.client.Ping(ctx).Err())
}

func (st *Store) userKey(tenant, user string) string {
	return st.prefix + "u:{" + tenant + ":" + user + "}"
}

func (st *Store) sessionsKey(tenant, user string) string {
	return st.prefix + "s:{" + tenant + ":" + user + "}"
}

func (st *Store) indexKey(tenant string) string { return st.prefix + "users:" + tenant }
func (st *Store) tenantsKey() string            { return st.prefix + "tenants" }
func (st *Store) changesKey() string            { return st.prefix + "changes" }

func (st *Store) nowMillis() int64 { return st.now().UnixMilli() }

// check rejects a done context and a tenant ID that could break the key
// layout (see the package documentation) before any round trip.
func (st *Store) check(ctx context.Context, op, tenant string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if !validTenant(tenant) {
		return fmt.Errorf("redisstore: %s: invalid tenant ID %q", op, tenant)
	}
	return nil
}

// wrap turns the error of a round trip into the store's: nil stays nil,
// the context's own error wins (a caller that gave up is not an outage), a
// missing key (redis.Nil) is store.ErrNotFound, and any other error wraps
// store.ErrUnavailable.
func (st *Store) wrap(ctx context.Context, op string, err error) error {
	switch cerr := ctx.Err(); {
	case err == nil:
		return nil
	case cerr != nil:
		return fmt.Errorf("redisstore: %s: %w", op, cerr)
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, store.ErrUnavailable, err)
}

// validTenant reports whether id matches ^[a-z0-9-]+$.
func validTenant(id string) bool {
	return id != "" && strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// expiryMillis returns t in unix milliseconds, clamped to what a stored
// session holds. Clamping at 0 only makes an already expired session stay
// expired.
func expiryMillis(t time.Time) int64 {
	return min(max(t.UnixMilli(), 0), maxExpiry)
}

// encodeSession returns the stored form of s: expiryMark, its expiry as 6
// bytes big-endian, then Data verbatim.
func encodeSession(s store.Session) []byte {
	at := expiryMillis(s.Expires)
	b := make([]byte, expiryLen, expiryLen+len(s.Data))
	b[0] = expiryMark
	for i := expiryLen - 1; i > 0; i-- {
		b[i] = byte(at)
		at >>= 8
	}
	return append(b, s.Data...)
}

// decodeSession parses a stored session and also returns its expiry in
// unix milliseconds.
func decodeSession(tenant, user, id, v string) (store.Session, int64, error) {
	if len(v) < expiryLen || v[0] != expiryMark {
		return store.Session{}, 0, errors.New("malformed session record")
	}
	var at int64
	for i := 1; i < expiryLen; i++ {
		at = at<<8 | int64(v[i])
	}
	return store.Session{
		Tenant:  tenant,
		User:    user,
		ID:      id,
		Data:    []byte(v[expiryLen:]),
		Expires: time.UnixMilli(at),
	}, at, nil
}
