#!/bin/sh
# build.sh: the one way Latchkey's binary is built. The Dockerfile's build
# stage, `make build` and deploy's image check (cd deploy && go run
# ./cmd/image-build-check) all run this file, so the image holds what they
# test.
#
#   scripts/build.sh [OUT]    OUT defaults to bin/latchkey
#
# Environment:
#   GOOS, GOARCH  the target; unset or empty means this machine's
#   VERSION       what `latchkey version` prints; empty means the module's
#   GO            the go command (default: go)
#
# The binary is static (CGO_ENABLED=0: the distroless base has no libc),
# has no build paths in it (-trimpath) and no symbol table or DWARF (-s -w).
# POSIX sh: the build image's /bin/sh is dash.
set -eu

out=${1:-bin/latchkey}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
cd "$(dirname "$0")/.."

export CGO_ENABLED=0
exec "${GO:-go}" build -trimpath \
	-ldflags="-s -w -X main.version=${VERSION:-}" \
	-o "$out" ./cmd/latchkey
