#!/usr/bin/env bash
# run.sh: what `make run` does. Builds Latchkey and the example SPA, then
# serves Latchkey on http://localhost:8080 (no Redis, no config: the
# in-memory store and the demo tenant) and the SPA on http://localhost:5173,
# both on loopback only: the demo prints its user's password. Both use the
# name localhost, since browsers take localhost and 127.0.0.1 for two sites
# and a page on one could not keep a session of the other; the SPA sends
# http://127.0.0.1:5173 on to http://localhost:5173. It works in every
# browser, Safari included: over plain HTTP on loopback the demo's cookie is
# not Secure (README.md, "The demo in every browser"). Ctrl-C (or SIGTERM)
# stops both, by their PIDs; so does either one exiting.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
echo "run: building bin/latchkey and bin/spa; the first build downloads the Go modules" \
	"they need (the 'go: downloading' lines), which can take a minute or two"
go build -o bin/latchkey ./cmd/latchkey
go build -o bin/spa ./examples/spa/cmd/spa
echo "run: built; starting Latchkey on 127.0.0.1:8080 and the example SPA on localhost:5173"

./bin/spa -addr localhost:5173 -api http://localhost:8080/v1/t/example &
spa=$!
./bin/latchkey serve -addr 127.0.0.1:8080 -admin-addr 127.0.0.1:8081 &
latchkey=$!
stop() { kill "$spa" "$latchkey" 2>/dev/null || true; wait "$spa" "$latchkey" 2>/dev/null || true; }
trap stop INT TERM EXIT
echo "Example SPA: open http://localhost:5173 in any browser and sign in as the demo user printed below."
wait -n "$spa" "$latchkey"
