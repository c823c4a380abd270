"""A failed kubeadm join on the sandbox says what kubeadm said, without the join's secrets: the
node holds a stale /etc/kubernetes/kubelet.conf, kubeadm's preflight refuses it, and the run
names the node, kubeadm's exit status and its words, while neither the error nor any file of the
run's ansible-runner output holds a bootstrap token. With the stale file gone, a re-run joins."""

from __future__ import annotations

import re

from tests.e2e.conftest import Sandbox, cluster_dir, run_cluster
from tests.helpers import Sealer

CLUSTER = "joinfail"
STALE = "/etc/kubernetes/kubelet.conf"
TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")  # a bootstrap token, id.secret


def artifacts_text(store: Sealer) -> str:
    files = [p for p in (cluster_dir(store, CLUSTER) / "runs").rglob("*") if p.is_file()]
    assert files
    return "\n".join(p.read_text(errors="replace") for p in files)


def test_a_failed_join_says_what_kubeadm_said_and_keeps_the_token_out_of_every_log(
    run_store: Sealer, sandbox: Sandbox
) -> None:
    master, node = sandbox.hosts[0], sandbox.hosts[1]
    node.ssh(f"mkdir -p /etc/kubernetes && echo stale > {STALE}")
    try:
        failed = run_cluster(run_store, CLUSTER, [master], [node], check=False)
        assert failed.returncode != 0
        said = failed.stderr
        assert f"{node.address}: Stop at a node whose kubeadm join failed" in said, said
        assert "kubeadm join exited 1" in said and "kubelet.conf already exists" in said, said
        assert "Traceback" not in said and not TOKEN.search(said), said
        logged = artifacts_text(run_store)
        assert "kubelet.conf already exists" in logged  # the failure is in the artifacts, redacted
        assert not TOKEN.search(logged), TOKEN.search(logged)
        node.ssh(f"rm -f {STALE}")
        run_cluster(run_store, CLUSTER, [master], [node])
        assert not TOKEN.search(artifacts_text(run_store))
    finally:
        node.ssh(f"rm -f {STALE}", check=False)
        run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)
        # the directory the test made (kubeadm reset leaves a directory it did not make)
        node.ssh("rmdir /etc/kubernetes 2>/dev/null; true", check=False)


def test_the_token_pattern_matches_what_kubeadm_prints() -> None:
    assert TOKEN.search("kubeadm join x:6443 --token 0a1b2c.0123456789abcdef --discovery-token-ca-cert-hash h")
