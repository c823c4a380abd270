"""sealer's Ansible collection (``sealer.cluster``): where its content is, and how Ansible finds it.

The roles and playbooks ship inside the Python package (``sealer/_collection``, links to the
repository's ``roles/``, ``playbooks/`` and ``meta/`` in a checkout, copies in a wheel), so an
installed sealer needs no checkout. Ansible loads them by their collection names through a
collections path that links ``ansible_collections/sealer/cluster`` to that content.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sealer.errors import SealerError

NAMESPACE = "sealer"
NAME = "cluster"


def content_root() -> Path:
    """The collection's files: roles/, playbooks/, meta/ and galaxy.yml."""
    root = Path(str(resources.files("sealer") / "_collection"))
    if not (root / "playbooks").is_dir() or not (root / "roles").is_dir():
        raise SealerError(f"sealer's playbooks and roles are missing from {root}: reinstall sealer")
    return root.resolve()


def playbook(name: str) -> str:
    """A playbook of the collection by its collection name, as ansible-playbook takes it."""
    return f"{NAMESPACE}.{NAME}.{name}"


def collections_path(state_dir: Path) -> Path:
    """A collections path in ``state_dir`` that makes ``sealer.cluster`` this sealer's own content."""
    base = state_dir / "collections"
    link = base / "ansible_collections" / NAMESPACE / NAME
    target = content_root()
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return base
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{NAME}.{os.getpid()}")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
    return base


@cache
def shared_defaults() -> dict[str, Any]:
    """The variables every role shares, as the defaults role declares them."""
    path = content_root() / "roles" / "sealer" / "defaults" / "main.yml"
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise SealerError(f"{path}: not a mapping of variables")
    return data


def computed_variables() -> frozenset[str]:
    """The variables the roles work out for themselves (their vars/), which no inventory sets."""
    names: set[str] = set()
    for path in sorted((content_root() / "roles").glob("*/vars/main.yml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict):
            names.update(str(k) for k in data)
    return frozenset(names)
