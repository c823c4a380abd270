"""Finding the container images a cluster image needs, in what its build added.

- ``manifests/**/*.yaml|yml``: every string ``image:`` in every document (multi-document
  files, List kinds, init and ephemeral containers, CronJobs, pod templates nested anywhere
  in a custom resource: the walk visits every mapping);
- ``charts/**/values.yaml``: ``image: repo:tag`` strings and ``image:`` maps with
  ``repository`` (+ ``tag``, ``registry``, ``digest``) wherever they are nested; with a
  ``helm`` on the build host, ``helm template`` output too;
- ``manifests/imageList``: one reference per line, ``#`` comments.

References are normalized as docker does and deduplicated.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from sealer.errors import InvalidReferenceError, KubefileError
from sealer.oci.reference import DOCKER_HUB, Reference


def normalize(text: str, where: str) -> str:
    """``where`` is ``file`` or ``file:line``."""
    try:
        return str(Reference.parse(text.strip()).docker_normalized())
    except InvalidReferenceError as err:
        path, _, line = where.rpartition(":")
        located = (path, int(line)) if path and line.isdigit() else (where, 0)
        raise KubefileError(*located, f"invalid image reference: {err}") from err


def _yaml_docs(path: Path, display: str | None = None) -> Iterator[Any]:
    try:
        yield from yaml.safe_load_all(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise KubefileError(display or str(path), 0, "not UTF-8 text") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise KubefileError(display or str(path), mark.line + 1 if mark else 0, f"not valid YAML: {problem}") from err


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


def image_list(path: Path, display: str | None = None) -> list[tuple[str, str]]:
    """(reference, ``file:line``) for each line of a list; ``display`` names the file in messages."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise KubefileError(name, 0, f"cannot read: {err.strerror}") from err
    out = []
    for number, raw_line in enumerate(raw.splitlines(), 1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise KubefileError(name, number, "not UTF-8 text") from err
        text = line.split("#", 1)[0].strip()
        if text:
            out.append((text, f"{name}:{number}"))
    return out


def scan_rootfs(root: Path, helm: bool = True) -> list[tuple[str, str]]:
    """(reference as written, where) for every image the rootfs's manifests, charts and lists name."""
    found: list[tuple[str, str]] = []
    manifests = root / "manifests"
    if manifests.is_dir():
        for path in sorted(manifests.rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml"):
                for doc in _yaml_docs(path, str(path.relative_to(root))):
                    found += [(i, str(path.relative_to(root))) for i in images_in_objects(doc)]
        if (manifests / "imageList").is_file():
            found += image_list(manifests / "imageList", "manifests/imageList")
    charts = root / "charts"
    if charts.is_dir():
        for values in sorted(charts.rglob("values.yaml")):
            for doc in _yaml_docs(values, str(values.relative_to(root))):
                found += [(i, str(values.relative_to(root))) for i in images_in_values(doc)]
        if helm and shutil.which("helm"):
            for chart in sorted(p.parent for p in charts.rglob("Chart.yaml")):
                found += [(i, f"helm template {chart.relative_to(root)}") for i in _helm_template(chart)]
    return found


def _helm_template(chart: Path) -> list[str]:
    proc = subprocess.run(
        ["helm", "template", "sealer-scan", str(chart)], capture_output=True, text=True, check=False, timeout=120
    )
    if proc.returncode != 0:
        return []  # the values.yaml conventions above still apply
    try:
        return [i for doc in yaml.safe_load_all(proc.stdout) for i in images_in_objects(doc)]
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
