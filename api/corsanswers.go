package api

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// A tenant's CORS answers are jub0bs/cors's own, remembered. Every
// preflight and every `me` from one of the tenant's origins sends the same
// few inputs (Origin, and for a preflight the requested method and
// headers), and the policy's CORS layers (preflightVary and jub0bs/cors,
// whose configuration never changes once the policy is built) answer the
// same inputs with the same headers. A profile of the server under load
// put those layers at a quarter of Latchkey's own work on a preflight:
// parsing the origin, walking its tree, a header map of its own and a new
// value slice per header. So the first request with given inputs runs
// those layers against a recorder, and later ones copy what they added.
//
// Nothing here decides anything: jub0bs/cors stays the authority, and an
// input it has not answered before, or one of a form this file does not
// key on, goes through it as before. Only answers that grant something to
// one of the tenant's exact origins are remembered: what a page on any
// other site sends, and a refused preflight, go through the layers every
// time, so that a stream of them cannot crowd out the answers pages need.
// At most maxCORSAnswers are kept per policy, so that a client varying its
// Access-Control-Request-Headers (whitespace, empty elements) can make
// Latchkey do no more than it did before this file, never grow its
// memory. FuzzCORSAnswers checks the answers against the layers themselves
// on every input.

// maxCORSAnswers bounds the answers a policy remembers. A browser sends
// one key per origin and method (its headers lists are canonical, CORS.md
// R1.3): a tenant has at most session.MaxOrigins origins.
const maxCORSAnswers = 64

// corsKey is everything the policy's CORS layers read of a request, for a
// request whose Origin, Access-Control-Request-Method and
// Access-Control-Request-Headers each came on one line at most.
type corsKey struct {
	method  string // OPTIONS, or "" for any other method (the layers only tell OPTIONS apart)
	origin  string
	acrm    string // OPTIONS only
	acrh    string
	hasACRM bool
	hasACRH bool
}

// corsKeyOf returns r's key, r having exactly one Origin line with the
// value origin, and whether its answer may be remembered.
func corsKeyOf(r *http.Request, origin string) (corsKey, bool) {
	k := corsKey{origin: origin}
	if r.Method != http.MethodOptions {
		return k, true
	}
	k.method = http.MethodOptions
	// Headers arrive under their canonical names from net/http's parser,
	// and so do those set with Header.Set or Add; what the layers read
	// by those names is what is keyed here.
	if v := r.Header["Access-Control-Request-Method"]; len(v) > 0 {
		if len(v) > 1 {
			return k, false
		}
		k.acrm, k.hasACRM = v[0], true
	}
	if v := r.Header["Access-Control-Request-Headers"]; len(v) > 0 {
		if len(v) > 1 {
			return k, false // jub0bs/cors reads every line of these
		}
		k.acrh, k.hasACRH = v[0], true
	}
	return k, true
}

// corsAnswer is what the CORS layers did with one key: the header lines
// they added, and either the status they answered with (a preflight, 204
// or 403) or, with status 0, that they passed the request on.
type corsAnswer struct {
	header []headerLine
	status int
}

// headerLine is one header of an answer. Its values are shared by every
// response that sends it, and their capacity is their length, so that a
// later Header.Add or append copies them rather than writing into them
// (the hazard jub0bs/cors avoids precomputed slices for: jub0bs/cors
// issue 14).
type headerLine struct {
	name   string
	values []string
}

// corsAnswers is one policy's remembered answers: an immutable map,
// replaced whole (under mu) when an answer is added, so that reading it
// takes no lock.
type corsAnswers struct {
	m  atomic.Pointer[map[corsKey]*corsAnswer]
	mu sync.Mutex
}

func (c *corsAnswers) get(k corsKey) *corsAnswer {
	if m := c.m.Load(); m != nil {
		return (*m)[k]
	}
	return nil
}

func (c *corsAnswers) full() bool {
	m := c.m.Load()
	return m != nil && len(*m) >= maxCORSAnswers
}

func (c *corsAnswers) put(k corsKey, a *corsAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var m map[corsKey]*corsAnswer
	if old != nil {
		if len(*old) >= maxCORSAnswers || (*old)[k] != nil {
			return
		}
		m = make(map[corsKey]*corsAnswer, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
	} else {
		m = map[corsKey]*corsAnswer{}
	}
	m[k] = a
	c.m.Store(&m)
}

// corsRecorder stands in for the response while the CORS layers answer a
// request, and records what they do to it.
type corsRecorder struct {
	h      http.Header
	status int
	passed bool // the layers called the inner handler
	wrote  bool // the layers wrote a body: not something to replay
}

func (rec *corsRecorder) Header() http.Header { return rec.h }

func (rec *corsRecorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}

func (rec *corsRecorder) Write(b []byte) (int, error) {
	rec.wrote = true
	return len(b), nil
}

// corsPassed is the inner handler of the recorded CORS layers: it notes
// that they passed the request on.
var corsPassed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.(*corsRecorder).passed = true
})

// corsAnswer returns the answer of p's CORS layers to r, whose key is k:
// the remembered one, or, while p has room for more, the layers' own,
// recorded (and remembered if it grants). It returns nil when p is full
// and has not seen k, or the layers did something no answer replays: r
// then goes through the layers themselves.
func (p *policy) corsAnswer(k corsKey, r *http.Request) *corsAnswer {
	if a := p.answers.get(k); a != nil {
		return a
	}
	if p.answers.full() {
		return nil
	}
	rec := &corsRecorder{h: http.Header{}}
	p.cors.ServeHTTP(rec, r)
	if rec.wrote || rec.passed == (rec.status != 0) {
		return nil // a body, or neither passed on nor answered, or both
	}
	a := &corsAnswer{status: rec.status}
	for name, vs := range rec.h {
		a.header = append(a.header, headerLine{name, slices.Clip(slices.Clone(vs))})
	}
	if rec.passed || (rec.status >= 200 && rec.status < 300) {
		p.answers.put(k, a)
	}
	return a
}

// serveCORS answers r, a request from one of p's origins with key k, as
// p.h would: the CORS layers' headers, then either their status or the
// inner handler. It reports false, having done nothing, when r must go
// through p.h instead.
func (p *policy) serveCORS(w http.ResponseWriter, r *http.Request, k corsKey) bool {
	a := p.corsAnswer(k, r)
	if a == nil {
		return false
	}
	h := w.Header()
	for _, l := range a.header {
		// Added, as the layers add (Vary in particular): nothing before
		// them in the chain sets any of these names, and what follows may
		// add to them.
		if old := h[l.name]; old != nil {
			h[l.name] = append(old[:len(old):len(old)], l.values...)
		} else {
			h[l.name] = l.values
		}
	}
	if a.status != 0 {
		w.WriteHeader(a.status)
		return true
	}
	p.inner.ServeHTTP(w, r)
	return true
}
