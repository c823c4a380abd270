"""``kind: Config``: a file of the cluster's rootfs written, merged or extended from the
Clusterfile, on the controller, before the rootfs is delivered.

``spec.strategy``: ``overwrite`` (the default) writes ``spec.data`` as the file; ``merge`` deep
merges it (YAML) into every document of the file, new keys included; ``insert`` and ``append``
put it before or after the file's content. ``spec.process`` (sealer's processors, joined with
``|``) turns the data first: ``toJson``, ``toBase64`` act on the whole data, or on each top-level
value after ``value``; ``toSecret`` sets the ``.data`` keys of the Secret the file holds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from sealer._fs import atomic_write
from sealer.errors import ClusterfileError

STRATEGIES = ("overwrite", "merge", "insert", "append")
PROCESSORS = ("value", "toJson", "toBase64", "toSecret")
NEW_FILE_MODE = 0o600  # a Config's data often holds a password: a new file is the owner's alone


@dataclass(frozen=True)
class ConfigDoc:
    name: str
    path: str  # relative to the rootfs, checked: no absolute path, no ``..``
    data: str = field(repr=False)  # often holds a password: never in a log line
    strategy: str = "overwrite"
    process: tuple[str, ...] = ()
    where: str = ""  # file:line of the document, for errors

    def to_document(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"path": self.path, "data": self.data}
        if self.strategy != "overwrite":
            spec["strategy"] = self.strategy
        if self.process:
            spec["process"] = "|".join(self.process)
        return {"apiVersion": "sealer.cloud/v2", "kind": "Config", "metadata": {"name": self.name}, "spec": spec}


def check_path(path: str, where: str) -> str:
    """A rootfs-relative path a user wrote, normalised; absolute paths and ``..`` refused."""
    if not path or "\0" in path or "\\" in path:
        raise ClusterfileError(f"{where}: spec.path {path!r} is not a file path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        raise ClusterfileError(f"{where}: spec.path {path!r} must be relative to the rootfs, without '..'")
    if path.endswith("/") or pure.parts in ((), (".",)):
        raise ClusterfileError(f"{where}: spec.path {path!r} names a directory, not a file")
    return pure.as_posix()


def parse_config(value: dict[str, Any], where: str, path_where: str | None = None) -> ConfigDoc:
    """A Config document (already checked field by field) into a ConfigDoc."""
    spec = value.get("spec") or {}
    name = str((value.get("metadata") or {}).get("name") or "config")
    if spec.get("path") is None:
        raise ClusterfileError(f"{where}: Config {name}: spec.path is required")
    path = check_path(str(spec["path"]), path_where or where)
    data = spec.get("data")
    if data is None:
        data = ""
    elif not isinstance(data, str):  # written as YAML in place of a block of text
        data = yaml.safe_dump(data, sort_keys=False)
    strategy = str(spec.get("strategy") or "overwrite")
    if strategy not in STRATEGIES:
        raise ClusterfileError(
            f"{where}: Config {name}: spec.strategy is one of {', '.join(STRATEGIES)}, not {strategy!r}"
        )
    process = tuple(p.strip() for p in str(spec.get("process") or "").split("|") if p.strip())
    unknown = [p for p in process if p not in PROCESSORS]
    if unknown:
        raise ClusterfileError(
            f"{where}: Config {name}: spec.process {unknown[0]!r} is not one of {', '.join(PROCESSORS)}"
        )
    if "toSecret" in process and strategy != "overwrite":
        raise ClusterfileError(
            f"{where}: Config {name}: toSecret sets a Secret's keys; spec.strategy {strategy} has no meaning with it"
        )
    config = ConfigDoc(name, path, data, strategy, process, where)
    processed(config)  # refuse data the processors cannot take now, not when the rootfs is written
    return config


# ---- processors ----------------------------------------------------------------------------


def processed(config: ConfigDoc) -> str | dict[str, str]:
    """The data after the processors, in their order: text, or (``toSecret``) the Secret's keys
    and values. From ``value`` on, the data is a mapping and each processor acts per value."""
    data: Any = config.data
    for step in config.process:
        per_value = isinstance(data, dict)
        if step == "value" and not per_value:
            data = _mapping(config, data)
        elif step == "toJson":
            data = {k: _json(v) for k, v in data.items()} if per_value else _json(_load(config, data))
        elif step == "toBase64":
            data = {k: _b64(_text(config, k, v)) for k, v in data.items()} if per_value else _b64(data)
    if "toSecret" in config.process:
        mapping = data if isinstance(data, dict) else _mapping(config, data)
        return {k: _text(config, k, v) for k, v in mapping.items()}
    return yaml.safe_dump(data, sort_keys=True) if isinstance(data, dict) else str(data)


def _load(config: ConfigDoc, data: Any) -> Any:
    if not isinstance(data, str):
        return data
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as err:
        raise ClusterfileError(f"{config.where}: Config {config.name}: spec.data is not valid YAML") from err


def _mapping(config: ConfigDoc, data: str) -> dict[str, Any]:
    value = _load(config, data)
    if not isinstance(value, dict):
        raise ClusterfileError(
            f"{config.where}: Config {config.name}: with process value or toSecret, spec.data is a mapping"
        )
    return {str(k): v for k, v in value.items()}


def _json(value: Any) -> str:
    # as sealer's YAMLToJSON: compact, keys sorted
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _as_text(data: Any) -> str:
    return data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=True)


def _text(config: ConfigDoc, key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""
    raise ClusterfileError(
        f"{config.where}: Config {config.name}: the value of {key} is not text (toJson makes it text)"
    )


# ---- strategies ----------------------------------------------------------------------------


def deep_merge(base: Any, change: Any) -> Any:
    """``change`` merged into ``base``: mappings key by key (new keys added), anything else replaced."""
    if isinstance(base, dict) and isinstance(change, dict):
        merged = dict(base)
        for key, value in change.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return change


def _dump_all(docs: list[Any]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, allow_unicode=True) for d in docs)


def _merged(config: ConfigDoc, existing: str | None, data: str) -> str:
    change = _load(config, data)
    if existing is None:
        return data
    if not isinstance(change, dict):
        raise ClusterfileError(f"{config.where}: Config {config.name}: strategy merge needs spec.data to be a mapping")
    try:
        docs = list(yaml.safe_load_all(existing))
    except yaml.YAMLError as err:
        raise ClusterfileError(
            f"{config.where}: Config {config.name}: {config.path} is not valid YAML to merge into"
        ) from err
    if any(d is not None and not isinstance(d, dict) for d in docs):
        raise ClusterfileError(
            f"{config.where}: Config {config.name}: {config.path} holds a document that is not a mapping"
        )
    return _dump_all([deep_merge(d, change) for d in docs if d is not None] or [change])


def _secret(config: ConfigDoc, existing: str | None, keys: dict[str, str]) -> str:
    # without toBase64 in the chain the values are plain text: .data holds them base64-encoded
    encoded = keys if "toBase64" in config.process else {k: _b64(v) for k, v in keys.items()}
    if existing is None:
        docs: list[Any] = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": config.name}, "type": "Opaque"}]
    else:
        try:
            docs = [d for d in yaml.safe_load_all(existing) if d is not None]
        except yaml.YAMLError as err:
            raise ClusterfileError(f"{config.where}: Config {config.name}: {config.path} is not valid YAML") from err
    secrets = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Secret"]
    if len(secrets) != 1:
        raise ClusterfileError(
            f"{config.where}: Config {config.name}: toSecret needs one Secret in {config.path}, found {len(secrets)}"
        )
    secrets[0]["data"] = {**(secrets[0].get("data") or {}), **encoded}
    return _dump_all(docs)


def _joined(first: str, second: str) -> str:
    if first and not first.endswith("\n"):
        first += "\n"
    return first + second


def applied(config: ConfigDoc, existing: str | None) -> str:
    """The file's new content, from its current content (None: no such file)."""
    data = processed(config)
    if isinstance(data, dict):
        return _secret(config, existing, data)
    if config.strategy == "merge":
        return _merged(config, existing, data)
    if config.strategy == "insert":
        return _joined(data, existing or "")
    if config.strategy == "append":
        return _joined(existing or "", data)
    return data


