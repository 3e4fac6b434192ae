// Package chromium holds the one set of flags with which Latchkey's own
// programs start Debian's Chromium through chromedp: the browser suite
// (e2e/) and the README screenshot (examples/spa/cmd/screenshot).
//
// The flags keep the browser hermetic on a machine with a closed network:
// headless, no sandbox (the tests run as root), a fresh profile, and none
// of the background services (updates, sync, metrics, QUIC) that would
// try to reach the outside. Callers add what is theirs: where names
// resolve (host-resolver-rules), certificates, window size, output.
package chromium
