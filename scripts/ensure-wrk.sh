#!/usr/bin/env bash
# ensure-wrk.sh: install Debian's wrk for `make bench` when it is missing.
# wrk drives the benchmark's saturating cases: on two cores a load
# generator that costs more CPU per request than the server it measures
# (as Go's net/http client does) compresses every ratio toward 1.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
	exit 0
fi
echo "ensure-wrk: installing Debian's wrk for the benchmark"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
