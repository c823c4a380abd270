# sealer.cluster.plugin: one step of a Clusterfile's (or an image's) kind: Plugin on one host, or
# one of the image's CMDs, returned as data under the result's `sealer` key (kind "plugin").
# An action plugin: it runs on the controller and reaches the host with one shell command each
# (no Python started on the host). Secrets never reach a command line: a SHELL script and its
# env go to the host on the command's stdin, into a file only root reads, removed after it ran.
# LABEL, TAINT and CLUSTERCHECK run on master0 through the image's kubectl: what
# `kubectl get nodes -o json` says is parsed here, and the kubectl commands are worked out by
# sealer's own functions (sealer/cluster/plugins.py), as sealer run's are.
from __future__ import annotations

import json
import re
import shlex
import time
from typing import Any

from ansible.plugins.action import ActionBase

try:
    from sealer.cluster.plugins import Plugin, Selector, label_commands, nodes_by_address, not_ready, taint_commands
    from sealer.errors import SealerError
except ImportError as err:  # said as the task's failure, in the task
    MISSING = f"the sealer package is not importable by Ansible's Python: {err}"
else:
    MISSING = ""

REPORT_VERSION = 1
TAIL_LINES = 5
_SSH_NOISE = re.compile(r"^(Shared )?[Cc]onnection to \S+ closed\.?$")
# the script and its exports arrive on stdin into a file of root's (umask 077), removed after
RUN_FROM_STDIN = 'umask 077; f=$(mktemp) || exit 97; cat > "$f"; {cd}bash "$f" < /dev/null; rc=$?; rm -f "$f"; exit $rc'


def exports(env: dict[str, Any]) -> str:
    return "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in sorted(env.items()))


def tail(*texts: str) -> str:
    lines = [line.rstrip() for text in texts for line in text.splitlines()]
    lines = [line for line in lines if line.strip() and not _SSH_NOISE.match(line.strip())]
    return "\n".join(lines[-TAIL_LINES:])[-1000:]


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON object a host's script printed last (an empty one when there is none)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def json_document(stdout: str) -> dict[str, Any] | None:
    """The JSON object a command printed (kubectl's, over lines), past what sudo or the login
    said before it on the same terminal."""
    decoder = json.JSONDecoder()
    offset = 0
    for line in stdout.splitlines(keepends=True):
        if line.lstrip().startswith("{"):
            try:
                found, _ = decoder.raw_decode(stdout[offset:].lstrip())
            except ValueError:
                found = None
            if isinstance(found, dict):
                return found
        offset += len(line)
    return None


