"""Limits on the files sealer reads from its users: inventories (and their group_vars/ and
host_vars/), Clusterfiles, Kubefiles, image lists and sealer's config.yaml.

A file larger than MAX_BYTES is refused before it is read whole. YAML is composed first (its
aliases then share one node each, so composing costs what the text does) and refused when its
documents, with every alias expanded, hold more than MAX_NODES nodes (an alias bomb of a few
hundred bytes means billions), when an alias refers to a node that contains it, or when it is
nested deeper than the parser goes. Only then is it turned into values; so sealer and Ansible,
which templates every variable of an inventory up front, never expand it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sealer.errors import InputLimitError

if TYPE_CHECKING:
    import yaml

MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000


def read_limited(path: Path, display: str | None = None) -> bytes:
    """The file's bytes, when it holds at most MAX_BYTES (OSError as open and read raise it)."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InputLimitError(f"{display or path}: larger than {MAX_BYTES} bytes, the most sealer reads of such a file")
    return data


def check_size(path: Path, display: str | None = None) -> None:
    """A file another reader (Ansible) opens: refused when larger than MAX_BYTES."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InputLimitError(f"{display or path}: {size} bytes, larger than {MAX_BYTES}, the most sealer reads")


def compose_all(text: str, display: str) -> list[yaml.Node]:
    """The stream's documents as nodes, each within the limits (yaml.YAMLError when not YAML)."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            check_nodes(node, display)
            nodes.append(node)
        return nodes
    except RecursionError as err:
        raise InputLimitError(f"{display}: YAML nested deeper than sealer reads") from err
    finally:
        loader.dispose()


def safe_load_all(text: str, display: str) -> list[Any]:
    """``yaml.safe_load_all`` within the limits: every document's value."""
    import yaml

    return [yaml.SafeLoader("").construct_document(node) for node in compose_all(text, display)]


def safe_load(text: str, display: str) -> Any:
    """``yaml.safe_load`` within the limits: the first document's value (None when empty)."""
    docs = safe_load_all(text, display)
    return docs[0] if docs else None


def check_nodes(root: yaml.Node, display: str) -> None:
    """Refuse a document whose nodes, aliases expanded, exceed MAX_NODES, or that contains itself."""
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def expanded(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise InputLimitError(f"{display}:{node.start_mark.line + 1}: a YAML alias refers to a node that holds it")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(expanded(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(expanded(k) + expanded(v) for k, v in node.value)
        open_nodes.discard(key)
        if total > MAX_NODES:
            raise InputLimitError(
                f"{display}:{root.start_mark.line + 1}: more than {MAX_NODES} YAML nodes with its aliases expanded"
            )
        sizes[key] = total
        return total

    try:
        expanded(root)
    except RecursionError as err:
        raise InputLimitError(f"{display}: YAML nested deeper than sealer reads") from err
