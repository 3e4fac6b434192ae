#!/usr/bin/env bash
# ensure-browsers.sh: install from Debian's packages whatever the browser
# suite (e2e/) needs and is missing: Chromium, Firefox ESR, WebKitGTK's
# WebDriver (with MiniBrowser), Xvfb for it, and certutil to give Firefox
# the test CA. Without one, its engine's part of the suite skips, or fails
# under CI=true.
set -euo pipefail

# binary:package, one a line (MiniBrowser's directory is the
# architecture's).
needs="
/usr/bin/chromium:chromium
/usr/lib/firefox-esr/firefox-esr:firefox-esr
/usr/bin/WebKitWebDriver:webkit2gtk-driver
/usr/lib/*/webkit2gtk-4.1/MiniBrowser:libwebkit2gtk-4.1-0
/usr/bin/Xvfb:xvfb
/usr/bin/certutil:libnss3-tools
"
have() { # a path, maybe with a glob
	local p
	for p in $1; do [ -x "$p" ] && return 0; done
	return 1
}
missing=""
for n in $needs; do
	have "${n%%:*}" || missing="$missing ${n##*:}"
done
[ -z "$missing" ] && exit 0
echo "ensure-browsers: installing Debian's$missing for the end-to-end suite"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
# shellcheck disable=SC2086 # one package a word
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
for n in $needs; do
	if ! have "${n%%:*}"; then
		echo "ensure-browsers: ${n%%:*} is still missing after installing ${n##*:}" >&2
		exit 1
	fi
done
