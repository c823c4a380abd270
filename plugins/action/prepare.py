# sealer.cluster.prepare: the controller-side step of the collection's playbooks run without the
# sealer command. An action plugin, not a module: it runs in ansible-playbook's own Python on the
# controller (where the sealer package is installed beside Ansible; a module on localhost would
# run in whatever interpreter Ansible discovers there), it reads the inventory sources Ansible
# was given, and what it prepares (mounts, the cluster's state) is the controller's.
from __future__ import annotations

from typing import Any

from ansible import context
from ansible.plugins.action import ActionBase
from ansible.utils.unsafe_proxy import AnsibleUnsafeText

try:
    from sealer.cluster.front_door import step
    from sealer.cluster.inventory import Unsafe
except ImportError as err:  # said as the task's failure, in the task
    MISSING = f"the sealer package is not importable by Ansible's Python: {err}"
else:
    MISSING = ""


def ansible_unsafe(value: Any) -> Any:
    """The texts sealer's inventory writes ``!unsafe`` (a plugin's script, the env, a CMD) as
    Ansible's own unsafe text: add_host then gives them on as they are, never templated."""
    if isinstance(value, Unsafe):
        return AnsibleUnsafeText(str(value))
    if isinstance(value, list):
        return [ansible_unsafe(v) for v in value]
    if isinstance(value, dict):
        return {k: ansible_unsafe(v) for k, v in value.items()}
    return value


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible is untyped
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("image", "cluster", "playbook"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        if MISSING:
            return {**result, "failed": True, "msg": MISSING}
        args = self._task.args
        playbook = str(args.get("playbook") or "run")
        sources = [str(s) for s in task_vars.get("ansible_inventory_sources") or []]
        # the cluster's name as given: None when -e sealer_cluster is absent; the -e strings as
        # typed, where Ansible drops the words after a space ("sealer_cluster=a b" arrives as a)
        cluster = None if args.get("cluster") is None else str(args["cluster"])
        typed = [str(e) for e in (context.CLIARGS.get("extra_vars") or ())]
        if playbook == "run" and self._play_context.check_mode:
            # preparing writes the cluster's state and mounts on the controller: a check must not
            result.update(failed=True, msg=(
                "ansible-playbook --check of sealer.cluster.run on an inventory is not supported: "
                "sealer run IMAGE -i INVENTORY --check reports what a run would change"
            ))  # fmt: skip
        elif playbook == "run":
            result.update(step("prepare_run", str(args.get("image") or ""), cluster, sources, typed))
        elif playbook == "delete":
            play_hosts = [str(h) for h in task_vars.get("ansible_play_hosts_all") or []]
            result.update(step("prepare_delete", cluster, sources, play_hosts, typed))
        else:
            result.update(failed=True, msg=f"playbook must be run or delete, not {playbook!r}")
        result.setdefault("changed", not result.get("failed", False))
        return dict(ansible_unsafe(result))
