// Package spa serves Latchkey's example single-page app: a static page that
// logs in against a Latchkey tenant on another origin with credentialed CORS
// and shows every call it makes, so that a developer can watch the session
// cookie work (or fail) in a real browser.
//
// The page is plain HTML, CSS and JavaScript embedded from static/, with no
// build step and nothing fetched from any origin other than its own and the
// Latchkey API's. The only generated file is /config.js, which hands the
// API base URL to the page; it is JSON-encoded so that no value of
// Config.API can break out of the script, and never cached so that a
// restart with another -api takes effect on reload.
//
// The page calls Latchkey through @latchkey/client (clients/js), the
// client the README recommends, as any SPA would: app.js is an ES module
// that imports createClient and the error classes from
// /latchkey-client.js, a committed copy of the built package
// (clients/js/dist/index.js, which imports nothing), so that `make run`
// needs no Node. scripts/js-test.sh (make test) fails when the copy is not
// what the build makes; `npm --prefix clients/js run sync-spa` refreshes it.
// Login, me, logout, the sessions, their revocation and the live check all
// go through the client, which sends credentials: 'include' and the JSON
// Content-Type itself, confirms a login with a me carrying the login
// answer's receipt (Latchkey-Receipt) and rejects with a
// CookieNotSentError when the browser dropped the cookie, whose reasons
// and advice the login box shows, and tells the other tabs of the page of
// a login or logout (its onChange signs them out without a reload). The
// page gives the client a fetch of its own, which records every request
// and response for the call log. Only window.latchkey.raw fetches past
// the client, exactly as it is told: it shows what the client prevents (a
// text/plain or form-encoded login, credentials left out).
//
// Self-service accounts go through the client too: a signup form (signed
// in at once, or a "check your mail" state with a resend), a
// forgot-password form, a change-password form while signed in, and a
// login that takes a username or an email address. The handler serves
// index.html at /verify and /reset as well, the pages a tenant's
// verify_url and reset_url name: a mailed link opens one with the token in
// its fragment (never sent to a server), which app.js reads with the
// client's tokenFromLocation, taking it out of the address bar first;
// /verify then verifies and signs in, /reset asks for the new password.
//
// The Diagnose panel runs Latchkey's live check (the client's doctor(),
// GET doctor, credentialed like the login) and shows what Latchkey saw and
// its verdict for this browser, or, when the browser refuses to let the
// page read the answer, the latchkey doctor command line to run instead.
//
// Security notes. Every response carries a Content-Security-Policy that
// allows scripts and styles only from the page's own origin (so no inline
// script, style or event handler runs even if markup were injected) and
// network connections only to the page's origin and the API's origin, plus
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer. The
// page writes every value it receives into the DOM as text, never as HTML.
// The session cookie itself is HttpOnly: the page never sees it, and
// proves it works only by the next call succeeding.
//
// The handler is safe for concurrent use: everything it serves is built
// once, in Handler.
package spa
