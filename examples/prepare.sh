#!/usr/bin/env bash
# Fetches and builds the per-architecture binaries the examples carry (they are not in git):
#   kubernetes-base/{amd64,arm64}/bin/registry  Debian's docker-registry, unpacked from its packages
#   kubernetes-base/{amd64,arm64}/cri/          Debian's containerd, containerd-shim-runc-v2, ctr and runc
#   multi-arch/{amd64,arm64}/helm               the helm stand-in (standins/helm.c), static ELF per arch
# Needs root and Debian: it installs gcc-aarch64-linux-gnu when missing and downloads Debian 12's
# docker-registry, containerd and runc packages of both architectures through apt with a private
# state directory (the system's apt configuration is left as it is).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SEALER_EXAMPLE_CACHE:-/var/cache/sealer-examples}

need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; }

build_helm() {
    local arch=$1 cc=$2 out="$here/multi-arch/$1/helm"
    [ -x "$out" ] && [ "$out" -nt "$here/standins/helm.c" ] && return 0
    mkdir -p "$(dirname "$out")"
    "$cc" -static -Os -s -o "$out.tmp" "$here/standins/helm.c"
    mv "$out.tmp" "$out"
}

# A Debian 12 package of the given architecture, downloaded once into the cache (apt with a
# private state directory; the system's apt configuration is left as it is).
fetch_deb() {
    local pkg=$1 arch=$2
    local apt_opts=(-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache"
                    -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64" -qq)
    mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs"
    if ! ls "$cache/debs/${pkg}"_*_"$arch".deb >/dev/null 2>&1; then
        [ -f "$cache/apt/.updated" ] || { apt-get "${apt_opts[@]}" update && touch "$cache/apt/.updated"; }
        (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "$pkg:$arch" 2>/dev/null)
    fi
}

# unpack_bins PKG ARCH DEST PATH...: the package's files at PATHs (inside the package) installed
# in DEST under their own names. Only the binaries a host needs: the rest of the package stays out.
unpack_bins() {
    local pkg=$1 arch=$2 dest=$3
    shift 3
    local f have=1
    for f in "$@"; do [ -x "$dest/$(basename "$f")" ] || have=0; done
    [ "$have" = 1 ] && return 0
    fetch_deb "$pkg" "$arch"
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$cache/debs/${pkg}"_*_"$arch".deb "$tmp"
    mkdir -p "$dest"
    for f in "$@"; do install -m 0755 "$tmp/$f" "$dest/$(basename "$f")"; done
    rm -rf "$tmp"
}

fetch_registry() {
    local out="$here/kubernetes-base/$1/bin/registry"
    [ -x "$out" ] && return 0
    fetch_deb docker-registry "$1"
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$cache/debs"/docker-registry_*_"$1".deb "$tmp"
    mkdir -p "$(dirname "$out")"
    install -m 0755 "$tmp/usr/bin/docker-registry" "$out"
    rm -rf "$tmp"
}

# containerd (its daemon, the runc v2 shim and ctr) and runc: what scripts/init.sh installs
fetch_runtime() {
    unpack_bins containerd "$1" "$here/kubernetes-base/$1/cri" \
        usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr
    unpack_bins runc "$1" "$here/kubernetes-base/$1/cri" usr/sbin/runc
}

need_pkg gcc
need_pkg libc6-dev
need_pkg gcc-aarch64-linux-gnu
need_pkg libc6-dev-arm64-cross
build_helm amd64 gcc
build_helm arm64 aarch64-linux-gnu-gcc
fetch_registry amd64
fetch_registry arm64
fetch_runtime amd64
fetch_runtime arm64
