package memstore_test

import (
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.TestStore(t, func(t *testing.T) storetest.Harness {
		clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
		st := memstore.New(memstore.Config{Now: clock.Now})
		// One process has one memstore, so it is its own peer.
		return storetest.Harness{Store: st, Peer: st, Now: clock.Now, Advance: clock.Advance}
	})
}

// TestStoreRealClock runs the suite on the zero Config, and so on the real
// clock, the way redisstore runs it.
func TestStoreRealClock(t *testing.T) {
	t.Parallel()
	storetest.TestStore(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: memstore.New(memstore.Config{})}
	})
}
