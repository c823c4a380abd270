# sealer.cluster.finish: after the collection's run playbook, each platform's rootfs unmounted on
# the controller; after its delete playbook, the hosts reset forgotten by the cluster's state.
# An action plugin for the reasons plugins/action/prepare.py gives.
from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

try:
    from sealer.cluster.front_door import step
except ImportError as err:  # said as the task's failure, in the task
    MISSING = f"the sealer package is not importable by Ansible's Python: {err}"
else:
    MISSING = ""


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible is untyped
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("cluster", "playbook"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        if MISSING:
            return {**result, "failed": True, "msg": MISSING}
        args = self._task.args
        playbook = str(args.get("playbook") or "run")
        cluster = str(args.get("cluster") or "")
        if playbook == "run":
            result.update(step("finish_run", cluster))
        elif playbook == "delete" and self._play_context.check_mode:
            return {**result, "skipped": True, "msg": "check mode: the cluster's state is left as it is"}
        elif playbook == "delete":
            # the hosts still in the play: those whose reset failed are out of it
            hostvars = task_vars.get("hostvars") or {}
            reset = [str(hostvars[h].get("ansible_host", h)) for h in task_vars.get("ansible_play_hosts") or []]
            result.update(step("finish_delete", cluster, reset))
        else:
            result.update(failed=True, msg=f"playbook must be run or delete, not {playbook!r}")
        result.setdefault("changed", not result.get("failed", False))
        return result
