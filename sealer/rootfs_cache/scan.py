"""Finding the container images a cluster image needs, in what its build added.

- ``manifests/**/*.yaml|yml``: every string ``image:`` in every document (multi-document
  files, List kinds, init and ephemeral containers, CronJobs, pod templates nested anywhere
  in a custom resource: the walk visits every mapping);
- ``charts/**/values.yaml``: ``image: repo:tag`` strings and ``image:`` maps with
  ``repository`` (+ ``tag``, ``registry``, ``digest``) wherever they are nested; with a
  ``helm`` on the build host, ``helm template`` output too;
- ``manifests/imageList``: one reference per line, ``#`` comments.

Each file is scanned on its own (:func:`images_in_file`), so a layer's result depends on
that layer alone and can be kept by its digest (:mod:`sealer.rootfs_cache.layer_scan`).
References are normalized as docker does and deduplicated.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from sealer.errors import InvalidReferenceError, KubefileError
from sealer.input_limits import read_limited
from sealer.oci.reference import DOCKER_HUB, Reference


def _loader() -> Any:
    """libyaml's loader: it parses large manifests (CRD bundles, dashboards in ConfigMaps) about
    16x faster than the pure-Python one, into the same objects. PyYAML without libyaml still
    works. Imported on first use: a rebuild whose layers were all scanned before loads no YAML."""
    import yaml

    return yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


def normalize(text: str, where: str) -> str:
    """``where`` is ``file`` or ``file:line``."""
    try:
        return str(Reference.parse(text.strip()).docker_normalized())
    except InvalidReferenceError as err:
        path, _, line = where.rpartition(":")
        located = (path, int(line)) if path and line.isdigit() else (where, 0)
        raise KubefileError(*located, f"invalid image reference: {err}") from err


def load_all(text: str, where: str) -> list[Any]:
    """Every document of a YAML stream; a KubefileError at ``where:line`` when it is not YAML."""
    import yaml

    try:
        return list(yaml.load_all(text, Loader=_loader()))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]  # one line, without the parser's context
        raise KubefileError(where, mark.line + 1 if mark else 0, f"not valid YAML: {problem}") from err


def kind_of(path: str) -> str | None:
    """How the scan reads a rootfs path: ``manifest``, ``list``, ``values``, ``chart`` (an input
    of ``helm template`` only), or None for a file it never reads."""
    if path.startswith("charts/"):
        name = path.rsplit("/", 1)[-1]
        if name == "values.yaml":
            return "values"
        return "chart" if name in ("Chart.yaml", "_helpers.tpl") or "/templates/" in path else None
    if path == "manifests/imageList":
        return "list"
    if path.startswith("manifests/") and PurePosixPath(path).suffix in (".yaml", ".yml"):
        return "manifest"
    return None


def images_in_file(path: str, data: bytes) -> list[tuple[str, str]]:
    """(reference as written, where) for every image one rootfs file names, by its kind."""
    kind = kind_of(path)
    if kind is None or kind == "chart":
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise KubefileError(path, 0, f"not UTF-8 text: byte {err.start} cannot be decoded") from err
    if kind == "list":
        return list(list_lines(text, path))
    walk = images_in_objects if kind == "manifest" else images_in_values
    return [(i, path) for doc in load_all(text, path) for i in walk(doc)]


def images_in_objects(value: Any) -> Iterator[str]:
    """Every string under an ``image`` key, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str) and item.strip():
                yield item
            else:
                yield from images_in_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from images_in_objects(item)


def images_in_values(value: Any) -> Iterator[str]:
    """Helm values conventions: ``image: repo:tag`` and ``image: {registry, repository, tag}`` maps."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str) and item.strip():
                yield item
            elif key == "image" and isinstance(item, dict) and isinstance(item.get("repository"), str):
                ref = item["repository"]
                if isinstance(item.get("registry"), str) and item["registry"]:
                    ref = f"{item['registry']}/{ref}"
                if item.get("digest"):
                    ref += f"@{item['digest']}"
                elif item.get("tag") not in (None, ""):
                    ref += f":{item['tag']}"
                yield ref
            else:
                yield from images_in_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from images_in_values(item)


def list_lines(text: str, where: str) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        ref = line.split("#", 1)[0].strip()
        if ref:
            yield ref, f"{where}:{number}"


def image_list(path: Path, display: str | None = None) -> list[tuple[str, str]]:
    """(reference, ``file:line``) for each line of a list; ``display`` names the file in messages."""
    name = display or str(path)
    try:
        raw = read_limited(path, name)
    except OSError as err:
        raise KubefileError(name, 0, f"cannot read: {err.strerror}") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise KubefileError(name, raw[: err.start].count(b"\n") + 1, "not UTF-8 text") from err
    return list(list_lines(text, name))


def helm_images(helm: str, tree: Path) -> list[tuple[str, str]]:
    """What ``helm template`` renders for every chart under ``tree/charts``."""
    found: list[tuple[str, str]] = []
    for chart in sorted({p.parent for p in (tree / "charts").rglob("Chart.yaml")}):
        where = f"helm template {chart.relative_to(tree)}"
        found += [(i, where) for i in _helm_template(helm, chart)]
    return found


def _helm_template(helm: str, chart: Path) -> list[str]:
    import subprocess

    proc = subprocess.run(
        [helm, "template", "sealer-scan", str(chart)], capture_output=True, text=True, check=False, timeout=120
    )
    if proc.returncode != 0:
        return []  # the values.yaml conventions above still apply
    import yaml

    try:
        return [i for doc in yaml.load_all(proc.stdout, Loader=_loader()) for i in images_in_objects(doc)]
    except yaml.YAMLError:
        return []


def collect(found: Iterable[tuple[str, str]], extra_lists: Iterable[Path], ignore: Iterable[str]) -> list[str]:
    """Normalized, deduplicated, sorted references, less those matching an ignore pattern."""
    refs: set[str] = set()
    for text, where in found:
        if "{{" in text:  # an unrendered template expression, not a reference
            continue
        refs.add(normalize(text, where))
    for path in extra_lists:
        for text, where in image_list(path):
            refs.add(normalize(text, where))
    patterns = list(ignore)
    return sorted(r for r in refs if not any(_ignored(r, p) for p in patterns))


def _ignored(ref: str, pattern: str) -> bool:
    """A glob matches the normalized reference (or its tail); a plain name matches it exactly."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatch(ref, pattern) or fnmatch.fnmatch(ref, "*/" + pattern)
    try:
        return normalize(pattern, "--ignore-image") == ref
    except KubefileError:
        return False


def served_path_clashes(refs: Iterable[str]) -> list[str]:
    """One line per repository path that two registries' references share.

    The cluster registry serves every image under its repository path alone (hosts reach it in
    place of every registry), so ``docker.io/foo/app`` and ``quay.io/foo/app`` would be one
    repository there, each served under the other's name.
    """
    first: dict[str, Reference] = {}
    lines: list[str] = []
    for text in sorted(set(refs)):
        ref = Reference.parse(text)
        seen = first.setdefault(ref.repository, ref)
        if (seen.registry or DOCKER_HUB) != (ref.registry or DOCKER_HUB):
            lines.append(
                f"{seen} and {ref} would both be served as {ref.repository} by the cluster registry: "
                "keep one of them, or copy one to another repository path and name that"
            )
    return lines
