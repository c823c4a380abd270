"""Reproducible layer tarballs, and unpacking them safely.

A layer's bytes depend only on paths, contents, modes and link targets: entries are
sorted, ownership is root, every timestamp is the epoch, and nothing of the build host
(user names, inode numbers, file times) enters the archive. The same tree therefore gives
the same digest on every build, checkout and platform.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sealer._fs import fsync_dir, fsync_file
from sealer.errors import BuildError, DigestMismatchError
from sealer.faults import checkpoint
from sealer.oci.digest import Digest
from sealer.store.layout import CHUNK, Store

if TYPE_CHECKING:  # imported when a layer is read: start-up pays nothing for it
    import tarfile

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_BLOCK = 512

Advance = Callable[[int], None]


@dataclass(frozen=True)
class Entry:
    """One entry of a layer: ``path`` inside the rootfs, where its bytes come from, its kind."""

    path: str  # relative, no leading "/" or "./", "/"-separated
    kind: str  # "dir", "file", "symlink" or "whiteout"
    mode: int = 0o755
    source: str | None = None  # file to read content from
    size: int = 0
    linkname: str = ""
    # stat fields used only for the build cache fingerprint, never written to the tar
    stamp: tuple[int, ...] = ()


def finalize(entries: Iterable[Entry]) -> list[Entry]:
    """Deduplicate (last wins), add missing parent directories, and sort by path."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        by_path[e.path] = e
    for path in list(by_path):
        # up to the first parent present: that one's own parents are added in its turn
        parent = path.rpartition("/")[0]
        while parent and parent not in by_path:
            by_path[parent] = Entry(parent, "dir", 0o755)
            parent = parent.rpartition("/")[0]
    return [by_path[p] for p in sorted(by_path, key=lambda p: p.encode("utf-8", "surrogateescape"))]


def fingerprint(entries: list[Entry]) -> str:
    """A cheap digest of the entries' stat data: it changes whenever any content may have."""
    text = "".join(f"{(e.path, e.kind, e.mode, e.size, e.linkname, e.stamp)!r}\0" for e in entries)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _header(e: Entry) -> bytes:
    import tarfile  # here and below: a build that writes and unpacks no layer does not load it

    info = tarfile.TarInfo(e.path + ("/" if e.kind == "dir" else ""))
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = e.mode & 0o7777
    if e.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = e.linkname
    elif e.kind == "whiteout":
        info.type = tarfile.REGTYPE
        info.mode = 0o644
    else:
        info.type = tarfile.REGTYPE
        info.size = e.size
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def write_layer(store: Store, entries: list[Entry], advance: Advance | None = None) -> tuple[str, int]:
    """Write the entries as one uncompressed tar blob into the store; returns (digest, size)."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with store.new_blob() as out:
        for e in entries:
            out.write(_header(e))
            if e.kind != "file":
                continue
            assert e.source is not None
            remaining = e.size
            with open(e.source, "rb") as f:
                while remaining:
                    n = f.readinto(view[: min(CHUNK, remaining)])
                    if not n:
                        break
                    out.write(view[:n])
                    remaining -= n
                    if advance:
                        advance(n)
                if remaining or f.read(1):
                    raise BuildError(f"{e.source} changed size while it was being read")
            pad = -e.size % _BLOCK
            if pad:
                out.write(bytes(pad))
        out.write(bytes(2 * _BLOCK))
        size = out.size
        digest = out.commit()
    return digest, size


# ---- unpacking -------------------------------------------------------------------------


def _safe_member_path(name: str, digest: str) -> str:
    if name.startswith("/") or ".." in name.split("/"):
        raise DigestMismatchError(digest, f"layer entry {name!r} escapes the layer root")
    norm = os.path.normpath(name)
    return "" if norm == "." else norm


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def layer_mtime(digest: str) -> int:
    """The time every file of an unpacked layer gets: derived from the digest, so an unchanged
    layer keeps its times when unpacked again (rsync's quick check skips it) and a changed
    one, even with a file of the same size, gets other times (rsync sends it)."""
    return int(Digest.parse(digest).hex[:8], 16)


def extract_layer(blob: Path, target: Path, digest: str) -> bool:
    """Extract a layer tar into ``target``, refusing anything that could write outside it.

    Whiteouts stay as ``.wh.`` files; :func:`apply_layers` interprets them. Returns whether
    the layer had any.
    """
    import tarfile

    root = os.path.realpath(target)
    whiteouts = False
    with tarfile.open(blob, "r:*") as tar:
        for member in tar:
            rel = _safe_member_path(member.name, digest)
            if not rel:
                continue
            dest = _make_room(root, rel, member, digest)
            whiteouts = whiteouts or os.path.basename(rel).startswith(WHITEOUT_PREFIX)
            _extract_member(tar, member, root, dest, digest)
    _stamp_and_sync(root, layer_mtime(digest))
    return whiteouts


def _make_room(root: str, rel: str, member: tarfile.TarInfo, digest: str) -> str:
    """Where ``member`` goes, its parent made and whatever stood there (another layer's) gone."""
    dest = os.path.join(root, rel)
    if not _inside(root, os.path.dirname(dest)):
        raise DigestMismatchError(digest, f"layer entry {member.name!r} goes through a link out of the layer")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest) and not (member.isdir() and os.path.isdir(dest)):
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        else:
            os.unlink(dest)
    return dest


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str, dest: str, digest: str) -> None:
    mode = member.mode & 0o7777 & ~0o6000  # never set-id bits from an archive
    if member.isdir():
        os.makedirs(dest, exist_ok=True)
        os.chmod(dest, mode | 0o700)
    elif member.isreg():
        src = tar.extractfile(member)
        assert src is not None
        with src, open(dest, "wb") as f:
            shutil.copyfileobj(src, f, CHUNK)
        os.chmod(dest, mode)
    elif member.issym():
        os.symlink(member.linkname, dest)
    elif member.islnk():
        link_src = os.path.join(root, _safe_member_path(member.linkname, digest))
        if not _inside(root, link_src) or not os.path.isfile(link_src):
            raise DigestMismatchError(digest, f"hard link {member.name!r} points outside the layer")
        os.link(link_src, dest)
    elif member.ischr() and member.devmajor == 0 and member.devminor == 0:
        # an overlayfs-style whiteout: record it the OCI way
        d, base = os.path.split(dest)
        Path(d, WHITEOUT_PREFIX + base).touch()
    else:
        raise DigestMismatchError(digest, f"layer entry {member.name!r} is a device or other special file")


