#!/usr/bin/env bash
# apt-get install the Debian packages given as arguments, with sudo when not root.
# Used by tools/install_browser.sh and tools/install_sandbox.sh.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "$@"
