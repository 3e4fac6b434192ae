// Package e2e is Latchkey's browser end-to-end suite. It proves the point
// of the project: a page on one origin logs in against Latchkey on another
// and the session cookie actually sticks, in real browsers of the three
// engines SPAs ship to (Chromium, Firefox, WebKit), for the deployments
// the README recommends, and fails in the ways each engine really fails
// for the ones it warns against.
//
// # The deployment
//
// TestBrowser builds ./cmd/latchkey and runs `latchkey serve` as a process
// on the test Redis (internal/redistest: REDIS_ADDR, default
// 127.0.0.1:6379), with a fresh cookie key, an admin token and a generated
// tenants file whose tenant IDs and host names carry a random run suffix
// R, since the Redis is shared; Latchkey keeps its keys under a prefix of
// the run's own (LATCHKEY_REDIS_PREFIX), deleted once it has stopped.
// In front of it, on one loopback port P, a TLS front (certificate from a
// CA made at test start) routes by Host as an ingress would:
//
//   - app.* serves the example SPA (examples/spa) configured for that
//     host's API, which calls it through @latchkey/client (the built
//     package, clients/js), but for the calls the scenarios make past it
//     on purpose (text/plain, form-encoded and credentials 'same-origin'
//     logins: what the client prevents);
//   - auth.* is reverse-proxied to Latchkey's plain-HTTP listener with the
//     Host header preserved and X-Forwarded-Proto: https, from a proxy
//     Latchkey trusts (LATCHKEY_TRUSTED_PROXIES), as the README deploys
//     it behind an ingress.
//
// Every name ends in -R.co.uk: a suffix on the Public Suffix List, since
// WebKitGTK takes a name under an unlisted TLD such as .test for a site of
// its own (see siteSuffix). None of them exists; every engine resolves
// them to the front on 127.0.0.1 and nothing else: Chromium through
// --host-resolver-rules, Firefox and WebKitGTK through a CONNECT proxy of
// the suite that tunnels only those names to the front and refuses the
// rest (their update checks and telemetry among it), so nothing leaves
// the machine. localhost, the demo's name (TestDemoInEngines), every
// engine reaches directly, as it is this machine: Chromium's rules exclude
// it, Firefox does not hand it to a proxy
// (network.proxy.allow_hijacking_localhost false) and WebKitGTK is told to
// bypass it (--ignore-host). Pages run in
// secure contexts on real-looking origins https://app.<site>:P, each a
// tenant cookie policy:
//
//	page                  API                                           tenant, policy
//	app.acme-R.co.uk   →  https://auth.acme-R.co.uk:P/v1                lax: own hostname, SameSite=Lax (host-lax)
//	app.beta-R.co.uk   →  https://auth.latchkey-R.co.uk:P/v1/t/chips    SameSite=None; Partitioned (none-partitioned)
//	app.gamma-R.co.uk  →  https://auth.latchkey-R.co.uk:P/v1/t/nochips  SameSite=None (none)
//	app.delta-R.co.uk  →  https://auth.latchkey-R.co.uk:P/v1/t/laxcross SameSite=Lax on the shared host (lax-cross-site)
//	app.other-R.co.uk  →  the chips tenant, which does not allow it
//	app.evil-R.co.uk   →  the nochips tenant, which does not allow it
//
// # The engine profiles
//
// Every scenario runs in each of seven profiles (engine_test.go), all on
// the one deployment: one engine after another, each with six scenarios
// in parallel (-parallel; LATCHKEY_E2E_PARALLEL=1 runs the engines at
// once, which overlaps only their start-ups, since -parallel bounds the
// scenarios either way):
//
//   - Chromium (Debian's chromium, driven over the DevTools protocol with
//     chromedp; trusts the front's leaf by its SPKI hash): third-party
//     cookies allowed (profile preference cookie_controls_mode 2),
//     blocked by the user (1), and allowed by the preference but blocked
//     by --test-third-party-cookie-phaseout. In Chromium 156 both switches
//     take effect: DevTools reports blocked Set-Cookie lines with the
//     reason UserPreferences or ThirdPartyPhaseout. Each scenario gets a
//     browser context of its own (an incognito-like profile).
//   - Firefox ESR (Debian's firefox-esr, headless, driven over WebDriver
//     BiDi, which it speaks itself with --remote-debugging-port; Debian
//     has no geckodriver): its default, Total Cookie Protection
//     (network.cookie.cookieBehavior 5), and cross-site cookies blocked
//     (1). Its profile holds the test CA, imported with certutil
//     (libnss3-tools), and user.js with the cookie behaviour, the proxy
//     and no background services. Each scenario gets a user context of
//     its own (a container: its own cookie jar).
//   - WebKitGTK (Debian's webkit2gtk-driver: WebKitWebDriver, the W3C
//     WebDriver of the engine, driving MiniBrowser on an Xvfb display the
//     suite starts, with tebeka/selenium as the client): MiniBrowser's
//     default policy (no third-party cookies) and the same with
//     Intelligent Tracking Prevention (--enable-itp), as Safari has it.
//     It stands in for Safari, which has no CHIPS before 26.2. It trusts
//     only the system's CA store, so sessions accept the front's
//     certificate (acceptInsecureCerts). A WebKitWebDriver holds one
//     session and a session is a MiniBrowser with an ephemeral data
//     store, so each tab is a driver and a browser of its own.
//
// # What each scenario observes
//
// Five observations, each reduced to a token that the expectation table
// (expectations.txt) holds per scenario and profile, and checked against
// it, and written with what was seen in words to
// <module>/artifacts/e2e/matrix.md, next to a screenshot per scenario and
// profile and the observed table (expectations.observed.txt):
//
//  1. the request was sent: what the front passed to Latchkey from that
//     tab (each tab tags its User-Agent), the preflight and the status,
//     cross-checked against the engine's own network log where it keeps
//     one (DevTools network events, BiDi network events);
//  2. the response was readable by the page: window.latchkey's result
//     (blocked, or the status), or the call log for the login form;
//  3. the cookie was stored: the engine's cookie jar where it shows one
//     (Chromium's Storage.getCookies, with partition keys and DevTools'
//     verdict on each Set-Cookie line; Firefox's BiDi storage.getCookies,
//     in the page's partition and in the API host's own, which tells a
//     cookie kept per top-level site from a first-party one); WebDriver
//     shows WebKitGTK's cookies of the current page only, never the API
//     host's, so there it is inferred from what the browser sent next:
//     stored if the cookie went with the next me, cleared if it went with
//     the call but not with the next me;
//  4. the cookie was sent on the next call: me() as the page reads it, and
//     whether the front saw the cookie go with it (DevTools must agree);
//  5. the page shows the user: the text of #who.
//
// Then, in the same tab, what Latchkey's doctor tells the page
// (diagnosis_test.go): after a login through the form, the login box
// carries the cookie-not-sent problem of the me that confirmed the login
// with its receipt exactly where the page shows no user, with the reason
// the doctor gives for the browser's family, and the live check (the
// Diagnose panel) gives the doctor's verdict on each profile of the
// family, the engine profile's own matching what the engine did, with the
// facts it saw (origin listed, cookie present, session valid); from a
// page the tenant does not list, CORS refuses the live check and the
// panel shows the latchkey doctor command instead.
//
// The scenarios: a login through the page's form for each of the four
// policies; logout clearing the cookie, partitioned too (the clearing
// Set-Cookie must carry Partitioned); a disallowed origin that cannot log
// in (preflight refused, the POST never leaves) nor read me, even where
// the cookie goes with it; text/plain and form-encoded logins (simple
// requests, no preflight) that store nothing from allowed (415) and
// disallowed (403) pages; a login with credentials 'same-origin', whose
// Set-Cookie the browser drops; and log out everywhere from one browser
// context ending the session of another, whose cookie stays in its jar but
// no longer works, on the partitioned and on the host-form tenant.
//
// # The table and the docs
//
// expectations.txt holds only observations: a row changes by copying the
// observed one from a run, once the reason is understood. A complete run
// (every scenario in every profile) also fails for a row it did not
// observe, and renders docs/browsers.md, the users' table of which policy
// works in which browser: it fails when the committed file differs (but
// for the line naming the engines' versions), and LATCHKEY_E2E_WRITE_DOCS=1
// writes it instead. The file is never edited by hand.
//
// # Running
//
// The suite is part of `go test ./...` (make test, which first installs the
// engines with scripts/ensure-browsers.sh). Without an engine, or Redis,
// that part skips, except under CI=true, where it fails.
// LATCHKEY_E2E_CHROMIUM and LATCHKEY_E2E_FIREFOX name other binaries than
// Debian's. Each scenario is bounded by a deadline; everything listens on
// and talks to the loopback only; every browser process, driver and Xvfb
// is stopped by its PID when its engine's scenarios end, and checked to be
// gone (children, and Firefox's re-parented crash helper, included), and
// Latchkey at the end.
//
// # The client
//
// TestClientInEngines runs @latchkey/client as the example SPA loads it
// (examples/spa/static/latchkey-client.js, the built module, which
// scripts/js-test.sh holds to the build) in one profile of each engine,
// chromium/3pc-blocked, firefox/3pc-blocked and webkit/default, at once,
// on a deployment of its own like TestBrowser's, through the page's
// window.latchkey (every call but raw goes through the client):
//
//   - the session on the tenant of the SPA's own site (host-lax): login
//     (JSON, so preflighted, then the me with the receipt, which carries
//     the cookie), me, sessions (the login's session the current one),
//     logout (JSON too), then me rejects with an UnauthenticatedError;
//     onChange told the page of the login and the logout, and only them;
//   - cookie-not-sent on the cross-site tenant without Partitioned
//     (none), which each of these profiles drops (the table says so, and
//     the test checks it does): the login is 200, and the client's login
//     rejects with a CookieNotSentError (401, cookie-not-sent) for the
//     browser family Latchkey reads, whose first reason is the doctor's
//     for that family (as checkDiagnosis computes it) and whose advice
//     ends its message; the login box shows both;
//   - two tabs of the page in one cookie jar (browserTab.Sibling: a
//     target in the same Chromium browser context, a browsing context in
//     the same Firefox user context, a window of the same WebKitGTK
//     session): a login in the first signs the second in (it asks me
//     when told), and a logout in the first signs the second out with no
//     call of its own and no reload (BroadcastChannel), after which its
//     me is 401: the cookie they share is gone.
//
// # Self-service accounts
//
// TestSignupInEngines signs up through the example SPA, in one profile of
// each engine (chromium/3pc-blocked, firefox/3pc-blocked, webkit/default),
// at once, on a deployment of its own like TestBrowser's whose host-lax
// tenant has an accounts block (signup, verification required, login by
// email, verify_url and reset_url the page's /verify and /reset) and whose
// Latchkey sends its mail to an SMTP server in the test process
// (internal/smtptest): the signup form's POST signup is 202 and the page
// says to check the mail, nobody being signed in; the mail to the address
// carries the page's /verify link with a 43-character token in the
// fragment; opening that link in the tab verifies the address and signs
// the new user in (POST email/verify 200, then the me with its receipt
// and the new cookie), the token is gone from the address bar
// (history.replaceState), and me answers the user.
//
// # The demo
//
// TestDemoInEngines proves that what `make run` gives keeps its session in
// every engine. It runs the demo's two processes as scripts/run.sh does, on
// free loopback ports: `latchkey serve` with no configuration (the in-memory
// store and the dev tenant "example", whose one origin LATCHKEY_DEMO_ORIGIN
// sets to the SPA's) and the example SPA's binary on http://localhost:S,
// calling Latchkey at http://localhost:P. In one profile of each engine
// (chromium/3pc-blocked, firefox/default, webkit/default), at once, a fresh
// tab signs in as the demo user, with the password Latchkey printed, through
// the page's form; a reload must still show the user, which takes the cookie
// stored and sent over plain HTTP; a logout through the page, and another
// reload, must show no one. It needs no Redis.
//
// # The README screenshot
//
// TestScreenshot, behind the screenshot build tag (`make screenshot`),
// retakes docs/example-spa.png from what `make run` gives: it runs
// scripts/run.sh, signs in as the demo user through the example SPA in the
// same hermetic Chromium, checks that the session survives a reload, and
// writes the PNG only if every step held.
package e2e
