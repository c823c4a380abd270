"""Hostile and broken archives for ``sealer load``, each read both from a file (blobs copied by
offset) and from stdin (streamed): each is refused with one line naming the problem, nothing
is written outside the store, and the store is left as it was."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Sealer
from tests.reliability.conftest import SMALL, store_state

Entry = tuple[tarfile.TarInfo, bytes | None]
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def entries(small_store: Sealer, tmp_path_factory: pytest.TempPathFactory) -> list[Entry]:
    path = tmp_path_factory.mktemp("hostile-archives") / "small.tar"
    small_store.run("save", "-o", str(path), SMALL)
    out: list[Entry] = []
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out.append((m, f.read() if f else None))
    return out


def info(name: str, data: bytes = b"", type: bytes = tarfile.REGTYPE, link: str = "") -> Entry:
    m = tarfile.TarInfo(name)
    m.type, m.linkname, m.size = type, link, len(data) if type == tarfile.REGTYPE else 0
    return m, data if type == tarfile.REGTYPE else None


def blob(data: bytes) -> Entry:
    return info("blobs/sha256/" + hashlib.sha256(data).hexdigest(), data)


def desc(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data), **extra}


def with_index(es: list[Entry], index: dict[str, object]) -> list[Entry]:
    return [info("index.json", json.dumps(index).encode()) if m.name == "index.json" else (m, d) for m, d in es]


def top_index(entries: list[Entry], **changes: object) -> dict[str, object]:
    index = json.loads(next(d for m, d in entries if m.name == "index.json") or b"{}")
    index["manifests"][0].update(changes)
    result: dict[str, object] = index
    return result


def largest(es: list[Entry]) -> str:
    return max((m for m, _ in es if m.name.startswith("blobs/")), key=lambda m: m.size).name


def edit_largest(es: list[Entry], change: Callable[[bytes], bytes]) -> list[Entry]:
    name = largest(es)
    return [info(m.name, change(d)) if m.name == name and d is not None else (m, d) for m, d in es]


def nested_indexes(es: list[Entry], depth: int) -> list[Entry]:
    top = top_index(es)["manifests"][0]  # type: ignore[index]
    inner = {k: top[k] for k in ("mediaType", "digest", "size")}
    extra = []
    for _ in range(depth):
        data = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [inner]}).encode()
        extra.append(blob(data))
        inner = desc(INDEX, data)
    index = {"schemaVersion": 2, "manifests": [{**inner, "annotations": {"org.opencontainers.image.ref.name": "x:1"}}]}
    return with_index(es, index) + extra


def one_manifest(es: list[Entry], manifest: bytes, *extra: Entry) -> list[Entry]:
    named = desc(MANIFEST, manifest, annotations={"org.opencontainers.image.ref.name": "x:1"})
    index = {"schemaVersion": 2, "manifests": [named]}
    return [*with_index([(m, d) for m, d in es if not m.name.startswith("blobs/")], index), blob(manifest), *extra]


MISSING_LAYER = json.dumps({
    "schemaVersion": 2, "mediaType": MANIFEST,
    "config": desc("application/vnd.oci.image.config.v1+json", b"{}"),
    "layers": [desc("application/vnd.oci.image.layer.v1.tar", b"missing")],
}).encode()  # fmt: skip


def raw(data: bytes) -> Callable[[list[Entry]], bytes]:
    return lambda es: data


def tar_bytes(es: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m, d in es:
            tar.addfile(m, io.BytesIO(d) if d is not None else None)
    return buf.getvalue()


def truncated(at: Callable[[bytes], int]) -> Callable[[list[Entry]], bytes]:
    def make(es: list[Entry]) -> bytes:
        data = tar_bytes(es)
        return data[: at(data)]

    return make


def entries_only(change: Callable[[list[Entry]], list[Entry]]) -> Callable[[list[Entry]], bytes]:
    return lambda es: tar_bytes(change(es))


def before_last_blob(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return max(m.offset for m in tar.getmembers())


CASES: dict[str, tuple[Callable[[list[Entry]], bytes], str]] = {
    "flipped byte in a layer": (
        entries_only(lambda es: edit_largest(es, lambda d: bytes([d[0] ^ 1]) + d[1:])),
        "does not match its digest",
    ),
    "blob renamed to another digest": (
        entries_only(
            lambda es: [(info("blobs/sha256/" + "a" * 64, d)[0] if m.name == largest(es) else m, d) for m, d in es]
        ),
        "does not match its digest",
    ),
    "truncated in the middle": (truncated(lambda d: len(d) // 2), "truncated"),
    "truncated in the first header": (truncated(lambda d: 300), "truncated"),
    "truncated before the last blob": (truncated(before_last_blob), "not in the archive"),
    "empty file": (raw(b""), "truncated"),
    "not a tar at all": (raw(os.urandom(4096)), "truncated"),
    "gzip of garbage": (raw(gzip.compress(os.urandom(4096))), "truncated"),
    "entry ../evil": (entries_only(lambda es: [*es, info("../evil", b"x")]), "escapes the archive root"),
    "entry blobs/../../evil": (entries_only(lambda es: [*es, info("blobs/../../evil", b"x")]), "escapes"),
    "absolute entry /tmp/evil": (entries_only(lambda es: [*es, info("/tmp/sealer-evil", b"x")]), "escapes"),
    "symlink entry": (
        entries_only(lambda es: [*es, info("blobs/sha256/" + "b" * 64, type=tarfile.SYMTYPE, link="/etc/passwd")]),
        "is a link",
    ),
    "hardlink entry": (
        entries_only(lambda es: [*es, info("blobs/sha256/" + "c" * 64, type=tarfile.LNKTYPE, link="/etc/shadow")]),
        "is a link",
    ),
    "character device": (
        entries_only(lambda es: [*es, info("blobs/sha256/" + "d" * 64, type=tarfile.CHRTYPE)]),
        "device",
    ),
    "fifo": (entries_only(lambda es: [*es, info("blobs/sha256/" + "e" * 64, type=tarfile.FIFOTYPE)]), "special"),
    "unexpected directory": (entries_only(lambda es: [*es, info("etc", type=tarfile.DIRTYPE)]), "unexpected directory"),
    "unexpected file": (entries_only(lambda es: [*es, info("etc/passwd", b"root")]), "unexpected entry"),
    "duplicate blob": (
        entries_only(lambda es: [*es, next((m, d) for m, d in es if m.name == largest(es))]),
        "appears twice",
    ),
    "unreferenced blob": (entries_only(lambda es: [*es, blob(b"nobody uses me")]), "no image uses it"),
    "no index.json": (entries_only(lambda es: [(m, d) for m, d in es if m.name != "index.json"]), "no index.json"),
    "index.json not JSON": (
        entries_only(lambda es: [info("index.json", b"{nope") if m.name == "index.json" else (m, d) for m, d in es]),
        "index.json is not",
    ),
    "index.json larger than 4 MiB": (
        entries_only(
            lambda es: [info("index.json", b" " * (5 << 20)) if m.name == "index.json" else (m, d) for m, d in es]
        ),
        "larger than",
    ),
    "oci-layout of another version": (
        entries_only(
            lambda es: [
                info("oci-layout", b'{"imageLayoutVersion": "9"}') if m.name == "oci-layout" else (m, d) for m, d in es
            ]
        ),
        "not version 1.0.0",
    ),
    "image name that is no reference": (
        entries_only(
            lambda es: with_index(
                es,
                {
                    "manifests": [
                        top_index(es, annotations={"org.opencontainers.image.ref.name": "Not A/Ref!!"})["manifests"][0]
                    ]
                },
            )
        ),  # type: ignore[index]
        "not a valid reference",
    ),
    "image without a name": (
        entries_only(lambda es: with_index(es, top_index(es, annotations={}))),
        "has no org.opencontainers",
    ),
    "descriptor with the wrong size": (
        entries_only(lambda es: with_index(es, top_index(es, size=12345))),
        "its descriptor says",
    ),
    "descriptor with a malformed digest": (
        entries_only(lambda es: with_index(es, top_index(es, digest="sha256:xyz"))),
        "bad descriptor",
    ),
    "indexes nested 6 deep (a loop)": (entries_only(lambda es: nested_indexes(es, 6)), "nest deeper"),
    "manifest that is not JSON": (entries_only(lambda es: one_manifest(es, b"\x00\xffgarbage")), "not valid JSON"),
    "manifest larger than 4 MiB": (
        entries_only(lambda es: one_manifest(es, b"{" + b" " * (5 << 20) + b"}")),
        "too large for a manifest",
    ),
    "manifest naming a missing layer": (
        entries_only(lambda es: one_manifest(es, MISSING_LAYER, blob(b"{}"))),
        "is referenced but not in the archive",
    ),
}


@pytest.mark.parametrize("mode", ["file", "stdin"])
@pytest.mark.parametrize("case", list(CASES))
def test_load_refuses(case: str, mode: str, entries: list[Entry], sealer: Sealer, tmp_path: Path) -> None:
    make, message = CASES[case]
    archive = tmp_path / "hostile.tar"
    archive.write_bytes(make(entries))
    before = store_state(sealer)
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(sealer.root)}
    if mode == "file":
        proc = sealer.run("load", "-i", str(archive), check=False)
    else:
        proc = sealer.run("load", "-i", "-", input=archive.read_bytes(), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert store_state(sealer) == before
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(sealer.root)} == outside
    assert not Path("/tmp/sealer-evil").exists()
