//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// cheapParams make the seeded users' hashes cheap, so that an in-process
// Manager logs a million sessions in within minutes. Latchkey verifies a
// hash with the parameters stored in it, so these users' sessions are
// ordinary sessions to it; only the login case uses default-cost hashes.
var cheapParams = session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const (
	seedPassword = "bench-seed-password"
	// seedUserAgent is what the load generator sends, so that seeded
	// session records have the size of the ones Latchkey creates.
	seedUserAgent = "Go-http-client/1.1"
)

// seedUser names seeded user i; poolUser names the users whose sessions
// the logout case ends.
func seedUser(i int) string { return fmt.Sprintf("u%06d", i) }
func poolUser(i int) string { return fmt.Sprintf("p%06d", i) }

// dataset is one Redis with the Latchkey processes on it and an in-process
// Manager that seeds it with the same cookie keys.
type dataset struct {
	Name   string // "10k", "1M": the sessions it was asked for
	Redis  *proctest.Redis
	Client *redis.Client
	M      *session.Manager
	Tenant *session.Tenant

	// What seeding did.
	Users, PerUser int // asked
	UsersDone      int // created
	Sessions       int // seeded sessions (passes of one per user)
	Passes         int // complete passes of one session per user
	UserTime       time.Duration
	SessionTime    time.Duration
	BudgetHit      bool
	MemEmpty       memSample // before the users
	MemUsers       memSample // after the users, before any session
	Mem1           memSample // after one session per user
	Mem5           memSample // after PerUser sessions per user
	MeCookies      []string
	// OnceCookies are sessions that no case uses otherwise, for the case
	// that reads each session once (cache misses); onceNext is its cursor.
	OnceCookies     []string
	onceNext        atomic.Int64
	PoolUsersCount  int
	poolCookies     []string
	poolMu          sync.Mutex
	poolSeedTimes   []time.Duration
	poolSeedCounts  []int
	loginsForCookie int // extra logins for me cookies (budget cut pass 1)
}

// newDataset opens a client and an in-process Manager on rd, reading the
// tenant back from the store so that it equals what Latchkey serves.
func newDataset(tb testing.TB, name string, rd *proctest.Redis, keys [][]byte) *dataset {
	tb.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: rd.Addr(), PoolSize: 64, MinIdleConns: 16,
		DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	})
	tb.Cleanup(func() { c.Close() })
	st, err := redisstore.New(c, redisstore.Config{Prefix: "latchkey:"})
	if err != nil {
		tb.Fatal(err)
	}
	m, err := session.NewManager(st, session.Config{Keys: keys, Password: cheapParams})
	if err != nil {
		tb.Fatal(err)
	}
	t, err := m.GetTenant(tb.Context(), tenantID)
	if err != nil {
		tb.Fatalf("%s: the tenants file's tenant is not in Redis: %v", name, err)
	}
	return &dataset{Name: name, Redis: rd, Client: c, M: m, Tenant: &t}
}

