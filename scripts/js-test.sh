#!/usr/bin/env bash
# js-test.sh: the JavaScript client's tests (clients/js), as `make test`
# runs them: install its development packages from the npm registry exactly
# as package-lock.json pins them (npm ci), build it (tsc, which
# type-checks), and run its tests with Node's own test runner against a
# Latchkey built from this tree (clients/js/test/latchkey.js). The example
# SPA loads a committed copy of the built module
# (examples/spa/static/latchkey-client.js, so that `make run` needs no
# Node): the build must still make exactly that file.
#
# Node.js 20 or later and npm are needed. When either is missing, Debian's
# nodejs and npm packages are installed; a Node.js still missing or older
# fails the run (under CI=true as anywhere else: nothing here skips).
set -euo pipefail
cd "$(dirname "$0")/.."

have_node() {
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
}
if ! have_node; then
	echo "js-test: installing Debian's nodejs and npm for the JavaScript client's tests"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
if ! have_node; then
	echo "js-test: node or npm is still missing after installing Debian's nodejs and npm" >&2
	exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
	echo "js-test: Node.js $(node --version) is too old: the tests need 20 or later (fetch's getSetCookie, node:test)" >&2
	exit 1
fi
echo "js-test: Node.js $(node --version), npm $(npm --version)"

cd clients/js
# --ignore-scripts: no package of ours needs its install script (esbuild's
# only checks the binary its platform package already holds).
npm ci --ignore-scripts --no-audit --no-fund
npm run build
spa_copy=../../examples/spa/static/latchkey-client.js
if ! cmp -s dist/index.js "$spa_copy"; then
	echo "js-test: examples/spa/static/latchkey-client.js is not the built client (clients/js/dist/index.js); refresh it with: npm --prefix clients/js run sync-spa" >&2
	exit 1
fi
GO="${GO:-go}" npm test
