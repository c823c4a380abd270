"""The rootfs cache against the shapes the public registries serve (Docker Hub, Quay, GHCR,
registry.k8s.io, Harbor): each upstream image is hand-made JSON PUT into Debian's
docker-registry (which checks what it is given), fetched by ``sealer build`` through
SEALER_REGISTRY_MIRRORS under its real registry's name, and the cluster registry (the merged
tree served by a stock docker-registry) is checked with skopeo: same bytes, same digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
import yaml

from tests.faultproxy import Answer, FaultProxy
from tests.helpers import Registry, Sealer, sh, start_registry

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
IN_TOTO = "application/vnd.in-toto+json"

BOTH = "linux/amd64,linux/arm64"
Completed = subprocess.CompletedProcess[str]
ARM64 = ("arm64", "v8")
AMD64 = ("amd64", "")
ARMV7 = ("arm", "v7")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pretty(doc: dict[str, Any]) -> bytes:
    """As Docker Hub and most registries serve them: indented, keys in the writer's order; any
    re-serialization would change the digest."""
    return json.dumps(doc, indent=3).encode()


def tar_of(text: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("etc/release")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(raw: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(raw, mtime=0)
    return subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout


@dataclass
class Pushed:
    """One manifest as the upstream registry holds it."""

    data: bytes
    media_type: str
    platform: tuple[str, str] | None = None
    children: list[Pushed] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


class Upstream:
    """A docker-registry seeded through the distribution API, the way registries are filled."""

    def __init__(self, address: str, storage: Path) -> None:
        self.address = address
        self.base = f"http://{address}"
        self.storage = storage / "docker" / "registry" / "v2"

    def blob(self, repo: str, data: bytes) -> dict[str, Any]:
        resp = requests.post(f"{self.base}/v2/{repo}/blobs/uploads/", timeout=30)
        assert resp.status_code == 202, resp.text
        location = urljoin(self.base + "/", resp.headers["Location"])
        location += ("&" if "?" in location else "?") + f"digest={sha(data)}"
        resp = requests.put(location, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=30)
        assert resp.status_code == 201, resp.text
        return {"digest": sha(data), "size": len(data)}

    def put(self, repo: str, ref: str, pushed: Pushed) -> Pushed:
        resp = requests.put(
            f"{self.base}/v2/{repo}/manifests/{ref}",
            data=pushed.data,
            headers={"Content-Type": pushed.media_type},
            timeout=30,
        )
        assert resp.status_code == 201, f"the registry refused {repo}:{ref}: {resp.status_code} {resp.text}"
        assert resp.headers["Docker-Content-Digest"] == pushed.digest
        return pushed

    def image(
        self, repo: str, platform: tuple[str, str], *, kind: str = "docker", layers: int = 2,
        extra_layers: list[dict[str, Any]] | None = None,
    ) -> Pushed:  # fmt: skip
        """A platform manifest: ``docker`` (schema 2, gzip), ``oci-gzip`` or ``oci-zstd``."""
        arch, variant = platform
        docker = kind == "docker"
        how = "zstd" if kind == "oci-zstd" else "gzip"
        layer_type = DOCKER_GZIP if docker else (OCI_ZSTD if how == "zstd" else OCI_GZIP)
        raws = [tar_of(f"{repo} layer {i} for linux/{arch}{'/' + variant if variant else ''}\n") for i in range(layers)]
        config: dict[str, Any] = {"architecture": arch, "os": "linux"}
        if variant and arch != "arm64":  # as buildkit writes arm64 configs: no variant
            config["variant"] = variant
        config |= {"config": {"Env": ["PATH=/bin"]}, "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raws]}}
        config_data = pretty(config)
        doc = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, **self.blob(repo, config_data)},
            "layers": [{"mediaType": layer_type, **self.blob(repo, compress(r, how))} for r in raws]
            + (extra_layers or []),
        }
        manifest = Pushed(pretty(doc), doc["mediaType"], platform)
        return self.put(repo, manifest.digest, manifest)

    def put_in_storage(self, repo: str, tag: str, pushed: Pushed) -> Pushed:
        """Written straight into the registry's storage: docker-registry refuses to take a manifest
        over 4 MiB, but serves what its storage holds (as other registries serve bigger ones)."""
        hexd = pushed.digest[7:]
        data = self.storage / "blobs" / "sha256" / hexd[:2] / hexd / "data"
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_bytes(pushed.data)
        manifests = self.storage / "repositories" / repo / "_manifests"
        for link in (manifests / "revisions" / "sha256" / hexd, manifests / "tags" / tag / "current",
                     manifests / "tags" / tag / "index" / "sha256" / hexd):  # fmt: skip
            link.mkdir(parents=True, exist_ok=True)
            (link / "link").write_text(pushed.digest)
        return pushed

    def attestation(self, repo: str, subject: Pushed) -> Pushed:
        """A BuildKit provenance manifest for ``subject``, as ``docker buildx`` pushes them."""
        statement = pretty({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": subject.digest}]})
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **self.blob(repo, b"{}")},
            "layers": [{
                "mediaType": IN_TOTO, **self.blob(repo, statement),
                "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
            }],
        }  # fmt: skip
        return self.put(repo, sha(pretty(doc)), Pushed(pretty(doc), OCI_MANIFEST))

    def index(self, repo: str, tag: str | None, entries: list[dict[str, Any]], docker: bool = False) -> Pushed:
        doc = {"schemaVersion": 2, "mediaType": DOCKER_LIST if docker else OCI_INDEX, "manifests": entries}
        pushed = Pushed(pretty(doc), doc["mediaType"])
        return self.put(repo, tag or pushed.digest, pushed)


def entry(p: Pushed, **extra: Any) -> dict[str, Any]:
    assert p.platform is not None
    arch, variant = p.platform
    plat = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return p.descriptor(platform=plat, **extra)


def attestation_entry(att: Pushed, subject: Pushed) -> dict[str, Any]:
    return att.descriptor(
        platform={"architecture": "unknown", "os": "unknown"},
        annotations={
            "vnd.docker.reference.digest": subject.digest,
            "vnd.docker.reference.type": "attestation-manifest",
        },
    )


@dataclass
class MirroredSealer(Sealer):
    """sealer fetching these registries' images from loopback mirrors, as an air-gapped site does."""

    mirrors: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**super().env(), "SEALER_REGISTRY_MIRRORS": ",".join(f"{k}={v}" for k, v in self.mirrors.items())}


