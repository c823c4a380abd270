# The documentation of the action plugin sealer.cluster.finish (plugins/action/finish.py).
from __future__ import annotations

DOCUMENTATION = r"""
module: finish
short_description: Finish sealer's playbooks on the controller as the sealer command does
description:
  - For O(playbook=run), unmounts each platform's rootfs that M(sealer.cluster.prepare) mounted.
  - For O(playbook=delete), forgets the hosts still in the play (those reset) in the cluster's state, and removes
    the state with the cluster's last host, as C(sealer delete) does.
version_added: 0.1.0
author: sealer developers
options:
  playbook:
    description: The playbook being finished.
    type: str
    choices: [run, delete]
    default: run
  cluster:
    description: The cluster's name.
    type: str
    required: true
attributes:
  check_mode:
    support: none
"""

EXAMPLES = r"""
- name: Unmount the rootfs on the controller
  sealer.cluster.finish:
    cluster: "{{ sealer_cluster_name }}"
  run_once: true
"""

RETURN = r"""
"""
