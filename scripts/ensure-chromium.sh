#!/usr/bin/env bash
# ensure-chromium.sh: install Debian's chromium for the browser suite when it
# is missing. Without it the suite skips, or fails under CI=true.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
	exit 0
fi
echo "ensure-chromium: installing Debian's chromium for the end-to-end suite"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
