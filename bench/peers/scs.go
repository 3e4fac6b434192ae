package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
)

// scsStack is chi + rs/cors + scs with its Redis store, set up as scs's
// README sets it up, with Latchkey's lifetimes and cross-site cookie.
type scsStack struct {
	pool *redis.Pool
	sm   *scs.SessionManager
}

func newSCS(addr string) *scsStack {
	pool := &redis.Pool{
		MaxIdle:     redisConns,
		IdleTimeout: 4 * time.Minute,
		Dial:        func() (redis.Conn, error) { return redis.Dial("tcp", addr) },
	}
	sm := scs.New()
	sm.Store = redisstore.New(pool)
	sm.Lifetime = absoluteLifetime
	sm.IdleTimeout = idleTimeout
	sm.Cookie.Name = cookieName
	sm.Cookie.SameSite = http.SameSiteNoneMode
	sm.Cookie.Secure = true
	return &scsStack{pool: pool, sm: sm}
}

func (s *scsStack) me() http.Handler {
	return s.sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		user := s.sm.GetString(ctx, "username")
		if user == "" {
			writeJSON(w, http.StatusUnauthorized, unauthorized)
			return
		}
		now := time.Now().UTC().Truncate(time.Second)
		var v sessionView
		v.User.Username = user
		v.Session.ID = s.sm.GetString(ctx, "id")
		v.Session.CreatedAt = time.Unix(s.sm.GetInt64(ctx, "created_at"), 0).UTC()
		v.Session.LastSeenAt = now
		v.Session.ExpiresAt = s.sm.Deadline(ctx).UTC().Truncate(time.Second)
		v.Session.IdleExpiresAt = now.Add(idleTimeout)
		if v.Session.ExpiresAt.Before(v.Session.IdleExpiresAt) {
			v.Session.IdleExpiresAt = v.Session.ExpiresAt
		}
		v.Session.UserAgent = s.sm.GetString(ctx, "user_agent")
		v.Session.Current = true
		b, err := json.Marshal(v)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, b)
	}))
}

func (s *scsStack) seed(ctx context.Context, user string, created time.Time) (string, error) {
	ctx, err := s.sm.Load(ctx, "")
	if err != nil {
		return "", err
	}
	s.sm.Put(ctx, "username", user)
	s.sm.Put(ctx, "id", rand.Text()[:22])
	s.sm.Put(ctx, "created_at", created.Unix())
	s.sm.Put(ctx, "user_agent", "")
	token, _, err := s.sm.Commit(ctx)
	return token, err
}

func (s *scsStack) close() error { return s.pool.Close() }
