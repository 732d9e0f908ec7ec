#!/usr/bin/env bash
# The Debian package test (run by `make test`): builds the .deb around
# BINARY (default target/debug/scimd, the binary the tests just built: a
# release build would add minutes to CI and package the same files),
# installs it with dpkg on this machine, runs `scimd migrate` and
# `scimd serve` as the scimd user with the packaged configuration, checks
# /healthz, the user, the modes and the conffile, verifies the systemd
# unit with `systemd-analyze verify` (systemd need not be PID 1), then
# purges the package and checks that nothing is left.
#
# Needs root (dpkg -i). Elsewhere it fails, saying so, unless
# SCIMD_SKIP_PACKAGE_TEST=1 opts out explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/debug/scimd}
if [ "$(id -u)" != 0 ]; then
    if [ "${SCIMD_SKIP_PACKAGE_TEST:-}" = 1 ]; then
        echo "test-package: SKIPPED (SCIMD_SKIP_PACKAGE_TEST=1; it needs root for dpkg -i)"
        exit 0
    fi
    echo "test-package: needs root to install the package with dpkg; run as root, or set SCIMD_SKIP_PACKAGE_TEST=1 to skip it" >&2
    exit 1
fi
if dpkg-query -W -f='${Status}' scimd 2>/dev/null | grep -q 'ok installed'; then
    echo "test-package: a scimd package is already installed here; not testing over it (dpkg --purge scimd first)" >&2
    exit 1
fi
if getent passwd scimd >/dev/null || [ -e /var/lib/scimd ]; then
    echo "test-package: a scimd user or /var/lib/scimd exists already; not testing over it" >&2
    exit 1
fi

fail() { echo "test-package: FAILED: $*" >&2; exit 1; }

DEB_COMPRESSION=gzip
export DEB_COMPRESSION
deb=$(scripts/build-deb.sh "$bin")
server=""
log=$(mktemp)
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    dpkg --purge scimd >/dev/null 2>&1 || true
    rm -f "$log"
}
trap cleanup EXIT

dpkg -i "$deb" >/dev/null

getent passwd scimd | grep -q ':/var/lib/scimd:/usr/sbin/nologin$' || fail "no system user scimd"
[ "$(stat -c '%a %U:%G' /var/lib/scimd)" = "700 scimd:scimd" ] || fail "/var/lib/scimd is $(stat -c '%a %U:%G' /var/lib/scimd)"
[ "$(stat -c '%a %U:%G' /etc/scimd/scimd.toml)" = "640 root:scimd" ] || fail "/etc/scimd/scimd.toml is $(stat -c '%a %U:%G' /etc/scimd/scimd.toml)"
dpkg-query -W -f='${Conffiles}\n' scimd | grep -q '/etc/scimd/scimd.toml' || fail "scimd.toml is not a conffile"

cd /var/lib/scimd
as_scimd() { setpriv --reuid=scimd --regid=scimd --init-groups env -i PATH=/usr/bin:/bin "$@"; }
migrated=$(as_scimd scimd --config /etc/scimd/scimd.toml migrate) || fail "scimd migrate"
grep -q '^applied' <<<"$migrated" || fail "scimd migrate applied nothing: $migrated"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Not through as_scimd: a function in the background is a subshell, and
# $! must be the server itself.
setpriv --reuid=scimd --regid=scimd --init-groups env -i PATH=/usr/bin:/bin \
    SCIMD__SERVER__BIND="127.0.0.1:$port" scimd --config /etc/scimd/scimd.toml serve 2>"$log" &
server=$!
for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q '"ok"'; then ready=1; break; fi
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; fail "scimd serve exited"; }
    sleep 0.1
done
[ "${ready:-}" = 1 ] || { cat "$log" >&2; fail "/healthz did not answer"; }
curl -fsS "http://127.0.0.1:$port/readyz" | grep -q ready || fail "/readyz"
[ "$(stat -c '%a %U' /var/lib/scimd/scimd.db)" = "600 scimd" ] || fail "scimd.db is $(stat -c '%a %U' /var/lib/scimd/scimd.db)"
as_scimd scimd --config /etc/scimd/scimd.toml backup /var/lib/scimd/backup.db >/dev/null || fail "scimd backup"
kill "$server"; wait "$server" 2>/dev/null || true; server=""
cd /

# The unit: systemd need not run, its tools must be here.
if ! command -v systemd-analyze >/dev/null; then
    apt-get install -y -qq systemd >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq systemd >/dev/null; }
fi
verify=$(systemd-analyze verify /lib/systemd/system/scimd.service 2>&1) || { echo "$verify" >&2; fail "systemd-analyze verify"; }
if [ -n "$verify" ]; then echo "$verify" >&2; fail "systemd-analyze verify printed warnings"; fi

dpkg --purge scimd >/dev/null
! getent passwd scimd >/dev/null || fail "purge left the scimd user"
[ ! -e /var/lib/scimd ] || fail "purge left /var/lib/scimd"
[ ! -e /etc/scimd ] || fail "purge left /etc/scimd"
echo "test-package: ok ($deb installed, migrated, served /healthz as scimd, unit verified, purged)"
