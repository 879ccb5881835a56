#!/usr/bin/env bash
# Debian's Chromium, for the test that renders `rdeploy bench --report` headless
# (crates/cli/tests/cli.rs). Does nothing when /usr/bin/chromium (or $CHROMIUM) exists.
set -euo pipefail
chrome="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chrome" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "no Chromium at $chrome: install Debian's chromium (sudo apt-get install chromium), or set CHROMIUM" >&2
  exit 1
fi
echo "installing Debian's chromium (once)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