def _stamp_and_sync(root: str, stamp: int) -> None:
    """Times set, then every file and directory fsynced: the tree is renamed into layers/ next,
    and from then on it is trusted as the layer's content, also after a power cut."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            os.utime(path, (stamp, stamp), follow_symlinks=False)
            if name in filenames and not os.path.islink(path):
                fsync_file(Path(path))
        fsync_dir(Path(dirpath))


def read_layer_files(store: Store, digest: str, want: Callable[[str], bool]) -> dict[str, bytes]:
    """The content of a stored layer's regular files whose path ``want`` accepts, read from
    its tar (nothing unpacked); whiteouts are not files and are left out."""
    import tarfile

    out: dict[str, bytes] = {}
    with tarfile.open(store.blob_path(digest), "r:*") as tar:
        for member in tar:
            rel = _safe_member_path(member.name, digest)
            if not rel or not (member.isreg() or member.islnk()) or not want(rel):
                continue
            if os.path.basename(rel).startswith(WHITEOUT_PREFIX):
                continue
            src = tar.extractfile(member)
            assert src is not None
            with src:
                out[rel] = src.read()
    return out


def has_whiteouts(store: Store, digest: str) -> bool:
    return (store.layers / (Digest.parse(digest).hex + ".whiteouts")).exists()


def unpacked_layer(store: Store, digest: str) -> Path:
    """The layer's files, extracted once and kept in the store (renamed in when complete)."""
    hexd = Digest.parse(digest).hex
    final = store.layers / hexd
    if final.is_dir():
        return final
    work = store.tmp_path(".unpack")
    work.mkdir()
    try:
        if extract_layer(store.blob_path(digest), work, digest):
            (store.layers / (hexd + ".whiteouts")).touch()  # before the rename: never missing
        checkpoint()
        try:
            os.rename(work, final)
        except OSError:
            if not final.is_dir():
                raise
        fsync_dir(store.layers)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return final


def apply_layers(store: Store, digests: Iterable[str], target: Path) -> None:
    """Flatten layers into ``target`` (a copy, so the unpacked cache stays untouched)."""
    target.mkdir(parents=True, exist_ok=True)
    for digest in digests:
        src = unpacked_layer(store, digest)
        _apply_tree(str(src), str(target))


def _apply_tree(src: str, dst: str) -> None:
    names = sorted(os.listdir(src))
    if OPAQUE_WHITEOUT in names:
        for existing in os.listdir(dst):
            _remove(os.path.join(dst, existing))
    for name in names:
        if name == OPAQUE_WHITEOUT:
            continue
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if name.startswith(WHITEOUT_PREFIX):
            _remove(os.path.join(dst, name[len(WHITEOUT_PREFIX) :]))
            continue
        st = os.lstat(s)
        if stat.S_ISDIR(st.st_mode):
            if os.path.lexists(d) and not (os.path.isdir(d) and not os.path.islink(d)):
                _remove(d)
            if not os.path.lexists(d):
                os.mkdir(d)
            os.chmod(d, stat.S_IMODE(st.st_mode))
            _apply_tree(s, d)
        else:
            if os.path.lexists(d):
                _remove(d)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            else:
                shutil.copy2(s, d)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
