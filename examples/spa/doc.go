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
// The page also asks Latchkey's doctor why a login does not stick: its
// Diagnose panel runs the live check (GET doctor, credentialed like the
// login) and shows what Latchkey saw and its verdict for this browser, or,
// when the browser refuses to let the page read the answer, the latchkey
// doctor command line to run instead; and the me that confirms a login
// carries the login answer's receipt (Latchkey-Receipt), so that a dropped
// cookie is answered with the cookie-not-sent problem, whose reasons and
// advice the login box shows.
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
