// Package memstore is an in-memory store.Store for tests, development and
// single-replica deployments.
//
// All data lives in the process: it is lost on restart and is not shared
// between replicas, so two Latchkey processes over two memstores disagree
// about every session. Run more than one replica only with
// store/redisstore. Changes notifies subscribers in this process only.
// TenantsSince reads a log of tenant changes, compacted as it grows, and
// a deleted tenant's ID stays in it (its latest change) like in Redis.
//
// Expiry is enforced against Config.Now, which tests replace with a fake
// clock (storetest.Clock). Expired sessions are invisible to every method
// and are dropped whenever their user's sessions are touched, so memory
// stays bounded by live sessions plus those of users nobody has touched
// since their sessions expired.
//
// Addresses are unique per tenant under the same lock as the records, so
// CreateUser and the address checks of PutUser and SwapUser are exact.
// Tokens are kept per tenant by ID, with an index of each user's token of
// each kind; an expired token is dropped when it is taken or replaced.
//
// Records are copied on the way in and out: callers may reuse or modify
// the byte slices they pass or receive.
package memstore
