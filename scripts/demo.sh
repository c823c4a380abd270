#!/usr/bin/env bash
# make demo: build the example base and app for linux/amd64 and linux/arm64, start a sandbox of
# an amd64 master and an arm64 node (network namespaces with sshd; arm64 through qemu-user),
# run the app on it, and show that each host got the bits of its own architecture.
# make demo-clean: remove the demo's sandbox, clusters and store.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export SEALER_ROOT=${SEALER_ROOT:-/var/lib/sealer-demo}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${1:-}" = clean ]; then
    sealer sandbox down demo 2>/dev/null || true
    python scripts/upstream-registry.py stop "$SEALER_ROOT/upstream" 2>/dev/null || true
    rm -rf "$SEALER_ROOT"
    echo "demo removed (the cached sandbox userlands stay in /var/lib/sealer-sandbox/userlands)"
    exit 0
fi

say "a loopback stand-in for docker.io, seeded with stand-in images the example's manifests name"
upstream=$(python scripts/upstream-registry.py start "$SEALER_ROOT/upstream")
export SEALER_REGISTRY_MIRRORS="docker.io=$upstream"
echo "SEALER_REGISTRY_MIRRORS=$SEALER_REGISTRY_MIRRORS"

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

say "sealer sandbox up demo --hosts amd64,arm64   (the first time builds the userlands: a few minutes)"
if sealer sandbox ls --output json | grep -q '"sandbox": "demo"'; then sealer sandbox ls; else sealer sandbox up demo --hosts amd64,arm64; fi
master=$(sealer sandbox ls --output json | python3 -c 'import json,sys; print([h["address"] for h in json.load(sys.stdin) if h["name"]=="demo-1"][0])')
node=$(sealer sandbox ls --output json | python3 -c 'import json,sys; print([h["address"] for h in json.load(sys.stdin) if h["name"]=="demo-2"][0])')
key=/var/lib/sealer-sandbox/sandboxes/demo/id_ed25519

say "sealer run kubernetes-multi-arch:v1.19.8 -m $master -n $node --pk $key --cluster demo"
sealer run kubernetes-multi-arch:v1.19.8 -m "$master" -n "$node" --pk "$key" --cluster demo

on() { ssh -q -i "$key" -o UserKnownHostsFile="$SEALER_ROOT/clusters/demo/known_hosts" "root@$1" "$2"; }
elf='import sys; m=open(sys.argv[1],"rb").read(20)[18:20]; print({b"\x3e\x00":"x86-64",b"\xb7\x00":"aarch64"}.get(m,m.hex()))'
for host in "$master" "$node"; do
    say "host $host"
    on "$host" "echo \"platform:        \$(uname -m) (\$(hostname))\"; printf 'bin/helm ELF:    '; python3 -c '$elf' /var/lib/sealer/data/demo/rootfs/bin/helm"
done
say "bin/helm executed on the arm64 node $node"
on "$node" /var/lib/sealer/data/demo/rootfs/bin/helm\ version
say "the registry on the master serves each cached image for both platforms (skopeo, from outside the sandbox)"
skopeo inspect --raw --tls-verify=false "docker://$master:5000/kubernetesui/dashboard:v2.5.1" \
    | python3 -c 'import json,sys; [print(" ", m["digest"][:19], m["platform"]) for m in json.load(sys.stdin)["manifests"]]'
say "the control plane: etcd's members on the master, the nodes as the arm64 node's kubelet reads them"
on "$master" "bash -lc 'etcdctl member list -w table'"
on "$node" "kubectl --kubeconfig /etc/kubernetes/kubelet.conf get nodes -o wide"
say "what the kubeadm, helm and kubectl stand-ins were asked to do, in order"
for host in "$master" "$node"; do echo "-- $host"; on "$host" "cat /var/lib/sealer/data/demo/standin-calls.log"; done
say "run again: nothing changes"
sealer run kubernetes-multi-arch:v1.19.8 -m "$master" -n "$node" --pk "$key" --cluster demo
echo
echo "make demo-clean removes the sandbox, the cluster state and the demo store."
