// Package e2e is Latchkey's browser end-to-end suite. It proves the point
// of the project: a page on one origin logs in against Latchkey on another
// and the session cookie actually sticks, in a real browser, for the
// deployments the README recommends, and fails in the ways browsers really
// fail for the ones it warns against.
//
// # The deployment
//
// TestBrowser builds ./cmd/latchkey and runs `latchkey serve` as a process
// on the test Redis (internal/redistest: REDIS_ADDR, default
// 127.0.0.1:6379), with a fresh cookie key, an admin token and a generated
// tenants file whose tenant IDs and hostnames carry a random run suffix R,
// since the Redis is shared; Latchkey keeps its keys under a prefix of the
// run's own (LATCHKEY_REDIS_PREFIX), deleted once it has stopped.
// In front of it, on one loopback port P, a TLS front (certificate from a
// CA made at test start) routes by Host as an ingress would:
//
//   - app.*.test serves the example SPA (examples/spa) configured for that
//     host's API;
//   - auth.*.test is reverse-proxied to Latchkey's plain-HTTP listener with
//     the Host header preserved and no X-Forwarded-* header.
//
// Headless Chromium (Debian's /usr/bin/chromium) resolves every *.test
// name to 127.0.0.1 (--host-resolver-rules; nothing else resolves) and
// trusts the front's leaf by its SPKI hash
// (--ignore-certificate-errors-spki-list), so pages run in secure
// contexts on real-looking origins https://app.<site>:P:
//
//	page                 API                                       tenant
//	app.acme-R.test   →  https://auth.acme-R.test:P/v1             lax: own hostname, SameSite=Lax (same site)
//	app.beta-R.test   →  https://auth.latchkey.test:P/v1/t/chips   SameSite=None; Partitioned (cross-site)
//	app.gamma-R.test  →  https://auth.latchkey.test:P/v1/t/nochips SameSite=None, not partitioned (cross-site)
//	app.other-R.test  →  the chips tenant, which does not allow it
//	app.evil-R.test   →  the nochips tenant, which does not allow it
//
// Three browsers with fresh profiles differ in third-party cookies (3PC):
// "3pc-allowed" (profile preference profile.cookie_controls_mode=2),
// "3pc-blocked" (cookie_controls_mode=1, a user blocking them) and
// "3pc-phaseout" (mode 2 plus --test-third-party-cookie-phaseout). In
// Chromium 156 both switches take effect: DevTools reports blocked
// Set-Cookie lines with the reason UserPreferences or ThirdPartyPhaseout.
// With the preference unset, this headless Chromium blocks 3PC, so the
// allowed browser has to set it. Every scenario runs in a browser context
// of its own (an incognito-like profile with its own cookie jar).
//
// # What each scenario observes
//
// Five observations, all asserted and written as a table to
// <module>/artifacts/e2e/summary.md next to a screenshot per scenario:
//
//  1. the request was sent: DevTools network events (the request, its
//     preflight, the raw status from the network service), cross-checked
//     against what the front passed to Latchkey from that tab (each tab
//     tags its User-Agent);
//  2. the response was readable by the page: window.latchkey's result
//     (blocked, or the status), or the call log for the login form;
//  3. the cookie was stored: the browser's cookie jar (Storage.getCookies),
//     partitioned cookies and their partition key included, with DevTools'
//     verdict on each Set-Cookie line when it was not;
//  4. the cookie was sent on the next call: me() as the page reads it, and
//     the cookies DevTools says went with that request;
//  5. the page shows the user: the text of #who.
//
// The scenarios: same-site Lax in host form (3PC allowed and blocked);
// cross-site None+Partitioned in path form (allowed, blocked, phase-out),
// which must all work; the same tenant without Partitioned, where login
// reads 200 but the browser drops the cookie and me is 401 (and a control
// with 3PC allowed, where it works); logout clearing the cookie,
// partitioned too; a disallowed origin that cannot log in (preflight
// refused, the POST never leaves) nor read me, even with the cookie sent;
// text/plain and form-encoded logins (simple requests, no preflight) that
// store nothing from allowed (415) and disallowed (403) pages; a login with
// credentials 'same-origin', whose Set-Cookie the browser drops with no
// reason reported; and log out everywhere from one browser context ending
// the session of another, whose cookie stays in its jar but no longer
// works.
//
// # Running
//
// The suite is part of `go test ./...` (make test). Without Chromium or
// Redis it skips, except under CI=true, where it fails.
// LATCHKEY_E2E_CHROMIUM names another Chromium binary than
// /usr/bin/chromium. Each scenario is
// bounded by a 60 s deadline; everything listens on and talks to the
// loopback only; the browsers and Latchkey are stopped by their PIDs at
// the end, and checked to be gone.
//
// # The README screenshot
//
// TestScreenshot, behind the screenshot build tag (`make screenshot`),
// retakes docs/example-spa.png from what `make run` gives: it runs
// scripts/run.sh, signs in as the demo user through the example SPA in the
// same hermetic Chromium, checks that the session survives a reload, and
// writes the PNG only if every step held.
package e2e
