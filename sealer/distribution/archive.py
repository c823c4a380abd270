"""``sealer save`` and ``sealer load``: images as an OCI image layout in a tar (``oci-archive``).

save writes each blob once, however many images and platforms share it, and only the
platforms asked for (the archive's index then lists only them). load streams the archive
into a staging directory, verifies every blob's digest and size and every reference, and
only then moves the blobs in and names the images: a refused archive leaves nothing.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sealer._fs import WRITEBACK_STEP, Writeback
from sealer.errors import ArchiveError, DigestMismatchError, PlatformNotFoundError, SealerError, StoreError, UsageError
from sealer.faults import checkpoint
from sealer.oci.descriptor import (
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BLOB,
    MEDIA_INDEX,
    Descriptor,
    parse_json_blob,
)
from sealer.oci.digest import Digest
from sealer.oci.reference import Reference
from sealer.progress import Reporter
from sealer.store.image import (
    PlatformImage,
    Selection,
    add_platforms,
    index_document,
    read_platform_image,
    store_key,
)
from sealer.store.layout import CHUNK, OCI_LAYOUT, Store

_BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_DIRS = {"blobs", "blobs/sha256", "."}
MAX_INDEX_DEPTH = 4
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")
_COPY_CHUNK = 256 << 10  # fits the CPU's cache: hashed there between its read and its write
_REPORT_STEP = 16 << 20
_STAGING_JOBS = 2
_FLUSH_EARLY = 1 << 20  # smaller blobs are left to the fsync before their rename


# ---- save ------------------------------------------------------------------------------


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@dataclass
class SaveResult:
    names: list[str]
    blobs: int
    bytes: int


def save(
    store: Store, selections: list[Selection], out: Path | None, reporter: Reporter, stream: IO[bytes] | None = None
) -> SaveResult:
    """Write the selected images to ``out`` (a temp file beside it, renamed in when complete and
    every blob verified) or, with ``out`` None, to ``stream`` (a pipe: a failure leaves it without
    the tar's end, so a reader refuses it)."""
    entries: list[dict[str, Any]] = []
    memory: dict[str, bytes] = {}  # index blobs made for a platform choice, which the store does not hold
    order: list[str] = []
    for selection in selections:
        image = selection.image
        chosen = selection.chosen
        if selection.platforms is not None:
            data = index_document(chosen)
            index = Descriptor(MEDIA_INDEX, Digest.of(data), len(data))
            memory[index.digest] = data
        else:
            index = image.index
        entries.append({**index.to_json(), "annotations": {ANNOTATION_REF_NAME: image.name}})
        for digest in [index.digest, *(d for p in chosen for d in _platform_blobs(p))]:
            if digest not in order:
                order.append(digest)
    sizes = {d: len(memory[d]) if d in memory else store.blob_size(d) for d in order}
    total = sum(sizes.values())
    if out is None:
        assert stream is not None
        _write_archive(store, entries, order, sizes, memory, stream, reporter, "standard output")
    else:
        if not out.parent.is_dir():
            raise UsageError(f"cannot write {out}: directory {out.parent} does not exist")
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                _write_archive(store, entries, order, sizes, memory, f, reporter, str(out))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot write {out}: {err.strerror}") from err
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return SaveResult([e["annotations"][ANNOTATION_REF_NAME] for e in entries], len(order), total)


def _write_archive(
    store: Store, entries: list[dict[str, Any]], order: list[str], sizes: dict[str, int], memory: dict[str, bytes],
    f: IO[bytes], reporter: Reporter, where: str,
) -> None:  # fmt: skip
    """The tar: each store blob copied by the kernel while other threads hash the same file (two,
    so that hashing a large blob keeps pace with the kernel's copy of it and the next); the tar's
    end is written only when every blob matched its digest."""
    total = sum(sizes.values())
    with reporter.task(f"saving {len(entries)} image(s) to {where}", total) as advance, \
            ThreadPoolExecutor(2) as hashing:  # fmt: skip
        checks: list[Future[None]] = []
        writeback = stat.S_ISREG(os.fstat(f.fileno()).st_mode)  # a pipe has no disk to start
        index_json = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries}).encode()
        for name, data in (("oci-layout", OCI_LAYOUT), ("index.json", index_json)):
            f.write(_tar_header(name, len(data)) + data + bytes(-len(data) % 512))
        for digest in order:
            for done in [c for c in checks if c.done()]:
                done.result()  # a damaged blob stops the save at once
            size = sizes[digest]
            f.write(_tar_header("blobs/sha256/" + Digest.parse(digest).hex, size))
            if digest in memory:
                f.write(memory[digest])
            else:
                f.flush()
                try:
                    src = open(store.blob_path(digest), "rb")  # noqa: SIM115 - closed by the with below
                except FileNotFoundError as err:
                    raise StoreError(f"blob {digest} is missing from the store (run 'sealer fsck')") from err
                with src:
                    checks.append(hashing.submit(_verify_blob, store.blob_path(digest), digest, size))
                    _copy_exact(src.fileno(), f.fileno(), size, digest, writeback)
            f.write(bytes(-size % 512))
            advance(size)
        for check in checks:
            check.result()
        f.write(bytes(1024))
        f.flush()


