#!/usr/bin/env bash
# Install Debian's headless Chromium and its chromedriver for the browser tests
# (tests/browser). Idempotent: does nothing when both are already installed.
#
#     sudo tools/install_browser.sh        # or as root in CI
#
# The tests then use /usr/bin/chromium and /usr/bin/chromedriver; nothing is downloaded
# at test time (no Selenium Manager, no `playwright install`).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromedriver ]; then
    echo "chromium and chromedriver already installed: $(chromium --version 2>/dev/null || true)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
echo "installed: $(chromium --version)"
