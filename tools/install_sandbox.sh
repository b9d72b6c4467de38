#!/usr/bin/env bash
# Install Debian's bubblewrap (bwrap), the sandbox fromscratch-grade runs every submission
# in (and util-linux's unshare/setpriv, used when the grader runs as root). Idempotent:
# does nothing when bwrap is already installed.
#
#     sudo tools/install_sandbox.sh        # or as root in CI
#
# Without bwrap the grading tests skip and say why; fromscratch-grade refuses to run
# (unless --unsafe-no-sandbox) and says how to install it.
set -euo pipefail

if command -v bwrap >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1; then
    echo "bubblewrap already installed: $(bwrap --version)"
    exit 0
fi

bash "$(dirname "$0")/apt_install.sh" bubblewrap util-linux
echo "installed: $(bwrap --version)"
