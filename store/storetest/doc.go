// Package storetest is the conformance suite that every store.Store
// implementation must pass, modelled on golang.org/x/net/nettest.TestConn.
//
// An implementation's test calls TestStore with a function that builds a
// fresh, empty Harness for each subtest:
//
//	func TestStore(t *testing.T) {
//		storetest.TestStore(t, func(t *testing.T) storetest.Harness {
//			clock := storetest.NewClock(time.Now())
//			st := memstore.New(memstore.Config{Now: clock.Now})
//			return storetest.Harness{Store: st, Peer: st, Now: clock.Now, Advance: clock.Advance}
//		})
//	}
//
// The checks are black-box: they use only the store.Store interface, so the
// same suite holds memstore and redisstore to one contract. The cases cover
// missing records, round trips of opaque Data, overwrite, idempotent
// deletes, expiry, the owner check of CreateSession, per-user session
// indexing, tenant isolation, change notifications, concurrency (run the
// suite under -race) and context cancellation; and for self-service
// accounts, addresses unique per tenant and released when given up,
// create-only users and single-use tokens, each raced from both replicas.
//
// Expiry times in the suite have millisecond precision, the finest a store
// must keep. Stores on a real clock leave Harness.Advance nil, and the
// suite then sleeps about two seconds in its expiry subtests.
package storetest