REGISTRIES = ("docker.io", "quay.io", "ghcr.io", "registry.k8s.io", "harbor.example.com")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """The registry every public registry's name is mirrored to (one per module)."""
    # foreign layers name where they are downloaded from; docker-registry takes such manifests
    # only when the URLs are allowed (Docker Hub allows Microsoft's)
    allow = "validation:\n  manifests:\n    urls:\n      allow: ['^https://']\n"
    reg = start_registry(tmp_path_factory.mktemp("hub"), extra=allow)
    yield Upstream(reg.address, reg.root / "data")
    reg.stop()


@pytest.fixture
def sealer(tmp_path: Path, hub: Upstream) -> MirroredSealer:
    return MirroredSealer(tmp_path / "store", {r: hub.address for r in REGISTRIES})


def context(tmp: Path, refs: list[str], name: str = "ctx") -> Path:
    ctx = tmp / name
    (ctx / "manifests").mkdir(parents=True)
    (ctx / "manifests" / "imageList").write_text("".join(f"{r}\n" for r in refs))
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY manifests .\n")
    return ctx


def build(sealer: Sealer, tmp: Path, refs: list[str], *extra: str, check: bool = True) -> Completed:
    return sealer.run("build", "--platform", BOTH, "-t", "app:1", str(context(tmp, refs)), *extra, check=check)


def cache_tree(sealer: Sealer, platform: str, into: Path) -> Path:
    doc = yaml.safe_load(sealer.run("inspect", "app:1", "--platform", platform).stdout)
    layer = doc["spec"]["layers"][-1]
    assert (layer["type"], layer["value"]) == ("BASE", "rootfs cache")
    blob = sealer.root / "blobs" / "sha256" / layer["id"].split(":")[1]
    into.mkdir(parents=True)
    with tarfile.open(blob) as tar:
        tar.extractall(into, filter="tar")
    return into / "registry"


