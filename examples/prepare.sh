#!/usr/bin/env bash
# Fetches and builds the per-architecture binaries the examples carry (they are not in git):
#   kubernetes-base/{amd64,arm64}/bin/registry  Debian's docker-registry, unpacked from its packages
#   multi-arch/{amd64,arm64}/helm               the helm stand-in (standins/helm.c), static ELF per arch
# Needs root and Debian: it installs gcc-aarch64-linux-gnu when missing and downloads the two
# docker-registry packages through apt with a private state directory (the system's apt
# configuration is left as it is).
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

fetch_registry() {
    local out="$here/kubernetes-base/$1/bin/registry"
    [ -x "$out" ] && return 0
    local apt_opts=(-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache"
                    -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64" -qq)
    mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs"
    if ! ls "$cache/debs"/docker-registry_*_"$1".deb >/dev/null 2>&1; then
        [ -f "$cache/apt/.updated" ] || { apt-get "${apt_opts[@]}" update && touch "$cache/apt/.updated"; }
        (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "docker-registry:$1" 2>/dev/null)
    fi
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$cache/debs"/docker-registry_*_"$1".deb "$tmp"
    mkdir -p "$(dirname "$out")"
    install -m 0755 "$tmp/usr/bin/docker-registry" "$out"
    rm -rf "$tmp"
}

need_pkg gcc
need_pkg libc6-dev
need_pkg gcc-aarch64-linux-gnu
need_pkg libc6-dev-arm64-cross
build_helm amd64 gcc
build_helm arm64 aarch64-linux-gnu-gcc
fetch_registry amd64
fetch_registry arm64
