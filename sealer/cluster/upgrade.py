"""``sealer upgrade``: a running cluster moved to a new image, one host at a time.

Everything that can be refused is refused before any host is reached (upgrade_plan.py). Then
every host receives the new rootfs beside its old one and the cluster registry serves the old and
the new images together; master0 is upgraded first (``kubeadm upgrade apply``), the other masters
one at a time, the nodes in batches (``kubeadm upgrade node``), each drained before and waited for
after; last the new image's commands run, the old rootfs and images go, and the cluster records
the new image. Each step on a host is the collection's playbook ``sealer.cluster.upgrade``; how
far each host got is saved (``upgrade.json`` in the cluster's directory) after every step, so that
the first failure, or a signal, stops the roll with the hosts not reached untouched, and running
the same upgrade again resumes it. The cluster's plugins of phase PreUpgrade run once every host
has the new rootfs, before the first host is drained; those of PostUpgrade after the last host is
Ready at the new version and the new image's commands ran, before the cluster records the new
image (upgrade_hooks.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from sealer._fs import atomic_write
from sealer.cluster.become import password_socket
from sealer.cluster.clusterfile import Cluster
from sealer.cluster.deploy import customize_run, platform_mounts, prepare_cluster
from sealer.cluster.options import BecomePassword, RunOptions, no_become_password
from sealer.cluster.prepare import registry_trees
from sealer.cluster.runner import PlaybookOptions, PlaybookResult, run_playbook
from sealer.cluster.state import UPGRADE_PROGRESS, cluster_lock, clusters_dir, load_state, resolve_name, save_state
from sealer.cluster.upgrade_hooks import HOOKS, add_to_plan, hook_plan, new_image_plugins
from sealer.cluster.upgrade_plan import Plan, PlanInput, make_plan
from sealer.errors import DeployError, SealerError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.progress import Reporter
from sealer.rootfs_cache.registry_tree import merge_trees
from sealer.store.image import Image, get_image
from sealer.store.layout import Store
from sealer.store.mount import mounted_rootfs

PROGRESS = UPGRADE_PROGRESS
# the registry tree of the old and the new images together, served during the roll
UNION_TREE = "registry-upgrade"
# what each step of a host's upgrade reports when it is done (roles/sealer_upgrade), in order
STEPS = ("drained", "switched", "kubeadm", "kubelet", "uncordoned", "ready")


@dataclass(frozen=True)
class UpgradeRequest:
    """``sealer upgrade IMAGE``: the cluster (the only one when None) and how to roll."""

    cluster: str | None
    image: str
    check: bool = False
    max_unavailable: str = "1"
    drain: bool = True
    strict_host_keys: bool = False
    become_password: BecomePassword = field(default=no_become_password, repr=False)


@dataclass
class UpgradeResult:
    plan: Plan
    cluster_dir: Path
    upgraded: list[str] = field(default_factory=list)  # hosts this run brought to the new image
    skipped: list[str] = field(default_factory=list)  # hosts a run before brought to it
    runs: list[Path] = field(default_factory=list)


class UpgradeFailed(DeployError):
    """The roll stopped at a host: what failed, and the hosts not reached."""


def saved_platforms(cdir: Path, cluster: Cluster) -> dict[str, Platform]:
    """Each host's platform as the cluster's last run recorded it (no host is reached)."""
    try:
        hostvars = yaml.safe_load((cdir / "inventory.yaml").read_text())["all"]["hosts"]
        return {h.address: Platform.parse(str(hostvars[h.address]["sealer_platform"])) for h in cluster.hosts}
    except (OSError, KeyError, TypeError, yaml.YAMLError) as err:
        where = cdir / "inventory.yaml"
        raise SealerError(f"cluster {cluster.name}: {where} does not say every host's platform") from err


def load_progress(cdir: Path) -> dict[str, Any]:
    path = cdir / PROGRESS
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise SealerError(f"{path} is not valid JSON: {err}") from err
    return data if isinstance(data, dict) else {}


def host_progress(cdir: Path) -> tuple[str, dict[str, str]]:
    """The image an unfinished upgrade goes to, and how far each host got ('' when none)."""
    data = load_progress(cdir)
    hosts = data.get("hosts")
    return str(data.get("image") or ""), {str(k): str(v) for k, v in hosts.items()} if isinstance(hosts, dict) else {}


def save_progress(cdir: Path, image: str, ids: dict[str, str], hosts: dict[str, str]) -> None:
    text = json.dumps({"image": image, "ids": ids, "hosts": hosts}, indent=2, sort_keys=True) + "\n"
    atomic_write(cdir / PROGRESS, text.encode(), mode=0o600)


def platform_ids(image: Image) -> dict[str, str]:
    """What an upgrade's progress belongs to: the image's id per platform (a name built again is
    another image, whose upgrade starts afresh)."""
    return {str(p.platform): p.id for p in image.platforms}


def plan_upgrade(store: Store, request: UpgradeRequest) -> tuple[Plan, Cluster, Image]:
    """The plan, after every check that needs no host (a refusal raises), with the plugins each
    upgrade phase runs (the saved Clusterfile's and the new image's)."""
    name = resolve_name(store, request.cluster)
    cdir = clusters_dir(store) / name
    cluster = load_state(store, name)
    old = get_image(store, cluster.image)
    new = get_image(store, Reference.parse(request.image))
    platforms = saved_platforms(cdir, cluster)
    target, hosts = host_progress(cdir)
    if target and target != new.name:
        raise SealerError(
            f"cluster {name} is half way through an upgrade to {target} ({cdir / PROGRESS}): finish it with "
            f"sealer upgrade {target} --cluster {name}"
        )
    ids = platform_ids(new)
    if load_progress(cdir).get("ids", ids) != ids:  # the name points at another build: start again
        hosts = {}
    done = frozenset(a for a, step in hosts.items() if step == "done")
    given = PlanInput(cluster, old, new, platforms, done, request.max_unavailable, request.drain)
    plan = make_plan(store, given)
    image_plugins = new_image_plugins(store, new.for_platform(platforms[cluster.masters[0].address]), cluster.env)
    add_to_plan(plan, hook_plan(cluster, image_plugins))
    return plan, cluster, new


def upgrade_cluster(
    store: Store, request: UpgradeRequest, reporter: Reporter, confirm: Callable[[Plan], bool]
) -> UpgradeResult:
    """Upgrade the cluster to ``request.image``; ``confirm`` is shown the plan (a check stops there)."""
    plan, cluster, new = plan_upgrade(store, request)
    cdir = clusters_dir(store) / cluster.name
    result = UpgradeResult(plan, cdir, skipped=[h.address for h in plan.hosts if h.done])
    if request.check or not confirm(plan):
        return result
    with cluster_lock(cdir):
        _roll(store, plan, cluster, new, request, reporter, result)
    return result


@dataclass
class _Roll:
    """One upgrade's playbook runs: the inventory, the variables every run gets, the progress."""

    cdir: Path
    plan: Plan
    extravars: dict[str, Any]
    ids: dict[str, str]
    hosts: dict[str, str]
    reporter: Reporter
    result: UpgradeResult
    hooks: frozenset[str] = frozenset()  # the upgrade phases that have plugins to run

    def play(self, tags: str, limit: str | None = None, **extra: Any) -> PlaybookResult:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        run_dir = self.cdir / "runs" / f"{stamp}-upgrade-{tags}"
        self.result.runs.append(run_dir)
        options = PlaybookOptions(extravars={**self.extravars, **extra}, tags=tags, limit=limit)
        return run_playbook("upgrade", self.cdir / "inventory.yaml", run_dir, self.reporter, options)

    def record(self, address: str, step: str) -> None:
        self.hosts[address] = step
        save_progress(self.cdir, self.plan.new_image, self.ids, self.hosts)

    def stop(self, result: PlaybookResult, waiting: list[str]) -> UpgradeFailed:
        lines = [str(f) for f in result.failures]
        if waiting:
            lines.append(f"not reached, still at {self.plan.old_image}: {', '.join(waiting)}")
        lines.append(f"{self.plan.cluster} still records {self.plan.old_image}; run the same sealer upgrade to resume")
        return UpgradeFailed("\n".join(lines) + f"\n(ansible-runner output in {result.run_dir})")


