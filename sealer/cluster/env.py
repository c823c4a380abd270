"""A cluster's env: ``KEY=value`` pairs from the Clusterfile (``spec.env``, ``hosts[].env``),
rendered into the rootfs's ``*.tmpl`` files and exported to scripts.

Templates use sealer's syntax, a subset of Go's text/template: ``{{ .KEY }}``, a pipe into
``b64enc``/``b64dec`` (``{{ .KEY | b64enc }}`` or ``{{ b64enc .KEY }}``), a string literal
(``{{ "{{" }}`` writes the braces themselves), ``{{/* comments */}}`` and the ``{{-``/``-}}``
markers that trim the whitespace beside them. A key the env lacks is an error naming the file,
line and key (Go's text/template writes ``<no value>`` in its place, silently).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sealer._fs import atomic_write
from sealer.errors import ClusterfileError, TemplateError

# a key becomes an exported shell variable: a name the shell takes
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TEMPLATE_SUFFIX = ".tmpl"
TEMPLATE_DIRS = ("etc", "charts", "manifests")
HOST_IP = "HostIP"

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_TRIM_LEFT = re.compile(r"-\s")
_TRIM_RIGHT = re.compile(r"\s-$")
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|\||[^\s|]+')


def _b64enc(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _b64dec(value: str) -> str:
    try:
        return base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as err:
        raise ValueError(f"b64dec: {value!r} is not base64 of text") from err


FUNCTIONS: dict[str, Callable[[str], str]] = {"b64enc": _b64enc, "b64dec": _b64dec}


def parse_env_entry(text: str, where: str) -> tuple[str, str]:
    """One ``KEY=value`` entry; ``where`` names it (file:line and field) in an error."""
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise ClusterfileError(f"{where} entry {text!r} is not key=value")
    if not KEY.fullmatch(key):
        raise ClusterfileError(f"{where} entry {text!r}: {key!r} is not a variable name (letters, digits, _)")
    return key, value


def parse_env(entries: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``(entry, where)`` pairs into a mapping; a key given twice is refused."""
    env: dict[str, str] = {}
    for text, where in entries:
        key, value = parse_env_entry(text, where)
        if key in env:
            raise ClusterfileError(f"{where} entry {text!r}: {key} is given twice")
        env[key] = value
    return env


