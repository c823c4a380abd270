#!/bin/sh
# Runs on every host, as root, from the rootfs directory after the rootfs arrives (once per image
# version). A real base image installs the container runtime and kubelet here; the example
# installs the runtime it carries in cri/ (Debian 12's containerd, its runc shim, ctr and runc) as
# the unit containerd.service, reading each registry's hosts.toml from /etc/containerd/certs.d,
# where sealer points every registry the image's container images come from at the cluster
# registry. kubelet is a stand-in: the example only records that this ran. scripts/clean.sh
# (run by sealer delete) removes what this installed, and nothing else.
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
echo "$(date +%s) init.sh[$(uname -m)] $rootfs" >> "${SEALER_STANDIN_LOG:-$rootfs/../standin-calls.log}"

mark="# installed by sealer's example base (scripts/init.sh); its scripts/clean.sh removes it"
config=/etc/containerd/config.toml
unit=/etc/systemd/system/containerd.service
bins="/usr/local/bin/containerd /usr/local/bin/containerd-shim-runc-v2 /usr/local/bin/ctr /usr/local/sbin/runc"
say() { echo "init.sh: $*" >&2; }

[ -d "$rootfs/cri" ] || { say "no cri/ in the image: no container runtime installed"; exit 0; }
# a containerd this script did not install is the operator's: left as it is
ours=1
if [ -e "$config" ]; then
    grep -qxF "$mark" "$config" || ours=0
else
    for f in $bins $unit; do if [ -e "$f" ]; then ours=0; fi; done
fi
if [ -e /usr/bin/containerd ]; then ours=0; fi  # Debian's own package
if [ "$ours" = 0 ]; then
    say "a containerd this image did not install is on the host: left as it is (for the cluster registry,"\
        "its CRI registry config_path must be /etc/containerd/certs.d)"
    exit 0
fi

# the directories containerd makes when they are missing (its data, its CRI's CNI directory),
# recorded at the first install so that clean.sh removes those and no one else's
made=/etc/containerd/sealer-made-dirs
if [ ! -e "$config" ]; then
    mkdir -p /etc/containerd
    for d in /var/lib/containerd /opt/containerd /etc/cni /etc/cni/net.d; do
        if [ ! -e "$d" ]; then echo "$d"; fi
    done > "$made"
fi

changed=0
install_bin() {  # install_bin SRC DEST: only when it differs, so a re-run restarts nothing
    if ! cmp -s "$1" "$2"; then
        install -D -m 0755 "$1" "$2.sealer-new" && mv -f "$2.sealer-new" "$2" && changed=1
    fi
}
install_file() {  # install_file DEST MODE, content on stdin
    tmp="$1.sealer-new"
    mkdir -p "$(dirname "$1")" && cat > "$tmp" && chmod "$2" "$tmp"
    if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1" && changed=1; fi
}
for name in containerd containerd-shim-runc-v2 ctr; do
    install_bin "$rootfs/cri/$name" "/usr/local/bin/$name"
done
install_bin "$rootfs/cri/runc" /usr/local/sbin/runc

install_file "$config" 0644 <<TOML
$mark
version = 2

[plugins."io.containerd.grpc.v1.cri".registry]
  # one directory per registry, each with a hosts.toml (sealer writes them)
  config_path = "/etc/containerd/certs.d"
TOML

if [ -d /run/systemd/system ]; then
    install_file "$unit" 0644 <<UNIT
$mark
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
LimitNOFILE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable --quiet containerd.service
    if [ "$changed" = 1 ]; then systemctl restart containerd.service; else systemctl start containerd.service; fi
else
    # as the registry role does on hosts without systemd: start-stop-daemon, so it outlives the run
    say "no systemd on this host: containerd started with start-stop-daemon (it does not come back after a reboot)"
    pidfile=/run/containerd-sealer.pid
    [ "$changed" = 0 ] || start-stop-daemon --stop --oknodo --retry 10 --remove-pidfile --pidfile "$pidfile" >/dev/null
    start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$pidfile" \
        --exec /usr/local/bin/containerd >/dev/null
fi
# answering before this script ends: the roles after it (and the image's commands) may use it
i=0
until /usr/local/bin/ctr version >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 120 ] || { say "containerd did not answer within 60 s"; exit 1; }
    sleep 0.5
done
