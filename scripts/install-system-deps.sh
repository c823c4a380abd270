#!/usr/bin/env bash
# Installs the Debian packages sealer's tests and demo use, when missing, and makes sure
# binfmt_misc runs arm64 binaries through qemu-user-static. Needs root on Debian 12.
set -euo pipefail
packages=(
    skopeo docker-registry qemu-user-static binfmt-support debootstrap systemd-container
    openssh-server openssh-client rsync iproute2 file util-linux procps
    gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross zstd
    bubblewrap strace
    aria2 opentracker mktorrent
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
# Flag C: an arm64 setuid program (sudo on a sandbox host) runs with the credentials of the
# program, not of qemu. Debian registers the entry without it; registered again with it.
entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
if ! grep -q '^flags: .*C' "$entry"; then
    interpreter=$(sed -n 's/^interpreter //p' "$entry")
    echo -1 > "$entry"
    printf '%s' ':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$interpreter"':OCPF' \
        > /proc/sys/fs/binfmt_misc/register
fi
