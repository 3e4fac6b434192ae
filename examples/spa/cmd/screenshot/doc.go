// Command screenshot retakes the README's picture of the example SPA from
// what `make run` really gives, and checks on the way that the demo works
// in a browser:
//
//	go run ./examples/spa/cmd/screenshot -out docs/example-spa.png
//
// (`make screenshot`). It runs scripts/run.sh from the module root, reads
// the demo password it prints, and drives headless Chromium (Debian's
// /usr/bin/chromium; scripts/ensure-chromium.sh installs it) with
// chromedp: it opens http://127.0.0.1:5173/, which must send it on to
// http://localhost:5173/, signs in as the demo user through the page's
// form, loads the sessions, takes the screenshot, then reloads the page
// and requires it to still be signed in. The PNG is written only if every
// step held.
//
// Everything stays on this machine: Chromium resolves no name (localhost
// and IP literals need none). run.sh (which stops Latchkey and the SPA),
// and then Chromium, are stopped by their PIDs, and each is checked to be
// gone.
package main
