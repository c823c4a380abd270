"""Long durable writes hand their bytes on to the disk as they go (sealer._fs.start_writeback),
so the fsync before each rename finds little left: every blob writer of the store, the archive
load's staging and the archive save. Each must cover what it wrote, in steps, before it ends,
and write the same bytes as before."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sealer import _fs
from sealer._fs import WRITEBACK_STEP
from sealer.distribution import archive
from sealer.oci.digest import Digest
from sealer.store.layout import Store

MIB = 1 << 20


def _recorder(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(_fs, "start_writeback", lambda fd, offset, length: calls.append((offset, length)))
    return calls


def _covered(calls: list[tuple[int, int]]) -> int:
    """The bytes the calls cover from 0 without a gap (each starts where the last ended)."""
    end = 0
    for offset, length in calls:
        assert offset == end, f"writeback of {offset} follows {end}: a gap or an overlap"
        end += length
    return end


def test_a_store_blob_is_handed_to_the_disk_in_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recorder(monkeypatch)
    store = Store.open(tmp_path / "store")
    data = os.urandom(MIB) * 20
    with store.new_blob() as writer:
        for i in range(20):
            writer.write(data[i * MIB : (i + 1) * MIB])
        digest = writer.commit(Digest.of(data), len(data))
    assert _covered(calls) == 2 * WRITEBACK_STEP  # 16 of 20 MiB; the fsync takes the rest
    assert store.blob_path(digest).read_bytes() == data


def test_a_restarted_blob_starts_its_writeback_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recorder(monkeypatch)
    store = Store.open(tmp_path / "store")
    data = os.urandom(9 * MIB)
    with store.new_blob() as writer:
        writer.write(os.urandom(12 * MIB))
        writer.restart()  # a download that broke off
        writer.write(data)
        digest = writer.commit(Digest.of(data), len(data))
    assert calls == [(0, 12 * MIB), (0, 9 * MIB)]
    assert store.blob_path(digest).read_bytes() == data


def test_load_staging_hands_each_blob_to_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recorder(monkeypatch)
    data = os.urandom(MIB) * 19
    source = tmp_path / "archive"
    source.write_bytes(b"x" * 512 + data)
    staged = tmp_path / "staged"
    fd = os.open(source, os.O_RDONLY)
    try:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        assert archive._stage_range(fd, 512, len(data), staged, digest, lambda n: None) == len(data)
    finally:
        os.close(fd)
    assert _covered(calls) == 2 * WRITEBACK_STEP
    assert staged.read_bytes() == data


def test_save_hands_a_file_to_the_disk_and_not_a_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recorder(monkeypatch)
    data = os.urandom(MIB) * 17
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    out = tmp_path / "out"
    with open(blob, "rb") as src, open(out, "wb") as dst:
        dst.write(b"h" * 512)
        dst.flush()
        archive._copy_exact(src.fileno(), dst.fileno(), len(data), "sha256:x", writeback=True)
    assert calls[0][0] == 512 and sum(length for _, length in calls) == len(data)
    assert out.read_bytes() == b"h" * 512 + data
    calls.clear()
    read_end, write_end = os.pipe()
    with open(blob, "rb") as src:
        os.set_blocking(write_end, True)
        # a pipe holds 64 KiB: copy a small part so nothing waits for a reader
        archive._copy_exact(src.fileno(), write_end, 4096, "sha256:x", writeback=False)
    os.close(write_end)
    assert os.read(read_end, 8192) == data[:4096]
    os.close(read_end)
    assert calls == []


def test_the_kernel_call_leaves_the_bytes_written(tmp_path: Path) -> None:
    from sealer._fs import start_writeback

    path = tmp_path / "f"
    data = os.urandom(WRITEBACK_STEP + 4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        start_writeback(fd, 0, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
