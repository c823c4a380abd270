"""What a sandbox's link rate and a run's Ansible forks become, before any host is involved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sealer.cluster import runner
from sealer.errors import SandboxError
from sealer.progress import SilentReporter
from sealer.sandbox.lifecycle import INOTIFY_PER_HOST, ensure_inotify_instances, parse_link_rate


@pytest.mark.parametrize(
    ("text", "bits"),
    [("100mbit", 100_000_000), ("50Mbit", 50_000_000), ("1gbit", 1_000_000_000), ("512kbit", 512_000)],
)
def test_link_rate_reads_tc_units(text: str, bits: int) -> None:
    assert parse_link_rate(text) == bits


@pytest.mark.parametrize("text", ["fast", "100", "0mbit", "100mb", "-5mbit", "100mbit;reboot", "99999gbit"])
def test_link_rate_refuses_what_tc_would_not_read_as_a_rate(text: str) -> None:
    with pytest.raises(SandboxError, match="link rate"):
        parse_link_rate(text)


@pytest.mark.parametrize("hosts", [1, 2, 5, 8, 16, 32])
def test_forks_follow_the_number_of_hosts(hosts: int) -> None:
    assert runner.forks_for(hosts) == hosts


def test_forks_stop_at_the_cap() -> None:
    assert runner.forks_for(350) == runner.FORKS_CAP
    assert runner.forks_for(0) == 1


def test_run_playbook_gives_ansible_forks_for_its_hosts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    class Finished:
        status, rc = "successful", 0

    def fake_run(**kwargs: Any) -> Finished:
        seen.update(kwargs)
        return Finished()

    import ansible_runner

    monkeypatch.setattr(ansible_runner, "run", fake_run)

    def forks(hosts: int, limit: str | None = None) -> str:
        inventory = tmp_path / f"inventory-{hosts}.yaml"
        addresses = {f"10.0.{i // 250}.{i % 250}": {} for i in range(hosts)}
        inventory.write_text(yaml.safe_dump({"all": {"vars": {}, "hosts": addresses}}))
        runner.run_playbook("run", inventory, tmp_path / "run", SilentReporter(), runner.PlaybookOptions(limit=limit))
        return str(seen["envvars"]["ANSIBLE_FORKS"])

    assert forks(12) == "12"
    assert forks(400) == str(runner.FORKS_CAP)
    assert forks(12, limit="10.0.0.1,10.0.0.2") == "2"  # a delete of two hosts


def test_inotify_instances_are_raised_for_many_hosts_and_never_lowered(tmp_path: Path) -> None:
    # each booted host's systemd, logind and dbus hold some 8 inotify instances of root's; at
    # Linux's default of 128, a 32-host sandbox stops booting at host 20 ("Too many open files")
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    assert ensure_inotify_instances(32, limit) == INOTIFY_PER_HOST * 32 + 128
    assert int(limit.read_text()) == INOTIFY_PER_HOST * 32 + 128
    limit.write_text("100000\n")
    assert ensure_inotify_instances(32, limit) is None
    assert limit.read_text() == "100000\n"
