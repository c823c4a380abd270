from __future__ import annotations

from collections.abc import Mapping

from sealer.commands._output import info, print_json, table
from sealer.oci.platform import Platform
from sealer.sandbox import lifecycle as sandbox


def up(
    name: str, hosts: str, user: str = "", sudo_password: bool = False, bastion: int = 0, link_rate: str = ""
) -> None:
    box = sandbox.up(name, [Platform.parse(h) for h in hosts.split(",")], info, user, sudo_password, bastion, link_rate)
    login = f"user {box.user} (root login refused)" if box.user else "user root"
    links = f", links at {box.link_rate}" if box.link_rate else ""
    info(f"sandbox {box.name} is up: {len(box.hosts)} hosts, {login}{links}, key {box.key}")
    ls("text", only=name)


def reboot(name: str, host: str) -> None:
    rebooted = sandbox.reboot(name, host)
    info(f"{rebooted.name} ({rebooted.address}) restarted")


def stop(name: str, host: str) -> None:
    stopped = sandbox.stop(name, host)
    info(f"{stopped.name} ({stopped.address}) stopped")


def start(name: str, host: str) -> None:
    started = sandbox.start(name, host)
    info(f"{started.name} ({started.address}) is up")


def down(name: str) -> None:
    sandbox.down(name)
    info(f"sandbox {name} removed")


def ls(output: str, only: str | None = None) -> None:
    boxes = [b for b in sandbox.list_sandboxes() if only is None or b.name == only]
    rows = [
        {
            "sandbox": b.name,
            "name": h.name,
            "address": h.address,
            "platform": h.platform,
            "key": b.key,
            "passwordFile": b.password_file,
            "user": b.user or "root",
            "netns": h.netns,
            "link": h.veth,
            # behind the bastion: this machine reaches the host only through it
            "internal": h.internal,
            "bastion": h.bastion,
            "innerAddress": h.inner_address,
            "innerLink": h.inner_veth,
            "internalBridge": b.internal_bridge,
            "linkRate": b.link_rate or None,
        }
        for b in boxes
        for h in b.hosts
    ]
    if output == "json":
        print_json(rows)
        return
    table(
        ["SANDBOX", "HOST", "ADDRESS", "PLATFORM", "KEY", "PASSWORD FILE"],
        [
            [
                str(r["sandbox"]),
                str(r["name"]),
                _address_text(r),
                str(r["platform"]),
                str(r["key"]),
                str(r["passwordFile"]),
            ]
            for r in rows
        ],
    )


def _address_text(row: Mapping[str, object]) -> str:
    if row["bastion"]:
        return f"{row['address']} (bastion; {row['innerAddress']} inside)"
    return f"{row['address']} (internal)" if row["internal"] else str(row["address"])
