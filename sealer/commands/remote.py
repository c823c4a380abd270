"""sealer push, pull, login and logout."""

from __future__ import annotations

import sys

from sealer.commands._options import platform_filter, reporter_for
from sealer.commands._output import info, print_json
from sealer.distribution import transfer
from sealer.distribution.config import RegistryConfig, registry_config
from sealer.errors import UsageError
from sealer.oci.reference import Reference
from sealer.store.image import select
from sealer.store.layout import Store


def _remote(name: str, insecure: bool) -> tuple[Store, Reference, RegistryConfig]:
    store = Store.open()
    ref = Reference.parse(name)
    config = registry_config(store)
    if insecure:
        config.insecure.add(transfer.remote(ref, config)[0])
    return store, ref, config


def push(name: str, platforms: str | None, insecure: bool, replace_index: bool, output: str) -> None:
    store = Store.open()
    plats = platform_filter(platforms)
    selection = select(store, name, plats)  # a name, or an image id (then that one platform)
    ref = Reference.parse(selection.image.name)
    config = registry_config(store)
    if insecure:
        config.insecure.add(transfer.remote(ref, config)[0])
    result = transfer.push(store, ref, selection.platforms, config, reporter_for(output), replace_index)
    if output == "json":
        print_json(result.__dict__)
    else:
        info(f"pushed {result.target}: {result.uploaded} uploaded, {result.mounted} mounted, "
             f"{result.skipped} already there"
             + (f"; kept {', '.join(result.kept)} of the registry's index" if result.kept else ""))  # fmt: skip


def pull(name: str, platforms: str | None, insecure: bool, output: str) -> None:
    store, ref, config = _remote(name, insecure)
    result = transfer.pull(store, ref, platform_filter(platforms), config, reporter_for(output))
    if output == "json":
        print_json({"name": result.name, "platforms": [p.to_oci() for p in result.platforms],
                    "downloaded": result.downloaded, "present": result.present})  # fmt: skip
    else:
        info(f"pulled {result.name} ({', '.join(map(str, result.platforms))}): "
             f"{result.downloaded} blobs downloaded, {result.present} already here")  # fmt: skip


def login(registry: str, username: str, password: str | None, password_stdin: bool, insecure: bool) -> None:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise UsageError("a password is needed: -p PASSWORD or --password-stdin")
    store = Store.open()
    config = registry_config(store)
    if insecure:
        config.insecure.add(registry)
    transfer.login(registry, username, password, config)
    info(f"login to {registry} succeeded")


def logout(registry: str) -> None:
    info(f"removed credentials for {registry}" if transfer.logout(registry) else f"not logged in to {registry}")