@pytest.fixture
def cluster_registry(sealer: Sealer, tmp_path: Path) -> Iterator[Any]:
    """After a build: both platforms' trees merged as ``sealer run`` does, served by docker-registry."""
    started: list[Registry] = []

    def serve(archs: tuple[str, ...] = ("amd64", "arm64")) -> str:
        name = "-".join(archs)
        trees = [str(cache_tree(sealer, f"linux/{a}", tmp_path / "trees" / name / a)) for a in archs]
        sealer.run("registry", "merge", str(tmp_path / f"merged-{name}"), *trees, "--output", "json")
        started.append(start_registry(tmp_path / f"serve-{name}", storage=tmp_path / f"merged-{name}"))
        return started[-1].address

    yield serve
    for reg in started:
        reg.stop()


def raw(address: str, name: str) -> bytes:
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{address}/{name}"],
                         capture_output=True, check=True)  # fmt: skip
    return out.stdout


def pulled(address: str, name: str, arch: str, into: Path) -> bytes:
    """The manifest a host of ``arch`` gets (skopeo verifies every blob's digest on the way)."""
    sh("skopeo", "copy", "-q", "--override-arch", arch, "--override-os", "linux", "--src-tls-verify=false",
       f"docker://{address}/{name}", f"dir:{into}")  # fmt: skip
    return (into / "manifest.json").read_bytes()


def failure_lines(proc: Completed, *needles: str) -> list[str]:
    return [line for line in proc.stderr.splitlines() if all(n in line for n in needles)]


# ---- shapes the registries serve -----------------------------------------------------------


def test_docker_manifest_list_with_gzip_layers_is_served_byte_for_byte(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path
) -> None:
    repo = "library/hubapp"  # docker.io/library/hubapp, as Docker Hub serves official images
    images = {a: hub.image(repo, p) for a, p in (("amd64", AMD64), ("arm64", ARM64), ("arm", ARMV7))}
    top = hub.index(repo, "1.0", [entry(p) for p in images.values()], docker=True)
    sh("skopeo", "inspect", "--tls-verify=false", f"docker://{hub.address}/{repo}:1.0")  # skopeo reads it
    build(sealer, tmp_path, ["hubapp:1.0"])
    address = cluster_registry()
    assert raw(address, f"{repo}:1.0") == top.data, "the tag serves Docker Hub's manifest list as it was"
    assert raw(address, f"{repo}@{top.digest}") == top.data
    for arch in ("amd64", "arm64"):
        assert raw(address, f"{repo}@{images[arch].digest}") == images[arch].data
        assert pulled(address, f"{repo}:1.0", arch, tmp_path / arch) == images[arch].data


@pytest.mark.parametrize("kind", ["oci-gzip", "oci-zstd"])
def test_oci_manifests_with_gzip_and_zstd_layers_keep_their_digests(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path, kind: str
) -> None:
    repo = f"foo/{kind}"  # ghcr.io/foo/oci-gzip, quay.io/foo/oci-zstd
    registry = "ghcr.io" if kind == "oci-gzip" else "quay.io"
    images = {a: hub.image(repo, p, kind=kind) for a, p in (("amd64", AMD64), ("arm64", ARM64))}
    top = hub.index(repo, "v2", [entry(p) for p in images.values()])
    build(sealer, tmp_path, [f"{registry}/{repo}:v2"])
    address = cluster_registry()
    assert raw(address, f"{repo}:v2") == top.data
    for arch, image in images.items():
        served = pulled(address, f"{repo}:v2", arch, tmp_path / arch)
        assert served == image.data
        for layer in json.loads(served)["layers"]:
            assert layer["mediaType"] == (OCI_ZSTD if kind == "oci-zstd" else OCI_GZIP)


