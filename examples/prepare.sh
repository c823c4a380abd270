#!/usr/bin/env bash
# Fetches and builds the per-architecture binaries the examples carry (they are not in git):
#   kubernetes-base/{amd64,arm64}/bin/registry  Debian's docker-registry, unpacked from its packages
#   kubernetes-base/{amd64,arm64}/cri/          Debian's containerd, containerd-shim-runc-v2, ctr and runc
#   multi-arch/{amd64,arm64}/helm               the helm stand-in (standins/helm.c), static ELF per arch
#   kubernetes-base/{amd64,arm64}/bin/haproxy   Debian's haproxy (and lib/haproxy/: the libraries a minimal
#                                               Debian 12 lacks), the API server's load balancer on the nodes
#   kubernetes-base/{amd64,arm64}/bin/aria2c    Debian's aria2 (and lib/aria2/: the libraries a minimal
#                                               Debian 12 lacks), what sealer's swarm delivery runs on hosts
# Needs root and Debian: it installs gcc-aarch64-linux-gnu when missing and downloads Debian 12's
# docker-registry, containerd, runc and aria2 packages of both architectures through apt with a private
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

# Debian's aria2c for one architecture, with the shared libraries a minimal Debian 12 host lacks
# beside it (lib/aria2/; bin/aria2c is a wrapper that points the loader there), so that sealer's
# swarm delivery can send it to a host first (the small part, by rsync, to every host through
# the controller's uplink: its size counts N times). libaria2 links libxml2 (and it ICU) for
# Metalink and XML-RPC only, which a BitTorrent download never parses: a stub of the four
# functions it calls stands in for both, so the tool is 4.3 MB (1.6 MB compressed, from 3.3).
ARIA2_DEBS=(aria2 libaria2-0 libssh2-1 libc-ares2)
fetch_aria2() {
    local arch=$1 cc=$2 base="$here/kubernetes-base/$1"
    # a tree made before the stub (it carried ICU) is made again
    [ -x "$base/bin/aria2c" ] && [ -x "$base/lib/aria2/aria2c" ] && [ ! -e "$base/lib/aria2/libicuuc.so.72" ] &&
        return 0
    local apt_opts=(-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache"
                    -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64" -qq)
    mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs"
    [ -f "$cache/apt/.updated" ] || { apt-get "${apt_opts[@]}" update && touch "$cache/apt/.updated"; }
    local pkg
    for pkg in "${ARIA2_DEBS[@]}"; do
        ls "$cache/debs/${pkg}_"*"_$arch.deb" >/dev/null 2>&1 ||
            (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "$pkg:$arch" 2>/dev/null)
    done
    local tmp; tmp=$(mktemp -d)
    for pkg in "${ARIA2_DEBS[@]}"; do dpkg-deb -x "$cache/debs/${pkg}_"*"_$arch.deb" "$tmp"; done
    local lib="$base/lib/aria2"
    rm -rf "$lib" && mkdir -p "$lib" "$base/bin"
    install -m 0755 "$tmp/usr/bin/aria2c" "$lib/aria2c"
    local so
    for so in libaria2.so.0 libssh2.so.1 libcares.so.2; do
        cp -L "$tmp/usr/lib/"*-linux-gnu/"$so" "$lib/$so"
    done
    # each fails as libxml2 does on a parser it could not make; the versions are the ones
    # libaria2 names (its BIND_NOW load checks them and every symbol before main)
    cat > "$tmp/xml.c" <<'STUB'
void *xmlCreatePushParserCtxt(void *sax, void *user, const char *chunk, int size, const char *name)
{ (void)sax; (void)user; (void)chunk; (void)size; (void)name; return 0; }
void xmlFreeParserCtxt(void *ctxt) { (void)ctxt; }
int xmlParseChunk(void *ctxt, const char *chunk, int size, int terminate)
{ (void)ctxt; (void)chunk; (void)size; (void)terminate; return -1; }
int xmlCtxtResetPush(void *ctxt, const char *chunk, int size, const char *name, const char *encoding)
{ (void)ctxt; (void)chunk; (void)size; (void)name; (void)encoding; return -1; }
STUB
    cat > "$tmp/xml.map" <<'MAP'
LIBXML2_2.4.30 { global: xmlCreatePushParserCtxt; xmlFreeParserCtxt; xmlParseChunk; local: *; };
LIBXML2_2.6.1 { global: xmlCtxtResetPush; } LIBXML2_2.4.30;
MAP
    "$cc" -shared -fPIC -Os -s -Wl,-soname,libxml2.so.2 -Wl,--version-script="$tmp/xml.map" \
        -o "$lib/libxml2.so.2" "$tmp/xml.c"
    cat > "$base/bin/aria2c.tmp" <<'WRAPPER'
#!/bin/sh
# Debian's aria2c with the libraries it brings (../lib/aria2), wherever this tree is
here=$(dirname "$0")/../lib/aria2
LD_LIBRARY_PATH=$here${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec "$here/aria2c" "$@"
WRAPPER
    chmod 0755 "$base/bin/aria2c.tmp" && mv "$base/bin/aria2c.tmp" "$base/bin/aria2c"
    rm -rf "$tmp"
}

# Debian's haproxy for one architecture: the nodes' load balancer in front of the masters' API
# servers (roles/sealer_kubernetes/tasks/balance.yml). A minimal Debian 12 has its libc, OpenSSL,
# PCRE2 and libsystemd; Lua and the OpenTracing wrapper it links come beside it in lib/haproxy/,
# and bin/haproxy is a wrapper that points the loader there.
HAPROXY_DEBS=(haproxy liblua5.3-0 libopentracing-c-wrapper0 libopentracing1)
fetch_haproxy() {
    local arch=$1 base="$here/kubernetes-base/$1"
    [ -x "$base/bin/haproxy" ] && [ -x "$base/lib/haproxy/haproxy" ] && return 0
    local pkg
    for pkg in "${HAPROXY_DEBS[@]}"; do fetch_deb "$pkg" "$arch"; done
    local tmp; tmp=$(mktemp -d)
    for pkg in "${HAPROXY_DEBS[@]}"; do dpkg-deb -x "$cache/debs/${pkg}_"*"_$arch.deb" "$tmp"; done
    local lib="$base/lib/haproxy"
    rm -rf "$lib" && mkdir -p "$lib" "$base/bin"
    install -m 0755 "$tmp/usr/sbin/haproxy" "$lib/haproxy"
    local so
    for so in liblua5.3.so.0 libopentracing-c-wrapper.so.0 libopentracing.so.1; do
        cp -L "$tmp/usr/lib/"*-linux-gnu/"$so" "$lib/$so"
    done
    cat > "$base/bin/haproxy.tmp" <<'WRAPPER'
#!/bin/sh
# Debian's haproxy with the libraries it brings (../lib/haproxy), wherever this tree is
here=$(dirname "$(readlink -f "$0")")/../lib/haproxy
LD_LIBRARY_PATH=$here${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec "$here/haproxy" "$@"
WRAPPER
    chmod 0755 "$base/bin/haproxy.tmp" && mv "$base/bin/haproxy.tmp" "$base/bin/haproxy"
    rm -rf "$tmp"
}

# containerd (its daemon, the runc v2 shim and ctr) and runc: what scripts/init.sh installs
fetch_runtime() {
    unpack_bins containerd "$1" "$here/kubernetes-base/$1/cri" \
        usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr
    unpack_bins runc "$1" "$here/kubernetes-base/$1/cri" usr/sbin/runc
}

# etcd and etcdctl: the cluster's store on every master (the stand-in kubeadm runs them)
fetch_etcd() {
    unpack_bins etcd-server "$1" "$here/kubernetes-base/$1/bin" usr/bin/etcd
    unpack_bins etcd-client "$1" "$here/kubernetes-base/$1/bin" usr/bin/etcdctl
}

# openssl (the stand-in kubeadm makes the cluster's certificates with it; a minimal Debian 12 has
# libssl but not the tool) and PyYAML without its C part (kubectl apply -f reads YAML manifests)
fetch_standin_libs() {
    local dest="$here/kubernetes-base/$1/lib/standin"
    unpack_bins openssl "$1" "$dest" usr/bin/openssl
    [ -f "$dest/yaml/__init__.py" ] && return 0
    fetch_deb python3-yaml "$1"
    local tmp; tmp=$(mktemp -d)
    dpkg-deb -x "$cache/debs"/python3-yaml_*_"$1".deb "$tmp"
    rm -rf "$dest/yaml.tmp" && mkdir -p "$dest/yaml.tmp"
    install -m 0644 "$tmp"/usr/lib/python3/dist-packages/yaml/*.py "$dest/yaml.tmp/"
    rm -rf "$dest/yaml" && mv "$dest/yaml.tmp" "$dest/yaml"
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
fetch_aria2 amd64 gcc
fetch_aria2 arm64 aarch64-linux-gnu-gcc
fetch_runtime amd64
fetch_runtime arm64
fetch_etcd amd64
fetch_etcd arm64
fetch_standin_libs amd64
fetch_standin_libs arm64
fetch_haproxy amd64
fetch_haproxy arm64