def _verify_blob(path: Path, digest: str, size: int) -> None:
    hasher = hashlib.sha256()
    read = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            read += len(chunk)
    if read != size or Digest.from_hasher(hasher) != digest:
        raise DigestMismatchError(digest, "blob in the store does not match its digest (run 'sealer fsck'); not saved")


def _platform_blobs(image: PlatformImage) -> list[str]:
    return [image.manifest.digest, image.config_digest, *(la.digest for la in image.config.layers)]


def _copy_exact(src: int, dst: int, size: int, digest: str, writeback: bool) -> None:
    """Copy by the kernel; into a file (not a pipe), each step's bytes are sent on to the disk."""
    sent = 0
    steps = Writeback(dst, os.lseek(dst, 0, os.SEEK_CUR)) if writeback else None
    while sent < size:
        n = os.sendfile(dst, src, None, min(size - sent, WRITEBACK_STEP if steps else 1 << 30))
        if n == 0:
            raise DigestMismatchError(digest, "blob in the store is shorter than its size")
        if steps:
            steps.wrote(n)
        sent += n
    if steps:
        steps.finish()  # the archive goes on with the next blob: this one's tail is started too


# ---- load ------------------------------------------------------------------------------


@dataclass
class LoadResult:
    names: list[str]
    new_blobs: int


def load(store: Store, stream: IO[bytes], source: str, reporter: Reporter) -> LoadResult:
    with store.writing():
        staging = store.tmp_path(".load")
        staging.mkdir()
        try:
            return _load(store, stream, source, staging, reporter)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _open_tar(stream: IO[bytes]) -> tuple[tarfile.TarFile, int | None]:
    """A plain archive in a regular file is read by offsets, so blobs are copied by the kernel;
    anything else (stdin, a compressed archive) is streamed."""
    try:
        regular = stat.S_ISREG(os.fstat(stream.fileno()).st_mode) and stream.seekable()
    except (OSError, ValueError, io.UnsupportedOperation):
        regular = False
    if regular:
        start = stream.tell()
        magic = stream.read(6)
        stream.seek(start)
        if not magic.startswith(_COMPRESSED_MAGIC):
            return tarfile.open(fileobj=stream, mode="r:"), stream.fileno()
    return tarfile.open(fileobj=stream, mode="r|*", bufsize=CHUNK), None


