"""``sealer push`` and ``sealer pull``: images to and from any OCI registry, per platform.

push uploads each platform's config and layers (skipping those the registry has), its
manifest by digest, then the index under the tag. pull fetches the index (or manifest),
chooses platforms, downloads missing blobs in parallel with digest and size verified, and
names the image only when every blob is in the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sealer._fs import atomic_write
from sealer.distribution.client import RegistryClient
from sealer.distribution.config import RegistryConfig
from sealer.errors import (
    InvalidPlatformError,
    NotFoundError,
    PlatformNotFoundError,
    RegistryError,
    SealerError,
    UsageError,
)
from sealer.oci.descriptor import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MEDIA_INDEX,
    Descriptor,
    canonical_json,
    parse_json_blob,
)
from sealer.oci.digest import Digest
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.progress import Reporter
from sealer.store.image import (
    PlatformImage,
    add_platforms,
    get_image,
    index_document,
    read_platform_image,
    store_key,
)
from sealer.store.layout import Store

PARALLEL = 4


def remote(ref: Reference, config: RegistryConfig) -> tuple[str, str]:
    """(registry, repository) for a reference, using the default registry when it names none."""
    registry = ref.registry or config.default_registry
    if not registry:
        raise UsageError(f"{ref} names no registry and no default is set (SEALER_DEFAULT_REGISTRY or defaultRegistry)")
    return registry, ref.repository


class BlobSources:
    """Remembers which repository of a registry holds a blob, for cross-repository mounts."""

    def __init__(self, store: Store) -> None:
        self.path = store.cache / "registry-blobs.json"
        try:
            self.data: dict[str, dict[str, str]] = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            self.data = {}

    def find(self, registry: str, digest: str) -> str | None:
        return self.data.get(registry, {}).get(digest)

    def add(self, registry: str, repo: str, digests: list[str]) -> None:
        self.data.setdefault(registry, {}).update(dict.fromkeys(digests, repo))
        atomic_write(self.path, json.dumps(self.data).encode(), mode=0o600)


@dataclass
class PushResult:
    target: str
    uploaded: int
    mounted: int
    skipped: int
    kept: list[str] = field(default_factory=list)  # platforms of the remote index kept beside those pushed


def push(
    store: Store, ref: Reference, platforms: list[Platform] | None, config: RegistryConfig, reporter: Reporter,
    replace_index: bool = False,
) -> PushResult:  # fmt: skip
    """Push ``ref`` (every platform, or ``platforms``). Pushing some platforms of a tag whose
    remote index has others keeps those (the pushed ones replace their entries), unless
    ``replace_index``: then the tag names the pushed platforms alone."""
    image = get_image(store, ref)
    chosen = [image.for_platform(p) for p in platforms] if platforms else list(image.platforms)
    registry, repo = remote(ref, config)
    client = RegistryClient(registry, config)
    sources = BlobSources(store)
    result = PushResult(f"{registry}/{repo}:{ref.tag or 'latest'}", 0, 0, 0)
    blobs: dict[str, int] = {}
    for plat in chosen:
        blobs[plat.config_digest] = store.blob_size(plat.config_digest)
        for layer in plat.config.layers:
            blobs[layer.digest] = layer.size
    total = sum(blobs.values())
    with reporter.task(f"pushing {image.name} to {result.target}", total) as advance:

        def send(digest: str) -> str:
            size = blobs[digest]
            if client.has_blob(repo, digest):
                advance(size)
                return "skipped"
            source = sources.find(registry, digest)
            if source and source != repo and client.mount_blob(repo, digest, source):
                advance(size)
                return "mounted"
            with reporter.task(f"  {_short(digest)}", size) as advance_blob:
                client.upload_blob(repo, digest, size, store.blob_path(digest), _both(advance, advance_blob))
            return "uploaded"

        with ThreadPoolExecutor(PARALLEL) as pool:
            outcomes = list(pool.map(send, sorted(blobs, key=lambda d: -blobs[d])))
    result.uploaded, result.mounted = outcomes.count("uploaded"), outcomes.count("mounted")
    result.skipped = outcomes.count("skipped")
    for plat in chosen:
        data = store.read_blob(plat.manifest.digest)
        client.put_manifest(repo, plat.manifest.digest, data, plat.manifest.media_type)
    tag = ref.tag or "latest"
    if platforms is None:
        index = store.read_blob(image.index.digest)
    elif replace_index:
        index = index_document(chosen)
    else:
        index, result.kept = _merged_index(client, repo, tag, chosen)
    client.put_manifest(repo, tag, index, MEDIA_INDEX)
    sources.add(registry, repo, list(blobs))
    return result


@dataclass
class PullResult:
    name: str
    platforms: list[Platform]
    downloaded: int
    present: int


def pull(
    store: Store, ref: Reference, platforms: list[Platform] | None, config: RegistryConfig, reporter: Reporter
) -> PullResult:
    registry, repo = remote(ref, config)
    client = RegistryClient(registry, config)
    with store.writing(), store.staging() as staging:
        data, media_type, digest = client.get_manifest(repo, ref.digest or ref.tag or "latest")
        # manifests stay in memory and blobs in staging until every blob is verified
        documents: dict[str, bytes] = {}
        manifests: list[Descriptor]
        if media_type in INDEX_TYPES:
            doc = parse_json_blob(data, digest)
            manifests = [Descriptor.from_json(m, digest) for m in doc.get("manifests") or []]
            manifests = [m for m in manifests if m.platform is not None and m.media_type in MANIFEST_TYPES]
            if not manifests:
                raise SealerError(f"{registry}/{repo}:{ref.tag}: the index lists no platform image manifest")
            if platforms:
                have = {m.platform: m for m in manifests}
                missing = [str(p) for p in platforms if p not in have]
                if missing:
                    raise PlatformNotFoundError(f"{registry}/{repo}:{ref.tag} has no platform {', '.join(missing)}")
                manifests = [have[p] for p in platforms]
        elif media_type in MANIFEST_TYPES:
            documents[digest] = data
            manifests = [Descriptor(media_type, digest, len(data))]
        else:
            raise SealerError(f"{registry}/{repo}: unsupported manifest type {media_type!r}")
        blobs: dict[str, int] = {}
        for desc in manifests:
            if desc.digest not in documents:
                documents[desc.digest] = client.get_manifest(repo, desc.digest)[0]
            doc = parse_json_blob(documents[desc.digest], desc.digest)
            config_desc = Descriptor.from_json(doc.get("config"), desc.digest)
            blobs[config_desc.digest] = config_desc.size
            for layer in doc.get("layers") or []:
                ld = Descriptor.from_json(layer, desc.digest)
                blobs[ld.digest] = ld.size
        missing_blobs = {d: s for d, s in blobs.items() if not store.has_blob(d)}
        total = sum(missing_blobs.values())
        with reporter.task(f"pulling {registry}/{repo}:{ref.tag}", total) as advance:

            def fetch(item: tuple[str, int]) -> None:
                with staging.new_blob() as writer, reporter.task(f"  {_short(item[0])}", item[1]) as advance_blob:
                    client.fetch_blob(repo, item[0], item[1], writer, _both(advance, advance_blob))

            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(fetch, sorted(missing_blobs.items(), key=lambda kv: -kv[1])))
        staging.commit()
        for data in documents.values():
            store.put_bytes(data)
        images = [read_platform_image(store, m) for m in manifests]
        key = store_key(ref)
        store.update_names(lambda names: add_platforms(store, names, key, images))
    return PullResult(key, [i.platform for i in images], len(missing_blobs), len(blobs) - len(missing_blobs))


def _merged_index(client: RegistryClient, repo: str, tag: str, chosen: list[PlatformImage]) -> tuple[bytes, list[str]]:
    """The tag's remote index with ``chosen`` in place of their platforms' entries, and the
    platforms kept from it. A tag holding one manifest counts as an index of that one."""
    try:
        data, media_type, digest = client.get_manifest(repo, tag)
    except NotFoundError:
        return index_document(chosen), []
    if media_type in INDEX_TYPES:
        remote_entries = parse_json_blob(data, digest).get("manifests") or []
    elif media_type in MANIFEST_TYPES:
        config = Descriptor.from_json(parse_json_blob(data, digest).get("config"), digest)
        platform = Platform.from_oci(parse_json_blob(client.get_small_blob(repo, config.digest), config.digest))
        remote_entries = [Descriptor(media_type, digest, len(data), platform).to_json()]
    else:
        raise RegistryError(f"{client.registry}/{repo}:{tag}: unsupported manifest type {media_type!r}")
    replaced = {p.platform for p in chosen}
    kept: list[tuple[str, dict[str, Any]]] = []
    for entry in remote_entries:
        if not isinstance(entry, dict):
            raise RegistryError(f"{client.registry}/{repo}:{tag}: the index has an entry that is no descriptor")
        entry_platform: Platform | None = None
        try:
            if isinstance(entry.get("platform"), dict):
                entry_platform = Platform.from_oci(entry["platform"])
        except InvalidPlatformError:
            entry_platform = None  # attestations and such (unknown/unknown): kept as they are
        if entry_platform in replaced:
            continue
        kept.append((str(entry_platform) if entry_platform else "~", entry))
    ours = [(str(p.platform), p.manifest.to_json()) for p in chosen]
    manifests = [entry for _key, entry in sorted([*kept, *ours], key=lambda item: item[0])]
    doc = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests}
    return canonical_json(doc), sorted(key for key, _entry in kept if key != "~")


def _short(digest: str) -> str:
    return Digest.parse(digest).short()


def _both(a: Callable[[int], None], b: Callable[[int], None]) -> Callable[[int], None]:
    def advance(n: int) -> None:
        a(n)
        b(n)

    return advance


def login(registry: str, username: str, password: str, config: RegistryConfig) -> None:
    from sealer.distribution.config import Credentials, save_credentials
    from sealer.errors import AuthError

    client = RegistryClient(registry, config)
    client.creds = Credentials(username, password)
    try:
        client.ping()  # verifies the credentials against the registry (Basic or token)
    except AuthError as err:
        raise AuthError(f"login to {registry} refused: wrong username or password") from err
    save_credentials(registry, client.creds)


def logout(registry: str) -> bool:
    from sealer.distribution.config import load_credentials, save_credentials

    had = load_credentials(registry) is not None
    save_credentials(registry, None)
    return had
