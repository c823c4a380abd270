"""What sealer did not make is never removed or overwritten, and partial operations keep what
they did not mean to change: registry merge outputs, save targets, rmi of several names, save
of a damaged store, push of one platform to a multi-arch tag."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from sealer.oci.descriptor import MEDIA_CONFIG, MEDIA_MANIFEST, canonical_json
from sealer.rootfs_cache.registry_tree import RegistryTree
from tests.helpers import ROOT, SEALER, Registry, Sealer, sh
from tests.reliability.conftest import SMALL, make_small_context, store_state

# ---- helpers -----------------------------------------------------------------------------


def copy_store(source: Sealer, tmp_path: Path, name: str = "copy") -> Sealer:
    """A store of this test's own, holding what ``source`` holds."""
    target = Sealer(tmp_path / name / "store")
    shutil.copytree(source.root, target.root, symlinks=True)
    # the shared store is written by other suites (they tag and push from it): only SMALL stays
    others = sorted({i["name"] for i in target.images()} - {SMALL})
    if others:
        target.run("rmi", *others)
    return target


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` and a hash of its content: equal snapshots, untouched trees."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def registry_tree(root: Path, repo: str, tag: str, arch: str, payload: bytes = b"") -> Path:
    """A registry tree holding ``repo:tag`` as one linux/ARCH image (config and manifest only)."""
    tree = RegistryTree(root)
    config = canonical_json({"architecture": arch, "os": "linux", "payload": payload.hex()})
    config_digest = tree.put_blob(config)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [],
        }
    )
    digest = tree.put_blob(manifest)
    tree.link_layer(repo, config_digest)
    tree.link_revision(repo, digest)
    tree.tag(repo, tag, digest)
    return root


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ---- registry merge ----------------------------------------------------------------------


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    a = registry_tree(tmp_path / "in-amd64", "library/app", "v1", "amd64")
    b = registry_tree(tmp_path / "in-arm64", "library/app", "v1", "arm64")
    return a, b


def test_registry_merge_refuses_a_non_empty_out(sealer: Sealer, tmp_path: Path, trees: tuple[Path, Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file\n")
    before = snapshot(out)
    line = one_line_error(sealer.run("registry", "merge", str(out), *map(str, trees), check=False))
    assert str(out) in line and "--replace" in line
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


def test_registry_merge_replace_swaps_in_the_new_tree(sealer: Sealer, tmp_path: Path, trees: tuple[Path, Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("old\n")
    served = sealer.json("registry", "merge", "--replace", "--output", "json", str(out), *map(str, trees))
    assert list(served) == ["library/app:v1"]
    assert not (out / "notes.txt").exists()
    index = RegistryTree(out).manifest_json(served["library/app:v1"])
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    assert leftovers(tmp_path) == []


def test_registry_merge_into_an_empty_or_missing_out(sealer: Sealer, tmp_path: Path, trees: tuple[Path, Path]) -> None:
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new"):
        sealer.run("registry", "merge", str(out), *map(str, trees))
        assert RegistryTree(out).tags("library/app")
    assert leftovers(tmp_path) == []


def test_registry_merge_replace_keeps_old_out_when_the_merge_fails(
    sealer: Sealer, tmp_path: Path, trees: tuple[Path, Path]
) -> None:
    # two different amd64 manifests under one tag: the merge fails after it started writing
    clash = registry_tree(tmp_path / "in-clash", "library/app", "v1", "amd64", b"other")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("old\n")
    before = snapshot(out)
    line = one_line_error(
        sealer.run("registry", "merge", "--replace", str(out), str(trees[0]), str(clash), check=False)
    )
    assert "two different manifests" in line
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "out_of",
    [
        pytest.param(lambda a: a, id="out-is-an-input"),
        pytest.param(lambda a: a.parent / "x" / ".." / a.name, id="out-is-an-input-by-another-path"),
        pytest.param(lambda a: a / "docker" / "merged", id="out-inside-an-input"),
        pytest.param(lambda a: a.parent, id="input-inside-out"),
    ],
)
def test_registry_merge_never_writes_over_an_input(
    sealer: Sealer, tmp_path: Path, trees: tuple[Path, Path], out_of: object
) -> None:
    (tmp_path / "x").mkdir()
    a, b = trees
    out = out_of(a)  # type: ignore[operator]
    before = snapshot(tmp_path)
    line = one_line_error(sealer.run("registry", "merge", "--replace", str(out), str(a), str(b), check=False))
    assert "input tree" in line
    assert snapshot(tmp_path) == before


def test_registry_merge_refuses_out_inside_a_rootfs_given_as_input(sealer: Sealer, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    registry_tree(rootfs / "registry", "library/app", "v1", "amd64")
    before = snapshot(rootfs)
    line = one_line_error(sealer.run("registry", "merge", str(rootfs / "merged"), str(rootfs), check=False))
    assert "input tree" in line
    assert snapshot(rootfs) == before


# ---- save: where the archive goes ----------------------------------------------------------


def test_save_into_a_missing_directory_names_the_users_path(small_store: Sealer, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "small.tar"
    line = one_line_error(small_store.run("save", "-o", str(target), SMALL, check=False))
    assert str(target) in line and ".tmp" not in line
    assert not target.parent.exists()


def test_save_to_standard_output_writes_the_tar_there(small_store: Sealer, tmp_path: Path) -> None:
    env = {**small_store.env(), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([*SEALER, "save", "-o", "-", SMALL], env=env, cwd=tmp_path, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "-").exists()
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        names = tar.getnames()
    assert "index.json" in names and "oci-layout" in names
    assert all(b"saved" not in line for line in proc.stdout.splitlines()[-2:])
    assert b"saved" in proc.stderr
    # the stream is an archive load takes: same ids as the store it came from
    other = Sealer(tmp_path / "other" / "store")
    other.run("load", "-i", "-", input=proc.stdout)
    assert {i["id"] for i in other.images()} == {i["id"] for i in small_store.images()}
    # --output json keeps stdout for the archive: the summary goes to stderr
    proc = subprocess.run(
        [*SEALER, "save", "--output", "json", "-o", "-", SMALL], env=env, cwd=tmp_path, capture_output=True, check=False
    )
    assert proc.returncode == 0 and json.loads(proc.stderr)["images"] == [SMALL]
    tarfile.open(fileobj=io.BytesIO(proc.stdout)).close()


# ---- save verifies what it copies ----------------------------------------------------------


def _damage_largest_blob(store: Sealer) -> str:
    blobs = store.root / "blobs" / "sha256"
    largest = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    largest.write_bytes(bytes(data))
    return largest.name


def test_save_refuses_a_damaged_store_blob(small_store: Sealer, tmp_path: Path) -> None:
    store = copy_store(small_store, tmp_path)
    damaged = _damage_largest_blob(store)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    line = one_line_error(store.run("save", "-o", str(out_dir / "small.tar"), SMALL, check=False))
    assert damaged in line
    assert list(out_dir.iterdir()) == []  # neither the archive nor its temp file
    # to standard output: the command fails and the stream has no end, so load refuses it
    proc = store.run("save", "-o", "-", SMALL, check=False)
    assert damaged in one_line_error(proc)


# ---- rmi of several names ------------------------------------------------------------------


def test_rmi_checks_every_name_before_removing_any(small_store: Sealer, tmp_path: Path) -> None:
    store = copy_store(small_store, tmp_path)
    store.run("tag", SMALL, "small/app:a")
    store.run("tag", SMALL, "small/app:c")
    before = store_state(store)
    line = one_line_error(store.run("rmi", "small/app:a", "small/app:nope", "small/app:c", check=False))
    assert "small/app:nope" in line
    assert store_state(store) == before
    # a platform one name lacks: nothing removed either
    store.run("rmi", "--platform", "linux/arm64", "small/app:c")
    before = store_state(store)
    line = one_line_error(store.run("rmi", "--platform", "linux/arm64", "small/app:a", "small/app:c", check=False))
    assert "small/app:c" in line and "linux/arm64" in line
    assert store_state(store) == before


def test_rmi_reports_each_name_it_removed(small_store: Sealer, tmp_path: Path) -> None:
    store = copy_store(small_store, tmp_path)
    for tag in ("a", "b", "c"):
        store.run("tag", SMALL, f"small/app:{tag}")
    ids = sorted(i["id"] for i in store.images() if i["name"] == SMALL)
    text = store.run("rmi", "small/app:a", "small/app:b").stderr
    for name in ("small/app:a", "small/app:b"):
        assert sorted(line.split()[2] for line in text.splitlines() if line.startswith(f"untagged {name} ")) == sorted(
            i[:12] for i in ids
        )
    report = store.json("rmi", "--output", "json", "small/app:c", SMALL)
    assert {k: sorted(v) for k, v in report["untagged"].items()} == {"small/app:c": ids, SMALL: ids}
    assert store.images() == []


# ---- push of one platform to a multi-arch tag ---------------------------------------------


def _remote_platforms(registry: Registry, name: str) -> dict[str, str]:
    raw = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.address}/{name}"))
    return {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in raw["manifests"]}


def test_push_of_one_platform_keeps_the_others_of_the_remote_index(
    small_store: Sealer, registry: Registry, tmp_path: Path
) -> None:
    store = copy_store(small_store, tmp_path)
    name = f"{registry.address}/safety/push:v1"
    store.run("tag", SMALL, name)
    store.run("push", name)
    first = _remote_platforms(registry, "safety/push:v1")
    assert set(first) == {"linux/amd64", "linux/arm64"}
    # a new amd64 build under the same name, pushed for amd64 only
    store.run("build", "--platform", "linux/amd64", "-t", name, str(make_small_context(tmp_path / "v2")))
    new_amd64 = next(i["id"] for i in store.images() if i["name"] == name and i["platform"]["architecture"] == "amd64")
    report = store.json("push", "--output", "json", "--platform", "linux/amd64", name)
    assert report["kept"] == ["linux/arm64/v8"]
    merged = _remote_platforms(registry, "safety/push:v1")
    assert merged == {"linux/amd64": f"sha256:{new_amd64}", "linux/arm64": first["linux/arm64"]}
    # the user asks for the tag to name this platform alone
    store.run("push", "--platform", "linux/amd64", "--replace-index", name)
    assert _remote_platforms(registry, "safety/push:v1") == {"linux/amd64": f"sha256:{new_amd64}"}
