"""The cloud image model: one OCI image index per name, one manifest and config per platform.

The config blob is a standard OCI image config (so skopeo and registries read it) that
also carries sealer's image metadata under the ``sealer`` key: the fields of the design
note's image YAML (layers with type and value, cmd.parent/current, ...).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

from sealer import __version__
from sealer.errors import (
    AmbiguousImageError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidReferenceError,
    PlatformNotFoundError,
    SealerError,
)
from sealer.oci.descriptor import (
    ANNOTATION_CREATED,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER,
    MEDIA_MANIFEST,
    Descriptor,
    canonical_json,
)
from sealer.oci.digest import ALGORITHM
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.store.layout import Store

CLUSTERFILE_ANNOTATION = "sea.aliyun.com/ClusterFile"


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    type: str  # COPY, RUN or BASE
    value: str
    media_type: str = MEDIA_LAYER

    def to_json(self) -> dict[str, Any]:
        return {"id": self.digest, "type": self.type, "value": self.value}


@dataclass
class ImageConfig:
    """What sealer knows about one platform's image; stored inside the OCI config."""

    platform: Platform
    layers: list[Layer] = field(default_factory=list)
    cmd_parent: list[str] = field(default_factory=list)
    cmd_current: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    base_layers: int = 0  # how many of ``layers`` came from the FROM image
    created: str = ""
    sealer_version: str = __version__

    def to_oci(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.env:
            config["Env"] = [f"{k}={v}" for k, v in self.env.items()]
        if self.labels:
            config["Labels"] = dict(self.labels)
        return {
            "created": self.created,
            **self.platform.to_oci(),
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in self.layers]},
            "history": [
                {"created": self.created, "created_by": f"{layer.type} {layer.value}", "comment": "sealer"}
                for layer in self.layers
            ],
            "sealer": {
                "version": self.sealer_version,
                "layers": [
                    {"id": la.digest, "size": la.size, "type": la.type, "value": la.value, "mediaType": la.media_type}
                    for la in self.layers
                ],
                "cmd": {"parent": list(self.cmd_parent), "current": list(self.cmd_current)},
                "buildArgs": dict(self.build_args),
                "images": list(self.images),
                "warnings": list(self.warnings),
                "baseLayers": self.base_layers,
            },
        }

    @classmethod
    def from_oci(cls, doc: dict[str, Any], layer_descs: list[Descriptor], digest: str) -> ImageConfig:
        """Read a config; images sealer did not build (pulled from elsewhere) get COPY-less defaults."""
        meta = doc.get("sealer") if isinstance(doc.get("sealer"), dict) else {}
        assert isinstance(meta, dict)
        recorded = meta.get("layers") if isinstance(meta.get("layers"), list) else []
        assert isinstance(recorded, list)
        rootfs = doc.get("rootfs") if isinstance(doc.get("rootfs"), dict) else {}
        assert isinstance(rootfs, dict)
        diff_ids = rootfs.get("diff_ids") or []
        layers = []
        for i, desc in enumerate(layer_descs):
            rec = recorded[i] if i < len(recorded) and isinstance(recorded[i], dict) else {}
            # sealer records uncompressed ids; a tool that recompressed the layers changed the blob
            # digests but not the diff_ids
            diff_id = diff_ids[i] if i < len(diff_ids) else None
            if rec.get("id") not in (None, desc.digest, diff_id):
                raise DigestMismatchError(digest, f"layer {i} of the config does not match the manifest")
            layers.append(
                Layer(desc.digest, desc.size, str(rec.get("type", "BASE")), str(rec.get("value", "")), desc.media_type)
            )
        cmd = meta.get("cmd") if isinstance(meta.get("cmd"), dict) else {}
        assert isinstance(cmd, dict)
        oci_conf = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        assert isinstance(oci_conf, dict)
        env = dict(e.split("=", 1) for e in oci_conf.get("Env") or [] if isinstance(e, str) and "=" in e)
        return cls(
            platform=Platform.from_oci(doc),
            layers=layers,
            cmd_parent=[str(c) for c in cmd.get("parent") or []],
            cmd_current=[str(c) for c in cmd.get("current") or []],
            env=env,
            labels={str(k): str(v) for k, v in (oci_conf.get("Labels") or {}).items()},
            build_args={str(k): str(v) for k, v in (meta.get("buildArgs") or {}).items()},
            images=[str(i) for i in meta.get("images") or []],
            warnings=[str(w) for w in meta.get("warnings") or []],
            base_layers=int(meta.get("baseLayers") or 0),
            created=str(doc.get("created", "")),
            sealer_version=str(meta.get("version", "unknown")),
        )

    def content_key(self) -> dict[str, Any]:
        """The config without its creation time: equal keys mean an unchanged rebuild."""
        doc = self.to_oci()
        doc.pop("created")
        doc.pop("history")
        return doc