def test_single_docker_manifest_is_served_as_it_was(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path
) -> None:
    repo = "tools/amd64tool"  # harbor.example.com/tools/amd64tool: one manifest, no list
    image = hub.put(repo, "3", hub.image(repo, AMD64))
    ref = f"harbor.example.com/{repo}:3"
    sealer.run("build", "--platform", "linux/amd64", "-t", "app:1", str(context(tmp_path, [ref])))
    address = cluster_registry(("amd64",))
    assert raw(address, f"{repo}:3") == image.data


def test_a_one_platform_cluster_registry_serves_the_index_and_only_its_platform(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path
) -> None:
    repo = "library/onearch"
    amd, arm = hub.image(repo, AMD64), hub.image(repo, ARM64)
    top = hub.index(repo, "1", [entry(amd), entry(arm)], docker=True)
    build(sealer, tmp_path, [f"docker.io/{repo}:1"])
    address = cluster_registry(("amd64",))  # an amd64 cluster: only amd64's tree is merged
    assert raw(address, f"{repo}:1") == top.data
    assert pulled(address, f"{repo}:1", "amd64", tmp_path / "amd64") == amd.data
    refused = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch", "arm64",
         f"docker://{address}/{repo}:1"], capture_output=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0, "arm64's manifest is in an amd64 cluster's registry"


# ---- index entries that are not images -------------------------------------------------------


def test_buildkit_attestation_manifests_are_not_taken_for_a_platform(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path
) -> None:
    repo = "foo/buildx"  # ghcr.io/foo/buildx, pushed by docker buildx with provenance on
    amd, arm = hub.image(repo, AMD64, kind="oci-gzip"), hub.image(repo, ARM64, kind="oci-gzip")
    atts = [hub.attestation(repo, amd), hub.attestation(repo, arm)]
    entries = [attestation_entry(atts[0], amd), entry(amd), entry(arm), attestation_entry(atts[1], arm)]
    top = hub.index(repo, "1", entries)
    build(sealer, tmp_path, [f"ghcr.io/{repo}:1"])
    for arch, image in (("amd64", amd), ("arm64", arm)):
        tree = cache_tree(sealer, f"linux/{arch}", tmp_path / "own" / arch)
        revisions = tree / "docker/registry/v2/repositories" / repo / "_manifests/revisions/sha256"
        linked = {p.name for p in revisions.iterdir()}
        assert image.digest[7:] in linked
        assert not linked & {a.digest[7:] for a in atts}, f"an attestation manifest was cached for {arch}"
    address = cluster_registry()
    assert raw(address, f"{repo}:1") == top.data
    assert pulled(address, f"{repo}:1", "arm64", tmp_path / "arm64") == arm.data


def test_an_index_nested_in_an_index_is_followed(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path
) -> None:
    repo = "nested"  # registry.k8s.io/nested
    amd, arm = hub.image(repo, AMD64, kind="oci-gzip"), hub.image(repo, ARM64, kind="oci-gzip")
    inner = hub.index(repo, None, [entry(amd), entry(arm)])
    top = hub.index(repo, "v1", [inner.descriptor()])
    build(sealer, tmp_path, [f"registry.k8s.io/{repo}:v1"])
    address = cluster_registry()
    assert raw(address, f"{repo}:v1") == top.data
    assert raw(address, f"{repo}@{inner.digest}") == inner.data
    for image in (amd, arm):
        assert raw(address, f"{repo}@{image.digest}") == image.data


