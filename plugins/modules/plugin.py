# The documentation of the action plugin sealer.cluster.plugin (plugins/action/plugin.py);
# Ansible reads a module's documentation from here.
from __future__ import annotations

DOCUMENTATION = r"""
module: plugin
short_description: Run one Clusterfile or image plugin (or one of the image's commands) on a host, as data
description:
  - C(SHELL) runs the plugin's data with bash on the host, in O(rootfs) (in the phases C(Originally) and C(PostClean)
    in the login's home), through become, with O(env) and C(HostIP) exported. The script and the env reach the host
    on the command's stdin, into a file of root's removed after it ran; never on a command line.
  - C(HOSTNAME) sets the host's name from the plugin's C(names) (C(/etc/hostname) and the running name).
  - C(LABEL), C(TAINT) and C(CLUSTERCHECK) run on master0 through the image's kubectl; C(kubectl get nodes -o json) is
    read on the controller and the commands worked out by sealer (sealer/cluster/plugins.py).
  - A plugin that fails fails the task, its message naming the plugin, the host, the phase and the last lines of
    its output. In check mode nothing runs.
version_added: 0.1.0
author: sealer developers
options:
  plugin:
    description: The plugin as sealer's inventory gives it (C(sealer_plugins_plan)) - name, type, hosts, data or names.
    type: dict
  phase:
    description: The phase it runs in.
    type: str
  address:
    description: The host's address (C(HostIP), and the plugin's host lists name hosts by address).
    type: str
  rootfs:
    description: The cluster's rootfs directory on the host.
    type: str
  path:
    description: PATH on the host, the rootfs C(bin/) first.
    type: str
  env:
    description: The env exported to a SHELL plugin.
    type: dict
  timeout:
    description: Seconds a CLUSTERCHECK waits for the nodes to be Ready.
    type: int
  nodes:
    description: Each node's labels by address (from O(read_nodes) on master0), for plugins that select by label.
    type: dict
  read_nodes:
    description: Only read the nodes' labels through kubectl, returned as RV(sealer.nodes).
    type: bool
attributes:
  check_mode:
    support: full
    details: In check mode no plugin runs.
"""

EXAMPLES = r"""
- name: Run a SHELL plugin
  sealer.cluster.plugin:
    plugin: {name: prepare-disks, type: SHELL, hosts: [192.168.0.5], data: "mkdir -p /data"}
    phase: PreInit
    address: 192.168.0.5
    rootfs: /var/lib/sealer/data/demo/rootfs
    env: {Region: north}
"""

RETURN = r"""
sealer:
  description: >-
    What ran - kind C(plugin), the plugin's name, type and phase, C(rc), C(output) (its last lines), C(commands)
    (the kubectl commands of LABEL and TAINT); with O(read_nodes), kind C(nodes) and C(nodes).
  returned: always
  type: dict
"""