@dataclass
class PlatformImage:
    """One platform's image: its manifest, config and metadata."""

    manifest: Descriptor
    config_digest: str
    config: ImageConfig

    @property
    def id(self) -> str:
        return self.manifest.digest.hex

    @property
    def platform(self) -> Platform:
        return self.config.platform

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.config.layers)


@dataclass
class Image:
    """A name in the store and what it points at: an index of platform images."""

    name: str
    index: Descriptor
    platforms: list[PlatformImage]

    def for_platform(self, platform: Platform) -> PlatformImage:
        for img in self.platforms:
            if img.platform == platform:
                return img
        have = ", ".join(str(p.platform) for p in self.platforms) or "none"
        raise PlatformNotFoundError(f"image {self.name} has no platform {platform} (it has: {have})")


def now_rfc3339() -> str:
    """Now, or $SOURCE_DATE_EPOCH when set (reproducible builds: the same inputs, the same ids)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch.isdigit() else dt.datetime.now(dt.UTC)
    return when.isoformat().replace("+00:00", "Z")


def write_platform_image(store: Store, config: ImageConfig) -> PlatformImage:
    """Write config and manifest blobs (layers must already be stored)."""
    config_digest, config_size = store.put_json(config.to_oci())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": la.size} for la in config.layers],
        "annotations": {ANNOTATION_CREATED: config.created},
    }
    digest, size = store.put_json(manifest)
    return PlatformImage(Descriptor(MEDIA_MANIFEST, digest, size, config.platform), config_digest, config)


def index_document(images: list[PlatformImage]) -> bytes:
    """The OCI image index of these platform images, in a stable order and encoding."""
    ordered = sorted(images, key=lambda i: (i.platform.os, i.platform.architecture, i.platform.variant))
    doc = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [img.manifest.to_json() for img in ordered]}
    return canonical_json(doc)


def write_index(store: Store, images: list[PlatformImage]) -> Descriptor:
    data = index_document(images)
    return Descriptor(MEDIA_INDEX, store.put_bytes(data), len(data))


def read_platform_image(store: Store, desc: Descriptor) -> PlatformImage:
    doc = store.read_json(desc.digest)
    if doc.get("mediaType", MEDIA_MANIFEST) not in MANIFEST_TYPES:
        raise DigestMismatchError(desc.digest, "is not an image manifest")
    config_desc = Descriptor.from_json(doc.get("config"), desc.digest)
    layers = [Descriptor.from_json(la, desc.digest) for la in doc.get("layers") or []]
    config_doc = store.read_json(config_desc.digest)
    config = ImageConfig.from_oci(config_doc, layers, config_desc.digest)
    platform = desc.platform or config.platform
    return PlatformImage(Descriptor(desc.media_type, desc.digest, desc.size, platform), config_desc.digest, config)


def read_image(store: Store, name: str, desc: Descriptor) -> Image:
    if desc.media_type in INDEX_TYPES:
        doc = store.read_json(desc.digest)
        manifests = [Descriptor.from_json(m, desc.digest) for m in doc.get("manifests") or []]
        return Image(name, desc, [read_platform_image(store, m) for m in manifests])
    return Image(name, desc, [read_platform_image(store, desc)])


def store_key(ref: Reference) -> str:
    """The name an image has in the local store: the reference as the user wrote it, tag defaulted."""
    return str(ref)


def get_image(store: Store, ref: Reference) -> Image:
    names = store.names()
    key = store_key(ref)
    if key not in names:
        raise ImageNotFoundError(f"image {key} not found in the local store")
    return read_image(store, key, names[key])


def list_images(store: Store) -> list[Image]:
    return [read_image(store, name, desc) for name, desc in sorted(store.names().items())]


def _id_matches(store: Store, prefix: str) -> dict[str, tuple[list[str], PlatformImage]]:
    """Platform images whose id starts with ``prefix``: id -> (the names holding it, the image)."""
    matches: dict[str, tuple[list[str], PlatformImage]] = {}
    for image in list_images(store):
        for plat in image.platforms:
            if plat.id.startswith(prefix):
                matches.setdefault(plat.id, ([], plat))[0].append(image.name)
    return matches


def is_id_prefix(text: str) -> bool:
    """Whether ``text`` can be an image id or id prefix (at least 4 hex digits, ``sha256:`` optional)."""
    hexd = text.removeprefix(f"{ALGORITHM}:").lower()
    return len(hexd) >= 4 and all(c in "0123456789abcdef" for c in hexd)


def find_id(store: Store, prefix: str) -> tuple[list[str], PlatformImage]:
    """The platform image of a full id or a unique prefix, and every name that holds it.

    A prefix shared by several images is an AmbiguousImageError listing them all.
    """
    if not is_id_prefix(prefix):
        raise ImageNotFoundError(f"image {prefix!r} not found: an id is at least 4 hex digits")
    prefix = prefix.removeprefix(f"{ALGORITHM}:").lower()
    matches = _id_matches(store, prefix)
    if not matches:
        raise ImageNotFoundError(f"no image with id {prefix}")
    if len(matches) > 1:
        candidates = "; ".join(
            f"{image_id} ({', '.join(names)} {plat.platform})" for image_id, (names, plat) in sorted(matches.items())
        )
        raise AmbiguousImageError(f"id prefix {prefix} is ambiguous: {len(matches)} images match: {candidates}")
    return next(iter(matches.values()))


def find_by_id(store: Store, prefix: str) -> tuple[str, PlatformImage]:
    """Find a platform image by full id or a unique prefix (with or without ``sha256:``)."""
    names, plat = find_id(store, prefix)
    return names[0], plat


@dataclass
class Selection:
    """What an image argument stands for: a name in the store and the platforms of it meant
    (None: all of them). An id selects the one platform image it is, under the name holding it."""

    image: Image
    platforms: list[Platform] | None

    @property
    def chosen(self) -> list[PlatformImage]:
        if self.platforms is None:
            return list(self.image.platforms)
        return [self.image.for_platform(p) for p in self.platforms]


def select(store: Store, text: str, platforms: list[Platform] | None = None) -> Selection:
    """A name (``name:tag``) or an image id or unique id prefix, as ``inspect`` takes them.

    Every platform asked for must be there; nothing is changed. A name wins over an id prefix
    that spells the same; an id held by several names asks for one of the names.
    """
    ref: Reference | None = None
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError:
        if not is_id_prefix(text):
            raise
    names = store.names()
    if ref is not None and store_key(ref) in names:
        image = read_image(store, store_key(ref), names[store_key(ref)])
        selection = Selection(image, platforms)
        selection.chosen  # noqa: B018 - raises PlatformNotFoundError for a platform it lacks
        return selection
    if not is_id_prefix(text):
        raise ImageNotFoundError(f"image {store_key(ref) if ref else text} not found in the local store")
    try:
        held_by, plat = find_id(store, text)
    except ImageNotFoundError as err:
        if isinstance(err, AmbiguousImageError):
            raise
        raise ImageNotFoundError(f"image {text} not found: no such name or id") from err
    if len(held_by) > 1:
        raise AmbiguousImageError(
            f"image id {plat.id[:12]} ({plat.platform}) has several names: {', '.join(held_by)}; give one of them"
        )
    if platforms and platforms != [plat.platform]:
        raise PlatformNotFoundError(f"image id {text} is {plat.platform}, not {', '.join(str(p) for p in platforms)}")
    return Selection(get_image(store, Reference.parse(held_by[0])), [plat.platform])


def remove_images(store: Store, selections: list[Selection]) -> dict[str, list[str]]:
    """Untag every selection (all its platforms, or those chosen) in one replacement of index.json.

    The caller resolved every selection first, so a missing name changes nothing; a name that
    another command removed since is refused here, still before anything changes.
    Returns name -> the ids removed from it.
    """
    wanted: dict[str, set[Platform] | None] = {}
    for sel in selections:
        key = sel.image.name
        if sel.platforms is None or (key in wanted and wanted[key] is None):
            wanted[key] = None
        else:
            wanted[key] = (wanted.get(key) or set()) | set(sel.platforms)
    removed: dict[str, list[str]] = {}

    def change(names: dict[str, Descriptor]) -> None:
        removed.clear()
        missing = [key for key in wanted if key not in names]
        if missing:
            raise ImageNotFoundError(f"image {', '.join(missing)} not found in the local store: nothing removed")
        for key, plats in wanted.items():
            image = read_image(store, key, names[key])
            if plats is None:
                removed[key] = [p.id for p in image.platforms]
                del names[key]
                continue
            removed[key] = [image.for_platform(p).id for p in sorted(plats)]
            keep = [p for p in image.platforms if p.platform not in plats]
            if keep:
                names[key] = write_index(store, keep)
            else:
                del names[key]

    with store.writing():
        store.update_names(change)
    return removed


def tag_image(store: Store, source: Selection, target: Reference) -> Descriptor:
    """Name ``target`` what ``source`` selects: the whole index, or an index of the chosen platforms."""
    src_key, dst_key = source.image.name, store_key(target)
    with store.writing():
        chosen = None if source.platforms is None else write_index(store, source.chosen)

        def change(names: dict[str, Descriptor]) -> None:
            if src_key not in names:
                raise ImageNotFoundError(f"image {src_key} not found in the local store")
            names[dst_key] = chosen or names[src_key]

        return store.update_names(change)[dst_key]


def add_platforms(store: Store, names: dict[str, Descriptor], key: str, images: list[PlatformImage]) -> None:
    """Name ``key`` the union of its current platforms and ``images`` (which win for a platform).

    Called inside :meth:`Store.update_names`: loading or pulling one platform of a name keeps
    the others it had.
    """
    platforms: dict[Platform, PlatformImage] = {}
    if key in names:
        try:
            platforms = {p.platform: p for p in read_image(store, key, names[key]).platforms}
        except SealerError:
            platforms = {}  # an unreadable old entry is replaced, not merged
    platforms.update({img.platform: img for img in images})
    names[key] = write_index(store, list(platforms.values()))
