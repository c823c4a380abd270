"""A real container runtime consumes the cluster registry: the example base installs Debian's
containerd (and runc, ctr) from its init script, sealer points containerd at the cluster registry
for every upstream registry the image's container images come from (hosts.toml), and on every
host, amd64 and arm64, containerd pulls each listed image by its original reference, through the
cluster registry (the sandbox hosts have no other network), for the host's own architecture."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
from pathlib import Path

import yaml

from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir, host_state, run_cluster
from tests.helpers import Sealer

IMAGE = "kubernetes-multi-arch:v1.19.8"
CERTS = "/etc/containerd/certs.d"
# what each stand-in image carries (scripts/upstream-registry.py): a file naming image and architecture
DASHBOARD = "kubernetesui/dashboard:v2.5.1"
CANARY = "Canary-Runtime-Pa55"
RELEASE = {"kubernetesui/dashboard": "dashboard", "bitnami/mysql": "mysqld"}
# containerd's default snapshotter, overlayfs: it works in the nspawn hosts, whose root is itself
# an overlay (the stand-ins have one layer each: mounted as a bind of the snapshot)
SNAPSHOTTER = "overlayfs"


def listed_images(store: Sealer) -> list[str]:
    doc = yaml.safe_load(store.run("inspect", IMAGE, "--platform", "linux/amd64").stdout)
    images: list[str] = doc["spec"]["image_config"]["images"]
    return images


def pull_and_read(host: SandboxHost, ref: str) -> str:
    """Pull ``ref`` with the host's containerd through its hosts.toml, mount the unpacked image
    and read the stand-in's release file (it names the architecture the layer was built for)."""
    program = next(p for repo, p in RELEASE.items() if f"/{repo}:" in ref)
    mnt = f"/tmp/sealer-mount-{program}"
    q = shlex.quote(ref)
    ctr = "ctr -n k8s.io"
    out = host.ssh(
        f"{ctr} images pull --snapshotter {SNAPSHOTTER} --hosts-dir {CERTS} {q} >/dev/null"
        f" && mkdir -p {mnt} && {ctr} images mount --snapshotter {SNAPSHOTTER} {q} {mnt} >/dev/null"
        f" && cat {mnt}/etc/{program}-release; rc=$?; {ctr} images unmount {mnt} >/dev/null 2>&1; rmdir {mnt}; exit $rc"
    )
    return out.stdout


def test_containerd_pulls_every_listed_image_through_the_cluster_registry(run_store: Sealer, sandbox: Sandbox) -> None:
    master, node = sandbox.hosts[0], sandbox.hosts[1]  # amd64, arm64
    images = listed_images(run_store)
    assert sorted(images) == ["docker.io/bitnami/mysql:8.0.28-debian-10-r23", "docker.io/kubernetesui/dashboard:v2.5.1"]
    before = {h.address: host_state(h) for h in (master, node)}
    run_cluster(run_store, "ctrd", [master], [node])
    try:
        for host in (master, node):
            # containerd is a unit, enabled and running, configured to read certs.d
            assert host.ssh("systemctl is-active containerd").stdout.strip() == "active", host.address
            assert host.ssh("systemctl is-enabled containerd").stdout.strip() == "enabled", host.address
            config = host.ssh("cat /etc/containerd/config.toml").stdout
            assert f'config_path = "{CERTS}"' in config
            hosts_toml = host.ssh(f"cat {CERTS}/docker.io/hosts.toml").stdout
            assert '[host."http://sea.hub:5000"]' in hosts_toml, hosts_toml
            # without the hosts directory containerd would go to docker.io, which no host reaches
            alone = host.ssh(f"ctr -n k8s.io images pull --snapshotter {SNAPSHOTTER} {shlex.quote(images[0])}",
                             check=False)  # fmt: skip
            assert alone.returncode != 0
            for ref in images:
                release = pull_and_read(host, ref)
                assert f"stand-in for linux/{host.arch}" in release, (host.address, ref, release)
            # the image containerd recorded is the upstream's, by its original name
            names = host.ssh("ctr -n k8s.io images ls -q").stdout.split()
            assert set(images) <= set(names), names
        # an unchanged re-run changes nothing (containerd not restarted, no hosts.toml rewritten)
        again = json.loads(run_cluster(run_store, "ctrd", [master], [node]).stdout)
        assert [h["changed"] for h in again["hosts"]] == [0, 0], again
    finally:
        run_store.run("delete", "--all", "--cluster", "ctrd")
    for host in (master, node):
        # what the image's init script installed and sealer wrote is gone again
        assert host.ssh("systemctl is-active containerd", check=False).stdout.strip() != "active"
        for path in ("/etc/containerd", "/etc/systemd/system/containerd.service", "/usr/local/bin/containerd",
                     "/usr/local/bin/ctr", "/usr/local/sbin/runc", "/var/lib/containerd"):  # fmt: skip
            assert host.ssh(f"test -e {path}", check=False).returncode == 1, (host.address, path)
        # nothing else is left of it either (its data, the directories it made)
        after = host_state(host).splitlines()
        left, gone = (
            set(after) - set(before[host.address].splitlines()),
            set(before[host.address].splitlines()) - set(after),
        )
        assert (host.address, sorted(left), sorted(gone)) == (host.address, [], [])
    assert not cluster_dir(run_store, "ctrd").exists()


