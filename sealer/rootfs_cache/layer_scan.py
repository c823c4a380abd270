"""The image scan of a layer, done once per layer: kept by the layer's digest in the store.

A layer's digest fixes every byte of its files, so what its manifests, image lists and
chart values name is fixed too. A two-platform build scans a shared COPY layer once, and an
unchanged rebuild reads the result from ``cache/scan/`` instead of parsing anything.

A platform's images are those of the layers its build added, bottom first, a later layer's
file replacing an earlier one's at the same path. ``helm template`` needs a chart's files
together, which may come from several layers: its output is kept by the content of those
files and the helm binary that rendered them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sealer._fs import atomic_write
from sealer.oci.digest import Digest
from sealer.rootfs_cache.scan import helm_images, images_in_file, kind_of
from sealer.store.layer import Entry, read_layer_files
from sealer.store.layout import Store

# Part of every cache file's name: a change to what the scan finds changes it, so results of
# an older scan are never taken for this one's.
SCAN_VERSION = 1

Found = list[tuple[str, str]]  # (reference as written, where)


@dataclass(frozen=True)
class LayerScan:
    """What one layer's files name: every file the scan read (even those naming nothing, as
    they hide a lower layer's file of that path) and the sha256 of each helm input."""

    files: dict[str, Found]
    chart_files: dict[str, str]

    def to_json(self) -> bytes:
        doc = {"files": self.files, "chartFiles": self.chart_files}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LayerScan | None:
        """None for anything but what :meth:`to_json` writes: the layer is scanned again."""
        try:
            doc = json.loads(data)
            files = {str(p): [(str(t), str(w)) for t, w in pairs] for p, pairs in doc["files"].items()}
            charts = {str(p): str(h) for p, h in doc["chartFiles"].items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return cls(files, charts)


def _wanted(path: str) -> bool:
    return kind_of(path) is not None


def _scan_order(path: str) -> tuple[int, tuple[str, ...]]:
    # manifests, then the image list, then chart values, each by path: the order of a tree walk
    rank = {"manifest": 0, "list": 1, "values": 2}.get(kind_of(path) or "", 3)
    return rank, tuple(path.split("/"))


class ScanCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.dir = store.cache / "scan"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._layers: dict[str, LayerScan] = {}
        self._chart_bytes: dict[str, bytes] = {}  # helm inputs read by this process, by sha256

    def layer(self, digest: str, entries: Sequence[Entry] | None = None) -> LayerScan:
        """The layer's scan: from memory, else from the store, else by reading its files (from
        ``entries`` when the caller has them, else from the layer's tar) and keeping the result."""
        if digest in self._layers:
            return self._layers[digest]
        path = self.dir / f"layer-v{SCAN_VERSION}-{Digest.parse(digest).hex}.json"
        try:
            scan = LayerScan.from_json(path.read_bytes())
        except OSError:
            scan = None
        if scan is None:
            scan = self._scan(self._read(digest, entries))
            atomic_write(path, scan.to_json(), tmp_dir=self.store.tmp)
        self._layers[digest] = scan
        return scan

    def _read(self, digest: str, entries: Sequence[Entry] | None) -> dict[str, bytes]:
        if entries is None:
            return read_layer_files(self.store, digest, _wanted)
        return {
            e.path: Path(e.source).read_bytes()
            for e in entries
            if e.kind == "file" and e.source is not None and _wanted(e.path)
        }

    def _scan(self, files: dict[str, bytes]) -> LayerScan:
        found: dict[str, Found] = {}
        charts: dict[str, str] = {}
        for path in sorted(files):
            data = files[path]
            if kind_of(path) != "chart":
                found[path] = images_in_file(path, data)
            if path.startswith("charts/"):  # values.yaml is an input of helm template too
                sha = hashlib.sha256(data).hexdigest()
                charts[path] = sha
                self._chart_bytes[sha] = data
        return LayerScan(found, charts)

    def images(self, layers: Sequence[str]) -> Found:
        """(reference as written, where) for what the layers (digests, bottom first) name."""
        files: dict[str, Found] = {}
        charts: dict[str, tuple[str, str]] = {}  # path -> (sha256, the layer it comes from)
        for digest in layers:
            scan = self._layers.get(digest) or self.layer(digest)
            files.update(scan.files)
            charts.update({p: (sha, digest) for p, sha in scan.chart_files.items()})
        found = [pair for path in sorted(files, key=_scan_order) for pair in files[path]]
        if any(p.rsplit("/", 1)[-1] == "Chart.yaml" for p in charts) and (helm := shutil.which("helm")):
            found += self._helm(helm, charts)
        return found

    def _helm(self, helm: str, charts: dict[str, tuple[str, str]]) -> Found:
        """``helm template`` of the charts, kept by their files' content and the helm binary."""
        st = os.stat(helm)
        ident = [os.path.realpath(helm), st.st_size, st.st_mtime_ns, sorted((p, sha) for p, (sha, _) in charts.items())]
        key = hashlib.sha256(json.dumps(ident).encode()).hexdigest()
        path = self.dir / f"helm-v{SCAN_VERSION}-{key}.json"
        try:
            return [(str(t), str(w)) for t, w in json.loads(path.read_bytes())]
        except (OSError, ValueError, TypeError):
            pass
        tree = self.store.tmp_path(".scan")
        try:
            for rel, data in self._chart_inputs(charts).items():
                target = tree / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            found = helm_images(helm, tree)
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        atomic_write(path, json.dumps(found).encode(), tmp_dir=self.store.tmp)
        return found

    def _chart_inputs(self, charts: dict[str, tuple[str, str]]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        missing: dict[str, set[str]] = {}  # layer digest -> paths not read by this process
        for path, (sha, digest) in charts.items():
            if sha in self._chart_bytes:
                out[path] = self._chart_bytes[sha]
            else:
                missing.setdefault(digest, set()).add(path)
        for digest, paths in missing.items():
            out.update(read_layer_files(self.store, digest, paths.__contains__))
        return out
