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

bash "$(dirname "$0")/apt_install.sh" chromium chromium-driver fonts-dejavu-core
echo "installed: $(chromium --version)"
