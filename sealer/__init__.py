"""sealer: multi-architecture Kubernetes cluster images, built as OCI and delivered with Ansible."""

__version__ = "0.1.0"
