import pytest

from sealer.errors import InvalidPlatformError
from sealer.oci.platform import Platform


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", ("linux", "amd64", "")),
        ("linux/x86_64", ("linux", "amd64", "")),
        ("linux/arm64", ("linux", "arm64", "v8")),
        ("linux/arm64/v8", ("linux", "arm64", "v8")),
        ("linux/aarch64", ("linux", "arm64", "v8")),
        ("linux/armhf", ("linux", "arm", "v7")),
        ("linux/armel", ("linux", "arm", "v6")),
        ("linux/arm/v7", ("linux", "arm", "v7")),
        ("LINUX/AMD64", ("linux", "amd64", "")),
        ("arm64", ("linux", "arm64", "v8")),
    ],
)
def test_parse_normalizes(text: str, expected: tuple[str, str, str]) -> None:
    p = Platform.parse(text)
    assert (p.os, p.architecture, p.variant) == expected


def test_arm64_with_and_without_variant_are_the_same_platform() -> None:
    assert Platform.parse("linux/arm64") == Platform.parse("linux/arm64/v8")
    assert hash(Platform.parse("linux/arm64")) == hash(Platform.parse("linux/aarch64"))
    assert str(Platform.parse("linux/arm64")) == "linux/arm64/v8"


@pytest.mark.parametrize(
    "bad", ["", "linux", "linux/", "/amd64", "linux/sparc", "plan9/amd64", "linux/amd64/v8", "a/b/c/d"]
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(InvalidPlatformError):
        Platform.parse(bad)


def test_parse_list_dedupes_and_keeps_order() -> None:
    got = Platform.parse_list("linux/arm64,linux/amd64,linux/arm64/v8")
    assert [str(p) for p in got] == ["linux/arm64/v8", "linux/amd64"]
    with pytest.raises(InvalidPlatformError):
        Platform.parse_list("linux/amd64,,linux/arm64")


def test_from_uname_reads_arm_variant_from_cpuinfo() -> None:
    assert Platform.from_uname("x86_64") == Platform("linux", "amd64")
    assert Platform.from_uname("aarch64\n") == Platform("linux", "arm64", "v8")
    cpuinfo = "processor\t: 0\nCPU architecture: 6\n"
    assert Platform.from_uname("armv7l", cpuinfo) == Platform("linux", "arm", "v6")
    assert Platform.from_uname("armv7l", "") == Platform("linux", "arm", "v7")
    with pytest.raises(InvalidPlatformError):
        Platform.from_uname("vax")


def test_oci_round_trip() -> None:
    for text in ["linux/amd64", "linux/arm64", "linux/arm/v7"]:
        p = Platform.parse(text)
        assert Platform.from_oci(p.to_oci()) == p
    assert Platform.parse("linux/amd64").to_oci() == {"architecture": "amd64", "os": "linux"}
    assert Platform.parse("linux/arm64").group_name == "linux_arm64"
