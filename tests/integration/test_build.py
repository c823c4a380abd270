"""sealer build and the image commands, through the real command line, checked with skopeo."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import Sealer, build_examples, copy_tree, sh

# how long after its last change a file is trusted by its stat data (sealer.build.context)
RACY_SECONDS = 1.1

NAME = "kubernetes-multi-arch:v1.19.8"


def layers_by_value(sealer: Sealer, name: str, platform: str) -> dict[str, str]:
    doc = yaml.safe_load(sealer.run("inspect", name, "--platform", platform).stdout)
    return {la["value"]: la["id"] for la in doc["spec"]["layers"]}


def test_two_platform_build_shares_only_identical_layers(example_store: Sealer) -> None:
    amd = layers_by_value(example_store, NAME, "linux/amd64")
    arm = layers_by_value(example_store, NAME, "linux/arm64")
    assert amd["dashborad.yaml manifests"] == arm["dashborad.yaml manifests"]
    assert amd["my-mysql charts"] == arm["my-mysql charts"]
    assert amd["${ARCH}/helm bin"] != arm["${ARCH}/helm bin"]
    assert amd["${ARCH}/. ."] != arm["${ARCH}/. ."]  # the base's per-arch binaries
    # shared layers are stored once
    blobs = {p.name for p in (example_store.root / "blobs" / "sha256").iterdir()}
    assert amd["my-mysql charts"].split(":")[1] in blobs


def test_manifests_list_has_the_design_note_shape(example_store: Sealer) -> None:
    doc = example_store.json("inspect", NAME)
    assert list(doc) == [NAME]
    manifests = doc[NAME]["manifests"]
    assert [set(m) for m in manifests] == [{"id", "created", "size", "platform"}] * 2
    platforms = sorted(json.dumps(m["platform"], sort_keys=True) for m in manifests)
    assert platforms == [
        '{"architecture": "amd64", "os": "linux"}',
        '{"architecture": "arm64", "os": "linux", "variant": "v8"}',
    ]
    assert all(len(m["id"]) == 64 and m["size"] > 0 for m in manifests)


def test_image_yaml_has_the_design_note_shape(example_store: Sealer) -> None:
    ids = {m["platform"]["architecture"]: m["id"] for m in example_store.json("inspect", NAME)[NAME]["manifests"]}
    by_id = yaml.safe_load(example_store.run("inspect", ids["arm64"][:12]).stdout)
    # an id is shown under a name holding it: NAME, or a tag another test of the shared store added
    held = yaml.safe_load(example_store.run("inspect", by_id["metadata"]["name"], "--platform", "linux/arm64").stdout)
    assert by_id == held
    doc = yaml.safe_load(example_store.run("inspect", NAME, "--platform", "linux/arm64/v8").stdout)
    assert doc["spec"] == by_id["spec"]
    assert doc["kind"] == "Image"
    assert doc["metadata"]["name"] == NAME
    cluster = yaml.safe_load(doc["metadata"]["annotations"]["sea.aliyun.com/ClusterFile"])
    assert cluster["apiVersion"] == "sealer.cloud/v2" and cluster["spec"]["image"] == NAME
    assert doc["spec"]["id"] == ids["arm64"]
    assert doc["spec"]["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert doc["spec"]["image_config"]["cmd"]["current"] == [
        "helm install my-mysql bitnami/mysql --version 8.8.26",
        "kubectl apply -f manifests/dashborad.yaml",
    ]
    assert [(la["type"], la["value"]) for la in doc["spec"]["layers"]] == [
        ("COPY", "rootfs/. ."),
        ("COPY", "${ARCH}/. ."),
        (
            "RUN",
            "printf '%s\\n' \"$KUBE_VERSION\" > etc/kube-version && sed -i "
            '"s/^kubernetesVersion: .*/kubernetesVersion: $KUBE_VERSION/" etc/kubeadm.yml',
        ),
        ("COPY", "dashborad.yaml manifests"),
        ("COPY", "${ARCH}/helm bin"),
        ("COPY", "my-mysql charts"),
        ("BASE", "rootfs cache"),  # the container images the manifests and chart name, arm64 only
    ]
    assert doc["spec"]["image_config"]["images"] == [
        "docker.io/bitnami/mysql:8.0.28-debian-10-r23",
        "docker.io/kubernetesui/dashboard:v2.5.1",
    ]
    assert all(la["id"].startswith("sha256:") for la in doc["spec"]["layers"])
    assert "sealer_version" in doc["spec"]


def test_images_json_lists_each_platform(example_store: Sealer) -> None:
    rows = [r for r in example_store.images() if r["name"] == NAME]
    assert sorted(r["platform"]["architecture"] for r in rows) == ["amd64", "arm64"]
    assert all(set(r) == {"name", "id", "platform", "created", "size"} for r in rows)
    text = example_store.run("images").stdout
    assert "linux/arm64/v8" in text and "linux/amd64" in text


def test_skopeo_reads_the_store_as_an_oci_layout(example_store: Sealer, tmp_path: Path) -> None:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{example_store.root}:{NAME}"], capture_output=True, check=True
    ).stdout
    index = json.loads(raw)
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    # skopeo copies every platform and verifies every blob digest on the way
    subprocess.run(
        ["skopeo", "copy", "-q", "--all", f"oci:{example_store.root}:{NAME}", f"dir:{tmp_path / 'copy'}"], check=True
    )
    arm = layers_by_value(example_store, NAME, "linux/arm64")
    helm = tmp_path / "copy" / arm["${ARCH}/helm bin"].split(":")[1]
    listing = sh("tar", "-tvf", str(helm))
    assert "bin/helm" in listing and " 0/0 " in listing and "1970-01-01" in listing


def test_layer_bytes_hold_the_right_binary(example_store: Sealer, tmp_path: Path) -> None:
    for arch, machine in (("amd64", "x86-64"), ("arm64", "aarch64")):
        digest = layers_by_value(example_store, NAME, f"linux/{arch}")["${ARCH}/helm bin"]
        blob = example_store.root / "blobs" / "sha256" / digest.split(":")[1]
        out = tmp_path / arch
        out.mkdir()
        subprocess.run(["tar", "-xf", str(blob), "-C", str(out)], check=True)
        desc = sh("file", "-b", str(out / "bin" / "helm"))
        assert machine in desc.lower()


def test_fresh_copy_with_new_times_gives_the_same_ids(
    example_store: Sealer, prepared_examples: Path, tmp_path: Path
) -> None:
    fresh = tmp_path / "checkout"
    copy_tree(prepared_examples, fresh)
    later = time.time() + 3600
    for dirpath, _dirs, files in os.walk(fresh):
        for f in files:
            os.utime(os.path.join(dirpath, f), (later, later))
    other = Sealer(tmp_path / "store2")
    build_examples(other, context_root=fresh)
    for platform in ("linux/amd64", "linux/arm64"):
        assert layers_by_value(other, NAME, platform) == layers_by_value(example_store, NAME, platform)


def test_unchanged_rebuild_writes_no_layer_and_keeps_ids(sealer: Sealer, prepared_examples: Path) -> None:
    build_examples(sealer)
    before = sealer.images()
    out = sealer.json(
        "build", "--platform", "linux/amd64,linux/arm64", "-t", NAME, str(prepared_examples / "multi-arch"),
        "--output", "json",
    )  # fmt: skip
    assert out["layersWritten"] == 0 and out["layersCached"] == 8 and out["blobsFetched"] == 0
    assert sealer.images() == before


def _copy_context(root: Path) -> Path:
    (root / "data" / "etc").mkdir(parents=True)
    for i in range(20):
        (root / "data" / "etc" / f"f{i}.conf").write_bytes(b"x" * (100 + i))
    (root / "Kubefile").write_text("FROM scratch\nCOPY data .\n")
    return root


def _build_copy(sealer: Sealer, ctx: Path) -> dict[str, Any]:
    args = ["build", "--platform", "linux/amd64", "-t", "stat:1", str(ctx), "--output", "json"]
    out: dict[str, Any] = sealer.json(*args)
    return out


def test_rebuild_notices_a_same_size_change_with_its_mtime_put_back(sealer: Sealer, tmp_path: Path) -> None:
    """An unchanged rebuild trusts each file's stat data (git's index does the same): mode,
    size, mtime, ctime, inode and device. Content rewritten at the same size with its mtime
    put back (as ``touch -r``, ``cp -p`` or a checkout may) still moves ctime, which no user can
    set: the layer is read again and holds the new bytes."""
    ctx = _copy_context(tmp_path / "ctx")
    time.sleep(RACY_SECONDS)
    first = _build_copy(sealer, ctx)
    assert (first["layersWritten"], _build_copy(sealer, ctx)["layersWritten"]) == (1, 0)
    target = ctx / "data" / "etc" / "f3.conf"
    before = target.stat()
    target.write_bytes(b"y" * before.st_size)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    again = _build_copy(sealer, ctx)
    assert again["layersWritten"] == 1
    assert again["manifests"][0]["id"] != first["manifests"][0]["id"]
    layer = layers_by_value(sealer, "stat:1", "linux/amd64")["data ."]
    blob = sealer.root / "blobs" / "sha256" / layer.split(":")[1]
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(blob), "-C", str(out)], check=True)
    assert (out / "data" / "etc" / "f3.conf").read_bytes() == b"y" * before.st_size


def test_a_file_changed_just_before_a_build_is_read_again_next_time(sealer: Sealer, tmp_path: Path) -> None:
    """Racily clean, as git calls it: a file changed within the file system's clock step of
    the build's walk could change again with the same stat data after the build read it. Such
    a layer is written but not remembered, so the next build reads it again; once the file's
    times are a second older than the walk, the rebuild trusts them. A file dated in the future
    (a skewed clock, ``touch -d``) is not older either: it stands for one just changed, which a
    test cannot otherwise catch on a loaded machine."""
    ctx = _copy_context(tmp_path / "ctx")
    changed = ctx / "data" / "etc" / "f0.conf"
    os.utime(changed, (time.time() + 3600, time.time() + 3600))
    time.sleep(RACY_SECONDS)  # ctime is past the window; the mtime is not
    first = _build_copy(sealer, ctx)
    second = _build_copy(sealer, ctx)
    assert (first["layersWritten"], second["layersWritten"]) == (1, 1)
    assert second["manifests"][0]["id"] == first["manifests"][0]["id"]
    os.utime(changed, (time.time() - 60, time.time() - 60))
    time.sleep(RACY_SECONDS)
    assert _build_copy(sealer, ctx)["layersWritten"] == 1
    assert _build_copy(sealer, ctx)["layersWritten"] == 0


def test_rmi_platform_removes_only_that_platform(sealer: Sealer, prepared_examples: Path) -> None:
    build_examples(sealer)
    amd_only = layers_by_value(sealer, NAME, "linux/amd64")["${ARCH}/helm bin"]
    arm_only = layers_by_value(sealer, NAME, "linux/arm64")["${ARCH}/helm bin"]
    sealer.run("rmi", NAME, "--platform", "linux/amd64")
    rows = [r for r in sealer.images() if r["name"] == NAME]
    assert [r["platform"]["architecture"] for r in rows] == ["arm64"]
    blobs = sealer.root / "blobs" / "sha256"
    assert not (blobs / amd_only.split(":")[1]).exists()
    assert (blobs / arm_only.split(":")[1]).exists()
    # the base still has amd64, and its blobs stay
    assert {r["platform"]["architecture"] for r in sealer.images() if r["name"] == "kubernetes:v1.19.8"} == {
        "amd64",
        "arm64",
    }
    proc = sealer.run("inspect", NAME, "--platform", "linux/amd64", check=False)
    assert proc.returncode == 1 and "no platform linux/amd64" in proc.stderr
    sealer.run("rmi", NAME)
    assert NAME not in {r["name"] for r in sealer.images()}


def test_tag_and_unknown_image_errors(sealer: Sealer, prepared_examples: Path) -> None:
    build_examples(sealer)
    sealer.run("tag", NAME, "localhost:5000/apps/multi:v2")
    names = {r["name"] for r in sealer.images()}
    assert "localhost:5000/apps/multi:v2" in names
    for args in (["inspect", "nope:1"], ["rmi", "nope:1"], ["inspect", NAME, "--platform", "linux/s390x"]):
        proc = sealer.run(*args, check=False)
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("sealer: error: ")


def test_missing_platform_file_fails_and_leaves_no_image(
    sealer: Sealer, prepared_examples: Path, tmp_path: Path
) -> None:
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "kubernetes:v1.19.8",
               str(prepared_examples / "kubernetes-base"))  # fmt: skip
    ctx = tmp_path / "ctx"
    copy_tree(prepared_examples / "multi-arch", ctx)
    (ctx / "arm64" / "helm").unlink()
    proc = sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "app:1", str(ctx), check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        "sealer: error: Kubefile:3: COPY source 'arm64/helm' does not exist in the build context for linux/arm64/v8"
    )
    assert "app:1" not in {r["name"] for r in sealer.images()}


def test_run_instruction_makes_a_layer_with_changes_and_whiteouts(sealer: Sealer, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "etc").mkdir(parents=True)
    (ctx / "etc" / "old.conf").write_text("old\n")
    (ctx / "Kubefile").write_text(
        "FROM scratch\nARG GREETING=hello\nCOPY etc .\n"
        'RUN echo "$GREETING from $ARCH in $(pwd)" > etc/greeting && rm etc/old.conf\n'
        "CMD cat etc/greeting\n"
    )
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "run:1", "--build-arg", "GREETING=hi", str(ctx))
    doc = yaml.safe_load(sealer.run("inspect", "run:1", "--platform", "linux/arm64").stdout)
    run_layer = doc["spec"]["layers"][1]
    assert run_layer["type"] == "RUN"
    blob = sealer.root / "blobs" / "sha256" / run_layer["id"].split(":")[1]
    names = sh("tar", "-tf", str(blob)).split()
    assert "etc/greeting" in names and "etc/.wh.old.conf" in names
    content = sh("tar", "-xOf", str(blob), "etc/greeting")
    assert content.startswith("hi from arm64 in ") and "/tmp/" in content
    assert doc["spec"]["image_config"]["args"] == {"GREETING": "hi"}


def test_a_manifest_that_is_not_yaml_is_named_on_one_line(sealer: Sealer, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "bad.yaml").write_text("kind: Pod\nspec: [x,\n  image: y\n")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY bad.yaml manifests\n")
    proc = sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "bad:1", str(ctx), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("sealer: error: manifests/bad.yaml:4: not valid YAML: ")
    assert proc.stderr.count("\n") == 1
    assert sealer.images() == []


def test_images_a_run_writes_are_found_again_when_the_run_is_cached(
    sealer: Sealer, upstream: str, tmp_path: Path
) -> None:
    """The scan of a cached RUN layer comes from the store's scan cache, or else from the layer itself."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Kubefile").write_text(
        "FROM scratch\nRUN mkdir manifests && echo 'image: kubernetesui/dashboard:v2.5.1' > manifests/m.yaml\n"
    )
    build = ("build", "--platform", "linux/amd64,linux/arm64", "-t", "run:1", str(ctx))
    for again in ("first", "cached", "scan cache lost"):
        if again == "scan cache lost":
            shutil.rmtree(sealer.root / "cache" / "scan")
        sealer.run(*build)
        for platform in ("linux/amd64", "linux/arm64"):
            doc = yaml.safe_load(sealer.run("inspect", "run:1", "--platform", platform).stdout)
            images = doc["spec"]["image_config"]["images"]
            assert images == ["docker.io/kubernetesui/dashboard:v2.5.1"], (again, platform)


