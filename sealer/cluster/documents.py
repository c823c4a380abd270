"""The YAML documents of a Clusterfile (and of an image's ``plugins/*.yaml``): split, rendered
with the cluster's env, composed with their line numbers, and checked field by field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from sealer.cluster.env import render_text
from sealer.errors import ClusterfileError, TemplateError
from sealer.input_limits import compose_all

# Config, Plugin and Application documents: sealer 0.8.6 read them whatever their apiVersion
# (it looked at the kind alone); these are the ones sealer's documentation writes.
SEALER_API_VERSIONS = ("sealer.cloud/v2", "sealer.aliyun.com/v1alpha1", "sealer.io/v1", "sealer.io/v2")
METADATA: dict[str, Any] = {"name": str, "creationTimestamp": object, "annotations": object, "labels": object}

_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$")
_TOP_KIND = re.compile(r"^kind:[ \t]*[\"']?([A-Za-z0-9]+)")


class TextOrMapping:
    """A field written as one value (``user@host:port``) or as a mapping of these fields."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields


@dataclass(frozen=True)
class Document:
    """One document of a file: its text (padded so that YAML's marks are the file's lines)."""

    first_line: int  # 1-based line of its first line in the file
    text: str

    @property
    def kind(self) -> str | None:
        """The top-level ``kind:`` as written, read before any rendering."""
        for line in self.text.splitlines():
            match = _TOP_KIND.match(line)
            if match:
                return match.group(1)
        return None

    def rendered(self, env: Mapping[str, str], display: str) -> Document:
        """The document with the env rendered into it (``{{ .KEY }}``), lines unchanged."""
        try:
            return Document(self.first_line, render_text(self.text, env, display))
        except TemplateError as err:
            raise ClusterfileError(str(err)) from err

    def compose(self, display: str) -> yaml.Node | None:
        try:
            nodes = compose_all(self.text, display)  # within sealer's input limits
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f":{mark.line + 1}" if mark else ""
            raise ClusterfileError(f"{display}{at}: not valid YAML: {getattr(err, 'problem', err)}") from err
        return nodes[0] if nodes else None


def split_documents(text: str) -> list[Document]:
    """The ``---``-separated documents of ``text``, each padded with the newlines before it."""
    docs: list[Document] = []
    start = 0
    lines = text.splitlines(keepends=True)
    for number, line in enumerate([*lines, "---\n"]):
        if _SEPARATOR.match(line.rstrip("\r\n")):
            body = "".join(lines[start:number])
            if body.strip():
                docs.append(Document(start + 1, "\n" * start + body))
            start = number + 1
    return docs


def check_node(node: yaml.Node, schema: Any, path: str, display: str) -> None:
    """Refuse a field ``schema`` does not name, or a value of the wrong shape, at its line."""
    where = f"{display}:{node.start_mark.line + 1}"
    if schema is object:
        return
    if isinstance(schema, TextOrMapping):
        if isinstance(node, yaml.SequenceNode):
            raise ClusterfileError(f"{where}: {path.rstrip('.')} must be user@address:port or a mapping")
        schema = schema.fields if isinstance(node, yaml.MappingNode) else object
        check_node(node, schema, path, display)
    elif isinstance(schema, dict):
        if not isinstance(node, yaml.MappingNode):
            raise ClusterfileError(f"{where}: {path or 'document'} must be a mapping")
        for key_node, value_node in node.value:
            key = key_node.value
            if key not in schema:
                raise ClusterfileError(f"{display}:{key_node.start_mark.line + 1}: unknown field {path + key!r}")
            check_node(value_node, schema[key], f"{path}{key}.", display)
    elif isinstance(schema, list):
        if not isinstance(node, yaml.SequenceNode):
            raise ClusterfileError(f"{where}: {path.rstrip('.')} must be a list")
        for item in node.value:
            check_node(item, schema[0], path, display)
    elif not isinstance(node, yaml.ScalarNode):
        raise ClusterfileError(f"{where}: {path.rstrip('.')} must be a single value")


def value_of(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def node_at(node: yaml.Node, *keys: str) -> yaml.Node | None:
    """The value node at ``keys`` in a mapping node, when it is there."""
    current: yaml.Node | None = node
    for key in keys:
        if not isinstance(current, yaml.MappingNode):
            return None
        current = next((v for k, v in current.value if k.value == key), None)
    return current


def line_of(node: yaml.Node, *keys: str) -> int | None:
    """The line (1-based) of the value at ``keys`` in a mapping node, when it is there."""
    found = node_at(node, *keys)
    return None if found is None else int(found.start_mark.line) + 1


def text_line(node: yaml.Node) -> int:
    """The line of a scalar's first line of text (a block scalar's text starts below its ``|``)."""
    line = int(node.start_mark.line) + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        return line + 1
    return line


def kind_of(node: yaml.Node) -> str | None:
    found = node_at(node, "kind")
    return str(found.value) if isinstance(found, yaml.ScalarNode) else None


def check_api_version(node: yaml.Node, display: str, kind: str) -> None:
    found = node_at(node, "apiVersion")
    api = found.value if isinstance(found, yaml.ScalarNode) else None
    if api not in SEALER_API_VERSIONS:
        line = line_of(node, "apiVersion") or node.start_mark.line + 1
        raise ClusterfileError(
            f"{display}:{line}: {kind} apiVersion is one of {', '.join(SEALER_API_VERSIONS)}, not {api!r}"
        )
