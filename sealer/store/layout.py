"""The local store: an OCI image layout with atomic writes and file locks.

Layout under the root (``/var/lib/sealer`` for root, ``$SEALER_ROOT`` to override)::

    oci-layout, index.json       the OCI layout; index.json names one image index per name:tag
    blobs/sha256/<hex>           content, written to tmp/ first, verified, then renamed in
    layers/<hex>/                a layer unpacked, ready to mount (renamed in when complete)
    cache/                       the build cache
    tmp/                         work files of running commands, named after their pid

index.json is the only thing that makes an image visible, and it is replaced by rename,
so a command killed at any moment leaves either the old or the new set of images.
Blobs are written before anything refers to them. Garbage collection takes the gc lock
exclusively; every command that writes blobs holds it shared, so no blob another command
is about to reference is ever collected.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sealer._fs import Writeback, atomic_write, file_lock, fsync_dir, fsync_file
from sealer.errors import DigestMismatchError, StoreError
from sealer.faults import checkpoint
from sealer.oci.descriptor import (
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BLOB,
    MEDIA_INDEX,
    Descriptor,
    canonical_json,
    parse_json_blob,
)
from sealer.oci.digest import ALGORITHM, Digest
from sealer.store.root import root_dir

CHUNK = 1024 * 1024
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def default_root() -> Path:
    return Path(root_dir())


@dataclass
class BlobWriter:
    """A blob being written: hashed as it is written, renamed into place by :meth:`commit`."""

    store: Store
    path: Path
    file: IO[bytes]
    hasher: Any
    size: int = 0
    staging: Staging | None = None

    def __post_init__(self) -> None:
        self.writeback = Writeback(self.file.fileno(), flush=self.file.flush)

    def write(self, data: bytes | memoryview) -> None:
        checkpoint()
        self.hasher.update(data)
        self.file.write(data)
        self.size += len(data)
        self.writeback.wrote(len(data))

    def restart(self) -> None:
        """Forget what was written (a download that broke off starts again)."""
        self.file.seek(0)
        self.file.truncate()
        self.hasher = hashlib.sha256()
        self.size = 0
        self.writeback = Writeback(self.file.fileno(), flush=self.file.flush)

    def commit(self, expected_digest: str | None = None, expected_size: int | None = None) -> Digest:
        self.file.close()
        digest = Digest.from_hasher(self.hasher)
        if expected_size is not None and self.size != expected_size:
            raise DigestMismatchError(expected_digest or digest, f"size is {self.size}, expected {expected_size}")
        if expected_digest is not None and digest != expected_digest:
            raise DigestMismatchError(expected_digest, f"content hashes to {digest}")
        checkpoint()
        if self.staging is not None:
            self.staging.hold(self.path, digest)
        else:
            self.store.adopt(self.path, digest)
        return digest


class Staging:
    """Verified blobs kept aside until :meth:`commit` moves them all in; a command that fails
    before then leaves the store as it was (the caller's ``with`` discards them)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held: dict[str, Path] = {}
        self._lock = threading.Lock()

    def hold(self, path: Path, digest: str) -> None:
        with self._lock:
            if digest in self.held:
                path.unlink()
            else:
                self.held[digest] = path

    @contextlib.contextmanager
    def new_blob(self) -> Iterator[BlobWriter]:
        with self.store.new_blob() as writer:
            writer.staging = self
            yield writer

    def commit(self) -> None:
        with self._lock:
            self.store.adopt_many([(path, digest) for digest, path in self.held.items()])
            self.held.clear()

    def discard(self) -> None:
        with self._lock:
            for path in self.held.values():
                path.unlink(missing_ok=True)
            self.held.clear()


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.tmp = root / "tmp"
        self.layers = root / "layers"
        self.cache = root / "cache"
        self.index_path = root / "index.json"

    @classmethod
    def open(cls, root: Path | None = None) -> Store:
        store = cls(root or default_root())
        store._init()
        return store

    def _init(self) -> None:
        try:
            for d in (self.blobs, self.tmp, self.layers, self.cache):
                d.mkdir(parents=True, exist_ok=True)
            if not (self.root / "oci-layout").exists():
                atomic_write(self.root / "oci-layout", OCI_LAYOUT)
            if not self.index_path.exists():
                with self.names_lock():
                    if not self.index_path.exists():
                        self._write_index({})
        except OSError as err:
            raise StoreError(f"cannot use store {self.root}: {err.strerror}") from err

    # ---- locks -------------------------------------------------------------------------

    def _flock(self, name: str, mode: int, blocking: bool = True) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.root / name, mode, blocking, f"store {self.root} is busy ({name} is held)")

    def names_lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive while index.json is read-modified-written."""
        return self._flock("index.lock", fcntl.LOCK_EX)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) by every command that writes blobs, for its whole run."""
        return self._flock("gc.lock", fcntl.LOCK_SH)

    # ---- blobs -------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / Digest.parse(digest).hex

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        return self.blob_path(digest).stat().st_size

    def read_blob(self, digest: str, limit: int = MAX_JSON_BLOB) -> bytes:
        """Read a small blob and verify it: metadata is never trusted without its digest."""
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError as err:
            raise StoreError(f"blob {digest} is missing from the store") from err
        if len(data) > limit:
            raise DigestMismatchError(digest, f"is larger than {limit} bytes")
        if Digest.of(data) != digest:
            raise DigestMismatchError(digest, "stored content does not match its digest")
        return data

    def read_json(self, digest: str) -> dict[str, Any]:
        return parse_json_blob(self.read_blob(digest), digest)

    def put_bytes(self, data: bytes) -> Digest:
        digest = Digest.of(data)
        if not self.has_blob(digest):
            with self.new_blob() as w:
                w.write(data)
                w.commit(digest)
        return digest

    def put_json(self, value: Any) -> tuple[Digest, int]:
        data = canonical_json(value)
        return self.put_bytes(data), len(data)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        staging = Staging(self)
        try:
            yield staging
        finally:
            staging.discard()

    def tmp_path(self, suffix: str = "") -> Path:
        return self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"

    @contextlib.contextmanager
    def new_blob(self) -> Iterator[BlobWriter]:
        path = self.tmp_path(".blob")
        f = open(path, "xb")  # noqa: SIM115 - closed by commit or below
        writer = BlobWriter(self, path, f, hashlib.sha256())
        try:
            yield writer
        finally:
            f.close()
            if writer.staging is None or path not in writer.staging.held.values():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def adopt(self, tmp: Path, digest: str) -> None:
        """Move a verified temp file into blobs/ (a concurrent writer of the same digest wins too)."""
        self.adopt_many([(tmp, digest)])

    def adopt_many(self, blobs: list[tuple[Path, str]]) -> None:
        """Move verified temp files into blobs/, durably: each file is fsynced before its rename
        and blobs/ after the renames, so a power cut never leaves a name without its content,
        and index.json (written after this returns) never names a blob the disk may lose."""
        renamed = False
        for tmp, digest in blobs:
            final = self.blob_path(digest)
            if final.exists():
                tmp.unlink()
                continue
            if os.stat(tmp).st_mode & 0o7777 != 0o644:  # a change of mode would cost the fsync a journal commit
                os.chmod(tmp, 0o644)
            fsync_file(tmp)
            checkpoint()
            os.replace(tmp, final)
            renamed = True
            checkpoint()
        if renamed:
            fsync_dir(self.blobs)

    # ---- names (index.json) ------------------------------------------------------------

    def names(self) -> dict[str, Descriptor]:
        try:
            data = json.loads(self.index_path.read_bytes())
        except (OSError, json.JSONDecodeError) as err:
            raise StoreError(f"cannot read {self.index_path}: {err}") from err
        out: dict[str, Descriptor] = {}
        for entry in data.get("manifests", []):
            desc = Descriptor.from_json(entry, str(self.index_path))
            name = desc.annotations.get(ANNOTATION_REF_NAME)
            if name:
                out[name] = desc
        return out

    def update_names(self, change: Callable[[dict[str, Descriptor]], None]) -> dict[str, Descriptor]:
        """Apply ``change`` to the name table under the lock and replace index.json atomically."""
        with self.names_lock():
            names = self.names()
            change(names)
            for name, desc in names.items():
                if not self.has_blob(desc.digest):
                    raise StoreError(f"refusing to name {name}: blob {desc.digest} is not in the store")
            self._write_index(names)
            return names

    def _write_index(self, names: dict[str, Descriptor]) -> None:
        manifests = []
        for name in sorted(names):
            desc = names[name]
            manifests.append(
                Descriptor(desc.media_type, desc.digest, desc.size, None, {ANNOTATION_REF_NAME: name}).to_json()
            )
        doc = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests}
        atomic_write(self.index_path, json.dumps(doc, indent=2).encode() + b"\n", tmp_dir=self.tmp)

    # ---- reachability and garbage collection -------------------------------------------

    def reachable(self, roots: list[Descriptor] | None = None) -> set[str]:
        """Every blob digest reachable from ``roots`` (default: every named image)."""
        seen: set[str] = set()
        stack = list(roots if roots is not None else self.names().values())
        while stack:
            desc = stack.pop()
            if desc.digest in seen:
                continue
            seen.add(desc.digest)
            stack.extend(self.children(desc))
        return seen

    def children(self, desc: Descriptor) -> list[Descriptor]:
        """What an index or manifest refers to (nothing, for configs and layers)."""
        if desc.media_type in INDEX_TYPES:
            doc = self.read_json(desc.digest)
            return [Descriptor.from_json(m, desc.digest) for m in doc.get("manifests", [])]
        if desc.media_type in MANIFEST_TYPES:
            doc = self.read_json(desc.digest)
            return [Descriptor.from_json(m, desc.digest) for m in [doc.get("config"), *doc.get("layers", [])]]
        return []

    def collect_garbage(self, blocking: bool = False) -> list[str]:
        """Remove blobs, unpacked layers and temp files no image needs. Returns removed digests.

        Skipped (StoreBusyError) while any other command may be writing blobs, unless ``blocking``.
        """
        removed: list[str] = []
        with self._flock("gc.lock", fcntl.LOCK_EX, blocking=blocking), self.names_lock():
            keep = self.reachable()
            for path in self.blobs.iterdir():
                digest = f"{ALGORITHM}:{path.name}"
                if digest not in keep:
                    checkpoint()
                    path.unlink()
                    removed.append(digest)
            for path in self.layers.iterdir():
                if f"{ALGORITHM}:{path.name.split('.')[0]}" not in keep:
                    checkpoint()
                    if path.is_dir():
                        # moved out first: a layer tree is either whole in layers/ or gone from it
                        doomed = self.tmp_path(".gone")
                        os.rename(path, doomed)
                        shutil.rmtree(doomed, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            # Under the exclusive gc lock no writer is running: every temp file is a leftover.
            for path in self.tmp.iterdir():
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        return removed

    def fsck(self) -> tuple[int, list[str]]:
        """Verify every blob's digest and every reference; returns (blobs checked, problems)."""
        problems: list[str] = []
        checked = 0
        with self._flock("gc.lock", fcntl.LOCK_EX), self.names_lock():
            for path in sorted(self.blobs.iterdir()):
                digest = f"{ALGORITHM}:{path.name}"
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    while chunk := f.read(CHUNK):
                        h.update(chunk)
                checked += 1
                if Digest.from_hasher(h) != digest:
                    problems.append(f"{digest}: content does not match its digest")
            for name, desc in sorted(self.names().items()):
                stack = [desc]
                while stack:
                    d = stack.pop()
                    if not self.has_blob(d.digest):
                        problems.append(f"{name}: {d.digest} is referenced but missing")
                        continue
                    if self.blob_size(d.digest) != d.size:
                        problems.append(f"{name}: {d.digest} is {self.blob_size(d.digest)} bytes, not {d.size}")
                        continue
                    try:
                        stack += self.children(d)
                    except StoreError as err:
                        problems.append(f"{name}: {err}")
        return checked, problems