def test_run_executes_each_platforms_programs_confined(sealer: Sealer, tmp_path: Path) -> None:
    """A RUN of an arm64 program runs through qemu-user binfmt inside its confinement, as an
    amd64 one runs natively; host tools (sh, the shell's utilities) stay usable."""
    ctx = tmp_path / "ctx"
    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("hello from " ARCH); return 0; }\n')
    for arch, cc in (("amd64", "gcc"), ("arm64", "aarch64-linux-gnu-gcc")):
        (ctx / arch).mkdir(parents=True)
        sh(cc, "-static", "-Os", f'-DARCH="{arch}"', "-o", str(ctx / arch / "hello"), str(source))
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY ${ARCH}/hello bin\nRUN hello > said && uname -m >> said\n")
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "hello:1", str(ctx))
    for platform, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        layers = yaml.safe_load(sealer.run("inspect", "hello:1", "--platform", platform).stdout)["spec"]["layers"]
        blob = sealer.root / "blobs" / "sha256" / layers[-1]["id"].split(":")[1]
        said = sh("tar", "-xOf", str(blob), "said").splitlines()
        assert said[0] == f"hello from {arch}"
        assert said[1] == os.uname().machine  # the shell ran the host's uname


def test_failing_run_reports_exit_code_and_output(sealer: Sealer, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Kubefile").write_text("FROM scratch\n\nRUN echo broken-step >&2; exit 7\n")
    proc = sealer.run("build", "-t", "bad:1", str(ctx), check=False)
    assert proc.returncode == 1
    assert "Kubefile:3: RUN failed for linux/amd64 with exit code 7: broken-step" in proc.stderr
    assert sealer.images() == []


@pytest.mark.parametrize(
    ("kubefile", "files", "message"),
    [
        ("FROM scratch\nCOPY ../x .\n", {}, "Kubefile:2: COPY source '../x' escapes the build context"),
        ("FROM scratch\nCOPY /etc/passwd .\n", {}, "Kubefile:2: COPY source '/etc/passwd' escapes"),
        ("FROM scratch\nCOPY link .\n", {"link": "->/etc"}, "Kubefile:2: COPY source 'link' resolves outside"),
        ("FROM scratch\nCOPY d .\n", {"d/up": "->../../../etc/passwd"}, "Kubefile:2: symlink d/up -> ../../../etc/"),
        ("FROM scratch\nCOPY a ../..\n", {"a": "x"}, "Kubefile:2: COPY destination '../..' escapes the rootfs"),
        ("FROM nothere:1\n", {}, "Kubefile:1: FROM nothere:1: image nothere:1 not found"),
        ("FROM scratch\nCOPY *.none .\n", {}, "Kubefile:2: COPY source '*.none' does not exist"),
    ],
)
def test_context_escapes_are_refused(
    sealer: Sealer, tmp_path: Path, kubefile: str, files: dict[str, str], message: str
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Kubefile").write_text(kubefile)
    for name, content in files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_text(content)
    proc = sealer.run("build", "-t", "x:1", str(ctx), check=False)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert sealer.images() == []


def test_build_killed_at_any_point_leaves_no_partial_image(
    sealer: Sealer, prepared_examples: Path, tmp_path: Path
) -> None:
    """SIGKILL a cold build at several moments; images never shows a partial image; a rebuild works."""
    ctx = tmp_path / "big"
    copy_tree(prepared_examples / "multi-arch", ctx)
    for arch in ("amd64", "arm64"):
        (ctx / f"{arch}-data").mkdir()
        with open(ctx / f"{arch}-data" / "blob.bin", "wb") as f:
            f.write(os.urandom(64 << 20))
    with open(ctx / "Kubefile", "a") as f:
        f.write("COPY ${ARCH}-data/blob.bin data\n")
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "kubernetes:v1.19.8",
               str(prepared_examples / "kubernetes-base"))  # fmt: skip
    baseline = sealer.images()
    kills = 0
    for delay in (0.05, 0.15, 0.3, 0.5, 0.8, 1.2):
        proc = sealer.popen("build", "--no-cache", "--platform", "linux/amd64,linux/arm64", "-t", "big:1", str(ctx))
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        rows = sealer.images()
        big = [r for r in rows if r["name"] == "big:1"]
        assert [r for r in rows if r["name"] != "big:1"] == baseline
        assert big == [] or sorted(r["platform"]["architecture"] for r in big) == ["amd64", "arm64"]
        assert sealer.json("fsck", "--output", "json")["problems"] == []
        if big:
            sealer.run("rmi", "big:1")
    assert kills >= 3, "the build finished before most kills: the test did not test anything"
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "big:1", str(ctx))
    assert sorted(r["platform"]["architecture"] for r in sealer.images() if r["name"] == "big:1") == ["amd64", "arm64"]
    # skopeo verifies every blob of the surviving store
    subprocess.run(
        ["skopeo", "copy", "-q", "--all", f"oci:{sealer.root}:big:1", f"dir:{tmp_path / 'check'}"], check=True
    )


