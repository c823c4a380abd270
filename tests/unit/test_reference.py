import pytest

from sealer.errors import InvalidReferenceError
from sealer.oci.reference import Reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("kubernetes:v1.19.8", None, "kubernetes", "v1.19.8", None),
        ("nginx", None, "nginx", "latest", None),
        ("bitnami/mysql:8.0", None, "bitnami/mysql", "8.0", None),
        ("localhost:5000/a/b/c:1", "localhost:5000", "a/b/c", "1", None),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
        ("sea.hub:5000/library/nginx:1.21", "sea.hub:5000", "library/nginx", "1.21", None),
        (f"quay.io/x/y@{DIGEST}", "quay.io", "x/y", None, DIGEST),
        (f"quay.io/x/y:t@{DIGEST}", "quay.io", "x/y", "t", DIGEST),
        ("localhost/app:1", "localhost", "app", "1", None),
    ],
)
def test_parse(text: str, registry: str | None, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_str_round_trips_with_default_tag() -> None:
    assert str(Reference.parse("kubernetes-multi-arch:v1.19.8")) == "kubernetes-multi-arch:v1.19.8"
    assert str(Reference.parse("app")) == "app:latest"
    assert str(Reference.parse("localhost:5000/a:1")) == "localhost:5000/a:1"


def test_docker_normalization() -> None:
    assert str(Reference.parse("nginx").docker_normalized()) == "docker.io/library/nginx:latest"
    assert str(Reference.parse("bitnami/mysql:8").docker_normalized()) == "docker.io/bitnami/mysql:8"
    assert str(Reference.parse("quay.io/a/b:1").docker_normalized()) == "quay.io/a/b:1"


def test_with_registry_keeps_an_explicit_one() -> None:
    assert str(Reference.parse("app:1").with_registry("127.0.0.1:5000")) == "127.0.0.1:5000/app:1"
    assert str(Reference.parse("r.io/app:1").with_registry("127.0.0.1:5000")) == "r.io/app:1"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "UPPER:1",
        "a:b:c",
        "a@sha256:short",
        "a/:1",
        "a//b",
        "-a",
        "a:" + "x" * 200,
        " a",
        "a:tag with space",
        "a:.x",
    ],
)
def test_rejects(bad: str) -> None:
    with pytest.raises(InvalidReferenceError):
        Reference.parse(bad)


def test_a_digest_is_parsed_once_and_read_by_its_parts() -> None:
    import json

    import yaml

    from sealer.errors import DigestMismatchError
    from sealer.oci.digest import Digest

    d = Digest.of(b"sealer")
    assert d.algorithm == "sha256" and len(d.hex) == 64 and d == "sha256:" + d.hex
    assert Digest.parse(str(d)) == d and Digest.from_hex(d.hex) == d
    assert json.loads(json.dumps({"digest": d})) == {"digest": str(d)}
    assert yaml.safe_load(yaml.safe_dump({"digest": d})) == {"digest": str(d)}
    for bad in ("", "sha256:", "sha256:" + "A" * 64, "md5:" + "0" * 32, "sha256:" + "0" * 63, None, 7):
        with pytest.raises(DigestMismatchError):
            Digest.parse(bad)
