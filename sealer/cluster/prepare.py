"""What the controller prepares for a cluster before the playbook runs, all in the cluster's
directory: the registries of every platform the cluster uses merged into one tree, the kubeadm
configuration (the image's merged with the Clusterfile's), the registry's htpasswd, and the
variables the roles read (registry domain and port, the registries the container images come
from, the CMDs and their version)."""

from __future__ import annotations

import copy
import hashlib
import secrets
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from sealer._fs import atomic_write
from sealer.cluster.clusterfile import REGISTRY_PULL_USER as PULL_USER
from sealer.cluster.clusterfile import Cluster
from sealer.cluster.collection import shared_defaults
from sealer.cluster.hosts import HostFacts
from sealer.cluster.inventory import unsafe
from sealer.cluster.registry_tls import ensure_registry_tls
from sealer.errors import InvalidReferenceError, SealerError
from sealer.input_limits import safe_load, safe_load_all
from sealer.oci.reference import DOCKER_HUB, Reference
from sealer.rootfs_cache.registry_tree import RegistryTree, merge_trees
from sealer.store.image import Image, PlatformImage
from sealer.store.layer import unpacked_layer
from sealer.store.layout import Store


def read_from_layers(store: Store, image: PlatformImage, rel: str) -> bytes | None:
    """A file of the image's rootfs, from the topmost layer that has it."""
    for layer in reversed(image.config.layers):
        path = unpacked_layer(store, layer.digest) / rel
        if path.is_file():
            return path.read_bytes()
    return None


def registry_trees(store: Store, images: list[PlatformImage]) -> list[Path]:
    trees = []
    for image in images:
        for layer in image.config.layers:
            if layer.type == "BASE":
                tree = unpacked_layer(store, layer.digest) / "registry"
                if (tree / "docker").is_dir():
                    trees.append(tree)
    return trees


def upstream_registries(image: str, refs: list[str]) -> list[str]:
    """The registries the image's container images come from (every platform's list): each
    host's container runtime is pointed at the cluster registry for each of them (hosts.toml)."""
    registries = set()
    for ref in refs:
        try:
            registries.add(Reference.parse(ref).registry or DOCKER_HUB)
        except InvalidReferenceError as err:
            raise SealerError(f"image {image} lists an invalid image reference {ref!r}: {err}") from err
    return sorted(registries)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_kubeadm(base_text: str, docs: list[dict[str, Any]]) -> str:
    """The image's kubeadm documents, each overridden by the Clusterfile's of the same kind."""
    base = safe_load_all(base_text, "the image's etc/kubeadm.yml")
    merged: list[dict[str, Any]] = [d for d in base if isinstance(d, dict)]
    for doc in docs:
        for i, existing in enumerate(merged):
            if existing.get("kind") == doc.get("kind"):
                merged[i] = _deep_merge(existing, doc)
                break
        else:
            merged.append(doc)
    return yaml.safe_dump_all(merged, sort_keys=False)


def write_htpasswd(path: Path, users: dict[str, str]) -> None:
    """Kept as it is when it already holds these users and passwords: a new salt would be a
    change the hosts see (the registry restarted for nothing)."""
    if path.exists():
        lines = [line.partition(":") for line in path.read_text().splitlines() if line]
        old = {user: hashed for user, _, hashed in lines}
        try:
            if old.keys() == users.keys() and all(bcrypt.checkpw(users[u].encode(), old[u].encode()) for u in users):
                return
        except ValueError:  # not a bcrypt hash: written anew
            pass
    lines_out = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=10)).decode()}\n" for u, p in users.items()]
    atomic_write(path, "".join(lines_out).encode(), mode=0o600)


def pull_credential(path: Path) -> str:
    """``user:password`` of the cluster's own pull user, made once and kept (0600) with the
    cluster's state like its SSH and CA keys: containerd on every host pulls with it, so that
    join and re-runs can give new hosts a credential without the operator's password, which is
    never stored."""
    if path.exists():
        return path.read_text().strip()
    credential = f"{PULL_USER}:{secrets.token_urlsafe(32)}"
    atomic_write(path, f"{credential}\n".encode(), mode=0o600)
    return credential


HTTP_SECRET = "registry-http-secret"


def http_secret(path: Path) -> Path:
    """The registry's HTTP secret (it signs the state of uploads between requests): random, made
    once per cluster and kept (0600) with the cluster's state. The role reads it from this file
    into the registry's configuration, so that no inventory, variable or diff holds it."""
    if not path.exists():
        atomic_write(path, f"{secrets.token_hex(32)}\n".encode(), mode=0o600)
    return path