// parallel runs f(i) for i in [0, n) on workers goroutines until every i
// is done, f fails, ctx ends, or deadline passes (checked before each
// item). It returns how many items were done: always a prefix [0, done),
// since an item once started is finished.
func parallel(ctx context.Context, n, workers int, deadline time.Time, f func(ctx context.Context, i int) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := f(ctx, int(i)); err != nil {
					once.Do(func() { first = fmt.Errorf("item %d: %w", i, err); cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		first = ctx.Err()
	}
	return int(done.Load()), first
}

// memSample is what INFO memory says about a Redis at one moment.
type memSample struct {
	Used    int64 // used_memory
	Clients int64 // mem_clients_normal: client query and output buffers
	Scripts int64 // used_memory_scripts_eval: the Lua script cache
}

// Data is used_memory without client buffers and the script cache, which
// change with the seeding's own connections and its first EVAL, not with
// the data.
func (m memSample) Data() int64 { return m.Used - m.Clients - m.Scripts }

// usedMemory reads INFO memory after a pause that lets Redis finish
// rehashing a dictionary that the seeding grew (both tables are allocated
// while it rehashes) and shrink idle clients' query buffers (after 2 s).
func usedMemory(ctx context.Context, c *redis.Client) (memSample, error) {
	time.Sleep(3 * time.Second)
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return memSample{}, err
	}
	fields := map[string]*int64{}
	var m memSample
	fields["used_memory"], fields["mem_clients_normal"], fields["used_memory_scripts_eval"] = &m.Used, &m.Clients, &m.Scripts
	found := 0
	for _, l := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if p := fields[k]; ok && p != nil {
			if *p, err = strconv.ParseInt(v, 10, 64); err != nil {
				return memSample{}, fmt.Errorf("INFO memory %s: %w", k, err)
			}
			found++
		}
	}
	if found != len(fields) {
		return memSample{}, errors.New("INFO memory lacks used_memory, mem_clients_normal or used_memory_scripts_eval")
	}
	return m, nil
}

// login logs user in through the in-process Manager and returns the
// cookie value, valid for every Latchkey process with the same keys.
func (d *dataset) login(ctx context.Context, user string) (string, error) {
	_, c, err := d.M.Login(ctx, d.Tenant, session.LoginInput{Username: user, Password: seedPassword, UserAgent: seedUserAgent})
	if err != nil {
		return "", err
	}
	return c.Value, nil
}

