#!/usr/bin/env bash
# lint.sh: the static checks `make test` runs before any test, on every
# module (the root, deploy/ and bench/peers/): staticcheck, go mod tidy
# -diff, and govulncheck against a vulnerability database built here.
#
# Tools run by version through the Go module proxy (go run tool@version),
# so nothing needs installing and every machine runs the same checks.
# govulncheck's database is built from the golang.org/x/vulndb module's OSV
# files with that module's own indexdb command (the public database's host
# is out of reach; the module is served), and cached per version under
# ${XDG_CACHE_HOME:-$HOME/.cache}/latchkey/vulndb.
#
# govulncheck fails the run for a vulnerability our code reaches in a module
# we require (bump the module). One in the standard library is fixed only
# by a newer Go toolchain than the machine's: it is printed, not failed on,
# so that a finding we cannot act on in a commit does not stop every run.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK=golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

for mod in . deploy bench/peers; do
	echo "lint: staticcheck ($mod)"
	(cd "$mod" && "$GO" run "$STATICCHECK" ./...)
	echo "lint: go mod tidy -diff ($mod)"
	(cd "$mod" && "$GO" mod tidy -diff)
done

cache="${XDG_CACHE_HOME:-$HOME/.cache}/latchkey/vulndb/$VULNDB_VERSION"
if [ ! -f "$cache/index/db.json" ]; then
	echo "lint: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION (once per machine)"
	src=$("$GO" mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src/data/osv" ] || { echo "lint: golang.org/x/vulndb has no data/osv"; exit 1; }
	tmp="$cache.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$(dirname "$cache")"
	"$GO" run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$tmp"
	rm -rf "$cache"
	mv "$tmp" "$cache"
fi

# go run reports any non-zero exit as 1; govulncheck's 3 (found some)
# must be told apart from its failures, so it runs as a binary.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" "$GO" install "$GOVULNCHECK"

for mod in . deploy bench/peers; do
	echo "lint: govulncheck ($mod)"
	out=$(mktemp)
	status=0
	(cd "$mod" && "$bin/govulncheck" -db "file://$cache" ./...) >"$out" 2>&1 || status=$?
	if [ "$status" -eq 0 ]; then
		tail -n 3 "$out"
	elif [ "$status" -eq 3 ]; then
		# "Found in: <package>@<version>": the standard library's versions
		# are Go's own (go1.x.y).
		grep -E '^(Vulnerability #|    Found in:|    Fixed in:)' "$out" || true
		if grep -E '^    Found in: ' "$out" | grep -vqE '@go[0-9]'; then
			echo "lint: govulncheck found a vulnerability our code reaches in a required module ($mod)"
			cat "$out"
			rm -f "$out"
			exit 1
		fi
		echo "lint: govulncheck ($mod): only standard-library findings, fixed by a newer Go toolchain than this machine's $("$GO" env GOVERSION); see above"
	else
		cat "$out"
		rm -f "$out"
		exit "$status"
	fi
	rm -f "$out"
done
