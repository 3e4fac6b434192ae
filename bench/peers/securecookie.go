package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/redis/go-redis/v9"
)

// keyPrefix namespaces this stack's sessions in the shared Redis.
const keyPrefix = "peers:session:"

// secureCookieStack is chi + rs/cors + gorilla/securecookie (the cookie is
// a signed session ID) + one go-redis GET of the session's JSON.
type secureCookieStack struct {
	rdb *redis.Client
	sc  *securecookie.SecureCookie
}

func newSecureCookie(addr string, key []byte) *secureCookieStack {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: redisConns, MinIdleConns: redisConns / 2})
	sc := securecookie.New(key, nil).MaxAge(int(absoluteLifetime / time.Second))
	return &secureCookieStack{rdb: rdb, sc: sc}
}

func (s *secureCookieStack) me() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, unauthorized)
			return
		}
		var id string
		if err := s.sc.Decode(cookieName, c.Value, &id); err != nil {
			writeJSON(w, http.StatusUnauthorized, unauthorized)
			return
		}
		b, err := s.rdb.Get(r.Context(), keyPrefix+id).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			writeJSON(w, http.StatusUnauthorized, unauthorized)
		case err != nil:
			http.Error(w, "internal error", http.StatusInternalServerError)
		default:
			writeJSON(w, http.StatusOK, b)
		}
	})
}

func (s *secureCookieStack) seed(ctx context.Context, user string, created time.Time) (string, error) {
	id := rand.Text()
	var v sessionView
	v.User.Username = user
	v.Session.ID = rand.Text()[:22]
	v.Session.CreatedAt = created.UTC().Truncate(time.Second)
	v.Session.LastSeenAt = v.Session.CreatedAt
	v.Session.ExpiresAt = v.Session.CreatedAt.Add(absoluteLifetime)
	v.Session.IdleExpiresAt = v.Session.ExpiresAt // no idle expiry in this stack
	v.Session.Current = true
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if err := s.rdb.Set(ctx, keyPrefix+id, b, absoluteLifetime).Err(); err != nil {
		return "", err
	}
	return s.sc.Encode(cookieName, id)
}

func (s *secureCookieStack) close() error { return s.rdb.Close() }
