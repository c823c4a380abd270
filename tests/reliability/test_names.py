"""Names are what they claim: cluster and sandbox names that become paths are DNS labels,
image targets carry no digest and fit registries, platforms are ones a build honours, image
ids and prefixes are taken (or called ambiguous) alike by every command, and failures are one
line (connection errors, YAML errors) naming the file and line, host or name."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sealer.oci.platform import Platform
from sealer.store.image import ImageConfig, PlatformImage, write_index, write_platform_image
from sealer.store.layout import Store
from tests.helpers import SEALER, Registry, Sealer, sh
from tests.reliability.conftest import SMALL, make_small_context, store_state
from tests.reliability.test_data_safety import copy_store, one_line_error

BAD_NAMES = ["../evil", "a/b", "..", ".", "Upper", "-lead", "trail-", "a" * 64, "a_b", "a.b", "a b", "a\nb"]
GOOD_NAMES = ["my-cluster", "a", "0", "x" * 63]


def entries(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


# ---- cluster and sandbox names -------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_run_refuses_a_cluster_name_that_is_no_dns_label(small_store: Sealer, tmp_path: Path, name: str) -> None:
    store = copy_store(small_store, tmp_path)
    before = entries(tmp_path)
    proc = store.run("run", "--port", "1", "--cluster", name, SMALL, "-m", "127.0.0.9", check=False)
    line = one_line_error(proc)
    assert "invalid cluster name" in line and repr(name) in line
    assert entries(tmp_path) == before  # no cluster directory, nothing beside the store


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_run_takes_dns_label_cluster_names(small_store: Sealer, tmp_path: Path, name: str) -> None:
    store = copy_store(small_store, tmp_path)
    proc = store.run("run", "--port", "1", "--cluster", name, SMALL, "-m", "127.0.0.9", check=False)
    assert proc.returncode != 0 and "invalid cluster name" not in proc.stderr
    assert "127.0.0.9" in proc.stderr  # it went on to the host
    assert not (store.root / "clusters" / name).exists()  # and failed before any change: no state left


def test_a_clusterfile_name_that_is_no_dns_label_is_refused_with_its_line(small_store: Sealer, tmp_path: Path) -> None:
    store = copy_store(small_store, tmp_path)
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(
        "apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata:\n  name: ../../outside\n"
        f"spec:\n  image: {SMALL}\n  ssh:\n    port: 1\n  hosts:\n    - ips: [127.0.0.9]\n      roles: [master]\n"
    )
    before = entries(tmp_path)
    line = one_line_error(store.run("run", "-f", str(clusterfile), check=False))
    assert line.startswith(f"sealer: error: {clusterfile}:4: invalid cluster name '../../outside'")
    assert entries(tmp_path) == before


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["ps", "--cluster"], id="ps"),
        pytest.param(["join", "-n", "127.0.0.9", "--cluster"], id="join"),
        pytest.param(["delete", "--all", "--cluster"], id="delete"),
    ],
)
def test_every_command_checks_the_cluster_name(sealer: Sealer, args: list[str]) -> None:
    for name in ("../evil", "a/b", "Upper"):
        line = one_line_error(sealer.run(*args, name, check=False))
        assert "invalid cluster name" in line and repr(name) in line


def test_sandbox_names_never_reach_outside_the_sandboxes(sealer: Sealer, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("sandbox commands need root")
    root = tmp_path / "sandbox-root"
    decoy = tmp_path / "decoy"  # what sandboxes/../../decoy names
    decoy.mkdir()
    (decoy / "precious.txt").write_text("not sealer's\n")
    box = {"name": "../../decoy", "index": 250, "bridge": "slbrdecoy", "gateway": "10.213.250.1",
           "key": str(decoy / "id_ed25519"), "hosts": []}  # fmt: skip
    (decoy / "sandbox.json").write_text(json.dumps(box))
    (root / "sandboxes").mkdir(parents=True)
    env = {**sealer.env(), "SEALER_SANDBOX_ROOT": str(root)}
    for args in (["down", "../../decoy"], ["reboot", "../../decoy", "h"], ["up", "../../decoy", "--hosts", "amd64"]):
        proc = subprocess.run([*SEALER, "sandbox", *args], env=env, capture_output=True, text=True, check=False)
        line = one_line_error(proc)
        assert "invalid sandbox name '../../decoy'" in line
    assert (decoy / "precious.txt").read_text() == "not sealer's\n"


# ---- image targets -------------------------------------------------------------------------

DIGEST = "sha256:" + "0" * 64
LONG_NAME = "reg.example:5000/" + "/".join(["abcdefghij" * 3] * 8)  # 17 + 247 = 264 characters
LONG_TAG = "small/app:" + "t" * 129


@pytest.mark.parametrize(
    "target", [f"small/app@{DIGEST}", f"small/app:v2@{DIGEST}", LONG_NAME + ":v1", LONG_TAG], ids=str.__len__
)
def test_build_and_tag_refuse_targets_registries_would(small_store: Sealer, tmp_path: Path, target: str) -> None:
    store = copy_store(small_store, tmp_path)
    before = store_state(store)
    line = one_line_error(store.run("tag", SMALL, target, check=False))
    assert "digest" in line or "at most" in line
    ctx = make_small_context(tmp_path)
    line = one_line_error(store.run("build", "--platform", "linux/amd64", "-t", target, str(ctx), check=False))
    assert "digest" in line or "at most" in line
    assert store_state(store) == before


# ---- platforms a build honours -------------------------------------------------------------


@pytest.mark.parametrize("platform", ["windows/amd64", "", "linux/s390x", "linux/arm/v7", "darwin/arm64", ","])
def test_build_and_merge_refuse_platforms_they_cannot_honour(
    small_store: Sealer, tmp_path: Path, platform: str
) -> None:
    store = copy_store(small_store, tmp_path)
    before = store_state(store)
    ctx = make_small_context(tmp_path)
    line = one_line_error(store.run("build", "--platform", platform, "-t", "other:v1", str(ctx), check=False))
    assert "platform" in line or "cannot build" in line
    line = one_line_error(store.run("merge", "--platform", platform, "-t", "merged:v1", SMALL, SMALL, check=False))
    assert "platform" in line or "cannot build" in line
    assert store_state(store) == before


# ---- image ids -----------------------------------------------------------------------------


def _two_images_sharing_a_prefix(root: Path) -> tuple[str, str]:
    """Name two images whose ids share their first 4 hex digits (found by trying labels)."""
    store = Store.open(root)
    seen: dict[str, tuple[int, PlatformImage]] = {}
    for n in range(100_000):
        config = ImageConfig(Platform("linux", "amd64"), labels={"n": str(n)}, created="2020-01-01T00:00:00Z")
        image = write_platform_image(store, config)
        if image.id[:4] in seen:
            break
        seen[image.id[:4]] = (n, image)
    first_n, first = seen[image.id[:4]]
    twins = {f"twin/{first_n}:v1": first, f"twin/{n}:v1": image}
    store.update_names(lambda names: names.update({k: write_index(store, [v]) for k, v in twins.items()}))
    store.collect_garbage()  # the other candidates
    return first.id, image.id


def test_an_id_prefix_two_images_share_is_ambiguous(sealer: Sealer) -> None:
    first, second = _two_images_sharing_a_prefix(sealer.root)
    prefix = first[:4]
    assert second.startswith(prefix)
    before = store_state(sealer)
    for args in (["inspect", prefix], ["rmi", prefix], ["tag", prefix, "new:v1"], ["save", "-o", "-", prefix],
                 ["push", prefix]):  # fmt: skip
        line = one_line_error(sealer.run(*args, check=False))
        assert "ambiguous" in line and first in line and second in line, (args, line)
        assert line.count("twin/") == 2, line
    assert store_state(sealer) == before


def test_rmi_tag_save_and_push_take_ids_as_inspect_does(
    small_store: Sealer, registry: Registry, tmp_path: Path
) -> None:
    store = copy_store(small_store, tmp_path)
    amd64, arm64 = (
        next(i["id"] for i in store.images() if i["platform"]["architecture"] == arch) for arch in ("amd64", "arm64")
    )
    assert "linux/amd64" in store.run("inspect", amd64[:12]).stdout.replace("architecture: amd64", "linux/amd64")
    # tag: the new name holds that one platform image
    store.run("tag", amd64[:12], "small/app:amd64")
    assert [(i["id"], i["platform"]["architecture"]) for i in store.images() if i["name"] == "small/app:amd64"] == [
        (amd64, "amd64")
    ]
    # save: the archive holds that one platform image under the name holding it
    store.run("rmi", "small/app:amd64")
    archive = tmp_path / "arm64.tar"
    store.run("save", "-o", str(archive), "sha256:" + arm64)
    other = Sealer(tmp_path / "other" / "store")
    other.run("load", "-i", str(archive))
    assert [(i["name"], i["id"]) for i in other.images()] == [(SMALL, arm64)]
    # push: the name holding the id, that platform
    name = f"{registry.address}/ids/app:v1"
    store.run("tag", SMALL, name)
    store.run("rmi", SMALL)
    store.run("push", arm64[:8])
    raw = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{name}"))
    assert [m["digest"] for m in raw["manifests"]] == [f"sha256:{arm64}"]
    # rmi: that platform image leaves the name, the other stays
    store.run("rmi", amd64[:12])
    assert [i["id"] for i in store.images()] == [arm64]
    # an id and a --platform that disagree: refused, nothing changed
    before = store_state(store)
    line = one_line_error(store.run("rmi", "--platform", "linux/amd64", arm64[:12], check=False))
    assert "linux/arm64" in line
    assert store_state(store) == before


# ---- one-line failures ---------------------------------------------------------------------


@pytest.mark.parametrize("args", [["pull", "localhost:1/app:v1"], ["login", "localhost:1", "-u", "u", "-p", "p"]])
def test_a_registry_that_refuses_connections_is_one_line(sealer: Sealer, args: list[str]) -> None:
    line = one_line_error(sealer.run(*args, check=False))
    assert line == "sealer: error: localhost:1: cannot connect: connection refused"


def test_push_to_a_registry_that_refuses_connections_is_one_line(small_store: Sealer, tmp_path: Path) -> None:
    store = copy_store(small_store, tmp_path)
    store.run("tag", SMALL, "localhost:1/app:v1")
    line = one_line_error(store.run("push", "localhost:1/app:v1", check=False))
    assert line == "sealer: error: localhost:1: cannot connect: connection refused"


def test_an_unknown_registry_host_is_one_line(sealer: Sealer) -> None:
    line = one_line_error(sealer.run("pull", "no-such-host.invalid/app:v1", check=False))
    assert line == "sealer: error: no-such-host.invalid: cannot connect: unknown host"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata:\n  name: [a\nspec: {}\n", 5),
        ("apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata:\n\tname: a\n", 4),
        ("apiVersion: sealer.cloud/v2\nkind: Cluster\nspec:\n  image: 'x\n", 5),
    ],
)
def test_a_clusterfile_that_is_not_yaml_is_one_line_with_file_and_line(
    sealer: Sealer, tmp_path: Path, text: str, line: int
) -> None:
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(text)
    error = one_line_error(sealer.run("run", "-f", str(clusterfile), check=False))
    assert error.startswith(f"sealer: error: {clusterfile}:{line}: not valid YAML")


@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        (b"nginx:1.25\n\xff\xfe not text\n", 2, "not UTF-8"),
        (b"nginx:1.25\n# comment\nNot A Reference\n", 3, "invalid image reference"),
    ],
)
def test_a_bad_image_list_is_one_line_with_file_and_line(
    sealer: Sealer, tmp_path: Path, content: bytes, line: int, says: str
) -> None:
    image_list = tmp_path / "images.txt"
    image_list.write_bytes(content)
    ctx = make_small_context(tmp_path)
    proc = sealer.run("build", "--platform", "linux/amd64", "--image-list", str(image_list), "-t", "x:v1", str(ctx),
                      check=False)  # fmt: skip
    error = one_line_error(proc)
    assert error.startswith(f"sealer: error: {image_list}:{line}: {says}"), error


def test_a_manifest_that_is_not_yaml_is_one_line_with_its_path_and_line(sealer: Sealer, tmp_path: Path) -> None:
    ctx = make_small_context(tmp_path)
    (ctx / "manifests").mkdir()
    (ctx / "manifests" / "app.yaml").write_text("kind: Pod\nspec: [a\nimage: b\n")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY . .\n")
    error = one_line_error(sealer.run("build", "--platform", "linux/amd64", "-t", "x:v1", str(ctx), check=False))
    assert error.startswith("sealer: error: manifests/app.yaml:3: not valid YAML"), error
