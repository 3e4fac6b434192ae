package redisstore

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Invalidations travel on one Pub/Sub channel as "tenant\x00user". They
// are published inside the same MULTI as the change they announce, so no
// change can happen without its message (Redis runs a transaction whole).
//
// A subscriber also pings over its Pub/Sub connection every pingEvery,
// with the send time as payload. Redis answers on that connection in
// order, so once the pong of a ping sent at T has arrived, every message
// published before T has arrived too. That is what WatchInvalidations'
// current function checks: no heartbeat, no trust, even when a connection
// dies silently.
const pingEvery = 10 * time.Millisecond

// silenceLimit is how long a subscription may stay silent, pings
// included, before it is dropped and made anew.
const silenceLimit = time.Second

func (st *Store) invalidationsKey() string { return st.prefix + "invalidations" }

func invalidation(tenant, user string) string { return tenant + "\x00" + user }

// publishInvalidation queues the PUBLISH of an invalidation in a
// transaction pipeline.
func (st *Store) publishInvalidation(ctx context.Context, p redis.Pipeliner, tenant, user string) {
	p.Publish(ctx, st.invalidationsKey(), invalidation(tenant, user))
}

// WatchInvalidations subscribes to the invalidation channel; see
// store.Store.
func (st *Store) WatchInvalidations(ctx context.Context, fn func(tenant, user string)) func(time.Duration) bool {
	var heard atomic.Int64 // send time (unix ns) of the newest ping answered
	go st.watchInvalidations(ctx, fn, &heard)
	return func(within time.Duration) bool {
		h := heard.Load()
		return h != 0 && time.Since(time.Unix(0, h)) <= within
	}
}

func (st *Store) watchInvalidations(ctx context.Context, fn func(tenant, user string), heard *atomic.Int64) {
	for ctx.Err() == nil {
		st.subscribeInvalidations(ctx, fn, heard)
		heard.Store(0) // until the next subscription answers, trust nothing
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// subscribeInvalidations runs one subscription until it fails or falls
// silent.
func (st *Store) subscribeInvalidations(ctx context.Context, fn func(tenant, user string), heard *atomic.Int64) {
	ps := st.client.Subscribe(ctx, st.invalidationsKey())
	defer ps.Close()
	pctx, stopPings := context.WithCancel(ctx)
	defer stopPings()
	go func() {
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				ps.Ping(pctx, strconv.FormatInt(time.Now().UnixNano(), 10)) // errors show up in Receive
			}
		}
	}()
	for {
		msg, err := ps.ReceiveTimeout(ctx, silenceLimit)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// A (re)subscription: anything published while we were not
			// subscribed is lost, so forget everything.
			fn("", "")
		case *redis.Message:
			tenant, user, _ := strings.Cut(m.Payload, "\x00")
			fn(tenant, user)
		case *redis.Pong:
			if sent, err := strconv.ParseInt(m.Payload, 10, 64); err == nil && sent > heard.Load() {
				heard.Store(sent)
			}
		}
	}
}
