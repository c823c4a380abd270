"""An unchanged ``sealer build`` answered from the memo of the last build with its arguments,
before the builder loads; and everything that memo depends on sending the build back to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sealer.commands.build import _parse
from tests.helpers import Sealer

RACY_SECONDS = 1.1  # a memo is kept only when every input is older than a clock step (sealer.build.memo)
PLATFORMS = "linux/amd64,linux/arm64"


def _context(root: Path) -> tuple[Path, Path]:
    base, app = root / "base", root / "app"
    for arch in ("amd64", "arm64"):
        (base / arch / "bin").mkdir(parents=True)
        (base / arch / "bin" / "kubelet").write_bytes(arch.encode() * 1000)
    (base / "rootfs" / "etc" / "conf.d").mkdir(parents=True)
    for i in range(30):
        (base / "rootfs" / "etc" / "conf.d" / f"{i}.conf").write_text(f"setting {i}\n")
    (base / "rootfs" / "etc" / "empty").mkdir()
    os.symlink("conf.d/0.conf", base / "rootfs" / "etc" / "main.conf")
    (base / "Kubefile").write_text("FROM scratch\nCOPY rootfs/. .\nCOPY ${ARCH}/bin .\n")
    (app / "manifests").mkdir(parents=True)
    (app / "manifests" / "a.yaml").write_text("kind: ConfigMap\n")
    (app / "manifests" / "notes.txt").write_text("not copied\n")
    (app / "Kubefile").write_text("FROM base:1\nCOPY manifests/*.yaml manifests\nCMD kubectl apply -f manifests\n")
    return base, app


def build(sealer: Sealer, ctx: Path, tag: str, *extra: str) -> tuple[dict[str, Any], bool]:
    """The build's JSON report, and whether the builder was loaded to make it."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sealer", "build", "--platform", PLATFORMS, "-t", tag, str(ctx),
         *extra, "--output", "json"],
        env=sealer.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return json.loads(proc.stdout), "sealer.build.builder" in modules


@pytest.fixture
def built(sealer: Sealer, tmp_path: Path) -> tuple[Sealer, Path, Path]:
    base, app = _context(tmp_path / "ctx")
    time.sleep(RACY_SECONDS)
    build(sealer, base, "base:1")
    build(sealer, app, "app:1")
    return sealer, base, app


def test_an_unchanged_rebuild_reports_what_the_full_build_does_without_loading_the_builder(
    built: tuple[Sealer, Path, Path],
) -> None:
    sealer, base, app = built
    for ctx, tag in ((base, "base:1"), (app, "app:1")):
        shutil.rmtree(sealer.root / "cache" / "memo")  # the full build, which keeps the memo again
        full, loaded = build(sealer, ctx, tag)
        assert loaded and full["layersWritten"] == 0
        replayed, loaded = build(sealer, ctx, tag)
        assert not loaded
        assert replayed == full
        # the text a person sees is the full build's too
        args = ["build", "--platform", PLATFORMS, "-t", tag, str(ctx)]
        text = sealer.run(*args)
        shutil.rmtree(sealer.root / "cache" / "memo")
        assert (text.stdout, text.stderr) == (sealer.run(*args).stdout, sealer.run(*args).stderr)
    assert replayed["layersCached"] == 2  # COPY manifests on each platform


def _touch_same_size(path: Path) -> None:
    before = path.stat()
    path.write_bytes(b"Z" * before.st_size)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _glob_match_added(s: Sealer, b: Path, a: Path) -> None:
    (a / "manifests" / "b.yaml").write_text("kind: Secret\n")


def _kubefile_edited(s: Sealer, b: Path, a: Path) -> None:
    (a / "Kubefile").write_text((a / "Kubefile").read_text() + "LABEL tier=apps\n")


def _base_rebuilt(s: Sealer, b: Path, a: Path) -> None:
    (b / "rootfs" / "etc" / "conf.d" / "new.conf").write_text("new\n")
    build(s, b, "base:1")


