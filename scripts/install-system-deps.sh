#!/usr/bin/env bash
# Installs the Debian packages sealer's tests and demo use, when missing, and makes sure
# binfmt_misc runs arm64 binaries through qemu-user-static. Needs root on Debian 12.
set -euo pipefail
packages=(
    skopeo docker-registry qemu-user-static binfmt-support debootstrap
    openssh-server openssh-client rsync iproute2 file util-linux procps
    gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross zstd
    bubblewrap strace
)
if [ "$(id -u)" != 0 ]; then
    echo "install-system-deps: needs root (apt-get install, binfmt_misc)" >&2
    exit 1
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The sandbox's arm64 hosts run through qemu-user-static's binfmt entry (flag F: works in chroots).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64
fi