def check_kubeadm_config(store: Store, image: Image, cluster: Cluster, facts: dict[str, HostFacts]) -> None:
    """Kubernetes is initialised from the image's etc/kubeadm.yml (or the Clusterfile's kubeadm
    documents): without either a run could only fail late, so it is refused before any host changes."""
    if cluster.kubeadm_docs:
        return
    master0 = image.for_platform(facts[cluster.masters[0].address].platform)
    if read_from_layers(store, master0, "etc/kubeadm.yml") is None:
        raise SealerError(
            f"image {image.name} ({master0.platform}) has no etc/kubeadm.yml and the Clusterfile gives no kubeadm "
            "configuration (ClusterConfiguration, InitConfiguration...): nothing to initialise Kubernetes with"
        )


def prepare(store: Store, image: Image, cluster: Cluster, facts: dict[str, HostFacts], cdir: Path) -> dict[str, Any]:
    """Write the cluster's files; returns the inventory variables that point at them."""
    platforms = sorted({f.platform for f in facts.values()})
    images = [image.for_platform(p) for p in platforms]
    master0 = image.for_platform(facts[cluster.masters[0].address].platform)
    registry_image = image.for_platform(facts[cluster.registry_host].platform)
    # the registry: every platform's trees merged into multi-arch indexes
    tree = cdir / "registry"
    trees = registry_trees(store, images)
    if trees:
        merge_trees(tree, trees, replace=True)  # the cluster's own tree, made by an earlier run
    else:
        RegistryTree(tree).v2.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {}
    raw = read_from_layers(store, registry_image, "etc/registry.yml")
    if raw:
        try:
            settings = safe_load(raw.decode(errors="replace"), f"image {image.name}: etc/registry.yml") or {}
        except yaml.YAMLError as err:
            raise SealerError(f"image {image.name}: etc/registry.yml is not valid YAML: {err}") from err
    # kubeadm
    base = read_from_layers(store, master0, "etc/kubeadm.yml")
    if base is None and cluster.kubeadm_docs:
        base = b""
    kubeadm_file = ""
    if base is not None:
        atomic_write(cdir / "kubeadm.yml", merge_kubeadm(base.decode(), cluster.kubeadm_docs).encode(), mode=0o600)
        kubeadm_file = str(cdir / "kubeadm.yml")
    # registry credentials: a bcrypt hash on disk, the password nowhere
    htpasswd = cdir / "htpasswd"
    pull = cdir / "registry-pull"
    if cluster.registry_username and cluster.registry_password is not None:
        _, _, pull_password = pull_credential(pull).partition(":")
        users = {cluster.registry_username: cluster.registry_password, PULL_USER: pull_password}
        write_htpasswd(htpasswd, users)
    elif not cluster.registry_username:
        for path in (htpasswd, pull):
            path.unlink(missing_ok=True)
    domain = str(settings.get("domain") or shared_defaults()["sealer_registry_domain"])
    tls_vars = {"sealer_registry_ca": "", "sealer_registry_tls_cert": "", "sealer_registry_tls_key": ""}
    if cluster.registry_tls or settings.get("tls") is True:
        tls = ensure_registry_tls(cdir / "tls", cluster.name, domain, cluster.registry_hosts)
        tls_vars = {
            "sealer_registry_ca": str(tls.ca_cert),
            "sealer_registry_tls_cert": str(tls.cert),
            "sealer_registry_tls_key": str(tls.key),
        }
    # an Application's cmds, else the Cluster's spec.cmd, else the image's CMDs
    commands = cluster.app_cmds if cluster.app_cmds is not None else (
        cluster.cmd or [*master0.config.cmd_parent, *master0.config.cmd_current])  # fmt: skip
    version = hashlib.sha256("\n".join([master0.id, *commands]).encode()).hexdigest()[:16]
    return {
        "sealer_registry_domain": domain,
        **tls_vars,
        "sealer_registry_port": int(settings.get("port") or shared_defaults()["sealer_registry_port"]),
        "sealer_registry_source": str(tree),
        "sealer_registry_http_secret_file": str(http_secret(cdir / HTTP_SECRET)),
        "sealer_registry_htpasswd": str(htpasswd) if htpasswd.exists() else "",
        "sealer_runtime_registries": upstream_registries(image.name, [r for i in images for r in i.config.images]),
        "sealer_runtime_credentials": str(pull) if htpasswd.exists() and pull.exists() else "",
        "sealer_kubernetes_config": kubeadm_file,
        "sealer_app_commands": unsafe(commands),
        "sealer_app_version": version,
        "sealer_env": unsafe(dict(cluster.env)),
    }
