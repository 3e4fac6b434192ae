// Package store defines the persistence contract behind Latchkey: tenants'
// configuration, their users and the users' sessions.
//
// The contract is deliberately byte-oriented: records carry opaque Data that
// package session encodes and decodes, so implementations stay small and
// interchangeable. Two implementations exist, store/memstore (one process,
// lost on restart) and store/redisstore (shared by every replica), and both
// pass the conformance suite in store/storetest.
//
// Invariants every implementation keeps:
//   - A tenant never sees another tenant's users or sessions.
//   - Session IDs given to the store are hashes of the secret token, so a
//     dump of the store holds no live credentials.
//   - Sessions are indexed per user: listing or ending a user's sessions
//     never scans the keyspace.
//   - A user's record and its sessions change together, so a session cannot
//     be created for a user that was just disabled, changed or deleted.
//   - An expired session is indistinguishable from a missing one.
//   - Reading one tenant reads one record, and asking what changed in the
//     tenants (TenantsSince) costs in proportion to the changes, never to
//     the number of tenants; a store that lost its tenants says so (a new
//     epoch), so that a replica never keeps serving what is gone.
//
// This package imports only the standard library.
package store
