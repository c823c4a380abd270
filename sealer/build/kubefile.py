"""Kubefile parsing into a typed instruction list.

Every error is a KubefileError naming ``file:line``. Variables (``$ARCH``, ``${ARCH}`` and
``ARG`` names) are checked here and expanded per platform by :func:`expand`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from sealer.errors import InvalidReferenceError, KubefileError
from sealer.input_limits import MAX_BYTES
from sealer.oci.platform import Platform
from sealer.oci.reference import Reference

MAX_LINE = 64 * 1024
MAX_FILE = MAX_BYTES

# Variables every build defines for the platform being built.
BUILTIN_VARS = ("ARCH", "OS", "VARIANT", "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")
_VAR = re.compile(r"\\\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Each instruction parser gets a ``fail(message)`` that locates the error at file:line.
_Fail = Callable[[str], KubefileError]


@dataclass(frozen=True)
class Instruction:
    line: int
    text: str = field(compare=False)

    @property
    def keyword(self) -> str:
        return type(self).__name__.removesuffix("Instr").upper()


@dataclass(frozen=True)
class FromInstr(Instruction):
    base: str  # "scratch" or a reference, possibly with ${VAR}s


@dataclass(frozen=True)
class CopyInstr(Instruction):
    sources: tuple[str, ...]
    dest: str

    @property
    def value(self) -> str:
        return " ".join((*self.sources, self.dest))


@dataclass(frozen=True)
class RunInstr(Instruction):
    command: str  # shell form, or an exec form joined with shell quoting
    network: bool = False  # RUN --network=host: the build host's network; otherwise none


@dataclass(frozen=True)
class CmdInstr(Instruction):
    command: str


@dataclass(frozen=True)
class ArgInstr(Instruction):
    name: str
    default: str | None


@dataclass(frozen=True)
class EnvInstr(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LabelInstr(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Kubefile:
    path: str
    instructions: tuple[Instruction, ...]

    @property
    def base(self) -> FromInstr:
        return next(i for i in self.instructions if isinstance(i, FromInstr))

    @property
    def arg_defaults(self) -> dict[str, str | None]:
        return {i.name: i.default for i in self.instructions if isinstance(i, ArgInstr)}


def parse_file(path: str, display: str | None = None) -> Kubefile:
    display = display or path
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as err:
        raise KubefileError(display, 0, f"cannot read: {err.strerror}") from err
    return parse_bytes(data, display)


def parse_bytes(data: bytes, path: str = "Kubefile") -> Kubefile:
    if len(data) > MAX_FILE:
        raise KubefileError(path, 0, f"file is larger than {MAX_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise KubefileError(path, line, "not valid UTF-8") from err
    if "\x00" in text:
        raise KubefileError(path, text[: text.index("\x00")].count("\n") + 1, "contains a NUL byte")
    instructions: list[Instruction] = []
    declared: set[str] = set(BUILTIN_VARS)
    for line, logical in _logical_lines(text, path):
        instr = _parse_instruction(path, line, logical, declared)
        if isinstance(instr, FromInstr):
            if any(not isinstance(i, ArgInstr) for i in instructions):
                raise KubefileError(path, line, "only one FROM is allowed, and it must come first")
        elif not any(isinstance(i, FromInstr) for i in instructions) and not isinstance(instr, ArgInstr):
            raise KubefileError(path, line, f"{instr.keyword} before FROM: FROM must come first")
        if isinstance(instr, ArgInstr):
            declared.add(instr.name)
        instructions.append(instr)
    if not any(isinstance(i, FromInstr) for i in instructions):
        raise KubefileError(path, max(1, text.count("\n")), "no FROM instruction")
    return Kubefile(path, tuple(instructions))


def _logical_lines(text: str, path: str) -> Iterator[tuple[int, str]]:
    """Join ``\\``-continued lines and drop comments and blank lines."""
    start, parts = 0, list[str]()
    for number, line in enumerate(text.split("\n"), 1):
        raw = line.rstrip("\r")
        if len(raw) > MAX_LINE:
            raise KubefileError(path, number, f"line is longer than {MAX_LINE} characters")
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and parts):
            continue  # comments and blank lines may sit inside a continuation, as in Dockerfiles
        if not stripped:
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            if sum(len(p) + 1 for p in parts) > MAX_LINE:  # as joined, with a space between parts
                raise KubefileError(path, start, f"instruction is longer than {MAX_LINE} characters")
            continue
        parts.append(stripped)
        yield start, " ".join(p for p in parts if p)
        parts = []
    if parts:
        raise KubefileError(path, start, "unterminated line continuation at end of file")


def _parse_instruction(path: str, line: int, text: str, declared: set[str]) -> Instruction:
    keyword, _, rest = text.partition(" ")
    keyword, rest = keyword.upper(), rest.strip()
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = (more + " " + rest).strip()

    def fail(message: str) -> KubefileError:
        return KubefileError(path, line, message)

    if keyword not in _PARSERS:
        raise fail(f"unknown instruction {keyword!r}")
    if not rest:
        raise fail(f"{keyword} needs an argument")
    return _PARSERS[keyword](fail, line, text, rest, declared)


def _parse_from(fail: _Fail, line: int, text: str, rest: str, declared: set[str]) -> Instruction:
    words = strip_trailing_comment(rest).split()
    if len(words) == 3 and words[1].lower() == "as":
        raise fail("multi-stage builds (FROM ... AS ...) are not supported")
    if len(words) != 1:
        raise fail(f"FROM takes one image, got {len(words)} words")
    base = words[0]
    _check_vars(fail, base, declared)
    if base.lower() == "scratch":
        return FromInstr(line, text, "scratch")
    if "$" not in base:
        try:
            Reference.parse(base)
        except InvalidReferenceError as err:
            raise fail(str(err)) from err
    return FromInstr(line, text, base)


def _parse_copy(fail: _Fail, line: int, text: str, rest: str, declared: set[str]) -> Instruction:
    if rest.startswith("--"):
        raise fail(f"COPY option {rest.split(maxsplit=1)[0]!r} is not supported")
    words = _json_list(fail, rest) if rest.startswith("[") else _shell_words(fail, rest)
    if len(words) < 2:
        raise fail("COPY needs at least one source and a destination")
    for word in words:
        if not word:
            raise fail("COPY arguments must not be empty")
        _check_vars(fail, word, declared)
    return CopyInstr(line, text, tuple(words[:-1]), words[-1])


RUN_NETWORK = {"host": True, "none": False, "default": False}


def _parse_run(fail: _Fail, line: int, text: str, rest: str, declared: set[str]) -> Instruction:
    """``RUN [--network=host|none] command``, BuildKit's syntax; no network unless asked for."""
    network = False
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        rest = rest.strip()
        name, eq, value = option.partition("=")
        if name != "--network" or not eq:
            raise fail(f"RUN option {option!r} is not supported (only --network=host or --network=none)")
        if value not in RUN_NETWORK:
            raise fail(f"RUN --network={value} is not supported: host or none")
        network = RUN_NETWORK[value]
        if not rest:
            raise fail("RUN needs a command after its options")
    return RunInstr(line, text, _command(fail, rest), network)


