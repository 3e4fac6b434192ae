#!/usr/bin/env bash
# run.sh: what `make run` does. Builds Latchkey and the example SPA, then
# serves Latchkey on http://localhost:8080 (no Redis, no config: the
# in-memory store and the demo tenant) and the SPA on http://localhost:5173.
# Ctrl-C (or SIGTERM) stops both, by their PIDs.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/latchkey ./cmd/latchkey
go build -o bin/spa ./examples/spa/cmd/spa

./bin/spa -addr localhost:5173 -api http://localhost:8080/v1/t/example &
spa=$!
./bin/latchkey serve &
latchkey=$!
stop() { kill "$spa" "$latchkey" 2>/dev/null || true; wait "$spa" "$latchkey" 2>/dev/null || true; }
trap stop INT TERM EXIT
echo "Example SPA: open http://localhost:5173 and sign in as the demo user printed below."
wait "$latchkey"
