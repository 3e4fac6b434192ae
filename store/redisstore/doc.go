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
//	P ue:{T:U}  string  the user's address (normalized), absent for none
//	P users:T   set     the tenant's user names (an index for ListUsers)
//	P e:T:<email>
//	            string  the claim on an address: "<ms> <U>", the unix
//	                    milliseconds of the claim and its holder
//	P es:T      set     the tenant's claimed addresses (for DeleteTenant)
//	P tk:T:<id> hash    a token by its ID: fields user, kind, data and exp
//	                    (unix ms, decimal); PEXPIREAT exp
//	P tkp:{T:U} hash    the user's current token of each kind: field =
//	                    kind, value = token ID; its TTL is the latest
//	                    expiry of its tokens (only ever grows)
//	P tks:T     zset    the tenant's token IDs scored by expiry (for
//	                    DeleteTenant; expired entries are dropped by
//	                    PutToken)
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
// A user's record, address, sessions and token pointers share the hash
// tag {T:U} and so one hash slot, which lets a Lua script check the
// record and write a session atomically (CreateSession) and lets PutUser,
// CreateUser and DeleteUser change them all in one step. The tag is per
// user, never per tenant: a big tenant spreads across the cluster instead
// of loading one node. (A user name containing '}' cuts the tag short,
// which only shares that user's slot with a similar name; its keys still
// land together.) Address claims and tokens have keys of their own, in
// slots of their own.
//
// The tenants hash and its revision and log share one slot: the hash tag
// of the latter two is the hash's whole name, which is what Redis hashes
// for a key without a tag. One script changes a tenant and records its
// revision, so a replica that reads the log never misses a change.
//
// The per-tenant indexes users:T, es:T and tks:T live in other slots, so
// they are updated by separate commands, ordered so that a crash or a race
// leaves at worst an index entry whose record is missing, which readers
// skip: an entry is added before its record is written and removed after
// it is deleted.
//
// # Addresses
//
// An address is unique per tenant across slots by a claim in its own key,
// P e:T:<email>, taken before the holder's record names it (P ue:{T:U},
// written by the same script as the record) and given up after the
// record stops naming it (a check-and-delete that only deletes the
// holder's own claim). The record is the truth: GetUserByEmail reads the
// claim, then the holder's record and address in one MGET, and answers
// store.ErrNotFound unless the record still names the address, so that a
// claim left behind by a crash is harmless. Another user takes such a
// claim over (check-and-set on the claim's exact value) only if the
// holder's record does not name the address and the claim is older than
// a lease of one minute, the time a writer may take between claiming and
// writing its record. Of concurrent CreateUser calls for one address, the
// claim lets exactly one through; for one name, the script that writes
// the record only if it does not exist does. Two writes racing to change
// one user's address may, in a window of one round trip, leave its
// address unclaimed; no self-service flow does that.
//
// # Tokens
//
// A token lives in its own key (P tk:T:<id>) and counts only while its
// user's pointer (P tkp:{T:U}, in the user's slot) names it, so that
// DeleteTokens, DeleteUser and CreateUser end all of a user's tokens in
// one atomic step of that slot and delete the token keys after. PutToken
// stores the token, then swaps the pointer and deletes the token it
// replaced. TakeToken reads and deletes the token key in one script, so
// that of concurrent takes on any replicas exactly one gets it, then
// removes the pointer if it still names the token, and checks the expiry
// against Config.Now.
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
