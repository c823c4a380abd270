"""Air-gap completeness: each platform's container images inside the image, and registries
merged into multi-arch manifest lists served by a stock docker-registry, checked with skopeo."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import Sealer, sh, start_registry

NGINX = "library/nginx:1.25"  # as docker.io/library/nginx:1.25, through the mirror
BUSYBOX = "tools/busybox:1.36"
SINGLE = "tools/amd64only:1"


def seed_multiarch(seeder: Sealer, registry: str, name: str, tmp: Path) -> None:
    """A real two-platform image: one tar layer per architecture naming it."""
    ctx = tmp / name.replace("/", "_").replace(":", "_")
    for arch in ("amd64", "arm64"):
        f = ctx / arch / "etc" / "release"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"{name} for {arch}\n")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY ${ARCH}/. .\n")
    seeder.run("build", "--platform", "linux/amd64,linux/arm64", "-t", f"{registry}/{name}", str(ctx))
    seeder.run("push", f"{registry}/{name}")


@pytest.fixture(scope="module")
def seeded(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("seed")
    seeder = Sealer(tmp / "store")
    seed_multiarch(seeder, upstream, NGINX, tmp)
    seed_multiarch(seeder, upstream, BUSYBOX, tmp)
    # a single-architecture image: a plain manifest, no index
    seed_multiarch(seeder, upstream, "tools/src:1", tmp)
    sh("skopeo", "copy", "-q", "--override-arch", "amd64", "--src-tls-verify=false", "--dest-tls-verify=false",
       f"docker://{upstream}/tools/src:1", f"docker://{upstream}/{SINGLE}")  # fmt: skip
    return upstream


def app_context(tmp: Path, upstream: str, extra_manifest: str = "") -> Path:
    ctx = tmp / "app"
    (ctx / "manifests").mkdir(parents=True)
    (ctx / "charts" / "web" / "templates").mkdir(parents=True)
    (ctx / "manifests" / "workloads.yaml").write_text(f"""\
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly}}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{{name: init, image: "nginx:1.25"}}]
          containers: [{{name: main, image: "{upstream}/{BUSYBOX}"}}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: example.com/v1
    kind: Widget
    spec:
      deep: {{podTemplate: {{spec: {{ephemeralContainers: [{{name: dbg, image: "docker.io/library/nginx:1.25"}}]}}}}}}
{extra_manifest}""")
    (ctx / "manifests" / "imageList").write_text(f"# the lists people keep\n{upstream}/{BUSYBOX}\n")
    (ctx / "charts" / "web" / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 1.0.0\n")
    (ctx / "charts" / "web" / "values.yaml").write_text(
        "image:\n  repository: kubernetesui/dashboard\n  tag: v2.5.1\n"
        "sidecar:\n  image:\n    registry: docker.io\n    repository: bitnami/mysql\n    tag: 8.0.28-debian-10-r23\n"
    )
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY manifests .\nCOPY charts .\nCMD kubectl apply -f manifests\n")
    return ctx


EXPECTED = {
    "docker.io/library/nginx:1.25",
    "docker.io/kubernetesui/dashboard:v2.5.1",
    "docker.io/bitnami/mysql:8.0.28-debian-10-r23",
}


def cache_layer(sealer: Sealer, name: str, platform: str) -> tuple[dict[str, object], Path]:
    doc = yaml.safe_load(sealer.run("inspect", name, "--platform", platform).stdout)
    layer = doc["spec"]["layers"][-1]
    assert (layer["type"], layer["value"]) == ("BASE", "rootfs cache")
    return doc, sealer.root / "blobs" / "sha256" / layer["id"].split(":")[1]


def extract(blob: Path, into: Path) -> Path:
    into.mkdir(parents=True)
    with tarfile.open(blob) as tar:
        tar.extractall(into, filter="tar")
    return into / "registry"


@pytest.fixture(scope="module")
def built(seeded: str, tmp_path_factory: pytest.TempPathFactory) -> Sealer:
    tmp = tmp_path_factory.mktemp("air")
    sealer = Sealer(tmp / "store")
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "app:1", str(app_context(tmp, seeded)))
    return sealer


def test_every_referenced_image_is_listed_and_cached_per_platform(built: Sealer, seeded: str, tmp_path: Path) -> None:
    expected = {*EXPECTED, f"{seeded}/{BUSYBOX}"}
    for arch in ("amd64", "arm64"):
        doc, blob = cache_layer(built, "app:1", f"linux/{arch}")
        assert set(doc["spec"]["image_config"]["images"]) == expected
        tree = extract(blob, tmp_path / arch)
        repos = tree / "docker" / "registry" / "v2" / "repositories"
        for ref in expected:
            repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
            link = repos / repo / "_manifests" / "tags" / tag / "current" / "link"
            digest = link.read_text()
            data = tree / "docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:] / "data"
            manifest = json.loads(data.read_bytes())
            if "manifests" in manifest:  # the upstream index as it was served: this platform's entry
                digest = next(m["digest"] for m in manifest["manifests"] if m["platform"]["architecture"] == arch)
                data = tree / "docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:] / "data"
                manifest = json.loads(data.read_bytes())
            config = manifest["config"]["digest"]
            cfg = json.loads(
                (tree / "docker/registry/v2/blobs/sha256" / config[7:9] / config[7:] / "data").read_bytes()
            )
            assert cfg["architecture"] == arch, f"{ref} in the {arch} cache is {cfg['architecture']}"
            for layer in manifest["layers"]:
                d = layer["digest"]
                assert (tree / "docker/registry/v2/blobs/sha256" / d[7:9] / d[7:] / "data").is_file()
                assert (repos / repo / "_layers" / "sha256" / d[7:] / "link").read_text() == d


def test_only_that_platforms_blobs_are_in_each_layer(built: Sealer, tmp_path: Path) -> None:
    blobs = {}
    for arch in ("amd64", "arm64"):
        _doc, blob = cache_layer(built, "app:1", f"linux/{arch}")
        with tarfile.open(blob) as tar:
            blobs[arch] = {
                m.name.split("/")[-2]
                for m in tar.getmembers()
                # an upstream index is in every platform's tree: it lists the platforms, holds none
                if m.name.endswith("/data") and b'"manifests"' not in tar.extractfile(m).read()  # type: ignore[union-attr]
            }
    assert blobs["amd64"] and blobs["arm64"]
    assert not blobs["amd64"] & blobs["arm64"], "an amd64 blob in the arm64 cache, or the other way round"


def test_merged_registry_serves_both_platforms(built: Sealer, tmp_path: Path) -> None:
    trees = []
    for arch in ("amd64", "arm64"):
        _doc, blob = cache_layer(built, "app:1", f"linux/{arch}")
        trees.append(str(extract(blob, tmp_path / arch)))
    merged = tmp_path / "merged"
    served = built.json("registry", "merge", str(merged), *trees, "--output", "json")
    assert set(served) >= {"library/nginx:1.25", "kubernetesui/dashboard:v2.5.1"}
    again = built.json("registry", "merge", str(tmp_path / "merged2"), *trees, "--output", "json")
    assert again == served, "merging is deterministic"
    # the data is linked, not copied
    source_blob = next(  # one of arm64's own (the upstream indexes are in both trees)
        b for b in (Path(trees[1]) / "docker/registry/v2/blobs/sha256").rglob("data")
        if not (Path(trees[0]) / b.relative_to(trees[1])).exists()
    )  # fmt: skip
    merged_blob = merged / source_blob.relative_to(trees[1])
    assert merged_blob.stat().st_ino == source_blob.stat().st_ino
    reg = start_registry(tmp_path / "serve", storage=merged)  # a stock docker-registry, the tree as it is
    try:
        index = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false",
                              f"docker://{reg.address}/library/nginx:1.25"))  # fmt: skip
        assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
        arm64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
        assert arm64["platform"].get("variant") == "v8"
        for arch in ("arm64", "amd64"):
            out = tmp_path / f"copy-{arch}"
            sh("skopeo", "copy", "-q", "--override-arch", arch, "--src-tls-verify=false",
               f"docker://{reg.address}/library/nginx:1.25", f"dir:{out}")  # fmt: skip
            manifest = json.loads((out / "manifest.json").read_text())
            layer = out / manifest["layers"][0]["digest"].split(":")[1]
            content = sh("tar", "-xOf", str(layer), "etc/release")
            assert content == f"{NGINX} for {arch}\n"
    finally:
        reg.stop()


def test_missing_image_and_missing_platform_fail_the_build(seeded: str, tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "store")
    extra = (
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        f"    - {{name: a, image: '{seeded}/tools/nothere:9'}}\n    - {{name: b, image: '{seeded}/{SINGLE}'}}\n"
    )
    ctx = app_context(tmp_path, seeded, extra)
    proc = sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "app:2", str(ctx), check=False)
    assert proc.returncode == 1
    assert f"{seeded}/tools/nothere:9" in proc.stderr
    assert f"linux/amd64: {seeded}/tools/nothere:9: not found" in proc.stderr
    assert (
        f"linux/arm64/v8: {seeded}/{SINGLE}: a single-platform image for linux/amd64, not linux/arm64/v8" in proc.stderr
    )
    assert "app:2" not in {r["name"] for r in sealer.images()}
    # the same build with --allow-missing-images records warnings instead
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "app:2", str(ctx), "--allow-missing-images")
    doc = yaml.safe_load(sealer.run("inspect", "app:2", "--platform", "linux/arm64").stdout)
    warnings = doc["spec"]["image_config"]["warnings"]
    assert any("tools/nothere:9" in w for w in warnings) and any(SINGLE in w for w in warnings)


def test_unchanged_build_fetches_nothing_again(built: Sealer, seeded: str, tmp_path: Path) -> None:
    before = built.images()
    ctx = app_context(tmp_path, seeded)  # a fresh copy of the same context
    out = built.json("build", "--platform", "linux/amd64,linux/arm64", "-t", "app:1", str(ctx), "--output", "json")
    assert out["blobsFetched"] == 0
    assert built.images() == before, "same content, same images: the rootfs caches were reused"


def test_image_list_and_ignore_flags(seeded: str, tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "store")
    ctx = app_context(tmp_path, seeded)
    extra = tmp_path / "more.txt"
    extra.write_text(f"{seeded}/tools/src:1\n")
    sealer.run("build", "--platform", "linux/arm64", "-t", "app:3", str(ctx), "--image-list", str(extra),
               "--ignore-image", "docker.io/bitnami/*", "--ignore-image", "kubernetesui/dashboard:v2.5.1")  # fmt: skip
    doc = yaml.safe_load(sealer.run("inspect", "app:3", "--platform", "linux/arm64").stdout)
    assert set(doc["spec"]["image_config"]["images"]) == {
        "docker.io/library/nginx:1.25", f"{seeded}/{BUSYBOX}", f"{seeded}/tools/src:1",
    }  # fmt: skip
