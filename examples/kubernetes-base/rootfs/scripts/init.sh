#!/bin/sh
# Runs on every host from the rootfs directory after the rootfs arrives. A real base image
# installs the container runtime and kubelet here; the example only records that it ran.
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
echo "$(date +%s) init.sh[$(uname -m)] $rootfs" >> "${SEALER_STANDIN_LOG:-$rootfs/../standin-calls.log}"