# ---- the rootfs --------------------------------------------------------------------------


def _checked_target(root: Path, config: ConfigDoc) -> Path:
    """``root/path`` with no symlink on the way (a link could lead out of the rootfs)."""
    current = root
    parts = PurePosixPath(config.path).parts
    for index, part in enumerate(parts):
        current = current / part
        where = f"{config.where}: Config {config.name}: {config.path}: {current.relative_to(root)}"
        if current.is_symlink():
            raise ClusterfileError(f"{where} is a symlink")
        if index < len(parts) - 1 and current.exists() and not current.is_dir():
            raise ClusterfileError(f"{where} is a file, not a directory")
    if current.is_dir():
        raise ClusterfileError(f"{config.where}: Config {config.name}: {config.path} is a directory in the rootfs")
    return current


def _read(root: Path, config: ConfigDoc) -> tuple[str | None, int | None]:
    target = _checked_target(root, config)
    if not target.exists():
        return None, None
    try:
        return target.read_text(encoding="utf-8"), target.stat().st_mode & 0o777
    except (OSError, UnicodeDecodeError) as err:
        raise ClusterfileError(f"{config.where}: Config {config.name}: cannot read {config.path}: {err}") from err


def apply_configs(configs: Iterable[ConfigDoc], target: Path, source: Path | None = None) -> list[str]:
    """Apply ``configs`` in order to the rootfs tree ``target``; the relative paths it changed.

    Each file starts from its content in ``source`` (the image's own tree) when given, else in
    ``target``: with a source, a second run of the same Configs (insert and append included)
    changes nothing. Nothing is written until every Config applied; a file whose new content is
    already in ``target`` is not written again."""
    configs = list(configs)
    contents: dict[str, tuple[str | None, int | None]] = {}
    for config in configs:
        if config.path not in contents:
            contents[config.path] = _read(source or target, config)
        existing, mode = contents[config.path]
        contents[config.path] = (applied(config, existing), mode)
    changed: list[str] = []
    by_path = {c.path: c for c in configs}
    for path, (text, mode) in contents.items():
        destination = _checked_target(target, by_path[path])
        data = (text or "").encode()
        if destination.is_file() and destination.read_bytes() == data:
            continue
        if mode is None:  # a file the image lacks: the mode an earlier run gave it, or a new file's
            mode_now = destination.stat().st_mode & 0o777 if destination.exists() else NEW_FILE_MODE
        destination.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(destination, data, mode=mode_now if mode is None else mode)
        changed.append(path)
    return changed