@dataclass
class _Reading:
    """What load has read of an archive so far: its index.json and its blobs, staged (``staged``)
    or found in the store already (``present``), by digest with their sizes."""

    store: Store
    source: str
    staging: Path
    fd: int | None
    index_json: bytes | None = None
    staged: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    pool: ThreadPoolExecutor | None = None
    pending: dict[str, Future[int]] = field(default_factory=dict)

    def finish(self) -> None:
        """Wait for the blobs still being staged (the first failure is raised)."""
        for digest, job in self.pending.items():
            self.staged[digest] = job.result()
        self.pending.clear()

    def take(self, tar: tarfile.TarFile, member: tarfile.TarInfo, advance: Callable[[int], None]) -> None:
        clean = self._checked_name(member)
        if clean is None:
            return
        if clean == "oci-layout":
            if json.loads(self._small(tar, member, 4096) or b"{}").get("imageLayoutVersion") != "1.0.0":
                raise ArchiveError(f"{self.source}: oci-layout is not version 1.0.0")
        elif clean == "index.json":
            self.index_json = self._small(tar, member, MAX_JSON_BLOB + 1)
            if len(self.index_json) > MAX_JSON_BLOB:
                raise ArchiveError(f"{self.source}: index.json is larger than {MAX_JSON_BLOB} bytes")
        else:
            self._blob(tar, member, clean, advance)

    def _checked_name(self, member: tarfile.TarInfo) -> str | None:
        """The entry's path in the layout; None for a directory of it. Anything else is refused."""
        name = member.name
        clean = name[2:] if name.startswith("./") else name
        clean = clean.rstrip("/") if member.isdir() else clean
        if name.startswith("/") or ".." in name.split("/"):
            raise ArchiveError(f"{self.source}: entry {name!r} escapes the archive root")
        if member.issym() or member.islnk():
            raise ArchiveError(f"{self.source}: entry {name!r} is a link; an image archive holds none")
        if member.isdir():
            if clean not in _DIRS:
                raise ArchiveError(f"{self.source}: unexpected directory {name!r}")
            return None
        if not member.isreg():
            raise ArchiveError(f"{self.source}: entry {name!r} is a device or other special file")
        if clean in self.seen:
            raise ArchiveError(f"{self.source}: entry {name!r} appears twice")
        self.seen.add(clean)
        return clean

    @staticmethod
    def _small(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
        src = tar.extractfile(member)
        assert src is not None
        return src.read(limit)

    def _blob(self, tar: tarfile.TarFile, member: tarfile.TarInfo, clean: str, advance: Callable[[int], None]) -> None:
        match = _BLOB_NAME.match(clean)
        if not match:
            raise ArchiveError(f"{self.source}: unexpected entry {member.name!r}")
        digest = Digest.from_hex(match.group(1))
        path = self.staging / digest.hex
        if self.fd is not None and self.store.has_blob(digest):
            # the store's copy is verified already; reading the archive's would change nothing
            self.present[digest] = member.size
            advance(member.size)
        elif self.fd is not None and self.pool is not None:
            # blobs are staged two at a time: a blob's copy, hash and flush each wait on
            # something else (the kernel's copy, the CPU, the disk), so two keep both cores busy
            fd, offset, size = self.fd, member.offset_data, member.size
            self.pending[digest] = self.pool.submit(_stage_range, fd, offset, size, path, digest, advance)
        else:
            src = tar.extractfile(member)
            assert src is not None
            self.staged[digest] = _stage_stream(src, path, digest, member.size, advance)


def _load(store: Store, stream: IO[bytes], source: str, staging: Path, reporter: Reporter) -> LoadResult:
    try:
        tar, fd = _open_tar(stream)
        pool = ThreadPoolExecutor(_STAGING_JOBS) if fd is not None else None
        reading = _Reading(store, source, staging, fd, pool=pool)
        try:
            with tar, reporter.task(f"loading {source}") as advance:
                for member in tar:
                    reading.take(tar, member, advance)
                reading.finish()
        finally:
            if pool is not None:  # nothing is left writing into staging when it is removed
                pool.shutdown(wait=True, cancel_futures=True)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # the store's disk, not the archive: said as such by the command line
        raise ArchiveError(f"{source}: the archive is truncated or damaged: {err}") from err
    except (tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"{source}: the archive is truncated or damaged: {err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArchiveError(f"{source}: oci-layout is not JSON") from err
    if reading.index_json is None:
        raise ArchiveError(f"{source}: no index.json: not an OCI image layout")
    return _commit(store, source, staging, reading.staged, reading.present, reading.index_json)


def _check_staged(digest: str, got: int, size: int, hasher: Any) -> int:
    if got != size:
        raise DigestMismatchError(digest, f"archive entry is {got} bytes, its header says {size}")
    if Digest.from_hasher(hasher) != digest:
        raise DigestMismatchError(digest, "archive blob does not match its digest")
    return got


def _stage_stream(src: IO[bytes], path: Path, digest: str, size: int, advance: Callable[[int], None]) -> int:
    hasher = hashlib.sha256()
    got = 0
    # hashing (which releases the GIL) runs beside the reads and writes, on the other core
    with open(path, "wb") as out, ThreadPoolExecutor(1) as hashing:
        pending: Future[None] | None = None
        steps = Writeback(out.fileno(), flush=out.flush)
        while chunk := src.read(CHUNK):
            if pending is not None:
                pending.result()
            pending = hashing.submit(hasher.update, chunk)
            checkpoint()
            out.write(chunk)
            got += len(chunk)
            advance(len(chunk))
            steps.wrote(len(chunk))
        if pending is not None:
            pending.result()
    return _check_staged(digest, got, size, hasher)


def _stage_range(fd: int, offset: int, size: int, path: Path, digest: str, advance: Callable[[int], None]) -> int:
    """Copy ``size`` bytes at ``offset`` of the archive into ``path`` through one small buffer,
    hashing each piece while it is in the CPU's cache, between its read and its write: what is
    hashed is exactly what is written, and no byte is read from memory a second time (reading
    the staged file back to hash it cost as much again as the copy). The staged file is then
    flushed to disk here, beside the other blobs' copies, so the fsync before its rename into
    the store finds nothing left to write."""
    hasher = hashlib.sha256()
    view = memoryview(bytearray(_COPY_CHUNK))
    got = unreported = 0
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    steps = Writeback(out)
    try:
        while got < size:
            n = os.preadv(fd, [view[: min(_COPY_CHUNK, size - got)]], offset + got)
            if n == 0:
                raise EOFError(f"blob {digest} ends after {got} of its {size} bytes")
            hasher.update(view[:n])
            _write_all(out, view[:n])
            checkpoint()
            got += n
            unreported += n
            if unreported >= _REPORT_STEP:
                advance(unreported)
                unreported = 0
            steps.wrote(n)
        advance(unreported)
        checked = _check_staged(digest, got, size, hasher)
        if size >= _FLUSH_EARLY:
            os.fsync(out)
    finally:
        os.close(out)
    return checked


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


@dataclass
class _Verifier:
    """Checks everything an archive's index reaches, against what was staged or is stored."""

    store: Store
    source: str
    staging: Path
    staged: dict[str, int]
    present: dict[str, int]
    referenced: set[str] = field(default_factory=set)

    def blob(self, digest: str) -> bytes:
        if digest in self.staged:
            if self.staged[digest] > MAX_JSON_BLOB:
                raise ArchiveError(f"{self.source}: {digest} is too large for a manifest")
            return (self.staging / Digest.parse(digest).hex).read_bytes()
        if self.store.has_blob(digest):
            return self.store.read_blob(digest)
        raise ArchiveError(f"{self.source}: {digest} is referenced but not in the archive")

    def size(self, digest: str) -> int:
        size = self.staged.get(digest, self.present.get(digest))
        if size is None and self.store.has_blob(digest):
            size = self.store.blob_size(digest)
        if size is None:
            raise ArchiveError(f"{self.source}: {digest} is referenced but not in the archive")
        return size

    def check(self, desc: Descriptor, depth: int = 0) -> list[Descriptor]:
        """Verify everything ``desc`` reaches; returns the platform manifests below it."""
        if depth > MAX_INDEX_DEPTH:
            raise ArchiveError(f"{self.source}: indexes nest deeper than {MAX_INDEX_DEPTH} (a loop?)")
        self.referenced.add(desc.digest)
        size = self.size(desc.digest)
        if size != desc.size:
            raise ArchiveError(f"{self.source}: {desc.digest} is {size} bytes, its descriptor says {desc.size}")
        if desc.media_type in INDEX_TYPES:
            doc = _json(self.blob(desc.digest), desc.digest, self.source)
            out: list[Descriptor] = []
            for m in doc.get("manifests") or []:
                out += self.check(_descriptor(m, desc.digest, self.source), depth + 1)
            return out
        if desc.media_type in MANIFEST_TYPES:
            doc = _json(self.blob(desc.digest), desc.digest, self.source)
            config = _descriptor(doc.get("config"), desc.digest, self.source)
            self.check(config, depth + 1)
            _json(self.blob(config.digest), config.digest, self.source)
            for layer in doc.get("layers") or []:
                self.check(_descriptor(layer, desc.digest, self.source), depth + 1)
            return [desc]
        return []


def _commit(
    store: Store, source: str, staging: Path, staged: dict[str, int], present: dict[str, int], index_json: bytes
) -> LoadResult:
    try:
        top = parse_json_blob(index_json, "index.json")
    except DigestMismatchError as err:
        raise ArchiveError(f"{source}: index.json is not a JSON object") from err
    verifier = _Verifier(store, source, staging, staged, present)
    loaded: dict[str, list[Descriptor]] = {}
    for entry in top.get("manifests") or []:
        desc = _descriptor(entry, "index.json", source)
        name = desc.annotations.get(ANNOTATION_REF_NAME)
        if not name:
            raise ArchiveError(f"{source}: index.json entry {desc.digest} has no {ANNOTATION_REF_NAME}")
        try:
            key = store_key(Reference.parse(name))
        except SealerError as err:
            raise ArchiveError(f"{source}: image name {name!r} is not a valid reference") from err
        loaded.setdefault(key, []).extend(verifier.check(desc))
    if not loaded:
        raise ArchiveError(f"{source}: index.json names no image")
    unreferenced = (set(staged) | set(present)) - verifier.referenced
    if unreferenced:
        raise ArchiveError(f"{source}: blob {sorted(unreferenced)[0]} is in the archive but no image uses it")
    # Everything holds: move the blobs in, then name the images (the only visible step).
    new = [digest for digest in staged if not store.has_blob(digest)]
    store.adopt_many([(staging / Digest.parse(digest).hex, digest) for digest in new])
    _name_images(store, loaded)
    return LoadResult(sorted(loaded), len(new))


def _name_images(store: Store, loaded: dict[str, list[Descriptor]]) -> None:
    def change(names: dict[str, Descriptor]) -> None:
        for key, manifests in loaded.items():
            add_platforms(store, names, key, [read_platform_image(store, m) for m in manifests])

    store.update_names(change)


def _descriptor(data: Any, where: str, source: str) -> Descriptor:
    try:
        return Descriptor.from_json(data, where)
    except (DigestMismatchError, PlatformNotFoundError, SealerError) as err:
        raise ArchiveError(f"{source}: bad descriptor in {where}: {err}") from err


def _json(data: bytes, digest: str, source: str) -> dict[str, Any]:
    try:
        return parse_json_blob(data, digest)
    except DigestMismatchError as err:
        raise ArchiveError(f"{source}: {err}") from err