def test_fsck_finds_damage_and_prune_removes_garbage(sealer: Sealer, prepared_examples: Path) -> None:
    build_examples(sealer)
    assert sealer.run("fsck").returncode == 0
    orphan = sealer.root / "blobs" / "sha256" / ("0" * 64)
    orphan.write_bytes(b"")  # what a command killed at the wrong moment could leave: unreferenced
    report = sealer.run("fsck", "--output", "json", check=False)
    assert report.returncode == 1
    assert json.loads(report.stdout)["problems"] == [f"sha256:{'0' * 64}: content does not match its digest"]
    pruned = sealer.json("prune", "--output", "json")
    assert f"sha256:{'0' * 64}" in pruned["deletedBlobs"] and not orphan.exists()
    layer = layers_by_value(sealer, NAME, "linux/arm64")["${ARCH}/helm bin"]
    blob = sealer.root / "blobs" / "sha256" / layer.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[600] ^= 1
    blob.write_bytes(bytes(data))
    report = sealer.run("fsck", check=False)
    assert report.returncode == 1 and f"{layer}: content does not match its digest" in report.stderr


def test_the_example_base_builds_at_the_kubernetes_version_asked(
    example_store: Sealer, sealer: Sealer, prepared_examples: Path
) -> None:
    def version_files(store: Sealer, name: str) -> tuple[str, str]:
        doc = yaml.safe_load(store.run("inspect", name, "--platform", "linux/arm64").stdout)
        run_layer = next(la for la in doc["spec"]["layers"] if la["type"] == "RUN")
        blob = store.root / "blobs" / "sha256" / run_layer["id"].split(":")[1]
        return sh("tar", "-xOf", str(blob), "etc/kube-version"), sh("tar", "-xOf", str(blob), "etc/kubeadm.yml")

    version, kubeadm = version_files(example_store, "kubernetes:v1.19.8")  # the default
    assert version == "v1.19.8\n" and "\nkubernetesVersion: v1.19.8\n" in kubeadm
    sealer.run("build", "--platform", "linux/arm64", "--build-arg", "KUBE_VERSION=v1.20.15", "-t",
               "kubernetes:v1.20.15", str(prepared_examples / "kubernetes-base"))  # fmt: skip
    version, kubeadm = version_files(sealer, "kubernetes:v1.20.15")
    assert version == "v1.20.15\n" and "\nkubernetesVersion: v1.20.15\n" in kubeadm
