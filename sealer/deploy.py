"""``sealer run``: detect every host's platform, write the inventory, mount each platform's
rootfs and run the playbooks, so that each host receives the bits of its own architecture.

A cluster's state lives in ``$SEALER_ROOT/clusters/<name>/``: the Clusterfile used, the
inventory (0600), the known host keys, and one ansible-runner directory per run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sealer.ansible import PlaybookResult, run_playbook
from sealer.clusterfile import Cluster, to_clusterfile
from sealer.errors import HostError, SealerError, StoreBusyError
from sealer.hosts import HostFacts, HostsError, KnownHosts, detect
from sealer.image import Image, get_image
from sealer.inventory import build_inventory, dump_inventory, platform_groups
from sealer.mount import mounted_rootfs, unmount_all
from sealer.platform import Platform
from sealer.progress import Reporter
from sealer.store import Store, atomic_write


class DeployError(SealerError):
    """The playbook failed; one line per host, task and reason."""


@dataclass
class RunResult:
    cluster: Cluster
    cluster_dir: Path
    facts: dict[str, HostFacts]
    playbook: PlaybookResult
    platforms: dict[Platform, str] = field(default_factory=dict)


def clusters_dir(store: Store) -> Path:
    return store.root / "clusters"


@contextlib.contextmanager
def cluster_lock(cdir: Path) -> Iterator[None]:
    cdir.mkdir(parents=True, exist_ok=True)
    os.chmod(cdir, 0o700)
    fd = os.open(cdir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise StoreBusyError(f"cluster {cdir.name} is being changed by another sealer command") from err
        yield
    finally:
        os.close(fd)


def check_platforms(image: Image, facts: dict[str, HostFacts]) -> dict[Platform, str]:
    """Each needed platform's image id; every host whose platform the image lacks is an error."""
    have = {p.platform: p.id for p in image.platforms}
    errors = [
        HostError(address, f"is {fact.platform}, and image {image.name} has no manifest for it")
        for address, fact in sorted(facts.items())
        if fact.platform not in have
    ]
    if errors:
        raise HostsError(errors)
    return {fact.platform: have[fact.platform] for fact in facts.values()}


def run_cluster(store: Store, cluster: Cluster, reporter: Reporter, strict_host_keys: bool = False) -> RunResult:
    image = get_image(store, cluster.image)
    cdir = clusters_dir(store) / cluster.name
    with cluster_lock(cdir):
        known = KnownHosts(cdir / "known_hosts", strict=strict_host_keys)
        with reporter.task(f"detecting the platform of {len(cluster.hosts)} hosts"):
            facts = detect(cluster.hosts, known)
        for address, fact in facts.items():
            reporter.note(f"{address}: {fact.platform} ({fact.hostname})")
        image_ids = check_platforms(image, facts)
        if any(h.ssh.pk is None for h in cluster.hosts):
            raise SealerError("sealer run delivers with SSH keys only for now: pass --pk KEY (or spec.ssh.pk)")
        inventory = build_inventory(cluster, facts, cdir, image_ids)
        atomic_write(cdir / "Clusterfile", to_clusterfile(cluster).encode(), mode=0o600)
        atomic_write(cdir / "inventory.yaml", dump_inventory(inventory).encode(), mode=0o600)
        run_dir = cdir / "runs" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        mounts = cdir / "mounts"
        unmount_all(mounts)  # left by a run that was killed
        with contextlib.ExitStack() as stack:
            for platform in sorted(platform_groups(facts)):
                with reporter.task(f"mounting the {platform} rootfs"):
                    stack.enter_context(
                        mounted_rootfs(store, image.for_platform(platform), mounts / platform.group_name)
                    )
            with reporter.task(f"running playbooks/run.yml on {len(cluster.hosts)} hosts"):
                result = run_playbook("run.yml", cdir / "inventory.yaml", run_dir, reporter)
        if result.failures:
            raise DeployError("\n".join(str(f) for f in result.failures) + f"\n(ansible-runner output in {run_dir})")
        return RunResult(cluster, cdir, facts, result, image_ids)
