// Package redistest gives tests a real Redis: the one at REDIS_ADDR, which
// the test command provides (scripts/with-redis.sh). Under CI=true a Redis
// that does not answer fails the test; elsewhere it skips it, so that
// `go test ./...` still works on a laptop without Redis.
package redistest
