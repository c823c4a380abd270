#!/usr/bin/env bash
# make demo: build the example base and app for linux/amd64 and linux/arm64, show them, then
# (when the sandbox can be made here) run the app on an amd64 master and an arm64 node.
# make demo-clean: remove the demo's store and sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export SEALER_ROOT=${SEALER_ROOT:-/var/lib/sealer-demo}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${1:-}" = clean ]; then
    if sealer sandbox ls >/dev/null 2>&1; then sealer sandbox down demo 2>/dev/null || true; fi
    rm -rf "$SEALER_ROOT"
    echo "demo removed"
    exit 0
fi

say "sealer build --platform linux/amd64,linux/arm64 -t kubernetes:v1.19.8 examples/kubernetes-base"
sealer build --platform linux/amd64,linux/arm64 -t kubernetes:v1.19.8 examples/kubernetes-base
say "sealer build --platform linux/arm64,linux/amd64 -t kubernetes-multi-arch:v1.19.8 examples/multi-arch"
sealer build --platform linux/arm64,linux/amd64 -t kubernetes-multi-arch:v1.19.8 examples/multi-arch
say "sealer images"
sealer images
say "sealer inspect kubernetes-multi-arch:v1.19.8   (the manifests list)"
sealer inspect kubernetes-multi-arch:v1.19.8
say "sealer inspect kubernetes-multi-arch:v1.19.8 --platform linux/arm64   (the arm64 image)"
sealer inspect kubernetes-multi-arch:v1.19.8 --platform linux/arm64
say "skopeo, an independent OCI reader, on the store"
skopeo inspect --raw "oci:$SEALER_ROOT:kubernetes-multi-arch:v1.19.8"; echo
