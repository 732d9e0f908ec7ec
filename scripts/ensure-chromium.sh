#!/usr/bin/env bash
# Makes sure headless Chromium and chromedriver (Debian's `chromium` and
# `chromium-driver`) are installed: the console's browser test drives them.
# Installs them with apt when missing (as root, or through sudo).
set -euo pipefail

if command -v chromedriver >/dev/null 2>&1 && [ -x /usr/bin/chromium ]; then
    exit 0
fi

echo "installing chromium and chromium-driver for the browser test..." >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "chromium/chromium-driver are missing and this user cannot install them: run 'apt-get install chromium chromium-driver' as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine.
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromedriver >/dev/null
