"""sealer save and sealer load."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sealer.commands._options import platform_filter, reporter_for
from sealer.commands._output import info, print_json
from sealer.distribution import archive
from sealer.errors import UsageError
from sealer.store.image import select
from sealer.store.layout import Store


def save(output_path: str, names: list[str], platforms: str | None, output: str) -> None:
    """``-o -`` writes the tar to standard output; what is said for people goes to stderr."""
    store = Store.open()
    plats = platform_filter(platforms)
    selections = [select(store, n, plats) for n in names]
    reporter = reporter_for(output)
    if output_path == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal: redirect standard output or give -o FILE")
        result = archive.save(store, selections, None, reporter, stream=sys.stdout.buffer)
        where = "standard output"
    else:
        result = archive.save(store, selections, Path(output_path), reporter)
        where = output_path
    if output == "json":
        # the archive has standard output: the summary goes to stderr
        summary = {"archive": output_path, "images": result.names, "blobs": result.blobs, "bytes": result.bytes}
        if output_path == "-":
            info(json.dumps(summary))
        else:
            print_json(summary)
    else:
        info(f"saved {', '.join(result.names)} to {where}: {result.blobs} blobs, {result.bytes} bytes")


def load(input_path: str, output: str) -> None:
    store = Store.open()
    reporter = reporter_for(output)
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
