package api

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store/memstore"
)

// discardMailer takes every mail and sends none.
type discardMailer struct{}

func (discardMailer) Send(context.Context, session.Mail) error { return nil }

// BenchmarkResetRequest prints the time of a reset request's answer for
// an address that is a user's and for one that is nobody's: the figures
// that back the claim that the answer's time does not tell the two apart
// (the lookup, the token and the mail run after the answer). Compare the
// two rows' ns/answer, the median time to the answer; `make bench` runs them in the same process, one after
// the other. The clock moves 4 s a request, so that the per-address limit
// (1000 an hour here) never refuses one.
func BenchmarkResetRequest(b *testing.B) {
	for _, tc := range []struct{ name, email string }{
		{"known", "zoe@bench.test"},
		{"unknown", "nobody@bench.test"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var now atomic.Int64
			now.Store(time.Now().UTC().Truncate(time.Second).UnixNano())
			clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
			m, err := session.NewManager(memstore.New(memstore.Config{Now: clock}), session.Config{
				Keys: [][]byte{bytes.Repeat([]byte("b"), 32)}, Now: clock, Mailer: discardMailer{},
				Password: session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { m.Close(context.Background()) })
			srv, err := NewServer(m, Config{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			t, _, err := m.PutTenant(ctx, session.Tenant{ID: "bench", Name: "Bench", Origins: []string{benchOrigin},
				Cookie: session.CookiePolicy{SameSite: session.SameSiteNone, Partitioned: true},
				Accounts: &session.AccountsPolicy{
					EmailVerification: session.VerificationOptional, VerifyURL: benchOrigin + "/verify", ResetURL: benchOrigin + "/reset",
					Limits: session.AccountLimits{PerIP: 1_000_000, PerAddress: 1000, Window: session.Duration(time.Hour)},
				}})
			if err != nil {
				b.Fatal(err)
			}
			srv.UpdateTenants(session.TenantsUpdate{Changed: []session.Tenant{t}})
			pw, email := "bench-password-1", "zoe@bench.test"
			if _, err := m.CreateUser(ctx, t.ID, session.UserInput{Username: "zoe", Password: &pw, Email: &email}); err != nil {
				b.Fatal(err)
			}
			h := srv.Public()
			body := `{"email":"` + tc.email + `"}`
			var took []time.Duration
			for b.Loop() {
				now.Add(int64(4 * time.Second))
				req := httptest.NewRequest("POST", "/v1/t/bench/password/reset/request", strings.NewReader(body))
				req.Header.Set("Origin", benchOrigin)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(rec, req)
				took = append(took, time.Since(start))
				if rec.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			// The median answer: ns/op also holds the background work of
			// a known address, which runs after the answer, on other cores
			// when there are some.
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "ns/answer")
		})
	}
}