// seed creates users users, then PerUser passes of one session per user,
// measuring used_memory before the users, after them, after the first pass
// and after the last, and keeps one cookie of each of meCookies users
// spread evenly over the users. It stops at deadline with what is done.
//
// With keepOnce it also keeps the cookies of the first two passes for
// OnceCookies (all but the me ones).
func (d *dataset) seed(tb testing.TB, users, perUser, meCookies, workers int, keepOnce bool, deadline time.Time, logf func(string, ...any)) {
	tb.Helper()
	ctx := tb.Context()
	d.Users, d.PerUser = users, perUser
	var err error
	if d.MemEmpty, err = usedMemory(ctx, d.Client); err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	pw := seedPassword
	d.UsersDone, err = parallel(ctx, users, workers, deadline, func(ctx context.Context, i int) error {
		_, err := d.M.CreateUser(ctx, tenantID, session.UserInput{Username: seedUser(i), Password: &pw})
		return err
	})
	d.UserTime = time.Since(start)
	if err != nil {
		tb.Fatalf("%s: create users: %v", d.Name, err)
	}
	logf("%s: %d users in %v (%.0f/s)", d.Name, d.UsersDone, d.UserTime.Round(time.Millisecond), float64(d.UsersDone)/d.UserTime.Seconds())
	if d.MemUsers, err = usedMemory(ctx, d.Client); err != nil {
		tb.Fatal(err)
	}

	stride := max(1, d.UsersDone/max(1, meCookies))
	cookies := make([]string, d.UsersDone)
	var once [2][]string
	if keepOnce {
		once[0], once[1] = make([]string, d.UsersDone), make([]string, d.UsersDone)
	}
	for pass := range perUser {
		ps := time.Now()
		n, err := parallel(ctx, d.UsersDone, workers, deadline, func(ctx context.Context, i int) error {
			v, err := d.login(ctx, seedUser(i))
			switch {
			case err != nil:
			case pass == 0 && i%stride == 0:
				cookies[i] = v // each i is written by one goroutine only
			case keepOnce && pass < 2:
				once[pass][i] = v
			}
			return err
		})
		d.SessionTime += time.Since(ps) // not the pauses to measure memory
		d.Sessions += n
		if err != nil {
			tb.Fatalf("%s: seed sessions (pass %d): %v", d.Name, pass+1, err)
		}
		if n < d.UsersDone {
			d.BudgetHit = true
			logf("%s: the seeding budget ran out in pass %d of %d", d.Name, pass+1, perUser)
			break
		}
		d.Passes++
		logf("%s: pass %d/%d: %d sessions in %v (%.0f/s)", d.Name, pass+1, perUser, d.Sessions,
			d.SessionTime.Round(time.Millisecond), float64(d.Sessions)/d.SessionTime.Seconds())
		if pass == 0 {
			if d.Mem1, err = usedMemory(ctx, d.Client); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if d.UsersDone == 0 || d.Sessions == 0 {
		tb.Fatalf("%s: nothing seeded before the deadline", d.Name)
	}
	if d.Mem5, err = usedMemory(ctx, d.Client); err != nil {
		tb.Fatal(err)
	}
	// The users picked for me; should the budget have cut the first pass
	// short, log the missing ones in now.
	for i := 0; i < d.UsersDone && len(d.MeCookies) < meCookies; i += stride {
		if cookies[i] == "" {
			v, err := d.login(ctx, seedUser(i))
			if err != nil {
				tb.Fatalf("%s: login %s: %v", d.Name, seedUser(i), err)
			}
			cookies[i] = v
			d.loginsForCookie++
		}
		d.MeCookies = append(d.MeCookies, cookies[i])
	}
	for _, cs := range once {
		for _, c := range cs {
			if c != "" {
				d.OnceCookies = append(d.OnceCookies, c)
			}
		}
	}
}

// onceCookie returns the next never-used session of OnceCookies, or ""
// when they are used up.
func (d *dataset) onceCookie() string {
	i := d.onceNext.Add(1) - 1
	if i >= int64(len(d.OnceCookies)) {
		return ""
	}
	return d.OnceCookies[i]
}

// createPoolUsers creates the users whose sessions the logout case ends:
// perUser sessions each, pool sessions in all.
func (d *dataset) createPoolUsers(tb testing.TB, pool, perUser, workers int) {
	tb.Helper()
	d.PoolUsersCount = (pool + perUser - 1) / perUser
	pw := seedPassword
	_, err := parallel(tb.Context(), d.PoolUsersCount, workers, time.Now().Add(5*time.Minute), func(ctx context.Context, i int) error {
		_, err := d.M.CreateUser(ctx, tenantID, session.UserInput{Username: poolUser(i), Password: &pw})
		return err
	})
	if err != nil {
		tb.Fatalf("%s: create pool users: %v", d.Name, err)
	}
}

// seedPool logs in pool fresh sessions of the pool users (perUser each),
// for one run of the logout case.
func (d *dataset) seedPool(ctx context.Context, pool, perUser, workers int) error {
	start := time.Now()
	cookies := make([]string, pool)
	n, err := parallel(ctx, pool, workers, time.Now().Add(2*time.Minute), func(ctx context.Context, i int) error {
		v, err := d.login(ctx, poolUser(i/perUser))
		cookies[i] = v
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: seed logout pool: %w", d.Name, err)
	}
	d.poolMu.Lock()
	d.poolCookies = cookies[:n]
	d.poolSeedTimes = append(d.poolSeedTimes, time.Since(start))
	d.poolSeedCounts = append(d.poolSeedCounts, n)
	d.poolMu.Unlock()
	return nil
}

// poolCookie returns the cookie of pool session i, or "" past the pool.
func (d *dataset) poolCookie(i int64) string {
	d.poolMu.Lock()
	defer d.poolMu.Unlock()
	if i >= int64(len(d.poolCookies)) {
		return ""
	}
	return d.poolCookies[i]
}

// clearPool ends whatever the logout case left of the pool, so that the
// dataset does not grow from run to run.
func (d *dataset) clearPool(ctx context.Context, workers int) error {
	_, err := parallel(ctx, d.PoolUsersCount, workers, time.Now().Add(2*time.Minute), func(ctx context.Context, i int) error {
		return d.M.RevokeAll(ctx, d.Tenant, poolUser(i))
	})
	d.poolMu.Lock()
	d.poolCookies = nil
	d.poolMu.Unlock()
	return err
}
