"""sealer upgrade's checks before any host is reached, and the order of its plan."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sealer.cluster import upgrade_plan
from sealer.cluster.clusterfile import Cluster, Host, SSHConfig
from sealer.cluster.upgrade_plan import PlanInput, kubeadm_runs, make_plan, parse_max_unavailable
from sealer.errors import SealerError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference

AMD, ARM = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


def test_the_same_version_calls_no_kubeadm_and_one_minor_up_does() -> None:
    assert kubeadm_runs("v1.19.8", "v1.19.8", "new") is False
    assert kubeadm_runs("v1.19.8", "v1.19.16", "new") is True
    assert kubeadm_runs("v1.19.8", "v1.20.15", "new") is True


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("v1.20.15", "v1.19.8", "older than the cluster's v1.20.15"),
        ("v1.20.15", "v1.20.2", "older than the cluster's v1.20.15"),
        ("v1.19.8", "v1.22.3", "upgrade to an image of v1.20 first"),
        ("v1.19.8", "v2.0.0", "upgrade to an image of v1.20 first"),
    ],
)
def test_a_downgrade_or_a_skipped_minor_is_refused_with_kubeadms_skew_as_the_reason(
    old: str, new: str, said: str
) -> None:
    with pytest.raises(SealerError, match="version skew") as err:
        kubeadm_runs(old, new, "app:new")
    assert said in str(err.value) and "app:new" in str(err.value)


def test_max_unavailable_is_a_number_or_a_percentage_of_the_nodes() -> None:
    assert parse_max_unavailable("2", 5) == 2
    assert parse_max_unavailable("50%", 5) == 2
    assert parse_max_unavailable("10%", 5) == 1  # at least one
    for bad in ("0", "-1", "x", "0%", "150%", ""):
        with pytest.raises(SealerError, match="--max-unavailable"):
            parse_max_unavailable(bad, 5)


def image(name: str, platforms: list[Platform], base_layers: int = 1) -> Any:
    return SimpleNamespace(
        name=name,
        platforms=[SimpleNamespace(platform=p, config=SimpleNamespace(base_layers=base_layers)) for p in platforms],
    )


def given(new: Any, **kw: Any) -> PlanInput:
    ssh = SSHConfig()
    hosts = [Host("10.0.0.1", "master", ssh), Host("10.0.0.2", "master", ssh), Host("10.0.0.4", "node", ssh),
             Host("10.0.0.3", "node", ssh), Host("10.0.0.5", "node", ssh)]  # fmt: skip
    cluster = Cluster("c", Reference.parse("app:old"), ssh, hosts)
    platforms = {"10.0.0.1": AMD, "10.0.0.2": ARM, "10.0.0.3": AMD, "10.0.0.4": ARM, "10.0.0.5": ARM}
    return PlanInput(cluster, image("app:old", [AMD, ARM]), new, platforms, **kw)


@pytest.fixture
def versions(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {"app:old": "v1.19.8", "app:new": "v1.20.15", "app:same": "v1.19.8"}
    monkeypatch.setattr(upgrade_plan, "kube_version", lambda store, img, platform: found[img.name])


def test_the_plan_goes_master0_then_each_master_then_nodes_in_batches(versions: None) -> None:
    plan = make_plan(None, given(image("app:new", [AMD, ARM]), max_unavailable="2", done=frozenset({"10.0.0.1"})))  # type: ignore[arg-type]
    assert [(h.address, h.role, h.batch, h.done) for h in plan.hosts] == [
        ("10.0.0.1", "master0", 0, True), ("10.0.0.2", "master", 1, False),
        ("10.0.0.4", "node", 2, False), ("10.0.0.3", "node", 2, False), ("10.0.0.5", "node", 3, False),
    ]  # fmt: skip
    assert "kubeadm upgrade apply v1.20.15 -y" in plan.hosts[0].steps
    assert "kubeadm upgrade node" in plan.hosts[1].steps
    assert plan.drain_flags == ["--ignore-daemonsets", "--delete-local-data"]  # kubectl 1.19's name
    assert any(
        s.startswith("drain: kubectl drain NODE --ignore-daemonsets --delete-local-data") for s in plan.hosts[2].steps
    )


def test_the_same_version_delivers_without_drain_or_kubeadm(versions: None) -> None:
    plan = make_plan(None, given(image("app:same", [AMD, ARM])))  # type: ignore[arg-type]
    assert not plan.kubeadm and not plan.drain
    assert not any("kubeadm" in s or "drain" in s for h in plan.hosts for s in h.steps)


def test_a_missing_platform_or_another_kind_of_image_is_refused(versions: None) -> None:
    with pytest.raises(SealerError, match=r"no linux/arm64/v8 \(host 10.0.0.2\)"):
        make_plan(None, given(image("app:new", [AMD])))  # type: ignore[arg-type]
    with pytest.raises(SealerError, match="kind base"):
        make_plan(None, given(image("app:new", [AMD, ARM], base_layers=0)))  # type: ignore[arg-type]


def test_a_signal_during_the_roll_is_noted_and_sealers_handlers_come_back() -> None:
    import os
    import signal

    from sealer.cluster.upgrade import deferred_signals

    before = signal.getsignal(signal.SIGTERM)
    with deferred_signals() as interrupted:
        assert interrupted() is None
        os.kill(os.getpid(), signal.SIGTERM)  # noted, not raised: the step under way runs to its end
        assert interrupted() == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
