"""What a COPY takes from the build context, checked so nothing outside the context is read.

Semantics (those of the original sealer, which users' Kubefiles rely on): ``dest`` is a
directory inside the rootfs; each source lands in it under its own base name
(``COPY my-mysql charts`` gives ``charts/my-mysql``); a source ``.`` or ``dir/.`` copies the
directory's contents instead (``COPY . .``).
"""

from __future__ import annotations

import glob
import os
import posixpath
import stat
from pathlib import Path

from sealer.build.memo import RACY_NS, Inputs
from sealer.errors import KubefileError
from sealer.store.layer import Entry


def normalize_dest(dest: str, where: tuple[str, int]) -> str:
    """``/manifests``, ``./manifests/`` and ``manifests`` are the same place; ``..`` is refused."""
    if ".." in dest.split("/"):
        raise KubefileError(*where, f"COPY destination {dest!r} escapes the rootfs")
    norm = posixpath.normpath("/" + dest).lstrip("/")
    return "" if norm == "." else norm


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def settled(entries: list[Entry], walk_start_ns: int) -> bool:
    """Whether every entry last changed at least RACY_NS before the walk began. An unchanged
    rebuild trusts stat data (:func:`_stamp`), as git's index does: a file whose content
    changes moves its ctime, which no user can set back. Only a file changed within one step
    of the file system's clock of the walk could change again, after the build read it, with
    the very same stat data; git calls such entries racily clean and so does this: their
    layer is written but not remembered, and the next build reads it again."""
    limit = walk_start_ns - RACY_NS
    return all(max(e.stamp[2], e.stamp[3]) < limit for e in entries if e.stamp)


def _within(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def copy_entries(
    context: Path, sources: list[str], dest: str, platform: str, where: tuple[str, int], inputs: Inputs | None = None
) -> list[Entry]:
    """The layer entries for ``COPY sources... dest`` (sources already expanded for ``platform``);
    every path looked at is added to ``inputs`` with its stat data (the build's memo)."""
    root = os.path.realpath(context)
    dest_dir = normalize_dest(dest, where)
    inputs = inputs if inputs is not None else Inputs()
    entries: list[Entry] = []
    for pattern in sources:
        if os.path.isabs(pattern) or ".." in pattern.split("/"):
            raise KubefileError(*where, f"COPY source {pattern!r} escapes the build context")
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, root_dir=root, include_hidden=False))
            parent = posixpath.dirname(pattern)
            inputs.add_chain(root, parent)  # the listing the last component was matched in
            inputs.complete = inputs.complete and not glob.has_magic(parent)
        else:
            matches = [pattern] if os.path.lexists(os.path.join(root, pattern)) else []
        if not matches:
            raise KubefileError(*where, f"COPY source {pattern!r} does not exist in the build context for {platform}")
        for match in matches:
            inputs.add_chain(root, match)
            entries.extend(_source_entries(root, match, dest_dir, where, inputs))
    return entries


def _source_entries(root: str, rel: str, dest_dir: str, where: tuple[str, int], inputs: Inputs) -> list[Entry]:
    path = os.path.join(root, rel)
    real = os.path.realpath(path)
    if not _within(root, real):
        raise KubefileError(*where, f"COPY source {rel!r} resolves outside the build context")
    norm = posixpath.normpath(rel)
    contents_only = norm == "." or rel.rstrip("/").endswith("/.")
    st = os.stat(real)
    inputs.add_stat(real, True, st)
    if stat.S_ISDIR(st.st_mode):
        base = dest_dir if contents_only else _join(dest_dir, posixpath.basename(norm))
        return _walk(root, real, base, where, inputs)
    if not stat.S_ISREG(st.st_mode):
        raise KubefileError(*where, f"COPY source {rel!r} is not a regular file or directory")
    target = _join(dest_dir, posixpath.basename(norm))
    return [Entry(target, "file", stat.S_IMODE(st.st_mode), real, st.st_size, stamp=_stamp(st))]


def _walk(root: str, top: str, base: str, where: tuple[str, int], inputs: Inputs) -> list[Entry]:
    # scandir: one lstat per entry (the stat data the build cache needs) and no path joins in Python
    out: list[Entry] = []
    if base:
        st = os.stat(top)
        out.append(Entry(base, "dir", stat.S_IMODE(st.st_mode), stamp=_stamp(st)))
    stack = [(top, base)]
    while stack:
        dirpath, arc_dir = stack.pop()
        with os.scandir(dirpath) as listing:
            for item in listing:
                arc = f"{arc_dir}/{item.name}" if arc_dir else item.name
                st = item.stat(follow_symlinks=False)
                inputs.add_stat(item.path, False, st)
                mode = st.st_mode
                if stat.S_ISREG(mode):
                    out.append(Entry(arc, "file", stat.S_IMODE(mode), item.path, st.st_size, stamp=_stamp(st)))
                elif stat.S_ISDIR(mode):
                    out.append(Entry(arc, "dir", stat.S_IMODE(mode), stamp=_stamp(st)))
                    stack.append((item.path, arc))  # symlinked directories are copied as links, never followed
                elif stat.S_ISLNK(mode):
                    target = os.readlink(item.path)
                    _check_link(root, item.path, arc, target, where)
                    out.append(Entry(arc, "symlink", 0o777, linkname=target, stamp=_stamp(st)))
                else:
                    raise KubefileError(*where, f"{os.path.relpath(item.path, root)} is a device, socket or fifo")
    return out


def _climbs_out(start_dir: str, target: str) -> bool:
    """Does ``target``, followed from directory ``start_dir`` (both relative), go above the top?"""
    depth = len([p for p in start_dir.split("/") if p not in ("", ".")])
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _check_link(root: str, full: str, arc: str, target: str, where: tuple[str, int]) -> None:
    """A link may point anywhere inside the rootfs it lands in, never out of the context or rootfs."""
    if os.path.isabs(target):
        return  # absolute links resolve inside the rootfs they are delivered into
    rel = os.path.relpath(full, root).replace(os.sep, "/")
    if _climbs_out(posixpath.dirname(arc), target) or _climbs_out(posixpath.dirname(rel), target):
        raise KubefileError(*where, f"symlink {rel} -> {target} points outside the build context")