def _parse_cmd(fail: _Fail, line: int, text: str, rest: str, declared: set[str]) -> Instruction:
    return CmdInstr(line, text, _command(fail, rest))


def _parse_arg(fail: _Fail, line: int, text: str, rest: str, declared: set[str]) -> Instruction:
    words = _shell_words(fail, rest)
    if len(words) != 1:
        raise fail("ARG takes one name[=default]")
    name, eq, default = words[0].partition("=")
    if not _NAME.match(name):
        raise fail(f"invalid ARG name {name!r}")
    if name in BUILTIN_VARS:
        raise fail(f"ARG {name} is set by the build for each platform and cannot be declared")
    return ArgInstr(line, text, name, default if eq else None)


def _parse_pairs(fail: _Fail, keyword: str, rest: str) -> tuple[tuple[str, str], ...]:
    words = _shell_words(fail, rest)
    if "=" not in words[0]:
        # legacy form: ENV key value with spaces
        if len(words) < 2:
            raise fail(f"{keyword} needs key=value")
        return ((_checked_key(fail, keyword, words[0]), " ".join(words[1:])),)
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise fail(f"{keyword} expects key=value, got {word!r}")
        pairs.append((_checked_key(fail, keyword, key), value))
    return tuple(pairs)


def _checked_key(fail: _Fail, keyword: str, key: str) -> str:
    if not key or (keyword == "ENV" and not _NAME.match(key)):
        raise fail(f"invalid {keyword} key {key!r}")
    return key


