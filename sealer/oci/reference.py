"""The one image reference type, parsed with docker's grammar.

``[registry[:port]/]path/of/repo[:tag][@sha256:hex]``. The first path component is a
registry when it has a dot or a port, or is ``localhost``. A name without a tag or digest
gets the tag ``latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sealer.errors import InvalidReferenceError
from sealer.names import is_registry_name
from sealer.oci.digest import Digest

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

DOCKER_HUB = "docker.io"
# the distribution spec: clients limit registry, '/' and repository together to 255 characters
MAX_NAME = 255
MAX_TAG = 128


@dataclass(frozen=True)
class Reference:
    repository: str
    tag: str | None = None
    digest: Digest | None = None
    registry: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not text or len(text) > 512 or text != text.strip():
            raise InvalidReferenceError(f"invalid reference {text!r}")
        rest, digest = _split_digest(text)
        registry, rest = _split_registry(text, rest)
        rest, tag = _split_tag(text, rest)
        if not rest:
            raise InvalidReferenceError(f"invalid reference {text!r}: empty name")
        for comp in rest.split("/"):
            if not _COMPONENT.match(comp):
                raise InvalidReferenceError(
                    f"invalid reference {text!r}: bad name component {comp!r}"
                    + (" (names must be lowercase)" if comp.lower() != comp else "")
                )
        if tag is None and digest is None:
            tag = "latest"
        ref = cls(repository=rest, tag=tag, digest=digest, registry=registry)
        if len(ref.name) > MAX_NAME:
            raise InvalidReferenceError(
                f"invalid reference {text[:40]!r}...: the name is {len(ref.name)} characters, "
                f"registries allow at most {MAX_NAME}"
            )
        return ref

    @classmethod
    def parse_target(cls, text: str) -> Reference:
        """A name to give an image (``build -t``, ``tag``, ``merge -t``): ``name[:tag]``, no digest,
        since a digest is what the content hashes to, not a name one can choose."""
        ref = cls.parse(text)
        if ref.digest is not None:
            raise InvalidReferenceError(f"cannot name an image {text!r}: a name takes a tag, not a digest")
        return ref

    @property
    def name(self) -> str:
        """Registry (when given) and repository, without tag or digest."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_registry(self, registry: str) -> Reference:
        """This reference on ``registry`` unless it names one already."""
        if self.registry:
            return self
        return Reference(self.repository, self.tag, self.digest, registry)

    def docker_normalized(self) -> Reference:
        """Fully qualified the way docker reads it: ``nginx`` -> ``docker.io/library/nginx:latest``."""
        registry = self.registry or DOCKER_HUB
        repository = self.repository
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        return Reference(repository, self.tag, self.digest, registry)


# ---- the grammar's parts, each taken off the text in turn ----------------------------------


def _split_digest(text: str) -> tuple[str, Digest | None]:
    if "@" not in text:
        return text, None
    rest, digest_text = text.split("@", 1)
    if not Digest.is_digest(digest_text):
        raise InvalidReferenceError(f"invalid reference {text!r}: bad digest {digest_text!r}")
    return rest, Digest.parse(digest_text)


def _split_registry(text: str, rest: str) -> tuple[str | None, str]:
    first, sep, remainder = rest.partition("/")
    if not (sep and ("." in first or ":" in first or first == "localhost" or first != first.lower())):
        return None, rest
    if not is_registry_name(first):
        raise InvalidReferenceError(f"invalid reference {text!r}: bad registry {first!r}")
    return first, remainder


def _split_tag(text: str, rest: str) -> tuple[str, str | None]:
    colon = rest.rfind(":")
    if colon <= rest.rfind("/"):
        return rest, None
    rest, tag = rest[:colon], rest[colon + 1 :]
    if len(tag) > MAX_TAG:
        raise InvalidReferenceError(
            f"invalid reference {text[:40]!r}...: the tag is {len(tag)} characters, at most {MAX_TAG}"
        )
    if not _TAG.match(tag):
        raise InvalidReferenceError(f"invalid reference {text!r}: bad tag {tag!r}")
    return rest, tag