def labels_match(selectors: list[str], have: dict[str, str]) -> bool:
    """A node's labels against ``k=v[,k2=v2]`` selectors: any selector whose pairs all hold."""
    for selector in selectors:
        pairs = [p.strip().partition("=") for p in selector.split(",") if p.strip()]
        if all(have.get(k) == v for k, _, v in pairs):
            return True
    return False


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible is untyped
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("plugin", "phase", "address", "rootfs", "path", "env", "timeout", "nodes", "read_nodes"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        if MISSING:
            return {**result, "failed": True, "msg": MISSING}
        args = self._task.args
        plugin = dict(args.get("plugin") or {})
        phase = str(args.get("phase") or "")
        report: dict[str, Any] = {"v": REPORT_VERSION, "kind": "plugin", "plugin": str(plugin.get("name", "")),
                                  "type": str(plugin.get("type", "")), "phase": phase, "rc": 0, "output": "",
                                  "commands": []}  # fmt: skip
        if args.get("read_nodes"):  # the nodes' labels by address, for plugins that select by label
            nodes, done = self._nodes(args)
            if nodes is None:
                return {**result, "failed": True, "msg": tail(str(done.get("stderr") or "")) or "kubectl failed"}
            by_address = {a: n["labels"] for a, n in nodes_by_address(nodes).items()}
            return {**result, "changed": False, "sealer": {**report, "kind": "nodes", "nodes": by_address}}
        if self._play_context.check_mode:  # a check changes nothing: the plugin does not run
            return {**result, "skipped": True, "sealer": {**report, "check": True}}
        kind = report["type"]
        address = str(args.get("address") or "")
        by_label = plugin.get("labels") and kind in ("SHELL", "HOSTNAME") and address not in (plugin.get("hosts") or [])
        if by_label and not labels_match(plugin["labels"], dict((args.get("nodes") or {}).get(address) or {})):
            return {**result, "skipped": True, "skip_reason": "no label of the plugin's selector", "sealer": report}
        if kind == "SHELL":
            # before the rootfs is there (Originally) and after it is gone (PostClean): the login's home
            done = self._shell(str(plugin.get("data") or ""), args, phase not in ("Originally", "PostClean"))
        elif kind == "HOSTNAME":
            name = str((plugin.get("names") or {}).get(str(args.get("address")), ""))
            quoted = shlex.quote(name)
            # the name resolves to the host's address (sudo, kubeadm ask for it): one line of /etc/hosts
            entry = shlex.quote(f"{address} {name} # sealer HOSTNAME")
            script = (
                f'c=false; [ "$(hostname)" = {quoted} ] || {{ echo {quoted} > /etc/hostname'
                f" && {{ hostname {quoted} || hostnamectl set-hostname {quoted}; }} && c=true; }}"
                f" && {{ grep -qxF {entry} /etc/hosts || {{ echo {entry} >> /etc/hosts && c=true; }}; }}"
                ' && printf \'{"changed": %s}\\n\' "$c"'
            )
            done = self._low_level_execute_command(script)
            result["changed"] = last_json(str(done.get("stdout") or "")).get("changed") is True
        elif kind in ("LABEL", "TAINT", "CLUSTERCHECK"):
            done = self._kubectl(plugin, args, report)
            result["changed"] = bool(report["commands"])
        else:
            return {**result, "failed": True, "msg": f"plugin {report['plugin']}: unknown type {kind}"}
        rc = int(done.get("rc", 1))
        report.update(rc=rc, output=tail(str(done.get("stdout") or ""), str(done.get("stderr") or "")))
        result.setdefault("changed", True)
        result.update(rc=rc, sealer=report)
        if rc:
            where = f" ({plugin['where']})" if plugin.get("where") else ""
            result.update(failed=True, msg=(
                f"plugin {report['plugin']}{where} failed on {args.get('address')} in {phase} (exit {rc})"
                + (": " + " | ".join(report["output"].splitlines()[-3:]) if report["output"] else "")
            ))  # fmt: skip
        return result

    def _shell(self, script: str, args: dict[str, Any], in_rootfs: bool) -> dict[str, Any]:
        env = {**(args.get("env") or {}), "HostIP": str(args.get("address") or "")}
        path = str(args.get("path") or "")
        lines = exports(env) + (f"export PATH={shlex.quote(path)}\n" if path else "") + script
        rootfs = str(args.get("rootfs") or "")
        cd = f"cd {shlex.quote(rootfs)} && " if in_rootfs and rootfs else ""
        done: dict[str, Any] = self._low_level_execute_command(
            "sh -c " + shlex.quote(RUN_FROM_STDIN.format(cd=cd)), in_data=lines.encode()
        )  # fmt: skip
        return done

    def _kubectl_run(self, args: dict[str, Any], command: str) -> dict[str, Any]:
        path = str(args.get("path") or "")
        prefix = f"PATH={shlex.quote(path)} " if path else ""
        done: dict[str, Any] = self._low_level_execute_command(prefix + command)
        return done

    def _nodes(self, args: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        done = self._kubectl_run(args, "kubectl get nodes -o json")
        if int(done.get("rc", 1)):
            return None, done
        nodes = json_document(str(done.get("stdout") or ""))
        if nodes is None:
            return None, {**done, "rc": 1, "stderr": "kubectl get nodes -o json gave no JSON list of nodes"}
        return nodes, done

    def _kubectl(self, plugin: dict[str, Any], args: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
        hosts = [str(h) for h in plugin.get("hosts") or []]
        nodes, done = self._nodes(args)
        if nodes is None:
            return done
        if plugin.get("labels"):  # hosts chosen by a node label: the nodes' labels now
            known = nodes_by_address(nodes)
            hosts += [a for a, n in known.items() if a not in hosts and labels_match(plugin["labels"], n["labels"])]
        if plugin["type"] == "CLUSTERCHECK":
            deadline = time.monotonic() + int(args.get("timeout") or 300)
            while True:
                waiting = not_ready(nodes, hosts)
                if not waiting:
                    return done
                if time.monotonic() > deadline:
                    return {"rc": 1, "stderr": f"not Ready after {args.get('timeout') or 300} s: {', '.join(waiting)}"}
                time.sleep(2)
                nodes, done = self._nodes(args)
                if nodes is None:
                    return done
        known = nodes_by_address(nodes)
        names = {a: str(n["name"]) for a, n in known.items()}
        steps = Plugin(str(plugin["name"]), str(plugin["type"]), (), (Selector("all"),), str(plugin.get("data") or ""))
        try:
            if plugin["type"] == "LABEL":
                commands = label_commands(steps, names, hosts)
            else:
                commands = taint_commands(steps, names, {a: n["taints"] for a, n in known.items()}, hosts)
        except SealerError as err:  # no node has an address of the plugin's
            return {"rc": 1, "stderr": str(err)}
        report["commands"] = [shlex.join(c) for c in commands]
        if not commands:
            return {**done, "rc": 0, "stdout": ""}
        return self._kubectl_run(args, " && ".join(shlex.join(c) for c in commands))
