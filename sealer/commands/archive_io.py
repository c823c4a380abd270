"""sealer save and sealer load."""

from __future__ import annotations

import sys
from pathlib import Path

from sealer.commands._output import RichReporter, info, print_json
from sealer.distribution import archive
from sealer.errors import UsageError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.store.layout import Store


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