def _roll(
    store: Store, plan: Plan, cluster: Cluster, new: Image, request: UpgradeRequest, reporter: Reporter,
    result: UpgradeResult,
) -> None:  # fmt: skip
    cdir = clusters_dir(store) / cluster.name
    old = get_image(store, cluster.image)
    # the cluster's files made for the new image; the saved Clusterfile keeps the old one until the end
    options = RunOptions(request.strict_host_keys, request.become_password)
    ready = prepare_cluster(store, cluster, new, reporter, options)
    ids = platform_ids(new)
    _, hosts = host_progress(cdir)
    if load_progress(cdir).get("ids", ids) != ids:
        hosts = {}
    union = cdir / UNION_TREE
    with reporter.task(f"merging the registries of {old.name} and {new.name}"):
        platforms = sorted({f.platform for f in ready.facts.values()})
        trees = registry_trees(store, [i.for_platform(p) for i in (old, new) for p in platforms])
        if trees:
            merge_trees(union, trees, replace=True)
    with contextlib.ExitStack() as stack:
        for platform, target in platform_mounts(cdir, ready.facts).items():
            with reporter.task(f"mounting the {platform} rootfs of {new.name}"):
                stack.enter_context(mounted_rootfs(store, new.for_platform(platform), target))
        with reporter.task("applying the Configs and env to the new rootfs, and planning the plugins"):
            ready.customized = customize_run(cluster, ready, cdir, "upgrade", [])
        planned = ready.inventory["all"]["vars"]["sealer_plugins_plan"]
        extravars: dict[str, Any] = {
            "sealer_upgrade_version": plan.new_version,
            "sealer_upgrade_drain_flags": plan.drain_flags,
            "sealer_upgrade_kubeadm": plan.kubeadm,
            "sealer_upgrade_drain": plan.drain,
        }
        if ready.become_password is not None:
            extravars.update(stack.enter_context(password_socket(ready.become_password)))
        hooks = frozenset(phase for phase in HOOKS if planned.get(phase))
        roll = _Roll(cdir, plan, extravars, ids, hosts, reporter, result, hooks)
        save_progress(cdir, plan.new_image, ids, hosts)
        with deferred_signals() as interrupted:
            _stage(roll, union if trees else None)
            waiting = [h.address for h in plan.hosts if roll.hosts.get(h.address) != "done"]
            _stop_if(roll, interrupted, waiting)
            if waiting:  # a resumed upgrade whose hosts are all done has no host to run it before
                _plugins(roll, "PreUpgrade", waiting)
                _stop_if(roll, interrupted, waiting)
            _hosts(roll, interrupted)
        _finish(roll)
        _plugins(roll, "PostUpgrade", [])
    cluster.image = Reference.parse(plan.new_image)
    save_state(cdir, cluster)
    (cdir / PROGRESS).unlink(missing_ok=True)
    shutil.rmtree(union, ignore_errors=True)


