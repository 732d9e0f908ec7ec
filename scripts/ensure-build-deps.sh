#!/usr/bin/env bash
# Makes sure the Debian packages scimd builds against are installed:
# SAML sign-in to the console verifies XML signatures with libxmlsec1
# (the samael crate's `xmlsec` feature links libxmlsec1, libxml2 and
# OpenSSL, and generates its bindings with bindgen, which needs libclang),
# and diesel links libsqlite3 and libpq. Installs what is missing with apt
# (as root, or through sudo).
set -euo pipefail

packages=(pkg-config clang libclang-dev libxml2-dev libxmlsec1-dev libssl-dev libsqlite3-dev libpq-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing build dependencies: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "missing build dependencies and this user cannot install them: run 'apt-get install ${missing[*]}' as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine.
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
