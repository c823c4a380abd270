"""save/load, push/pull, login and merge, against a real docker-registry, checked with skopeo."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import Registry, Sealer, build_examples, sh

NAME = "kubernetes-multi-arch:v1.19.8"


def ids(sealer: Sealer, name: str = NAME) -> dict[str, str]:
    return {r["platform"]["architecture"]: r["id"] for r in sealer.images() if r["name"] == name}


def archive_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def store_state(sealer: Sealer) -> tuple[list[dict[str, object]], set[str]]:
    return sealer.images(), {p.name for p in (sealer.root / "blobs" / "sha256").iterdir()}


@pytest.fixture(scope="module")
def archive(example_store: Sealer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archive") / "kubernetes.tar"
    example_store.run("save", "-o", str(path), NAME)
    return path


def test_save_is_an_oci_archive_skopeo_reads(archive: Path, example_store: Sealer, registry: Registry) -> None:
    raw = json.loads(sh("skopeo", "inspect", "--raw", f"oci-archive:{archive}:{NAME}"))
    assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == ["amd64", "arm64"]
    sh("skopeo", "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false",
       f"oci-archive:{archive}:{NAME}", f"docker://{registry.address}/from-archive/multi:v1")  # fmt: skip
    copied = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{registry.address}/from-archive/multi:v1"))  # fmt: skip
    assert copied == raw


def test_save_stores_each_blob_once(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        blob_bytes = sum(m.size for m in tar.getmembers() if m.name.startswith("blobs/"))
    assert len(names) == len(set(names))
    assert names[:2] == ["oci-layout", "index.json"]
    assert archive.stat().st_size <= 1.05 * blob_bytes
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == NAME


def test_load_into_an_empty_store_gives_identical_ids(archive: Path, example_store: Sealer, sealer: Sealer) -> None:
    sealer.run("load", "-i", str(archive))
    assert ids(sealer) == ids(example_store)
    before = store_state(sealer)
    sealer.run("load", "-i", str(archive))  # twice changes nothing
    assert store_state(sealer) == before
    with open(archive, "rb") as f:  # and from stdin
        other = Sealer(sealer.root.parent / "stdin-store")
        proc = other.run("load", "-i", "-", input=f.read())
    assert proc.returncode == 0 and ids(other) == ids(example_store)


def test_save_platform_narrows_the_archive(example_store: Sealer, tmp_path: Path, sealer: Sealer) -> None:
    path = tmp_path / "amd64.tar"
    example_store.run("save", "-o", str(path), NAME, "--platform", "linux/amd64")
    raw = json.loads(sh("skopeo", "inspect", "--raw", f"oci-archive:{path}:{NAME}"))
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64"]
    arm_layers = yaml.safe_load(example_store.run("inspect", NAME, "--platform", "linux/arm64").stdout)["spec"][
        "layers"
    ]
    arm_helm = next(la["id"] for la in arm_layers if la["value"] == "${ARCH}/helm bin")
    assert f"blobs/sha256/{arm_helm.split(':')[1]}" not in archive_names(path)
    # loading the arm64-only archive next to an amd64-only name keeps both
    arm = tmp_path / "arm64.tar"
    example_store.run("save", "-o", str(arm), NAME, "--platform", "linux/arm64")
    sealer.run("load", "-i", str(path))
    assert list(ids(sealer)) == ["amd64"]
    sealer.run("load", "-i", str(arm))
    assert ids(sealer) == ids(example_store)


def _rewrite(src: Path, dst: Path, edit) -> None:  # type: ignore[no-untyped-def]
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member).read() if member.isreg() else None  # type: ignore[union-attr]
            for m, d in edit(member, data):
                tout.addfile(m, io.BytesIO(d) if d is not None else None)


def _largest_blob(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        return max((m for m in tar.getmembers() if m.name.startswith("blobs/")), key=lambda m: m.size).name


def _flip(archive: Path, dst: Path) -> None:
    target = _largest_blob(archive)

    def edit(m, d):  # type: ignore[no-untyped-def]
        if m.name == target:
            d = bytes([d[0] ^ 1]) + d[1:]
        return [(m, d)]

    _rewrite(archive, dst, edit)


def _truncate(archive: Path, dst: Path) -> None:
    dst.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])


def _extra(kind: str):  # type: ignore[no-untyped-def]
    def make(archive: Path, dst: Path) -> None:
        def edit(m, d):  # type: ignore[no-untyped-def]
            out = [(m, d)]
            if m.name == "oci-layout":
                extra = tarfile.TarInfo("../evil" if kind == "dotdot" else "blobs/sha256/" + "0" * 64)
                if kind == "symlink":
                    extra.type, extra.linkname = tarfile.SYMTYPE, "/etc/passwd"
                    out.append((extra, None))
                else:
                    extra.size = 4
                    out.append((extra, b"evil"))
            return out

        _rewrite(archive, dst, edit)

    return make


def _missing_blob(archive: Path, dst: Path) -> None:
    target = _largest_blob(archive)
    _rewrite(archive, dst, lambda m, d: [] if m.name == target else [(m, d)])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_flip, "archive blob does not match its digest"),
        (_truncate, "truncated or damaged"),
        (_extra("dotdot"), "entry '../evil' escapes the archive root"),
        (_extra("symlink"), "is a link"),
        (_missing_blob, "is referenced but not in the archive"),
    ],
)
def test_load_refuses_bad_archives_and_keeps_the_store(
    archive: Path,
    sealer: Sealer,
    tmp_path: Path,
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    sealer.run("build", "-t", "keep:1", str(Path(__file__).parent / "data" / "tiny"))
    before = store_state(sealer)
    bad = tmp_path / "bad.tar"
    make(archive, bad)
    proc = sealer.run("load", "-i", str(bad), check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert store_state(sealer) == before
    assert not os.listdir(sealer.root / "tmp")
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_push_pull_round_trip(example_store: Sealer, registry: Registry, sealer: Sealer, tmp_path: Path) -> None:
    target = f"{registry.address}/apps/multi:v1"
    example_store.run("tag", NAME, target)
    first = example_store.json("push", target, "--output", "json")
    assert first["uploaded"] > 0
    raw = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}"))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert sorted((m["platform"]["architecture"], m["platform"].get("variant")) for m in raw["manifests"]) == [
        ("amd64", None),
        ("arm64", "v8"),
    ]
    sh("skopeo", "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{target}", f"dir:{tmp_path / 'dir'}")
    second = example_store.json("push", target, "--output", "json")
    assert second["uploaded"] == 0 and second["skipped"] == first["uploaded"] + first["skipped"]
    sealer.run("pull", target)
    assert ids(sealer, target) == ids(example_store)
    # another repository of the same registry: blobs are mounted, not uploaded
    example_store.run("tag", NAME, f"{registry.address}/other/multi:v1")
    third = example_store.json("push", f"{registry.address}/other/multi:v1", "--output", "json")
    assert third["uploaded"] == 0 and third["mounted"] > 0


def test_pull_platform_fetches_only_that_platform(example_store: Sealer, registry: Registry, sealer: Sealer) -> None:
    target = f"{registry.address}/apps/narrow:v1"
    example_store.run("tag", NAME, target)
    example_store.run("push", target)
    out = sealer.json("pull", target, "--platform", "linux/arm64", "--output", "json")
    assert [p["architecture"] for p in out["platforms"]] == ["arm64"]
    assert list(ids(sealer, target)) == ["arm64"]
    amd = yaml.safe_load(example_store.run("inspect", NAME, "--platform", "linux/amd64").stdout)["spec"]["layers"]
    amd_only = next(la["id"] for la in amd if la["value"] == "${ARCH}/helm bin")
    assert not (sealer.root / "blobs" / "sha256" / amd_only.split(":")[1]).exists()


def test_login_push_pull_with_credentials(example_store: Sealer, auth_registry: Registry, sealer: Sealer) -> None:
    target = f"{auth_registry.address}/secure/base:1"
    example_store.run("tag", "kubernetes:v1.19.8", target)
    denied = example_store.run("push", target, check=False)
    assert denied.returncode == 1
    assert f"authentication required: run 'sealer login {auth_registry.address}'" in denied.stderr
    wrong = example_store.run("login", auth_registry.address, "-u", "alice", "--password-stdin", check=False,
                              input=b"not-it\n")  # fmt: skip
    assert wrong.returncode == 1 and "wrong username or password" in wrong.stderr
    example_store.run("login", auth_registry.address, "-u", "alice", "--password-stdin",
                      input=f"{auth_registry.password}\n".encode())  # fmt: skip
    config = example_store.root.parent / "docker" / "config.json"
    assert config.stat().st_mode & 0o777 == 0o600
    example_store.run("push", target)
    assert sh("skopeo", "inspect", "--raw", "--tls-verify=false", *auth_registry.skopeo_creds(), f"docker://{target}")
    proc = sealer.run("pull", target, check=False)
    assert proc.returncode == 1 and "sealer login" in proc.stderr
    sealer.run("login", auth_registry.address, "-u", "alice", "-p", str(auth_registry.password))
    sealer.run("pull", target)
    assert len(ids(sealer, target)) == 2
    # the password (a canary) is in no file of either store, no file readable by others, and
    # in the Docker config only as the base64 the convention asks for, in a 0600 file
    for store in (example_store, sealer):
        for path in store.root.parent.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                assert auth_registry.password.encode() not in data, path  # type: ignore[union-attr]
    sealer.run("logout", auth_registry.address)
    assert auth_registry.address not in (sealer.root.parent / "docker" / "config.json").read_text()


def test_skopeo_archives_load(registry: Registry, example_store: Sealer, sealer: Sealer, tmp_path: Path) -> None:
    target = f"{registry.address}/apps/skopeo:v1"
    example_store.run("tag", NAME, target)
    example_store.run("push", target)
    # as skopeo writes it by default: layers recompressed with gzip, so other ids, same content
    gz = tmp_path / "skopeo-gzip.tar"
    sh("skopeo", "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{target}", f"oci-archive:{gz}:app:gz")
    sealer.run("load", "-i", str(gz))
    assert sorted(ids(sealer, "app:gz")) == ["amd64", "arm64"]
    doc = yaml.safe_load(sealer.run("inspect", "app:gz", "--platform", "linux/arm64").stdout)
    assert doc["spec"]["image_config"]["cmd"]["current"][0] == "helm install my-mysql bitnami/mysql --version 8.8.26"
    assert [la["value"] for la in doc["spec"]["layers"]][-2:] == ["my-mysql charts", "rootfs cache"]
    # with digests preserved: the same ids as the image pushed
    same = tmp_path / "skopeo-same.tar"
    sh("skopeo", "copy", "-q", "--all", "--preserve-digests", "--dest-oci-accept-uncompressed-layers",
       "--src-tls-verify=false", f"docker://{target}", f"oci-archive:{same}:app:v9")  # fmt: skip
    sealer.run("load", "-i", str(same))
    assert ids(sealer, "app:v9") == ids(example_store)


def _app(tmp_path: Path, name: str, cmds: list[str], base: str = "kubernetes:v1.19.8") -> Path:
    ctx = tmp_path / name
    (ctx / "manifests").mkdir(parents=True)
    (ctx / "manifests" / f"{name}.yaml").write_text(f"kind: ConfigMap\nmetadata:\n  name: {name}\n")
    (ctx / "Kubefile").write_text(f"FROM {base}\nCOPY manifests .\n" + "".join(f"CMD {c}\n" for c in cmds))
    return ctx


def test_merge_two_apps_on_one_base(sealer: Sealer, prepared_examples: Path, tmp_path: Path) -> None:
    build_examples(sealer)
    plats = "linux/amd64,linux/arm64"
    sealer.run("build", "--platform", plats, "-t", "app1:v1",
               str(_app(tmp_path, "app1", ["kubectl apply -f manifests/app1.yaml", "echo shared"])))  # fmt: skip
    sealer.run("build", "--platform", plats, "-t", "app2:v2",
               str(_app(tmp_path, "app2", ["echo shared", "kubectl apply -f manifests/app2.yaml"])))  # fmt: skip
    sealer.run("merge", "app1:v1", "app2:v2", "-t", "new:v1", "--platform", plats)
    for plat in ("linux/amd64", "linux/arm64"):
        doc = yaml.safe_load(sealer.run("inspect", "new:v1", "--platform", plat).stdout)
        a1 = yaml.safe_load(sealer.run("inspect", "app1:v1", "--platform", plat).stdout)["spec"]["layers"]
        a2 = yaml.safe_load(sealer.run("inspect", "app2:v2", "--platform", plat).stdout)["spec"]["layers"]
        assert [la["id"] for la in doc["spec"]["layers"]] == [la["id"] for la in a1] + [a2[-1]["id"]]
        assert doc["spec"]["image_config"]["cmd"]["current"] == [
            "kubectl apply -f manifests/app1.yaml", "echo shared", "kubectl apply -f manifests/app2.yaml",
        ]  # fmt: skip
    # without --platform: this host's platform only
    sealer.run("merge", "app1:v1", "app2:v2", "-t", "host:v1")
    assert list(ids(sealer, "host:v1")) == ["amd64"]


def test_merge_refusals(sealer: Sealer, prepared_examples: Path, tmp_path: Path) -> None:
    build_examples(sealer)
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "app1:v1", str(_app(tmp_path, "app1", [])))
    sealer.run("build", "--platform", "linux/amd64", "-t", "amd-only:v1", str(_app(tmp_path, "amd", [])))
    sealer.run("build", "--platform", "linux/amd64,linux/arm64", "-t", "loose:v1",
               str(_app(tmp_path, "loose", [], base="scratch")))  # fmt: skip
    proc = sealer.run("merge", "app1:v1", "loose:v1", "-t", "x:1", "--platform", "linux/amd64", check=False)
    assert proc.returncode == 1
    assert "app1:v1 and loose:v1 are not built on the same base layers" in proc.stderr
    proc = sealer.run("merge", "app1:v1", "amd-only:v1", "-t", "x:1", "--platform", "linux/arm64", check=False)
    assert proc.returncode == 1 and "image amd-only:v1 has no platform linux/arm64/v8" in proc.stderr
    assert "x:1" not in {r["name"] for r in sealer.images()}


def test_a_large_blob_is_uploaded_in_chunks(tmp_path: Path, sealer: Sealer, registry: Registry) -> None:
    """Blobs above 64 MiB go up as PATCHes with Content-Range (seen through a recording proxy);
    skopeo then copies the image, verifying every blob."""
    from tests.faultproxy import FaultProxy

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "big.bin").write_bytes(os.urandom(70 << 20))
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY big.bin .\n")
    proxy = FaultProxy(registry.address)
    try:
        name = f"{proxy.address}/chunked/big:v1"
        sealer.run("build", "--platform", "linux/amd64", "-t", name, str(ctx))
        sealer.run("push", name)
        patches = [s for s in proxy.seen if s.method == "PATCH"]
        assert len(patches) == 2
        layer_size = max(b.stat().st_size for b in (sealer.root / "blobs" / "sha256").iterdir())
        ranges = [p.headers["Content-Range"] for p in patches]
        assert ranges == [f"0-{(64 << 20) - 1}", f"{64 << 20}-{layer_size - 1}"]
    finally:
        proxy.close()
    sh("skopeo", "copy", "-q", "--all", "--src-tls-verify=false",
       f"docker://{registry.address}/chunked/big:v1", f"dir:{tmp_path / 'copy'}")  # fmt: skip
    assert max(p.stat().st_size for p in (tmp_path / "copy").iterdir()) > 70 << 20
