"""save, load, push, pull, login, logout and merge."""

from __future__ import annotations

import sys
from pathlib import Path

from sealer import archive, transfer
from sealer.commands._output import RichReporter, info, print_json
from sealer.errors import ImageNotFoundError, UsageError
from sealer.image import get_image
from sealer.merge import merge as merge_images
from sealer.platform import Platform
from sealer.reference import Reference
from sealer.regconfig import RegistryConfig, registry_config
from sealer.store import Store


def _platforms(text: str | None) -> list[Platform] | None:
    return Platform.parse_list(text) if text else None


def save(output_path: str, names: list[str], platforms: str | None, output: str) -> None:
    store = Store.open()
    result = archive.save(
        store, [Reference.parse(n) for n in names], _platforms(platforms), Path(output_path),
        RichReporter(quiet=output == "json"),
    )  # fmt: skip
    if output == "json":
        print_json({"archive": output_path, "images": result.names, "blobs": result.blobs, "bytes": result.bytes})
    else:
        info(f"saved {', '.join(result.names)} to {output_path}: {result.blobs} blobs, {result.bytes} bytes")


def load(input_path: str, output: str) -> None:
    store = Store.open()
    reporter = RichReporter(quiet=output == "json")
    if input_path == "-":
        result = archive.load(store, sys.stdin.buffer, "stdin", reporter)
    else:
        try:
            f = open(input_path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as err:
            raise UsageError(f"cannot read {input_path}: {err.strerror}") from err
        with f:
            result = archive.load(store, f, input_path, reporter)
    if output == "json":
        print_json({"images": result.names, "newBlobs": result.new_blobs})
    else:
        info(f"loaded {', '.join(result.names)} ({result.new_blobs} new blobs)")


def _remote(name: str, insecure: bool) -> tuple[Store, Reference, RegistryConfig]:
    store = Store.open()
    ref = Reference.parse(name)
    config = registry_config(store)
    if insecure:
        config.insecure.add(transfer.remote(ref, config)[0])
    return store, ref, config


def push(name: str, platforms: str | None, insecure: bool, output: str) -> None:
    store, ref, config = _remote(name, insecure)
    result = transfer.push(store, ref, _platforms(platforms), config, RichReporter(quiet=output == "json"))
    if output == "json":
        print_json(result.__dict__)
    else:
        info(f"pushed {result.target}: {result.uploaded} uploaded, {result.mounted} mounted, "
             f"{result.skipped} already there")  # fmt: skip


def pull(name: str, platforms: str | None, insecure: bool, output: str) -> None:
    store, ref, config = _remote(name, insecure)
    result = transfer.pull(store, ref, _platforms(platforms), config, RichReporter(quiet=output == "json"))
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


def merge(names: list[str], tag: str, platforms: str | None, insecure: bool, output: str) -> None:
    store = Store.open()
    plats = _platforms(platforms) or [Platform.host()]
    config = registry_config(store)
    images = []
    for name in names:
        ref = Reference.parse(name)
        try:
            images.append(get_image(store, ref))
        except ImageNotFoundError:
            if insecure:
                config.insecure.add(transfer.remote(ref, config)[0])
            transfer.pull(store, ref, plats, config, RichReporter(quiet=output == "json"))
            images.append(get_image(store, ref))
    results = merge_images(store, images, Reference.parse(tag), plats)
    if output == "json":
        print_json({"name": tag, "manifests": [{"id": r.id, "platform": r.platform.to_oci()} for r in results]})
    else:
        for r in results:
            info(f"{tag} {r.platform}: {r.id[:12]}")
