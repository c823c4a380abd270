"""``sealer build``: a Kubefile and a context into one image per platform under one name."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealer._fs import atomic_write
from sealer.build.context import copy_entries, normalize_dest, settled
from sealer.build.kubefile import (
    ArgInstr,
    CmdInstr,
    CopyInstr,
    EnvInstr,
    FromInstr,
    Kubefile,
    LabelInstr,
    RunInstr,
    build_variables,
    expand,
    parse_file,
)
from sealer.build.memo import Inputs
from sealer.distribution.config import RegistryConfig
from sealer.errors import BuildError, ImageNotFoundError, KubefileError, PlatformNotFoundError, UsageError
from sealer.oci.digest import Digest
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference
from sealer.progress import Reporter, SilentReporter
from sealer.rootfs_cache.layer_scan import ScanCache
from sealer.rootfs_cache.scan import collect, served_path_clashes
from sealer.store.image import (
    ImageConfig,
    Layer,
    PlatformImage,
    get_image,
    now_rfc3339,
    read_image,
    store_key,
    write_index,
    write_platform_image,
)
from sealer.store.layer import WHITEOUT_PREFIX, Entry, apply_layers, finalize, fingerprint, write_layer
from sealer.store.layout import Store

RUN_OUTPUT_TAIL = 2000
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class BuildOptions:
    kubefile: Path
    context: Path
    tag: Reference
    platforms: list[Platform]
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    image_lists: list[Path] = field(default_factory=list)
    ignore_images: list[str] = field(default_factory=list)
    allow_missing_images: bool = False
    registry_config: RegistryConfig | None = None


@dataclass
class BuildResult:
    name: str
    images: list[PlatformImage]
    layers_written: int = 0
    layers_cached: int = 0
    blobs_fetched: int = 0  # container image blobs downloaded for rootfs caches
    steps: int = 0  # COPY and RUN steps over all platforms: what an unchanged rebuild finds cached
    digest: str = ""  # the index the name points at
    # what the result depends on, when that is only local files and images (the build's memo):
    # the paths looked at with their stat data, and the digest each FROM name resolved to
    inputs: Inputs | None = None
    bases: dict[str, str] = field(default_factory=dict)


class BuildCache:
    """Maps a key (instruction, inputs' stat fingerprint or parent layers) to a stored layer."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dir = store.cache / "build"
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> tuple[str, int] | None:
        try:
            digest, size = (self.dir / key).read_text().split()
        except (OSError, ValueError):
            return None
        return (digest, int(size)) if self.store.has_blob(digest) else None

    def put(self, key: str, digest: str, size: int) -> None:
        atomic_write(self.dir / key, f"{digest} {size}\n".encode(), tmp_dir=self.store.tmp)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class Builder:
    def __init__(self, store: Store, reporter: Reporter | None = None) -> None:
        self.store = store
        self.reporter = reporter or SilentReporter()
        self.cache = BuildCache(store)
        # The same sources (no ${ARCH} in them) are walked once for every platform: their
        # entries, stat fingerprint and whether that fingerprint may be trusted (settled).
        self._walked: dict[tuple[str, ...], tuple[list[Entry], str, bool]] = {}
        # The layers this platform's build added, bottom first: their files may name container images.
        self._added: list[str] = []
        self.scans = ScanCache(store)
        self._image_cache: Any = None  # an ImageCache, made on first use
        self._missing: list[str] = []  # images no platform could cache, reported together
        self.inputs = Inputs()
        self._bases: dict[str, str] = {}

    def build(self, opts: BuildOptions) -> BuildResult:
        start = time.time_ns()
        # errors name the file as the user named it (-f), or just Kubefile in the context
        shown = opts.kubefile.name if opts.kubefile == opts.context / "Kubefile" else str(opts.kubefile)
        try:  # stat before reading: a later change moves its stat data
            self.inputs.add(os.path.abspath(opts.kubefile), follow=True)
        except OSError:  # parse_file says what is wrong with it
            self.inputs.complete = False
        kubefile = parse_file(str(opts.kubefile), shown)
        if not opts.context.is_dir():
            raise UsageError(f"build context {opts.context} is not a directory")
        if not opts.platforms:
            raise UsageError("no platform to build for")
        declared = kubefile.arg_defaults
        for name in opts.build_args:
            if name not in declared:
                raise UsageError(f"--build-arg {name} is not declared by an ARG in {kubefile.path}")
        args = {**declared, **opts.build_args}
        name = store_key(opts.tag)
        result = BuildResult(name, [])
        with self.store.writing():
            self._check_inputs(kubefile, opts, args)
            previous = self._previous(name)
            for platform in opts.platforms:
                result.images.append(self._build_platform(kubefile, opts, platform, args, previous, result))
            if self._missing:
                raise BuildError(
                    f"{len(self._missing)} container image(s) cannot be cached "
                    "(--allow-missing-images to build anyway):\n  " + "\n  ".join(self._missing)
                )
            index = write_index(self.store, result.images)
            current = self.store.names().get(name)
            if current is None or current.digest != index.digest:  # an unchanged rebuild writes nothing
                self.store.update_names(lambda names: names.__setitem__(name, index))
        result.digest = index.digest
        local = self.inputs.complete and not opts.image_lists and not opts.no_cache
        if local and self.inputs.settled(start):
            result.inputs, result.bases = self.inputs, self._bases
        return result

    def _previous(self, name: str) -> dict[Platform, PlatformImage]:
        desc = self.store.names().get(name)
        if desc is None:
            return {}
        try:
            return {p.platform: p for p in read_image(self.store, name, desc).platforms}
        except Exception:  # an unreadable old image is simply not reused
            return {}

    def _build_platform(
        self,
        kubefile: Kubefile,
        opts: BuildOptions,
        platform: Platform,
        args: Mapping[str, str | None],
        previous: dict[Platform, PlatformImage],
        result: BuildResult,
    ) -> PlatformImage:
        variables = build_variables(platform, args)
        self._added = []
        config = self._base_config(kubefile, platform, variables)
        config.build_args = {k: v for k, v in args.items() if v is not None}
        for instr in kubefile.instructions:
            where = (kubefile.path, instr.line)
            if isinstance(instr, (ArgInstr, FromInstr)):
                continue
            if isinstance(instr, EnvInstr):
                config.env.update({k: expand(v, variables, *where) for k, v in instr.pairs})
            elif isinstance(instr, LabelInstr):
                config.labels.update({k: expand(v, variables, *where) for k, v in instr.pairs})
            elif isinstance(instr, CmdInstr):
                config.cmd_current.append(instr.command)
            elif isinstance(instr, CopyInstr):
                config.layers.append(self._copy(opts, instr, platform, variables, where, result))
            elif isinstance(instr, RunInstr):
                layer = self._run(opts, instr, config, platform, variables, where, result)
                if layer is not None:
                    config.layers.append(layer)
        self._add_image_cache(opts, platform, config, result)
        old = previous.get(platform)
        if old is not None and old.config.content_key() == config.content_key():
            return old  # nothing changed: the same image, the same id
        config.created = now_rfc3339()
        return write_platform_image(self.store, config)

    def _add_image_cache(
        self, opts: BuildOptions, platform: Platform, config: ImageConfig, result: BuildResult
    ) -> None:
        """The container images the build found, fetched for ``platform`` into a last layer."""
        refs = [r for r in self._images_to_cache(opts) if r not in config.images]
        if not refs:
            return
        self.inputs.complete = False  # the registries are asked again by every build: no memo
        clashes = served_path_clashes([*config.images, *refs])
        if clashes:
            raise BuildError("\n".join(clashes))
        cache_layer = self._cache_layer(opts, refs, platform, config, result)
        if cache_layer is not None:
            config.layers.append(cache_layer)
        config.images = sorted({*config.images, *refs})

    def _base_config(self, kubefile: Kubefile, platform: Platform, variables: dict[str, str]) -> ImageConfig:
        instr = kubefile.base
        base = expand(instr.base, variables, kubefile.path, instr.line)
        if base == "scratch":
            return ImageConfig(platform=platform)
        try:
            ref = Reference.parse(base)
            found = get_image(self.store, ref)
            image = found.for_platform(platform)
            self._bases[found.name] = found.index.digest
        except (ImageNotFoundError, PlatformNotFoundError) as err:
            raise KubefileError(kubefile.path, instr.line, f"FROM {base}: {err}") from err
        except Exception as err:
            raise KubefileError(kubefile.path, instr.line, f"FROM {base}: {err}") from err
        parent = image.config
        return ImageConfig(
            platform=platform,
            layers=list(parent.layers),
            cmd_parent=[*parent.cmd_parent, *parent.cmd_current],
            env=dict(parent.env),
            labels=dict(parent.labels),
            images=list(parent.images),
            base_layers=len(parent.layers),
        )

    def _copy(
        self,
        opts: BuildOptions,
        instr: CopyInstr,
        platform: Platform,
        variables: dict[str, str],
        where: tuple[str, int],
        result: BuildResult,
    ) -> Layer:
        walk_key = self._walk_copy(opts, instr, platform, variables, where)
        entries, stat_print, settled = self._walked[walk_key]
        result.steps += 1
        # A COPY layer's bytes do not depend on the layers below it, so platforms share it.
        key = _key("COPY", *walk_key, stat_print)
        cached = None if opts.no_cache else self.cache.get(key)
        if cached:
            result.layers_cached += 1
            self.reporter.note(f"{platform} {instr.keyword} {instr.value}: cached")
            self._scan_layer(cached[0], entries)
            return Layer(cached[0], cached[1], "COPY", instr.value)
        total = sum(e.size for e in entries)
        with self.reporter.task(f"{platform} COPY {instr.value}", total) as advance:
            digest, size = write_layer(self.store, entries, advance)
        if settled:
            self.cache.put(key, digest, size)
        self._scan_layer(digest, entries)
        result.layers_written += 1
        return Layer(digest, size, "COPY", instr.value)

    def _walk_copy(
        self,
        opts: BuildOptions,
        instr: CopyInstr,
        platform: Platform,
        variables: dict[str, str],
        where: tuple[str, int],
    ) -> tuple[str, ...]:
        sources = [expand(s, variables, *where) for s in instr.sources]
        dest = normalize_dest(expand(instr.dest, variables, *where), where)
        walk_key = (os.path.realpath(opts.context), dest, *sources)
        if walk_key not in self._walked:
            start = time.time_ns()
            entries = finalize(copy_entries(opts.context, sources, dest, str(platform), where, self.inputs))
            self._walked[walk_key] = (entries, fingerprint(entries), settled(entries, start))
        return walk_key

    def _check_inputs(self, kubefile: Kubefile, opts: BuildOptions, args: Mapping[str, str | None]) -> None:
        """Every platform's base and COPY sources, before any layer is written: a Kubefile that
        cannot build for one platform leaves nothing behind for the others."""
        for platform in opts.platforms:
            variables = build_variables(platform, args)
            self._base_config(kubefile, platform, variables)
            for instr in kubefile.instructions:
                if isinstance(instr, CopyInstr):
                    self._walk_copy(opts, instr, platform, variables, (kubefile.path, instr.line))

    def _run(
        self,
        opts: BuildOptions,
        instr: RunInstr,
        config: ImageConfig,
        platform: Platform,
        variables: dict[str, str],
        where: tuple[str, int],
        result: BuildResult,
    ) -> Layer | None:
        env_vars = {**variables, **config.env}
        network = ["network=host"] if instr.network else []  # a step with the network is another step
        key = _key("RUN", [la.digest for la in config.layers], instr.command, env_vars, *network)
        result.steps += 1
        cached = None if opts.no_cache else self.cache.get(key)
        if cached:
            result.layers_cached += 1
            self.reporter.note(f"{platform} RUN {instr.command}: cached")
            if not cached[1]:
                return None
            self._scan_layer(cached[0])
            return Layer(cached[0], cached[1], "RUN", instr.command)

        from sealer.build.confine import PIDS_MAX, hidden_paths, run_confined  # only a RUN loads it

        work = self.store.tmp_path(".rootfs")
        log = self.store.tmp_path(".log")
        try:
            with self.reporter.task(f"{platform} RUN {instr.command}") as advance:
                apply_layers(self.store, [la.digest for la in config.layers], work)
                before = _snapshot(work)
                # the step's environment is its own: the build's variables, not sealer's (which may
                # hold credentials); the rootfs bin/ comes first on PATH
                path = env_vars.get("PATH") or os.environ.get("PATH") or DEFAULT_PATH
                env = {"HOME": "/root", **env_vars, "PATH": f"{work / 'bin'}:{path}"}
                outcome = run_confined(
                    instr.command, work, env, instr.network, hidden_paths(self.store.root), log, RUN_OUTPUT_TAIL
                )
                advance(1)
            tail = outcome.output.decode("utf-8", "replace").strip().replace("\n", " | ")
            if outcome.pids_exhausted:
                raise KubefileError(
                    *where, f"RUN for {platform} reached its limit of {PIDS_MAX} processes and was ended"
                )
            if outcome.returncode != 0:
                raise KubefileError(
                    *where, f"RUN failed for {platform} with exit code {outcome.returncode}: {tail or '(no output)'}"
                )
            entries = _changes(work, before)
            if not entries:
                self.cache.put(key, Digest.from_hex("0" * 64), 0)
                return None
            digest, size = write_layer(self.store, finalize(entries))
            self._scan_layer(digest, entries)  # while the files are still in the work tree
        finally:
            shutil.rmtree(work, ignore_errors=True)
            log.unlink(missing_ok=True)
        self.cache.put(key, digest, size)
        result.layers_written += 1
        return Layer(digest, size, "RUN", instr.command)

    def _scan_layer(self, digest: str, entries: list[Entry] | None = None) -> None:
        """Remember a layer this platform's build added; its files are scanned (once per digest)."""
        self.scans.layer(digest, entries)
        self._added.append(digest)

    def _images_to_cache(self, opts: BuildOptions) -> list[str]:
        """The normalized references this platform's added layers (and --image-list) name."""
        if not self._added and not opts.image_lists:
            return []
        return collect(self.scans.images(self._added), opts.image_lists, opts.ignore_images)

    def _cache_layer(
        self, opts: BuildOptions, refs: list[str], platform: Platform, config: ImageConfig, result: BuildResult
    ) -> Layer | None:
        """The ``BASE``/``rootfs cache`` layer: this platform's images in a registry tree (none
        when not one of them resolved for this platform: the build fails, or warns, for them)."""
        from sealer.rootfs_cache.fetch import ImageCache  # the HTTP client is loaded only when images are fetched
        from sealer.rootfs_cache.registry_tree import RegistryTree

        if self._image_cache is None:
            self._image_cache = ImageCache(self.store, opts.registry_config or RegistryConfig(), self.reporter)
        cache = self._image_cache
        with self.reporter.task(f"{platform} resolving {len(refs)} container images"):
            resolved, missing = cache.resolve(refs, platform)
        result.blobs_fetched = cache.downloaded
        if missing:
            if not opts.allow_missing_images:
                self._missing += [f"{platform}: {m}" for m in missing]
            config.warnings += [f"missing image: {m}" for m in missing]
        if not resolved:
            return None
        key = _key("CACHE", str(platform), sorted((r.ref, r.top, r.digest) for r in resolved))
        cached = None if opts.no_cache else self.cache.get(key)
        if cached:
            result.layers_cached += 1
            self.reporter.note(f"{platform} rootfs cache of {len(resolved)} images: cached")
            return Layer(cached[0], cached[1], "BASE", "rootfs cache")
        work = self.store.tmp_path(".registry")
        try:
            with self.reporter.task(f"{platform} caching {len(resolved)} container images"):
                cache.materialize(resolved, RegistryTree(work / "registry"))
            result.blobs_fetched = cache.downloaded
            for dirpath, dirs, files in os.walk(work):
                for name in dirs:
                    os.chmod(os.path.join(dirpath, name), 0o755)
                for name in files:
                    os.chmod(os.path.join(dirpath, name), 0o644)
            entries = finalize(copy_entries(work, ["registry"], "", str(platform), (opts.kubefile.name, 0)))
            digest, size = write_layer(self.store, entries)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.cache.put(key, digest, size)
        result.layers_written += 1
        return Layer(digest, size, "BASE", "rootfs cache")


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            out[os.path.relpath(full, root)] = (st.st_ino, st.st_ctime_ns, st.st_mode)
    return out


def _changes(root: Path, before: dict[str, tuple[int, int, int]]) -> list[Entry]:
    """Entries for what a RUN added or changed, and whiteouts for what it removed."""
    after = _snapshot(root)
    entries: list[Entry] = []
    for rel, sig in after.items():
        if before.get(rel) == sig:
            continue
        full = os.path.join(root, rel)
        st = os.lstat(full)
        arc = rel.replace(os.sep, "/")
        if stat.S_ISDIR(st.st_mode):
            entries.append(Entry(arc, "dir", stat.S_IMODE(st.st_mode)))
        elif stat.S_ISLNK(st.st_mode):
            entries.append(Entry(arc, "symlink", 0o777, linkname=os.readlink(full)))
        elif stat.S_ISREG(st.st_mode):
            entries.append(Entry(arc, "file", stat.S_IMODE(st.st_mode), full, st.st_size))
        else:
            raise BuildError(f"RUN created {arc}, a device, socket or fifo, which a layer cannot hold")
    removed = set(before) - set(after)
    for rel in sorted(removed):
        parent = os.path.dirname(rel)
        if parent and parent in removed:
            continue  # the whiteout of its directory covers it
        arc = rel.replace(os.sep, "/")
        head, base = os.path.split(arc)
        entries.append(Entry(f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base, "whiteout"))
    return entries