def test_containerd_pulls_through_a_tls_registry_with_the_cluster_ca_and_credentials(
    run_store: Sealer, sandbox: Sandbox, tmp_path: Path
) -> None:
    host = sandbox.hosts[2]  # amd64
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(f"""\
apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: ctrtls
spec:
  image: {IMAGE}
  ssh:
    pk: {host.key}
  hosts:
    - ips: [{host.address}]
      roles: [master]
  registry:
    tls: true
    username: admin
    password: {CANARY}
""")
    run_store.run("run", "-f", str(clusterfile))
    try:
        ca = f"{CERTS}/sea.hub:5000/ca.crt"
        for registry in ("docker.io", "sea.hub:5000"):
            hosts_toml = host.ssh(f"cat {CERTS}/{registry}/hosts.toml").stdout
            assert '[host."https://sea.hub:5000"]' in hosts_toml and f'ca = "{ca}"' in hosts_toml, hosts_toml
            # the cluster's own pull credential, never the operator's password; root's alone
            assert 'Authorization = "Basic ' in hosts_toml and CANARY not in hosts_toml
            assert host.ssh(f"stat -c '%a %U' {CERTS}/{registry}/hosts.toml").stdout.split() == ["600", "root"]
        for ref in listed_images(run_store):
            assert f"stand-in for linux/{host.arch}" in pull_and_read(host, ref)
        # the registry's own name resolves through the same files (kubeadm's images are named so)
        own = f"ctr -n k8s.io images pull --snapshotter {SNAPSHOTTER} --hosts-dir {CERTS} sea.hub:5000/{DASHBOARD}"
        assert host.ssh(own, check=False).returncode == 0
        # the credential is kept with the cluster's state (0600) and appears nowhere else: not in
        # the inventory or ansible-runner's artifacts (events, stdout), nor in any log on the host
        pull = cluster_dir(run_store, "ctrtls") / "registry-pull"
        assert pull.stat().st_mode & 0o777 == 0o600
        credential = pull.read_text().strip()
        header = base64.b64encode(credential.encode()).decode()
        for secret in (credential.partition(":")[2], header, CANARY):
            found = subprocess.run(["grep", "-rlF", secret, str(run_store.root)], capture_output=True, text=True,
                                   check=False).stdout.split()  # fmt: skip
            assert found in ([], [str(pull)]), found
            assert host.ssh("grep -rlF -f - /var/log /var/lib/sealer /tmp", check=False, input=secret).stdout == ""
        # an unchanged re-run changes nothing
        again = json.loads(run_store.run("run", "-f", str(clusterfile), "--output", "json").stdout)
        assert [h["changed"] for h in again["hosts"]] == [0]
    finally:
        run_store.run("delete", "--all", "--cluster", "ctrtls")
    assert host.ssh(f"test -e {CERTS}", check=False).returncode == 1