def _parse_env(fail: _Fail, line: int, text: str, rest: str, declared: set[str]) -> Instruction:
    return EnvInstr(line, text, _parse_pairs(fail, "ENV", rest))


def _parse_label(fail: _Fail, line: int, text: str, rest: str, declared: set[str]) -> Instruction:
    return LabelInstr(line, text, _parse_pairs(fail, "LABEL", rest))


_PARSERS = {
    "FROM": _parse_from,
    "COPY": _parse_copy,
    "RUN": _parse_run,
    "CMD": _parse_cmd,
    "ARG": _parse_arg,
    "ENV": _parse_env,
    "LABEL": _parse_label,
}


def _command(fail: _Fail, rest: str) -> str:
    """One command: shell form as written, exec form joined with shell quoting."""
    if rest.startswith("["):
        words = _json_list(fail, rest)
        if not words or not words[0]:
            raise fail("exec form needs at least a program")
        return shlex.join(words)
    return rest


def _json_list(fail: _Fail, rest: str) -> list[str]:
    try:
        value = json.loads(rest)
    except json.JSONDecodeError as err:
        raise fail(f"malformed JSON array: {err.msg}") from err
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail("exec form must be a JSON array of strings")
    return value


def strip_trailing_comment(rest: str) -> str:
    """Drop an unquoted `` #...`` tail, as the contract (docs/design/multi-arch.md) writes after a COPY.

    RUN and CMD keep theirs: the shell that runs them decides what is a comment.
    """
    quote, prev_space, i = "", True, 0
    while i < len(rest):
        c = rest[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                i += 1
        elif c == "\\":
            i += 1
        elif c in "\"'":
            quote = c
        elif c == "#" and prev_space:
            return rest[:i].rstrip()
        prev_space = c.isspace()
        i += 1
    return rest


def _shell_words(fail: _Fail, rest: str) -> list[str]:
    try:
        return shlex.split(strip_trailing_comment(rest), comments=False, posix=True)
    except ValueError as err:
        raise fail(f"cannot split arguments: {err}") from err


def _check_vars(fail: _Fail, text: str, declared: set[str]) -> None:
    for match in _VAR.finditer(text):
        if match.group(0) == "\\$":
            continue
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if name is None:
            raise fail(f"a lone '$' in {text!r}: write \\$ for a literal dollar")
        if not _NAME.match(name):
            raise fail(f"invalid variable reference ${{{name}}} in {text!r}")
        if name not in declared:
            raise fail(f"unknown variable ${name} in {text!r}: declare it with ARG")


def build_variables(platform: Platform, args: Mapping[str, str | None]) -> dict[str, str]:
    """The variables a build sees for one platform: the builtins plus the resolved ARGs."""
    values = {k: v for k, v in args.items() if v is not None}
    values.update(
        ARCH=platform.architecture,
        OS=platform.os,
        VARIANT=platform.variant,
        TARGETPLATFORM=str(platform),
        TARGETOS=platform.os,
        TARGETARCH=platform.architecture,
        TARGETVARIANT=platform.variant,
    )
    return values


def expand(text: str, variables: Mapping[str, str], path: str, line: int) -> str:
    """Expand ``$NAME``/``${NAME}``; an ARG without a value is an error at ``path:line``."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if name is None or name not in variables:
            raise KubefileError(path, line, f"variable ${name} has no value: pass --build-arg {name}=...")
        return variables[name]

    return _VAR.sub(repl, text)
