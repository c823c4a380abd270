"""Registry settings and credentials: what every command that talks to a registry reads,
kept apart from the HTTP client so that commands which do not talk to one stay fast to start."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealer._fs import atomic_write
from sealer.errors import SealerError, UsageError
from sealer.input_limits import read_limited, safe_load
from sealer.store.layout import Store


@dataclass
class Credentials:
    username: str
    password: str = field(repr=False)


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    return Path(base) / "config.json"


def load_credentials(registry: str) -> Credentials | None:
    try:
        data = json.loads(docker_config_path().read_text())
    except (OSError, json.JSONDecodeError):
        return None
    entry = (data.get("auths") or {}).get(registry) or {}
    auth = entry.get("auth")
    if not auth:
        return None
    try:
        user, _, password = base64.b64decode(auth).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return Credentials(user, password)


def save_credentials(registry: str, creds: Credentials | None) -> None:
    """Store (or, with None, remove) credentials the way docker login does; the file is 0600."""
    path = docker_config_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        data = {}
    auths = data.setdefault("auths", {})
    if creds is None:
        auths.pop(registry, None)
    else:
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        auths[registry] = {"auth": token}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(data, indent=2).encode() + b"\n", mode=0o600)


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry[1:].split("]", maxsplit=1)[0]
    if host == "localhost":
        return True
    import ipaddress  # asked only when talking to a registry: a build that fetches nothing does not load it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class RegistryConfig:
    insecure: set[str] = field(default_factory=set)
    ca_file: str | None = None
    default_registry: str | None = None
    # where to fetch a registry's images from instead (docker.io -> a local mirror), as containerd does
    mirrors: dict[str, str] = field(default_factory=dict)


def registry_config(store: Store, insecure: tuple[str, ...] = ()) -> RegistryConfig:
    """``$SEALER_ROOT/config.yaml`` (defaultRegistry, insecureRegistries, registryCA, registryMirrors),
    then the environment and flags."""
    data: dict[str, Any] = {}
    path = store.root / "config.yaml"
    if path.exists():
        import yaml  # only when there is a file: a build that needs no YAML does not load it

        try:
            data = safe_load(read_limited(path).decode(errors="replace"), str(path)) or {}
        except yaml.YAMLError as err:
            raise SealerError(f"{path}: not valid YAML: {err}") from err
    mirrors = {str(k): str(v) for k, v in (data.get("registryMirrors") or {}).items()}
    for item in filter(None, os.environ.get("SEALER_REGISTRY_MIRRORS", "").split(",")):
        source, eq, mirror = item.partition("=")
        if not eq:
            raise UsageError(f"SEALER_REGISTRY_MIRRORS entry {item!r} is not registry=mirror")
        mirrors[source.strip()] = mirror.strip()
    return RegistryConfig(
        mirrors=mirrors,
        insecure={*(data.get("insecureRegistries") or []), *insecure},
        ca_file=os.environ.get("SEALER_REGISTRY_CA") or data.get("registryCA"),
        default_registry=os.environ.get("SEALER_DEFAULT_REGISTRY") or data.get("defaultRegistry"),
    )
