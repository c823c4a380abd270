"""The image scan reads each layer once: one parse per file for every platform, nothing on an
unchanged rebuild, and the same images whichever way the result is obtained."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealer.build.builder import Builder, BuildOptions
from sealer.errors import KubefileError
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.rootfs_cache import layer_scan, scan
from sealer.rootfs_cache.layer_scan import ScanCache
from sealer.store.layer import Entry, write_layer
from sealer.store.layout import Store

WORKLOADS = """\
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: init, image: "nginx:1.25"}]
          containers:
            - &main {name: main, image: "quay.io/tools/busybox:1.36"}
            - *main
---
apiVersion: v1
kind: List
items:
  - kind: Widget
    spec: {deep: {podTemplate: {spec: {containers: [{name: b, image: 'docker.io/library/redis:7'}]}}}}
  - kind: ConfigMap
    data:
      dashboard.json: |-
        {"image": "not/a-key:1", "panels": [1, 2]}
      note: >
        folded text, image: nothing
"""


def layer(store: Store, tmp: Path, files: dict[str, str]) -> tuple[str, list[Entry]]:
    entries = []
    for rel, text in sorted(files.items()):
        src = tmp / "src" / rel
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(text)
        entries.append(Entry(rel, "file", 0o644, str(src), src.stat().st_size))
    digest, _ = write_layer(store, entries)
    return digest, entries


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def test_a_later_layer_replaces_a_file_and_every_source_gives_the_same_images(store: Store, tmp_path: Path) -> None:
    lower = layer(store, tmp_path / "a", {
        "manifests/app.yaml": "kind: Pod\nspec: {containers: [{image: 'old/replaced:1'}]}\n",
        "manifests/imageList": "# kept\nlisted/one:1\n\nlisted/two:2  # trailing comment\n",
        "charts/web/values.yaml": "image: {registry: ghcr.io, repository: org/web, tag: '2.0'}\n",
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
        "etc/other.yaml": "image: not/scanned:1\n",
    })  # fmt: skip
    upper = layer(store, tmp_path / "b", {"manifests/app.yaml": WORKLOADS, "manifests/z/more.yml": "image: more:1\n"})
    expected = [
        ("nginx:1.25", "manifests/app.yaml"),
        ("quay.io/tools/busybox:1.36", "manifests/app.yaml"),
        ("quay.io/tools/busybox:1.36", "manifests/app.yaml"),
        ("docker.io/library/redis:7", "manifests/app.yaml"),
        ("more:1", "manifests/z/more.yml"),
        ("listed/one:1", "manifests/imageList:2"),
        ("listed/two:2", "manifests/imageList:4"),
        ("ghcr.io/org/web:2.0", "charts/web/values.yaml"),
    ]
    digests = [lower[0], upper[0]]
    from_entries = ScanCache(store)
    for digest, entries in (lower, upper):
        from_entries.layer(digest, entries)
    assert from_entries.images(digests) == expected
    assert ScanCache(store).images(digests) == expected, "kept in the store by digest"
    shutil.rmtree(store.cache / "scan")
    assert ScanCache(store).images(digests) == expected, "read from the layers' tars"
    for kept in (store.cache / "scan").iterdir():
        kept.write_bytes(b'{"files": 3}')
    assert ScanCache(store).images(digests) == expected, "a damaged cache file is scanned again"


def test_a_two_platform_build_parses_each_file_once_and_an_unchanged_rebuild_none(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = tmp_path / "ctx"
    for arch in ("amd64", "arm64"):
        (ctx / arch).mkdir(parents=True)
        (ctx / arch / "tool").write_text(arch)
    (ctx / "app.yaml").write_text(WORKLOADS)
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY app.yaml manifests\nCOPY ${ARCH}/tool bin\n")
    parsed: list[str] = []
    real = layer_scan.images_in_file

    def counting(path: str, data: bytes) -> list[tuple[str, str]]:
        parsed.append(path)
        return real(path, data)

    monkeypatch.setattr(layer_scan, "images_in_file", counting)
    opts = BuildOptions(
        kubefile=ctx / "Kubefile",
        context=ctx,
        tag=Reference.parse("scan:1"),
        platforms=Platform.parse_list("linux/amd64,linux/arm64"),
        ignore_images=["*"],  # found, then ignored: nothing to fetch
    )
    first = Builder(store).build(opts)
    assert parsed == ["manifests/app.yaml"]
    parsed.clear()
    again = Builder(store).build(opts)  # a new process: only the store remembers
    assert parsed == []
    assert [i.id for i in again.images] == [i.id for i in first.images]


def test_libyaml_and_the_pure_python_loader_find_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml: only the pure-Python loader exists")
    data = WORKLOADS.encode()
    results: list[Any] = []
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        monkeypatch.setattr(scan, "_loader", lambda loader=loader: loader)
        with pytest.raises(KubefileError) as err:
            scan.images_in_file("manifests/bad.yaml", b"a: 1\nb: [x,\n  c: d\n")
        results.append((scan.images_in_file("manifests/app.yaml", data), err.value.line))
    assert results[0] == results[1]
    assert results[0][0][0] == ("nginx:1.25", "manifests/app.yaml")


def test_helm_renders_a_chart_whose_files_come_from_two_layers_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """helm itself is not on this machine: a stand-in prints the chart's templates as rendered."""
    bin_dir, log = tmp_path / "bin", tmp_path / "helm.log"
    bin_dir.mkdir()
    (bin_dir / "helm").write_text(f'#!/bin/sh\necho "$@" >> {log}\ncat "$3"/templates/*.yaml\n')
    (bin_dir / "helm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    lower = layer(store, tmp_path / "a", {
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
        "charts/web/templates/pod.yaml": "spec: {containers: [{image: replaced/template:1}]}\n",
    })  # fmt: skip
    upper = layer(store, tmp_path / "b", {"charts/web/templates/pod.yaml": "spec: {containers: [{image: web:2}]}\n"})
    digests = [lower[0], upper[0]]
    expected = [("web:2", "helm template charts/web")]
    scans = ScanCache(store)
    for digest, entries in (lower, upper):
        scans.layer(digest, entries)
    assert scans.images(digests) == expected
    assert ScanCache(store).images(digests) == expected, "kept in the store"
    assert len(log.read_text().splitlines()) == 1
    for kept in (store.cache / "scan").glob("helm-*"):
        kept.unlink()
    assert ScanCache(store).images(digests) == expected, "the chart's files read back from the layers"
    assert len(log.read_text().splitlines()) == 2
