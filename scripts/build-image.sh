#!/usr/bin/env bash
# Builds the scimd container image with podman from the Containerfile,
# without pulling anything: the image is FROM scratch plus the binary and
# the shared libraries `ldd` lists for it.
#
#   scripts/build-image.sh [BINARY] [TAG]   (default target/release/scimd, scimd:latest)
#
# PODMAN may name the command and its options (e.g.
# PODMAN="podman --storage-driver vfs").
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/scimd}
tag=${2:-scimd:latest}
podman=${PODMAN:-podman}
[ -x "$bin" ] || { echo "build-image: no binary at $bin (run cargo build --release -p scimd)" >&2; exit 1; }

ctx=target/image
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/etc/scimd" "$ctx/rootfs/tmp" "$ctx/data/scimd"
chmod 0700 "$ctx/data/scimd"
chmod 1777 "$ctx/rootfs/tmp"
install -m 0755 "$bin" "$ctx/rootfs/usr/bin/scimd"
# Without the line tables the release profile keeps (most of its size).
strip --strip-debug "$ctx/rootfs/usr/bin/scimd"

# Every library the dynamic loader would load, and the loader itself, at
# the paths the binary looks for them.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ -n "$libs" ] || { echo "build-image: ldd listed no libraries for $bin" >&2; exit 1; }
for lib in $libs; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
done

cat >"$ctx/rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
scimd:x:10001:10001:scimd:/var/lib/scimd:/sbin/nologin
PASSWD
cat >"$ctx/rootfs/etc/group" <<'GROUP'
root:x:0:
scimd:x:10001:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"
cat >"$ctx/rootfs/etc/scimd/scimd.toml" <<'TOML'
# scimd in a container. Override any key with SCIMD__SECTION__KEY
# environment variables (e.g. SCIMD__DATABASE__URL=postgres://...), or
# mount another file here. Every key: config/default.toml in the sources.
[server]
bind = "0.0.0.0:8080"

[database]
url = "sqlite:///var/lib/scimd/scimd.db"
TOML

$podman build --quiet --file Containerfile --tag "$tag" "$ctx"
