"""The fields of the kubeadm configuration kinds a Clusterfile may carry (kubeadm.k8s.io
v1beta2 to v1beta4, with kubelet's and kube-proxy's configurations), checked as the Cluster
document is: an unknown field is named with its file and line before any host is touched,
instead of kubeadm ignoring it on master0. ``object`` stands for a value whose inside kubeadm
checks itself (the kubelet's and kube-proxy's configurations have over a hundred fields each
and change with every release: only their kinds are checked)."""

from __future__ import annotations

from typing import Any

_ARGS = object  # extraArgs: a mapping (v1beta3) or a list of name/value (v1beta4)
_CONTROL_PLANE_COMPONENT = {"extraArgs": _ARGS, "extraVolumes": object, "extraEnvs": object}
_NODE_REGISTRATION = {
    "name": str, "criSocket": str, "taints": object, "kubeletExtraArgs": _ARGS, "ignorePreflightErrors": [str],
    "imagePullPolicy": str, "imagePullSerial": object,
}  # fmt: skip
_ENDPOINT = {"advertiseAddress": str, "bindPort": object}
_TYPE = {"apiVersion": str, "kind": str}
_COMMON = {**_TYPE, "dryRun": object, "timeouts": object, "skipPhases": [str], "patches": {"directory": str}}

KUBEADM_KINDS: dict[str, dict[str, Any]] = {
    "InitConfiguration": {
        **_COMMON, "bootstrapTokens": object, "nodeRegistration": _NODE_REGISTRATION,
        "localAPIEndpoint": _ENDPOINT, "certificateKey": str,
    },
    "ClusterConfiguration": {
        **_TYPE,
        "etcd": {
            "local": {"imageRepository": str, "imageTag": str, "dataDir": str, "extraArgs": _ARGS,
                      "extraEnvs": object, "serverCertSANs": [str], "peerCertSANs": [str]},
            "external": {"endpoints": [str], "caFile": str, "certFile": str, "keyFile": str},
        },
        "networking": {"serviceSubnet": str, "podSubnet": str, "dnsDomain": str},
        "kubernetesVersion": str, "controlPlaneEndpoint": str,
        "apiServer": {**_CONTROL_PLANE_COMPONENT, "certSANs": [str], "timeoutForControlPlane": str},
        "controllerManager": _CONTROL_PLANE_COMPONENT, "scheduler": _CONTROL_PLANE_COMPONENT,
        "dns": {"type": str, "imageRepository": str, "imageTag": str, "disabled": object},
        "proxy": {"disabled": object},
        "certificatesDir": str, "imageRepository": str, "useHyperKubeImage": object, "featureGates": object,
        "clusterName": str, "encryptionAlgorithm": str, "certificateValidityPeriod": str,
        "caCertificateValidityPeriod": str,
    },
    "JoinConfiguration": {
        **_COMMON, "nodeRegistration": _NODE_REGISTRATION, "caCertPath": str,
        "discovery": {
            "bootstrapToken": {"token": str, "apiServerEndpoint": str, "caCertHashes": [str],
                               "unsafeSkipCAVerification": object},
            "file": {"kubeConfigPath": str}, "tlsBootstrapToken": str, "timeout": str,
        },
        "controlPlane": {"localAPIEndpoint": _ENDPOINT, "certificateKey": str},
    },
    "ClusterStatus": {**_TYPE, "apiEndpoints": object},
    "ResetConfiguration": {
        **_COMMON, "cleanupTmpDir": object, "certificatesDir": str, "criSocket": str, "force": object,
        "ignorePreflightErrors": [str], "unmountFlags": [str],
    },
    "UpgradeConfiguration": {
        **_COMMON, "apply": object, "diff": object, "node": object, "plan": object,
    },
}  # fmt: skip

# each API group's kinds; None: every field of the kind is left to its own component
KINDS: dict[str, dict[str, dict[str, Any] | None]] = {
    "kubeadm.k8s.io": dict(KUBEADM_KINDS),
    "kubelet.config.k8s.io": {"KubeletConfiguration": None},
    "kubeproxy.config.k8s.io": {"KubeProxyConfiguration": None},
}
