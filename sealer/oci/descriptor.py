"""OCI media types, descriptors and digests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sealer.errors import DigestMismatchError, InvalidPlatformError
from sealer.oci.digest import Digest
from sealer.oci.platform import Platform

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_NONDISTRIBUTABLE_PREFIX = "application/vnd.oci.image.layer.nondistributable."
INDEX_TYPES = (MEDIA_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (MEDIA_MANIFEST, DOCKER_MANIFEST)

# BuildKit lists attestations (provenance, SBOM) in an image's index as manifests for
# platform unknown/unknown that carry this annotation
ANNOTATION_REFERENCE_TYPE = "vnd.docker.reference.type"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"

MAX_JSON_BLOB = 4 * 1024 * 1024


def canonical_json(value: Any) -> bytes:
    """Stable bytes for JSON we write: sorted keys, no spaces, so equal content has equal digests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            out["platform"] = self.platform.to_oci()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "descriptor") -> Descriptor:
        if not isinstance(data, dict):
            raise DigestMismatchError(where, "descriptor is not a JSON object")
        digest = Digest.parse(data.get("digest", ""))
        size = data.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise DigestMismatchError(digest, f"{where} has an invalid size")
        media_type = data.get("mediaType", "")
        if not isinstance(media_type, str):
            raise DigestMismatchError(digest, f"{where} has an invalid mediaType")
        platform = Platform.from_oci(data["platform"]) if isinstance(data.get("platform"), dict) else None
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, dict):
            annotations = {}
        return cls(media_type, digest, size, platform, {str(k): str(v) for k, v in annotations.items()})


def parse_json_blob(data: bytes, digest: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DigestMismatchError(digest, "is not valid JSON") from err
    if not isinstance(value, dict):
        raise DigestMismatchError(digest, "is not a JSON object")
    return value


def is_non_distributable(media_type: str) -> bool:
    """Docker's foreign layers and OCI's non-distributable ones: their licence keeps them to the
    URLs their descriptor names, so they are not copied from registry to registry."""
    return media_type == DOCKER_LAYER_FOREIGN or media_type.startswith(OCI_NONDISTRIBUTABLE_PREFIX)


def index_entries(doc: dict[str, Any], where: str) -> list[Descriptor]:
    """The entries of an image index (or Docker manifest list) that are images or nested indexes.

    Left out: attestations (BuildKit's provenance and SBOM manifests), entries whose platform no
    runtime of ours would take (``unknown/unknown``, an architecture sealer has no name for),
    and entries that are neither manifests nor indexes (artifacts). A manifest entry without a
    platform is kept with ``platform`` None.
    """
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise DigestMismatchError(where, "is an index without a manifests list")
    out: list[Descriptor] = []
    for raw in manifests:
        if not isinstance(raw, dict):
            raise DigestMismatchError(where, "has an index entry that is not a JSON object")
        annotations = raw.get("annotations")
        if isinstance(annotations, dict) and ANNOTATION_REFERENCE_TYPE in annotations:
            continue
        media_type = raw.get("mediaType") or MEDIA_MANIFEST
        if media_type not in (*INDEX_TYPES, *MANIFEST_TYPES):
            continue
        try:
            desc = Descriptor.from_json(raw, where)
        except InvalidPlatformError:
            continue
        out.append(Descriptor(media_type, desc.digest, desc.size, desc.platform, desc.annotations))
    return out
