"""The error hierarchy: every failure a user can cause or meet is a SealerError.

The CLI maps these to one line on stderr and a non-zero exit code; library code raises
them (``raise ... from err``) and never prints or exits.
"""

from __future__ import annotations


class SealerError(Exception):
    """Base of every error sealer reports to its user."""

    exit_code = 1


class UsageError(SealerError):
    """The command line itself is wrong."""

    exit_code = 2


class KubefileError(SealerError):
    """A Kubefile problem (or one in a file the build reads), located at ``file:line``
    (line 0: the file as a whole)."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class InvalidReferenceError(SealerError):
    """An image reference that does not parse."""


class InvalidPlatformError(SealerError):
    """A platform string that does not parse, or one a build cannot honour."""


class InvalidNameError(SealerError):
    """A cluster or sandbox name that is no DNS label (such names become paths)."""

    exit_code = 2


class ImageNotFoundError(SealerError):
    """No image of that name or id in the store."""


class AmbiguousImageError(ImageNotFoundError):
    """An id prefix (or an id several names hold) that stands for more than one image."""


class PlatformNotFoundError(SealerError):
    """The image exists but not for the platform asked for."""


class BuildError(SealerError):
    """The build failed for a reason that is not a Kubefile syntax error."""


class StoreError(SealerError):
    """The local store is unusable or inconsistent."""


class DigestMismatchError(StoreError):
    """Content whose digest or size is not what it claims."""

    def __init__(self, digest: str, message: str) -> None:
        super().__init__(f"{digest}: {message}")
        self.digest = digest


class StoreBusyError(StoreError):
    """Another sealer process holds a lock this command cannot wait for."""


class HostError(SealerError):
    """A problem with one host of a cluster."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host


class SudoPasswordNeeded(HostError):
    """The login user's sudo asks for a password and none was given."""


class SandboxError(SealerError):
    """The sandbox of test hosts cannot be made, used or removed."""


class RegistryTreeError(SealerError):
    """A registry tree (the rootfs cache's registry storage) that cannot be read or merged."""


class MergeError(SealerError):
    """Images that cannot be merged into one."""


class InputLimitError(SealerError):
    """A file larger, or a YAML document bigger once its aliases are expanded, than sealer reads."""


class ClusterfileError(SealerError):
    """A Clusterfile or host list problem, with file:line where there is one."""


class HostsError(SealerError):
    """One or more hosts failed a check; one line per host."""

    def __init__(self, errors: list[HostError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class DeployError(SealerError):
    """The playbook failed; one line per host, task and reason."""


class DriftError(SealerError):
    """sealer verify: a host's rootfs differs from the cluster's image (its report says what)."""


class SwarmError(SealerError):
    """The swarm delivery cannot start: a tool missing (controller, image), a tracker or seeder failing."""


class RegistryError(SealerError):
    """A registry refused, failed, or answered something that does not hold up."""


class AuthError(RegistryError):
    """A registry refused the credentials, or asked for some and none are stored."""


class NotFoundError(RegistryError):
    """A registry has no such repository, tag or blob."""


class ManifestTooLargeError(RegistryError):
    """A registry served a manifest larger than sealer reads (4 MiB, as registries limit them)."""


class UncacheableImageError(SealerError):
    """An image the rootfs cache refuses to hold (non-distributable layers, an index nested too
    deep), refused whole before any of its blobs is fetched."""


class ArchiveError(SealerError):
    """An archive that cannot be loaded, and why; nothing of it was kept."""


class Interrupted(BaseException):  # a signal, not an error: no ``except Exception`` may stop it
    """SIGTERM or SIGINT reached sealer: raised in the main thread so that every ``finally`` and
    context manager on the way out cleans up (temporary files, children, mounts)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class TemplateError(SealerError):
    """A ``*.tmpl`` file (or a Clusterfile document) that does not render: a missing env key, an
    action sealer does not support, located at ``file:line``."""
