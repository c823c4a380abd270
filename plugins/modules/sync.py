# The documentation of the action plugin sealer.cluster.sync (plugins/action/sync.py), which does
# all the work on the controller; Ansible reads a module's documentation from here.
from __future__ import annotations

DOCUMENTATION = r"""
module: sync
short_description: Send a directory to the host with the controller's rsync, and say what was sent as data
description:
  - Runs C(rsync --archive) on the controller to the host (no Python is started on the host), with
    C(--delete-after --delay-updates) unless O(delete=false).
  - In check mode the same rsync runs with C(--dry-run): nothing is written, and the result says what a run would send.
  - The receiving side may be a shell of the caller's (O(rsync_path)) that says C(sealer-event NAME VALUE) on its
    stderr; those events come back in the result.
version_added: 0.1.0
author: sealer developers
options:
  kind:
    description: What is sent (C(rootfs), C(registry), ...): the RV(sealer.kind) sealer reads the result by.
    type: str
    required: true
  src:
    description: The controller's source directory (a trailing slash sends its contents), or a list of sources.
    type: raw
    required: true
  dest:
    description: The directory on the host.
    type: str
    required: true
  target:
    description: The host as rsync reaches it, C(user@address).
    type: str
    required: true
  rsh:
    description: The remote shell command line (C(ssh -p PORT -i KEY ...)).
    type: str
    required: true
  rsync_path:
    description: The command the host runs in place of rsync (C(sudo -n rsync), or a receiving shell).
    type: str
  timeout:
    description: Seconds without any data after which rsync gives up (0 is none).
    type: int
    default: 0
  exclude:
    description: rsync patterns left out.
    type: list
    elements: str
    default: []
  delete:
    description: Delete what the source does not have, after the transfer, and put the new files in place at its end.
    type: bool
    default: true
  relative:
    description: rsync's C(--relative) (the source's C(/./) marks what is kept of its path).
    type: bool
    default: false
  compress:
    description: rsync's C(--compress).
    type: bool
    default: false
  checksum:
    description:
      - rsync's C(--checksum) - files compared by content, not by size and modification time (every file is read on
        both ends; slower).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: Send the rootfs
  sealer.cluster.sync:
    kind: rootfs
    src: /var/lib/sealer/clusters/demo/mounts/linux-amd64/
    dest: /var/lib/sealer/data/demo/rootfs/
    target: root@10.213.1.11
    rsh: ssh -p 22 -i /root/.ssh/id_ed25519
"""

RETURN = r"""
sealer:
  description: What rsync did, as data.
  returned: always
  type: dict
  contains:
    v: {description: The report's version (1)., type: int}
    kind: {description: O(kind)., type: str}
    items: {description: Items rsync sent, deleted or changed., type: int}
    files: {description: Regular files sent (or that would be)., type: int}
    bytes: {description: Their size in bytes., type: int}
    deleted: {description: Files deleted on the host., type: int}
    paths: {description: The first 100 files sent., type: list, elements: str}
    created: {description: The receiving shell made the destination., type: bool}
    initialised: {description: The receiving shell ran the image's init script., type: bool}
    swarm_removed: {description: The receiving shell removed the swarm's directory an earlier run left., type: bool}
    would_create: {description: Check mode, the destination would be made., type: bool}
    would_initialise: {description: Check mode, the init script would run., type: bool}
    stopped: {description: Stale receivers the receiving shell stopped (pids)., type: list, elements: str}
    rc: {description: rsync's exit code., type: int}
    error: {description: rsync's last words when it failed., type: str}
    dry_run: {description: The rsync ran with --dry-run (check mode)., type: bool}
"""
