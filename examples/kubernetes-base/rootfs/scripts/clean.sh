#!/bin/sh
# Run by sealer delete on every host, as root, from the rootfs directory: removes what
# scripts/init.sh installed (containerd, its unit, configuration, binaries and data), and
# nothing when the containerd on the host is not the one it installed.
set -eu
mark="# installed by sealer's example base (scripts/init.sh); its scripts/clean.sh removes it"
config=/etc/containerd/config.toml
unit=/etc/systemd/system/containerd.service
[ -f "$config" ] && grep -qxF "$mark" "$config" || exit 0
if [ -f "$unit" ] && grep -qxF "$mark" "$unit"; then
    systemctl disable --now --quiet containerd.service 2>/dev/null || true
    rm -f "$unit"
    systemctl daemon-reload 2>/dev/null || true
fi
start-stop-daemon --stop --oknodo --retry 10 --remove-pidfile --pidfile /run/containerd-sealer.pid >/dev/null
# whatever containerd mounted (snapshots of running containers) before its data goes
grep -o ' /var/lib/containerd/[^ ]*\| /run/containerd/[^ ]*' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || true
done
rm -rf /run/containerd
# what containerd made: its data whole, the CNI directories only when nothing else is in them
made=/etc/containerd/sealer-made-dirs
if [ -f "$made" ]; then
    sort -r "$made" | while read -r d; do
        case "$d" in
            /var/lib/containerd | /opt/containerd) rm -rf "$d" ;;
            /etc/cni | /etc/cni/net.d) rmdir "$d" 2>/dev/null || true ;;
        esac
    done
fi
rm -f /usr/local/bin/containerd /usr/local/bin/containerd-shim-runc-v2 /usr/local/bin/ctr /usr/local/sbin/runc \
    "$made" "$config"
rmdir /etc/containerd 2>/dev/null || true