@contextlib.contextmanager
def deferred_signals() -> Iterator[Callable[[], int | None]]:
    """SIGTERM and SIGINT noted, not raised, while the roll runs: a host's step runs to its end
    (a host is never left half way through a step by a signal), and the roll stops at the
    boundary, as a failure does. The block asks the function it is given for the signal that
    came (None: none); sealer's own handlers (sealer/_signals.py) are back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    got: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    for signum in previous:
        signal.signal(signum, note)
    try:
        yield lambda: got[0] if got else None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _plugins(roll: _Roll, phase: str, waiting: list[str]) -> None:
    """The plugins of an upgrade phase (the play tagged with the phase's name in lower case); a
    failing one stops the roll, ``waiting`` the hosts not upgraded yet."""
    if phase not in HOOKS:
        raise ValueError(f"{phase} is not a phase of the upgrade ({', '.join(HOOKS)})")
    if phase not in roll.hooks:
        return
    with roll.reporter.task(f"running the plugins of phase {phase}"):
        result = roll.play(phase.lower())
    if result.failures:
        raise roll.stop(result, waiting)


def _stage(roll: _Roll, union: Path | None) -> None:
    extra = {"sealer_registry_source": str(union)} if union is not None else {}
    with roll.reporter.task(f"sending {roll.plan.new_image} beside the old rootfs and serving both images"):
        result = roll.play("stage", **extra)
    if result.failures:
        raise roll.stop(result, [h.address for h in roll.plan.hosts if not h.done])
    for host in roll.plan.hosts:
        if not host.done and host.address not in roll.hosts:
            roll.record(host.address, "staged")


def _hosts(roll: _Roll, interrupted: Callable[[], int | None]) -> None:
    batches = roll.plan.batches()
    for i, batch in enumerate(batches):
        todo = [h.address for h in batch if roll.hosts.get(h.address) != "done"]
        if not todo:
            continue
        with roll.reporter.task(f"upgrading {', '.join(todo)} ({batch[0].role})"):
            result = roll.play("host", ",".join(todo))
        for address in todo:
            reached = [s for s in STEPS if result.reports.get(address, f"upgrade-{s}") is not None]
            roll.record(address, "done" if not result.failures else (reached[-1] if reached else "staged"))
        waiting = [h.address for b in batches[i + 1 :] for h in b if roll.hosts.get(h.address) != "done"]
        if result.failures:
            raise roll.stop(result, waiting)
        _stop_if(roll, interrupted, waiting)


def _stop_if(roll: _Roll, interrupted: Callable[[], int | None], waiting: list[str]) -> None:
    """A SIGINT or SIGTERM that came while a step ran ends the roll now, at a host's boundary."""
    signum = interrupted()
    if signum is None:
        return
    left = f"not reached, still at {roll.plan.old_image}: {', '.join(waiting)}" if waiting else "every host upgraded"
    raise UpgradeFailed(
        f"interrupted (signal {signum}); {left}\n{roll.plan.cluster} still records {roll.plan.old_image}; "
        "run the same sealer upgrade to resume"
    )


def _finish(roll: _Roll) -> None:
    with roll.reporter.task(f"running {roll.plan.new_image}'s commands, removing the old rootfs and images"):
        result = roll.play("finish")
    if result.failures:
        raise roll.stop(result, [])
