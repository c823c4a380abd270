# The Jinja filter a failed `kubeadm join` is reported with:
#   result | sealer.cluster.join_failure(command)
# kubeadm's exit status and the last lines of its output (a registered ansible.builtin.raw
# result) with the join's secrets removed: the values of --token, --discovery-token-ca-cert-hash
# and --certificate-key of `command` wherever they appear, and whatever has the form of one (a
# bootstrap token abcdef.0123456789abcdef, a sha256:HEX hash, a 64-hex certificate key). The
# join task runs with no_log (its command holds them), so the artifacts keep nothing of it; the
# task after it fails with this filter's text.
from __future__ import annotations

import re
import shlex
from typing import Any

SECRET_FLAGS = ("--token", "--discovery-token-ca-cert-hash", "--certificate-key")
HIDDEN = "<redacted>"
TAIL_LINES = 8
# sealer shows a failure's first 500 characters: the end of kubeadm's output is what says why
TAIL_CHARS = 420
_PATTERNS = (
    re.compile(r"sha256:[A-Fa-f0-9]{64}"),
    re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b"),
    re.compile(r"\b[A-Fa-f0-9]{64}\b"),
)
_SSH_NOISE = re.compile(r"^(Shared )?[Cc]onnection to \S+ closed\.?$")


def secrets_of(command: str) -> list[str]:
    """The values of the secret flags of a kubeadm join command line."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    found = []
    for i, word in enumerate(words):
        for flag in SECRET_FLAGS:
            if word == flag and i + 1 < len(words):
                found.append(words[i + 1])
            elif word.startswith(flag + "="):
                found.append(word[len(flag) + 1 :])
    return [s for s in found if s]


def redact(text: str, command: str = "") -> str:
    """``text`` without the secrets of ``command`` nor anything of their forms."""
    for secret in sorted(secrets_of(command), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
        if secret.startswith("sha256:"):
            text = text.replace(secret[len("sha256:") :], HIDDEN)
    for pattern in _PATTERNS:
        text = pattern.sub(HIDDEN, text)
    return text


def join_failure(result: Any, command: str = "", lines: int = TAIL_LINES) -> str:
    """What a failed join says: kubeadm's exit status and its last ``lines`` lines, redacted."""
    result = result if isinstance(result, dict) else {}
    texts = (str(result.get("stdout") or ""), str(result.get("stderr") or ""))
    kept = [line.rstrip() for text in texts for line in text.splitlines()]
    kept = [line for line in kept if line.strip() and not _SSH_NOISE.match(line.strip())]
    said = redact(" | ".join(kept[-int(lines) :]), command) if kept else "no output"
    if len(said) > TAIL_CHARS:
        said = "..." + said[-TAIL_CHARS:]
    return f"kubeadm join exited {result.get('rc', '?')}: {said}"


class FilterModule:
    """Ansible's entry point for the collection's filter plugins."""

    def filters(self) -> dict[str, Any]:
        return {"join_failure": join_failure}
