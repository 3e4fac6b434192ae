#!/usr/bin/env bash
# fuzz.sh: fuzz every Go fuzz target briefly, one target at a time, and stop
# at the first failure. Plain `go test ./...` already replays each target's
# seed corpus (its f.Add calls and <package>/testdata/fuzz/<FuzzName>/); this
# explores beyond it. Go fuzzes one target per invocation, so every target is
# listed here: add new ones to the list.
#
# FUZZTIME is the time per target (default 5s), in go test's -fuzztime form:
# a duration, or a count of runs such as 10000x. Everything runs in-process
# or on loopback. A failing input is written to
# <package>/testdata/fuzz/<FuzzName>/, where go test replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}

fuzz() {
	echo "fuzz: $2 ($1) for $FUZZTIME"
	"$GO" test -run='^$' -fuzz="^$2\$" -fuzztime="$FUZZTIME" "$1"
}

fuzz ./session FuzzCookieDecode
fuzz ./session FuzzCodec
fuzz ./session FuzzParseTenantsFile
fuzz ./session FuzzTenantValidate
fuzz ./session FuzzNormalizeHost
fuzz ./session FuzzNewUsername
fuzz ./session FuzzDecodeRecord
fuzz ./session FuzzRecordRoundTrip
fuzz ./api FuzzLoginBody
fuzz ./api FuzzDecodeJSON
fuzz ./api FuzzTenantResolution
fuzz ./api FuzzAdminTenantBody
fuzz ./api FuzzSessionViewJSON
fuzz ./api FuzzCORSAnswers
fuzz ./cmd/latchkey FuzzParseRedisURL
