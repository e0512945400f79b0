#!/usr/bin/env bash
# Browser tests drive Debian's chromium through Playwright (never Playwright's own download).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
# Another apt (an unattended upgrade, a second install) may hold dpkg's lock: wait for it
# (up to 10 minutes) instead of failing at once.
APT=(apt-get -o DPkg::Lock::Timeout=600 -qq)
echo "Installing Debian chromium and chromium-driver for the browser tests (apt-get; waits for" \
  "dpkg's lock if another apt is running)…"
$SUDO "${APT[@]}" update
DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y chromium chromium-driver >/dev/null
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