# each change to something the app's build read
CHANGES: dict[str, Callable[[Sealer, Path, Path], object]] = {
    "a copied file rewritten at its size, its mtime put back": lambda s, b, a: _touch_same_size(a / "manifests/a.yaml"),
    "a file added that the COPY glob matches": _glob_match_added,
    "the Kubefile edited": _kubefile_edited,
    "the FROM image rebuilt from a changed context": _base_rebuilt,
    "the name pointed at another image": lambda s, b, a: s.run("tag", "base:1", "app:1"),
    "the image removed": lambda s, b, a: s.run("rmi", "app:1"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_to_anything_the_build_read_sends_the_rebuild_to_the_builder(
    built: tuple[Sealer, Path, Path], change: str
) -> None:
    sealer, base, app = built
    before, loaded = build(sealer, app, "app:1")
    assert not loaded
    CHANGES[change](sealer, base, app)
    after, loaded = build(sealer, app, "app:1")
    assert loaded
    ids = [m["id"] for m in after["manifests"]]
    if change in ("the name pointed at another image", "the image removed"):
        # the app is made again under its name (its layers from the cache, or anew once removed)
        assert after["layersWritten"] + after["layersCached"] == 2
        assert ids != [m["id"] for m in build(sealer, base, "base:1")[0]["manifests"]]
    else:
        assert ids != [m["id"] for m in before["manifests"]]
    assert {r["name"] for r in sealer.images()} >= {"app:1", "base:1"}


def test_other_arguments_or_no_cache_are_not_answered_from_the_memo(built: tuple[Sealer, Path, Path]) -> None:
    sealer, _, app = built
    assert build(sealer, app, "app:1")[1] is False
    assert build(sealer, app, "app:1", "--allow-missing-images")[1] is True  # another invocation
    fresh, loaded = build(sealer, app, "app:1", "--no-cache")
    assert loaded and fresh["layersWritten"] == 2
    assert build(sealer, app, "app:2")[1] is True


def test_a_build_of_files_changed_within_a_clock_step_keeps_no_memo(sealer: Sealer, tmp_path: Path) -> None:
    base, _ = _context(tmp_path / "ctx")
    build(sealer, base, "base:1")  # its files were written just now: racily clean
    assert build(sealer, base, "base:1")[1] is True
    time.sleep(RACY_SECONDS)
    build(sealer, base, "base:1")
    assert build(sealer, base, "base:1")[1] is False


def test_a_build_that_asks_registries_keeps_no_memo(sealer: Sealer, tmp_path: Path) -> None:
    """Tags on registries move: every build of an image naming container images asks again."""
    _, app = _context(tmp_path / "ctx")
    (app / "Kubefile").write_text("FROM scratch\nCOPY manifests/*.yaml manifests\n")
    (app / "manifests" / "a.yaml").write_text("kind: Pod\nspec:\n  containers:\n  - image: 127.0.0.1:9/app:1\n")
    time.sleep(RACY_SECONDS)
    for _ in range(2):
        out, loaded = build(sealer, app, "app:1", "--allow-missing-images")
        assert loaded and out["layersWritten"] + out["layersCached"] >= 2


@pytest.mark.parametrize(
    "argv",
    [
        ["-t", "a:1", "--no-cache", "."],
        ["-t", "a:1", "--image-list", "list.txt", "."],
        ["-t", "a:1", "-t", "b:1", "."],
        ["-t", "a:1", "ctx1", "ctx2"],
        ["-ta:1", "."],
        ["-t", "-x", "."],
        ["--help"],
        ["-t", "a:1", "--output", "yaml"],
        ["-t", "a:1", "--build-arg", "novalue"],
        ["."],
        ["-t"],
    ],
)
def test_arguments_the_replay_does_not_understand_go_to_the_command_line(argv: list[str]) -> None:
    assert _parse(argv) is None


def test_plain_arguments_parse_as_click_takes_them() -> None:
    parsed = _parse(["--tag=a:1", "ctx", "--platform", "linux/amd64", "--build-arg", "A=1", "--build-arg=A=2",
                     "-o", "json", "--allow-missing-images", "--ignore-image", "x/*"])  # fmt: skip
    assert parsed == {"context": "ctx", "tag": "a:1", "platforms": "linux/amd64", "build_args": {"A": "2"},
                      "output": "json", "allow_missing_images": True, "ignore_images": ["x/*"]}  # fmt: skip
