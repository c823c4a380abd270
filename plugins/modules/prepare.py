# The documentation of the action plugin sealer.cluster.prepare (plugins/action/prepare.py), which
# does all the work on the controller; Ansible reads a module's documentation from here.
from __future__ import annotations

DOCUMENTATION = r"""
module: prepare
short_description: Prepare the controller for sealer's playbooks as the sealer command does
description:
  - Reads the inventory as C(sealer run -i) does (groups master or kube_control_plane, node or kube_node).
  - For O(playbook=run), detects every host's platform over SSH, checks the image has it, merges the registries,
    writes the cluster's state in sealer's store (C($SEALER_ROOT/clusters/NAME)) and mounts each platform's rootfs.
  - For O(playbook=delete), checks the hosts of the play against the cluster's state.
  - Returns, in RV(sealer.hosts), each host's C(ansible.builtin.add_host) arguments, the variables and groups of
    the inventory sealer writes.
  - Runs on the controller, in Ansible's own Python, which must be able to import the sealer package.
version_added: 0.1.0
author: sealer developers
options:
  playbook:
    description: The playbook being prepared for.
    type: str
    choices: [run, delete]
    default: run
  image:
    description: The image in sealer's store to run (O(playbook=run)).
    type: str
  cluster:
    description: The cluster's name, a DNS label (default C(my-cluster) for run, the only cluster for delete).
    type: str
attributes:
  check_mode:
    support: none
"""

EXAMPLES = r"""
- name: Prepare the controller for the run playbook
  sealer.cluster.prepare:
    image: kubernetes-multi-arch:v1.19.8
    cluster: my-cluster
  run_once: true
  register: sealer_prepared
"""

RETURN = r"""
sealer:
  description: The cluster's name and each host's add_host arguments.
  returned: success
  type: dict
"""
