"""The one platform type: ``os/architecture[/variant]``, normalized the way container tools do."""

from __future__ import annotations

import platform as _host
from dataclasses import dataclass
from typing import Any

from sealer.errors import InvalidPlatformError

# uname -m, Debian and OCI spellings -> (OCI architecture, default variant)
_ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "amd64": ("amd64", ""),
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "arm64": ("arm64", "v8"),
    "aarch64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "arm": ("arm", "v7"),
    "386": ("386", ""),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
    "mips64le": ("mips64le", ""),
    "loong64": ("loong64", ""),
}
_KNOWN_OS = {"linux", "windows", "darwin", "freebsd"}
_ARM_VARIANTS = {"arm64": {"v8", "v9"}, "arm": {"v5", "v6", "v7", "v8"}}
# what a build can honour: Linux rootfs trees whose RUN steps execute on this host, natively
# (amd64) or through qemu-user binfmt (arm64), and that the cluster roles deliver
BUILD_OS = "linux"
BUILD_ARCHITECTURES = ("amd64", "arm64")


@dataclass(frozen=True, order=True)
class Platform:
    """A normalized platform; ``linux/arm64`` and ``linux/arm64/v8`` are the same value."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) == 1 and parts[0] in _ARCH_ALIASES:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidPlatformError(f"invalid platform {text!r}: expected os/arch[/variant]")
        os_name, arch = parts[0], parts[1]
        if os_name not in _KNOWN_OS:
            raise InvalidPlatformError(f"invalid platform {text!r}: unknown os {os_name!r}")
        if arch not in _ARCH_ALIASES:
            raise InvalidPlatformError(f"invalid platform {text!r}: unknown architecture {arch!r}")
        norm_arch, variant = _ARCH_ALIASES[arch]
        if len(parts) == 3:
            variant = parts[2]
            allowed = _ARM_VARIANTS.get(norm_arch)
            if allowed is None or variant not in allowed:
                raise InvalidPlatformError(
                    f"invalid platform {text!r}: variant {variant!r} is not one of {norm_arch}'s"
                )
        return cls(os_name, norm_arch, variant)

    @classmethod
    def parse_list(cls, text: str) -> list[Platform]:
        """Parse ``linux/amd64,linux/arm64``; duplicates (after normalizing) are dropped."""
        out: list[Platform] = []
        for item in text.split(","):
            if not item.strip():
                raise InvalidPlatformError(f"invalid platform list {text!r}: empty entry")
            plat = cls.parse(item)
            if plat not in out:
                out.append(plat)
        return out

    @classmethod
    def parse_build_list(cls, text: str) -> list[Platform]:
        """Like :meth:`parse_list`, refusing platforms a build (or a merge) cannot honour."""
        out = cls.parse_list(text)
        for plat in out:
            if plat.os != BUILD_OS or plat.architecture not in BUILD_ARCHITECTURES:
                supported = ", ".join(f"{BUILD_OS}/{arch}" for arch in BUILD_ARCHITECTURES)
                raise InvalidPlatformError(f"cannot build for {plat}: sealer builds {supported}")
        return out

    @classmethod
    def from_uname(cls, machine: str, cpuinfo: str = "", os_name: str = "linux") -> Platform:
        """The platform of a host from ``uname -m`` (and, for 32-bit arm, ``/proc/cpuinfo``)."""
        machine = machine.strip().lower()
        if machine not in _ARCH_ALIASES:
            raise InvalidPlatformError(f"unknown machine type {machine!r}")
        arch, variant = _ARCH_ALIASES[machine]
        if arch == "arm":
            for line in cpuinfo.splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "CPU architecture" and value.strip() in {"5", "6", "7", "8"}:
                    variant = "v" + value.strip()
                    break
        return cls(os_name, arch, variant)

    @classmethod
    def from_oci(cls, data: dict[str, Any]) -> Platform:
        """From an OCI descriptor or config's ``os``/``architecture``/``variant`` fields."""
        os_name = str(data.get("os", ""))
        arch = str(data.get("architecture", ""))
        variant = str(data.get("variant", "") or "")
        return cls.parse(f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}")

    @classmethod
    def host(cls) -> Platform:
        cpuinfo = ""
        if _host.machine().lower().startswith("arm"):
            try:
                with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                    cpuinfo = f.read()
            except OSError:
                cpuinfo = ""
        return cls.from_uname(_host.machine(), cpuinfo)

    def to_oci(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @property
    def group_name(self) -> str:
        """Name usable as an Ansible group or a file name: ``linux_arm64``."""
        return f"{self.os}_{self.architecture}" + (f"_{self.variant}" if self.architecture == "arm" else "")

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")
