"""A sandbox with --link-rate: each host behind a RATE link both ways, the controller behind one
RATE uplink to all of them, shaped by tc where a packet leaves (egress), so that transfers queue
as on a real NIC instead of being dropped.

Boots a sandbox of its own (two amd64 hosts: the cheapest topology with a host-to-host path)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import sandbox_cli

RATE = "50mbit"
MIB = 16


@pytest.fixture(scope="module")
def shaped() -> Iterator[list[dict[str, str]]]:
    name = f"lr{os.getpid()}"[:12]
    proc = sandbox_cli("up", name, "--hosts", "amd64,amd64", "--link-rate", RATE)
    if proc.returncode != 0:
        sandbox_cli("down", name)
        pytest.fail(f"sandbox up failed: {proc.stderr}")
    try:
        rows = [r for r in json.loads(sandbox_cli("ls", "--output", "json").stdout) if r["sandbox"] == name]
        yield rows
    finally:
        down = sandbox_cli("down", name)
        assert down.returncode == 0, down.stderr


def qdisc(*where: str) -> str:
    return subprocess.run(["tc", "-s", "qdisc", "show", *where], capture_output=True, text=True, check=True).stdout


def sent_bytes(stats: str, kind: str) -> int:
    """Bytes the qdisc of that kind has let through (tc -s: 'Sent N bytes M pkt')."""
    match = re.search(rf"qdisc {kind} .*?\n\s*Sent (\d+) bytes", stats, re.S)
    assert match, stats
    return int(match.group(1))


def ssh(row: dict[str, str], command: str, input: bytes | None = None) -> None:
    args = ["ssh", "-i", row["key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", f"root@{row['address']}", command]  # fmt: skip
    subprocess.run(args, input=input, check=True, capture_output=True)


def test_ls_shows_the_link_rate(shaped: list[dict[str, str]]) -> None:
    assert [r["linkRate"] for r in shaped] == [RATE, RATE]


def tc(*args: str) -> str:
    return subprocess.run(["tc", *args], capture_output=True, text=True, check=True).stdout


def test_every_side_of_every_link_is_shaped_at_the_rate(shaped: list[dict[str, str]]) -> None:
    link = subprocess.run(
        ["ip", "-o", "link", "show", "dev", shaped[0]["link"]], capture_output=True, text=True, check=True
    )
    bridge = link.stdout.split(" master ")[1].split()[0]
    sides = [
        tc("qdisc", "show", "dev", bridge),  # the controller's uplink to every host
        *(tc("qdisc", "show", "dev", r["link"]) for r in shaped),  # each host's download
        *(tc("-n", r["netns"], "qdisc", "show", "dev", "eth0") for r in shaped),  # each host's upload
    ]
    for text in sides:
        assert "qdisc tbf" in text and "rate 50Mbit" in text, text
    # the controller's download: its side of the bridge redirects what arrives to a shaped ifb
    filters = tc("filter", "show", "dev", bridge, "ingress")
    ifb = re.search(r"Redirect to device (\S+)\)", filters)
    assert ifb, filters
    assert "rate 50Mbit" in tc("qdisc", "show", "dev", ifb.group(1))


def test_a_transfer_to_a_host_goes_through_the_shaper_at_the_rate(shaped: list[dict[str, str]]) -> None:
    host = shaped[0]
    before = sent_bytes(qdisc("dev", host["link"]), "tbf")
    payload = os.urandom(MIB << 20)
    start = time.perf_counter()
    ssh(host, "cat > /dev/null", input=payload)
    elapsed = time.perf_counter() - start
    through = sent_bytes(qdisc("dev", host["link"]), "tbf") - before
    assert through >= MIB << 20  # every byte to the host passed the host's shaped link
    floor = MIB * 8 * 1.048576 / 50  # seconds at 50 Mbit/s
    # a lower bound only (a slow machine can only make it longer): unshaped, loopback-speed
    # veths carry 16 MiB in well under a second
    assert elapsed >= 0.8 * floor, f"{MIB} MiB in {elapsed:.2f} s: faster than {RATE}"
    print(f"{MIB} MiB to a host at {RATE}: {elapsed:.2f} s (floor {floor:.2f} s)")