def test_variants_and_os_versions_pick_the_right_entry(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path
) -> None:
    repo = "lib/multi"  # harbor.example.com/lib/multi
    armv7, arm64, amd = hub.image(repo, ARMV7), hub.image(repo, ARM64), hub.image(repo, AMD64)
    windows = hub.image(repo, AMD64, layers=1)  # stands in for a Windows image: listed as windows/amd64
    entries = [
        windows.descriptor(platform={"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5329"}),
        entry(armv7),
        {**entry(arm64), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        entry(amd),
        # an architecture sealer has no name for: not ours, and no reason to refuse the index
        amd.descriptor(platform={"architecture": "mips64", "os": "linux"}),
    ]
    top = hub.index(repo, "2", entries, docker=True)
    build(sealer, tmp_path, [f"harbor.example.com/{repo}:2"])
    for arch, image in (("amd64", amd), ("arm64", arm64)):
        tree = cache_tree(sealer, f"linux/{arch}", tmp_path / "own" / arch)
        revisions = tree / "docker/registry/v2/repositories" / repo / "_manifests/revisions/sha256"
        assert image.digest[7:] in {p.name for p in revisions.iterdir()}
        assert not {p.name for p in revisions.iterdir()} & {armv7.digest[7:], windows.digest[7:]}
    address = cluster_registry()
    assert raw(address, f"{repo}:2") == top.data
    assert pulled(address, f"{repo}:2", "arm64", tmp_path / "arm64") == arm64.data


# ---- references pinned by digest -------------------------------------------------------------


def test_a_reference_pinned_by_index_digest_is_served_under_that_digest(
    sealer: Sealer, hub: Upstream, cluster_registry: Any, tmp_path: Path
) -> None:
    repo, other = "pause", "foo/pinned"
    amd, arm = hub.image(repo, AMD64), hub.image(repo, ARM64)
    top = hub.index(repo, "3.9", [entry(amd), entry(arm)], docker=True)
    amd2, arm2 = hub.image(other, AMD64, kind="oci-gzip"), hub.image(other, ARM64, kind="oci-gzip")
    top2 = hub.index(other, "v5", [entry(amd2), entry(arm2)])
    # as charts write them: repo@sha256:INDEX and repo:tag@sha256:INDEX
    build(sealer, tmp_path, [f"registry.k8s.io/{repo}@{top.digest}", f"quay.io/{other}:v5@{top2.digest}"])
    address = cluster_registry()
    assert raw(address, f"{repo}@{top.digest}") == top.data
    assert raw(address, f"{other}@{top2.digest}") == top2.data
    for arch, image in (("amd64", amd), ("arm64", arm)):
        assert pulled(address, f"{repo}@{top.digest}", arch, tmp_path / f"{repo}-{arch}") == image.data
    assert pulled(address, f"{other}@{top2.digest}", "arm64", tmp_path / "other-arm64") == arm2.data


# ---- what is refused -------------------------------------------------------------------------


def test_one_repository_path_from_two_registries_is_refused(sealer: Sealer, hub: Upstream, tmp_path: Path) -> None:
    repo = "foo/app"
    hub.index(repo, "1", [entry(hub.image(repo, AMD64)), entry(hub.image(repo, ARM64))], docker=True)
    proc = build(sealer, tmp_path, ["docker.io/foo/app:1", "quay.io/foo/app:1"], check=False)
    assert proc.returncode == 1, proc.stderr
    assert failure_lines(proc, "docker.io/foo/app:1", "quay.io/foo/app:1"), proc.stderr
    assert "app:1" not in {r["name"] for r in sealer.images()}
    # the same when the base image holds one and the app the other
    sealer.run("build", "--platform", BOTH, "-t", "base:1", str(context(tmp_path, ["docker.io/foo/app:1"], "base")))
    app = context(tmp_path, ["quay.io/foo/app:1"], "app")
    (app / "Kubefile").write_text("FROM base:1\nCOPY manifests .\n")
    proc = sealer.run("build", "--platform", BOTH, "-t", "app:1", str(app), check=False)
    assert proc.returncode == 1, proc.stderr
    assert failure_lines(proc, "docker.io/foo/app:1", "quay.io/foo/app:1"), proc.stderr


@pytest.mark.parametrize("kind", ["docker-foreign", "oci-nondistributable"])
def test_foreign_and_non_distributable_layers_are_refused_whole(
    sealer: Sealer, hub: Upstream, tmp_path: Path, kind: str
) -> None:
    repo = f"foo/{kind}"
    foreign_data = gzip.compress(tar_of("a layer its licence keeps off registries\n"), mtime=0)
    foreign = {
        "mediaType": DOCKER_FOREIGN if kind == "docker-foreign" else OCI_NONDIST,
        **hub.blob(repo, foreign_data),  # the registry even holds it: sealer must still not copy it
        "urls": ["https://go.microsoft.com/fwlink/?linkid=837858"],
    }
    images = [
        hub.image(repo, p, kind="docker" if kind == "docker-foreign" else "oci-gzip", extra_layers=[foreign])
        for p in (AMD64, ARM64)
    ]
    hub.index(repo, "1", [entry(p) for p in images], docker=kind == "docker-foreign")
    ref = f"docker.io/{repo}:1"
    proc = build(sealer, tmp_path, [ref], check=False)
    assert proc.returncode == 1
    lines = failure_lines(proc, ref, foreign["digest"])
    assert lines and all("distributable" in line or "foreign" in line for line in lines), proc.stderr
    # with --allow-missing-images: nothing of it in the cache, not half of it
    before = set(os.listdir(sealer.root / "cache" / "registry-blobs"))
    fine = "foo/fine"
    hub.index(fine, "1", [entry(hub.image(fine, AMD64)), entry(hub.image(fine, ARM64))])
    build(sealer, tmp_path / "again", [ref, f"docker.io/{fine}:1"], "--allow-missing-images")
    fetched = set(os.listdir(sealer.root / "cache" / "registry-blobs")) - before
    layer_digests = {la["digest"][7:] for i in images for la in json.loads(i.data)["layers"]}
    assert not fetched & layer_digests, "a layer of a refused image was fetched"
    for arch in ("amd64", "arm64"):
        tree = cache_tree(sealer, f"linux/{arch}", tmp_path / "own" / arch)
        assert not (tree / "docker/registry/v2/repositories" / repo).exists()


def test_a_manifest_over_4_mib_is_refused(sealer: MirroredSealer, hub: Upstream, tmp_path: Path) -> None:
    """docker-registry neither takes nor serves a manifest over 4 MiB; other registries serve
    them, so a proxy in front of it answers with one, as such a registry would."""
    repo = "foo/huge"
    small = hub.image(repo, AMD64, kind="oci-gzip")
    doc = json.loads(small.data)
    doc["annotations"] = {"padding": "x" * (4 * 1024 * 1024 + 10)}
    huge = Pushed(pretty(doc), OCI_MANIFEST, AMD64)
    index = Pushed(pretty({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry(huge)]}), OCI_INDEX)
    served = {f"/v2/{repo}/manifests/1": huge, f"/v2/{repo}/manifests/2": index}
    proxy = FaultProxy(hub.address)
    proxy.reset(lambda method, path, n: Answer(200, {"Content-Type": served[path].media_type}, served[path].data)
                if method in ("GET", "HEAD") and path in served else None)  # fmt: skip
    sealer.mirrors["quay.io"] = proxy.address
    try:
        for tag in ("1", "2"):  # the manifest itself; an index listing it with its true size
            ref = f"quay.io/{repo}:{tag}"
            ctx = context(tmp_path, [ref], f"ctx{tag}")
            proc = sealer.run("build", "--platform", "linux/amd64", "-t", "app:1", str(ctx), check=False)
            assert proc.returncode == 1
            assert failure_lines(proc, ref, "4 MiB"), proc.stderr
        assert not any(huge.digest in seen.path for seen in proxy.seen), "the index's entry was fetched all the same"
    finally:
        proxy.close()


def test_an_image_without_a_platform_names_the_image_and_the_platform(
    sealer: Sealer, hub: Upstream, tmp_path: Path
) -> None:
    repo = "foo/amd64only"
    hub.index(repo, "1", [entry(hub.image(repo, AMD64))], docker=True)
    ref = f"docker.io/{repo}:1"
    proc = build(sealer, tmp_path, [ref], check=False)
    assert proc.returncode == 1
    assert "COPY source 'registry'" not in proc.stderr
    assert failure_lines(proc, "linux/arm64/v8", ref), proc.stderr
    # and a plain manifest, not a list, likewise
    single = "foo/amd64single"
    hub.put(single, "1", hub.image(single, AMD64))
    proc = build(sealer, tmp_path / "2", [f"docker.io/{single}:1"], check=False)
    assert proc.returncode == 1
    assert failure_lines(proc, "linux/arm64/v8", f"docker.io/{single}:1"), proc.stderr
