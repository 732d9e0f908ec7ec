#!/usr/bin/env bash
# Builds the Debian package of scimd from a built binary, with dpkg-deb
# (part of dpkg, so on every Debian machine): no tool to install first.
#
#   scripts/build-deb.sh [BINARY]     (default target/release/scimd)
#
# Prints the path of the .deb (target/debian/scimd_VERSION_ARCH.deb) on
# stdout. The package's files are in pkg/debian/. Depends lists the
# Debian packages of the shared libraries the binary links, at the
# versions installed here (as dpkg-shlibdeps would, without dpkg-dev).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/scimd}
[ -x "$bin" ] || { echo "build-deb: no binary at $bin (run cargo build --release -p scimd)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
homepage=$(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)

# The package owning each library the binary needs directly, >= its
# installed upstream version.
depends=()
while read -r lib; do
    path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
    [ -n "$path" ] || { echo "build-deb: $lib not found by ldd" >&2; exit 1; }
    pkg=""
    for candidate in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
        pkg=$(dpkg -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] || { echo "build-deb: no Debian package owns $path" >&2; exit 1; }
    upstream=$(dpkg-query -W -f='${Version}' "$pkg" | sed 's/^[0-9]*://; s/-[^-]*$//')
    depends+=("$pkg (>= $upstream)")
done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1 }' | while read -r l; do
    # Only the direct dependencies (DT_NEEDED), not theirs.
    if LC_ALL=C objdump -p "$bin" 2>/dev/null | awk '/NEEDED/ { print $2 }' | grep -qx "$l"; then echo "$l"; fi
done)
[ ${#depends[@]} -gt 0 ] || { echo "build-deb: found no library dependencies (objdump missing?)" >&2; exit 1; }
depends_line=$(printf '%s\n' "${depends[@]}" | sort -u | paste -sd, - | sed 's/,/, /g')

out=target/debian
root=$out/root
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/etc/scimd" "$root/lib/systemd/system" \
    "$root/usr/share/doc/scimd"

install -m 0755 "$bin" "$root/usr/bin/scimd"
# The release profile keeps line tables for backtraces: most of the
# binary's size (120 MB to 31 MB). A package ships it stripped, as
# Debian's own do.
strip --strip-debug "$root/usr/bin/scimd"
install -m 0640 pkg/debian/scimd.toml "$root/etc/scimd/scimd.toml"
install -m 0644 pkg/debian/scimd.service "$root/lib/systemd/system/scimd.service"
install -m 0644 config/default.toml "$root/usr/share/doc/scimd/default.toml"
install -m 0644 docs/DEPLOY.md README.md "$root/usr/share/doc/scimd/"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: scimd"
    echo "Source: $homepage"
    echo
    echo "Files: *"
    echo "License: Apache-2.0"
    echo " On Debian systems the full text of the Apache License 2.0 is in"
    echo " /usr/share/common-licenses/Apache-2.0."
} >"$root/usr/share/doc/scimd/copyright"
install -m 0644 pkg/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 pkg/debian/postinst pkg/debian/prerm pkg/debian/postrm "$root/DEBIAN/"
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@DEPENDS@|$depends_line|" \
    -e "s|@HOMEPAGE@|$homepage|" pkg/debian/control >"$root/DEBIAN/control"
echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)" >>"$root/DEBIAN/control"

deb=$out/scimd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$root" "$deb" >/dev/null
rm -rf "$root"
echo "$deb"
