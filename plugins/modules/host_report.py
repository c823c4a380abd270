# The documentation of the action plugin sealer.cluster.host_report (plugins/action/host_report.py);
# Ansible reads a module's documentation from here.
from __future__ import annotations

DOCUMENTATION = r"""
module: host_report
short_description: Run a shell script on the host and return its one-line JSON report as data
description:
  - Runs O(script) on the host as M(ansible.builtin.raw) does (one round trip, through become, no Python on the host).
  - The script's last line of output is one JSON object with C(v) (the report's version, 1); its C(changed) says
    whether the host changed, the rest comes back as RV(sealer). A script that ends without it fails the task.
version_added: 0.1.0
author: sealer developers
options:
  kind:
    description: What the report is about (C(registry-state), C(swarm), ...): the RV(sealer.kind) sealer reads it by.
    type: str
    required: true
  script:
    description: The script.
    type: str
    required: true
  executable:
    description: The shell that runs it (the connection's default shell when not given).
    type: str
  document:
    description:
      - The script's whole output is one JSON document (C(kubectl get nodes -o json)), returned as
        RV(sealer.document); the task fails when it is not.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: The script runs in check mode too; a script that changes the host says so by C(ansible_check_mode).
"""

EXAMPLES = r"""
- name: Find whether the image's commands have run
  sealer.cluster.host_report:
    kind: app-state
    script: >-
      done=false; test -e /var/lib/sealer/data/demo/app.done && done=true;
      printf '{"v": 1, "done": %s}\n' "$done"
  register: state
"""

RETURN = r"""
sealer:
  description: The script's report, with RV(sealer.kind) added.
  returned: success
  type: dict
"""