def host_env(cluster_env: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """A host's env: the cluster's, with the host's own values in place of the cluster's."""
    return {**cluster_env, **own}


def exported_env(env: Mapping[str, str], address: str) -> dict[str, str]:
    """What a script on the host at ``address`` sees exported: its env and ``HostIP``."""
    return {**env, HOST_IP: address}


def shell_exports(env: Mapping[str, str]) -> str:
    """``export KEY='value'`` lines for a shell to read (from a file or stdin: never from an
    argument list, which every user of the host can list)."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))


# ---- templates ---------------------------------------------------------------------------


def render_text(text: str, env: Mapping[str, str], display: str) -> str:
    """``text`` with every action rendered; errors name ``display`` and the action's line."""
    out: list[str] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(text):
        before = text[pos : match.start()]
        body = match.group(1)
        if trim_next:
            before = before.lstrip()
        # Go's trim markers: a dash and a space (or tab, newline) inside the braces
        trim_left, trim_right = _TRIM_LEFT.match(body) is not None, _TRIM_RIGHT.search(body) is not None
        if trim_left:
            before = before.rstrip()
            body = body[1:]
        if trim_right:
            body = body[:-1]
        out.append(before)
        line = text.count("\n", 0, match.start()) + 1
        out.append(_action(body.strip(), env, f"{display}:{line}"))
        pos, trim_next = match.end(), trim_right
    rest = text[pos:]
    out.append(rest.lstrip() if trim_next else rest)
    return "".join(out)


def _action(body: str, env: Mapping[str, str], where: str) -> str:
    if body.startswith("/*") and body.endswith("*/"):
        return ""
    tokens = _TOKEN.findall(body)
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    if not tokens or any(not c for c in commands):
        raise TemplateError(f"{where}: {{{{ {body} }}}} is not a template action sealer renders")
    value: str | None = None
    for command in commands:
        value = _command(command, value, env, where, body)
    assert value is not None
    return value


def _command(command: list[str], piped: str | None, env: Mapping[str, str], where: str, body: str) -> str:
    name, args = command[0], command[1:]
    if name in FUNCTIONS:
        values = [_operand(a, env, where, body) for a in args] + ([] if piped is None else [piped])
        if len(values) != 1:
            raise TemplateError(f"{where}: {name} takes one value, in {{{{ {body} }}}}")
        try:
            return FUNCTIONS[name](values[0])
        except ValueError as err:
            raise TemplateError(f"{where}: {err}") from err
    if args or piped is not None:
        raise TemplateError(
            f"{where}: {{{{ {body} }}}}: sealer renders {{{{ .KEY }}}} and pipes into b64enc or b64dec only"
        )
    return _operand(name, env, where, body)


def _operand(token: str, env: Mapping[str, str], where: str, body: str) -> str:
    if token.startswith(".") and KEY.fullmatch(token[1:]):
        if token[1:] not in env:
            raise TemplateError(f"{where}: {token[1:]} is not in the cluster's env (spec.env, hosts[].env)")
        return env[token[1:]]
    if token.startswith('"'):
        try:
            return str(json.loads(token))
        except json.JSONDecodeError as err:
            raise TemplateError(f"{where}: bad string {token} in {{{{ {body} }}}}") from err
    if token.startswith("`"):
        return token[1:-1]
    raise TemplateError(
        f"{where}: {{{{ {body} }}}}: sealer renders {{{{ .KEY }}}} and pipes into b64enc or b64dec only"
    )


def escape_template(value: Any) -> Any:
    """``value`` (text, or lists and mappings of it) with every ``{{`` written so that
    rendering gives it back: ``{{`{{`}}``."""
    if isinstance(value, str):
        return value.replace("{{", "{{`{{`}}")
    if isinstance(value, list):
        return [escape_template(v) for v in value]
    if isinstance(value, dict):
        return {k: escape_template(v) for k, v in value.items()}
    return value


def templates(rootfs: Path) -> list[Path]:
    """The ``*.tmpl`` files under the rootfs's etc/, charts/ and manifests/, in name order."""
    found: list[Path] = []
    for top in TEMPLATE_DIRS:
        base = rootfs / top
        if base.is_symlink() or not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            found.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(TEMPLATE_SUFFIX))
    return found


def render_tree(rootfs: Path, env: Mapping[str, str], out: Path | None = None) -> list[str]:
    """Render every template of ``rootfs`` with ``env`` into the file without ``.tmpl``, in
    ``out`` (the same relative path) or beside it; the relative paths whose content changed.

    A file whose rendering is already there is not written again, so a second run with the same
    env changes nothing. Nothing is written until every template has rendered."""
    rendered: list[tuple[str, bytes, int]] = []
    for template in templates(rootfs):
        rel = template.relative_to(rootfs).as_posix()
        if template.is_symlink():
            raise TemplateError(f"{rel}: a template is a file of the image, not a symlink")
        try:
            text = template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise TemplateError(f"{rel}: cannot read: {err}") from err
        mode = template.stat().st_mode & 0o777
        rendered.append((rel[: -len(TEMPLATE_SUFFIX)], render_text(text, env, rel).encode(), mode))
    changed: list[str] = []
    root = out or rootfs
    for rel, data, mode in rendered:
        target = root / rel
        if target.is_symlink() or target.is_dir():
            raise TemplateError(f"{rel}.tmpl: its rendering {rel} is a symlink or a directory in the image")
        if target.is_file() and target.read_bytes() == data:
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data, mode=mode)
        except OSError as err:
            raise TemplateError(f"{rel}.tmpl: cannot write {rel}: {err.strerror}") from err
        changed.append(rel)
    return changed
