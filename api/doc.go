// Package api is Latchkey's HTTP edge: the public API that browser SPAs call
// with credentials (login, me, logout, sessions) and the admin API.
//
// Every tenant gets one immutable policy built from its origin list alone:
// jub0bs/cors answers preflights and adds CORS headers to every response,
// then net/http's CrossOriginProtection refuses state-changing requests from
// origins outside the list, then the routes run. What jub0bs/cors answers
// a tenant's own origins is remembered by the policy and replayed
// (corsanswers.go), since every page load sends it the same few inputs.
// When tenants change, only
// their policies are built, and a new set sharing the others is swapped in
// atomically (UpdateTenants); there is never one origin list shared by all
// tenants. The tenant is resolved from the URL
// (path form /v1/t/{tenant}/…) or from the Host the request was sent to
// (host form /v1/…), never from a client-supplied forwarding header.
//
// Request bodies are read in one place, json.go: strict JSON from
// go-json-experiment/json, nested at most 32 levels deep, at a cost linear
// in the body's size whatever its shape. Errors become statuses in one
// place, errors.go, as RFC 9457 problem details with a stable type per
// kind; a body's problem carries the JSON Pointer of what is wrong. One
// classifier reads session's typed errors (errors.As, never their text)
// and the edge's own, and gives both the answer and the metrics' outcome
// label. Nothing here logs a header but the Origin of a refused request
// (bounded and rate-limited, refusals.go), so cookies and tokens never
// reach a log line.
//
// The doctor (session's) speaks at the edge in doctor.go: the live check
// (GET doctor) answers what Latchkey saw of a page's request and what each
// of its browser's profiles will do; and a session route called without
// the cookie but with the login's receipt (Latchkey-Receipt) answers
// cookie-not-sent with the doctor's reason, instead of unauthenticated. A
// receipt is looked at only when the cookie is missing, so `me` with a
// cookie does no more work than before, and it never opens a session.
package api
