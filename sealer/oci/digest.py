"""The content digest: one value type, parsed and validated once, used everywhere.

A :class:`Digest` is a ``str`` (``sha256:<64 hex>``), so it serializes into JSON and keys
dicts as the OCI documents write it, while its parts are read by name, never by splitting.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from sealer.errors import DigestMismatchError

ALGORITHM = "sha256"
_HEX = re.compile(r"^[0-9a-f]{64}$")


class Digest(str):
    """``sha256:<hex>``; build one with :meth:`parse`, :meth:`from_hex`, :meth:`of` or :meth:`hasher`."""

    __slots__ = ()

    @classmethod
    def parse(cls, value: Any) -> Digest:
        """A digest from text a user or a document gave; DigestMismatchError when it is not one."""
        if isinstance(value, Digest):
            return value
        if isinstance(value, str):
            algorithm, sep, hexpart = value.partition(":")
            if sep and algorithm == ALGORITHM and _HEX.match(hexpart):
                return str.__new__(cls, value)
        raise DigestMismatchError(str(value)[:80], "not a sha256 digest")

    @classmethod
    def from_hex(cls, hexpart: str) -> Digest:
        """The digest whose hex part is ``hexpart`` (a blob's file name)."""
        return cls.parse(f"{ALGORITHM}:{hexpart}")

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls.from_hex(hashlib.sha256(data).hexdigest())

    @classmethod
    def from_hasher(cls, hasher: Any) -> Digest:
        """The digest of what a ``hashlib.sha256()`` object has been fed."""
        return cls.from_hex(str(hasher.hexdigest()))

    @staticmethod
    def hasher() -> Any:
        return hashlib.sha256()

    @classmethod
    def is_digest(cls, value: Any) -> bool:
        try:
            cls.parse(value)
        except DigestMismatchError:
            return False
        return True

    @property
    def algorithm(self) -> str:
        return ALGORITHM

    @property
    def hex(self) -> str:
        return self[len(ALGORITHM) + 1 :]

    def short(self, length: int = 12) -> str:
        """The id people see: the first ``length`` hex digits."""
        return self.hex[:length]


# A Digest is written into YAML (image YAML, inventories, Clusterfiles) as the plain string it is.
for _dumper in (yaml.SafeDumper, yaml.Dumper):
    _dumper.add_representer(Digest, _dumper.represent_str)
