// Package redisstore is a store.Store on Redis (standalone, Sentinel or
// Cluster, version 7.0 or later), shared by every Latchkey replica.
//
// # Key layout
//
// P is Config.Prefix (default "latchkey:"), T a tenant ID and U a user name:
//
//	P u:{T:U}   string  the user record's Data
//	P s:{T:U}   hash    the user's sessions: field = session ID, value =
//	                    0x01 and the expiry in unix milliseconds as 6
//	                    bytes, big-endian, followed directly by the
//	                    session's Data; a value that does not start so is
//	                    malformed and refused
//	P users:T   set     the tenant's user names (an index for ListUsers)
//	P tenants   hash    tenant ID -> tenant configuration
//	P tenants:rev{P tenants}
//	            hash    the tenants' revision: epoch (random, made with
//	                    the hash) and n, the count of tenant changes
//	P tenants:log{P tenants}
//	            zset    tenant ID, scored by the n of its latest put or
//	                    deletion: TenantsSince reads only what scores
//	                    above the n it is given. A deleted tenant's ID
//	                    stays (a few dozen bytes) so that its deletion
//	                    reaches every replica
//	P applied:T string  what the tenants file last applied to T (kept
//	                    when T is deleted)
//	P l:T:K     hash    a login-limit counter K (a fixed window, its TTL):
//	                    field n = failures, r:<id> = a place taken by an
//	                    attempt in flight
//	P ak:ID     hash    an admin key by its ID: fields tenant and data
//	P aks:T     set     the IDs of the tenant's admin keys
//	P audit:T   list    the tenant's audit log, newest first (kept when T
//	                    is deleted)
//	P changes   channel PUBLISHed after every tenant change
//	P invalidations
//	            channel PUBLISHed "T\x00U" (or "T\x00" for a whole tenant)
//	                    with every change that ends sessions
//
// Tenant IDs must match ^[a-z0-9-]+$, which every method checks: with no
// ':' or brace in T, the key of (T, U) is unique and one tenant's keys can
// never spell another tenant's. User names are free text; they only ever
// follow the tenant inside a key.
//
// # Redis Cluster
//
// A user's record and its sessions share the hash tag {T:U} and so one
// hash slot, which lets a Lua script check the record and write a session
// atomically (CreateSession) and lets PutUser and DeleteUser change both
// in one step. The tag is per user, never per tenant: a big tenant spreads
// across the cluster instead of loading one node. (A user name containing
// '}' cuts the tag short, which only shares that user's slot with a
// similar name; both keys still land together.)
//
// The tenants hash and its revision and log share one slot: the hash tag
// of the latter two is the hash's whole name, which is what Redis hashes
// for a key without a tag. One script changes a tenant and records its
// revision, so a replica that reads the log never misses a change.
//
// The per-tenant index users:T lives in another slot, so it is updated by
// separate commands, ordered so that a crash or a race leaves at worst an
// index entry whose user is missing, which ListUsers skips: the name is
// added before the record is written and removed after it is deleted.
//
// # Expiry
//
// Session expiry is checked in this package against Config.Now, so an
// expired session is invisible at once. The sessions hash also carries a
// Redis TTL at the latest expiry of its fields, which only ever grows
// (PEXPIREAT ... GT, hence Redis 7.0), so that abandoned users' sessions
// leave memory without a sweeper. Expired fields of a live hash are
// dropped by ListSessions. Both checks use absolute times, so the clocks of
// Latchkey and Redis must agree (NTP).
//
// # Security
//
// Session IDs given to the store are hashes of the secret tokens, never
// the tokens: anyone who can read Redis (a replica, a backup, MONITOR)
// learns no usable credential. Errors carry no record contents, and the
// package logs nothing.
//
// Every backend failure wraps store.ErrUnavailable, so that an outage is
// answered with 503 and nobody is logged out; a done context wraps
// ctx.Err() instead.
package redisstore
