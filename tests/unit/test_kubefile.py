"""The Kubefile parser: every rule, and every error names file:line."""

import pytest

from sealer.build.kubefile import (
    ArgInstr,
    CmdInstr,
    CopyInstr,
    EnvInstr,
    FromInstr,
    LabelInstr,
    RunInstr,
    build_variables,
    expand,
    parse_bytes,
)
from sealer.errors import KubefileError
from sealer.oci.platform import Platform

DESIGN_KUBEFILE = b"""FROM kubernetes:v1.19.8
COPY dashborad.yaml manifests
COPY ${ARCH}/helm bin # copy binary file,make sure the build context have the same number platform binary files.
COPY my-mysql charts
CMD helm install my-mysql bitnami/mysql --version 8.8.26
CMD kubectl apply -f manifests/dashborad.yaml
"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_bytes(text.encode(), "Kubefile")


def test_design_note_kubefile() -> None:
    kf = parse_bytes(DESIGN_KUBEFILE)
    kinds = [type(i) for i in kf.instructions]
    assert kinds == [FromInstr, CopyInstr, CopyInstr, CopyInstr, CmdInstr, CmdInstr]
    assert kf.base.base == "kubernetes:v1.19.8"
    copy = kf.instructions[2]
    assert isinstance(copy, CopyInstr)
    # the contract's trailing comment (docs/design/multi-arch.md) is not part of the arguments
    assert copy.sources == ("${ARCH}/helm",) and copy.dest == "bin" and copy.line == 3
    cmds = [i.command for i in kf.instructions if isinstance(i, CmdInstr)]
    assert cmds == ["helm install my-mysql bitnami/mysql --version 8.8.26", "kubectl apply -f manifests/dashborad.yaml"]


def test_comments_continuations_and_case() -> None:
    kf = parse("# a comment\nfrom scratch\n\ncopy a \\\n  b \\\n  # comment inside\n  dest\nRun echo hi\n")
    copy = kf.instructions[1]
    assert isinstance(copy, CopyInstr)
    assert copy.sources == ("a", "b") and copy.dest == "dest" and copy.line == 4
    assert isinstance(kf.instructions[2], RunInstr) and kf.instructions[2].line == 8


def test_cmd_shell_and_exec_forms_one_command_each() -> None:
    kf = parse('FROM scratch\nCMD echo a, b, c\nCMD ["kubectl", "apply", "-f", "my file.yaml"]\n')
    cmds = [i.command for i in kf.instructions if isinstance(i, CmdInstr)]
    assert cmds == ["echo a, b, c", "kubectl apply -f 'my file.yaml'"]


def test_copy_json_form_and_dest_forms() -> None:
    kf = parse('FROM scratch\nCOPY ["a b", "c", "/etc"]\n')
    copy = kf.instructions[1]
    assert isinstance(copy, CopyInstr) and copy.sources == ("a b", "c") and copy.dest == "/etc"


def test_arg_env_label() -> None:
    kf = parse('ARG BASE=kubernetes:v1\nFROM ${BASE}\nARG VERSION\nENV A=1 B="two words"\nENV C 3 4\nLABEL x=y\n')
    assert kf.arg_defaults == {"BASE": "kubernetes:v1", "VERSION": None}
    envs = [i.pairs for i in kf.instructions if isinstance(i, EnvInstr)]
    assert envs == [(("A", "1"), ("B", "two words")), (("C", "3 4"),)]
    assert [i.pairs for i in kf.instructions if isinstance(i, LabelInstr)] == [(("x", "y"),)]
    assert isinstance(kf.instructions[0], ArgInstr)


def test_expand_per_platform() -> None:
    v = build_variables(Platform.parse("linux/arm64"), {"V": "1.2"})
    assert expand("${ARCH}/helm-$V", v, "Kubefile", 3) == "arm64/helm-1.2"
    assert expand("a\\$b", v, "Kubefile", 3) == "a$b"
    with pytest.raises(KubefileError, match="Kubefile:3: variable \\$NOPE"):
        expand("$NOPE", v, "Kubefile", 3)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("COPY a b\nFROM scratch\n", 1, "before FROM"),
        ("FROM scratch\nFROM scratch\n", 2, "only one FROM"),
        ("FROM a AS b\n", 1, "multi-stage"),
        ("FROM\n", 1, "needs an argument"),
        ("FROM Bad:Ref\n", 1, "invalid reference"),
        ("FROM a b\n", 1, "one image"),
        ("FROM scratch\nCOPY onlyone\n", 2, "at least one source"),
        ("FROM scratch\nCOPY --from=x a b\n", 2, "not supported"),
        ("FROM scratch\nCOPY $NOPE b\n", 2, "unknown variable"),
        ("FROM scratch\nCOPY ${b-ad} b\n", 2, "invalid variable"),
        ("FROM scratch\nCOPY a#b c # comment\n", None, None),
        ("FROM scratch\nCOPY a$ b\n", 2, "lone"),
        ("FROM scratch\nCOPY 'unterminated b\n", 2, "cannot split"),
        ('FROM scratch\nCOPY ["a", \n', 2, "malformed JSON"),
        ('FROM scratch\nCOPY ["a", 1]\n', 2, "array of strings"),
        ("FROM scratch\nRUN\n", 2, "needs an argument"),
        ("FROM scratch\nRUN []\n", 2, "at least a program"),
        ("FROM scratch\nRUN --mount=type=cache x\n", 2, "RUN option '--mount=type=cache' is not supported"),
        ("FROM scratch\nRUN --network=bridge x\n", 2, "RUN --network=bridge is not supported"),
        ("FROM scratch\nRUN --network x\n", 2, "RUN option '--network' is not supported"),
        ("FROM scratch\nRUN --network=host\n", 2, "needs a command"),
        ('FROM scratch\nCMD ["a",\n', 2, "malformed JSON"),
        ("FROM scratch\nARG\n", 2, "needs an argument"),
        ("FROM scratch\nARG 1bad\n", 2, "invalid ARG name"),
        ("FROM scratch\nARG a b\n", 2, "one name"),
        ("FROM scratch\nARG ARCH=x\n", 2, "set by the build"),
        ("FROM scratch\nENV novalue\n", 2, "key=value"),
        ("FROM scratch\nENV a=1 b\n", 2, "key=value"),
        ("FROM scratch\nENV 1a=1\n", 2, "invalid ENV key"),
        ("FROM scratch\nLABEL =x\n", 2, "invalid LABEL key"),
        ("FROM scratch\nEXPOSE 80\n", 2, "unknown instruction 'EXPOSE'"),
        ("FROM scratch\nCOPY a \\\n", 2, "unterminated line continuation"),
        ("# nothing\n", 1, "no FROM"),
        ("FROM scratch\nRUN " + "x" * 70000 + "\n", 2, "longer than"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int | None, message: str | None) -> None:
    if line is None:  # a control case: the same shapes, valid, must parse
        assert parse(text)
        return
    with pytest.raises(KubefileError) as err:
        parse(text)
    assert err.value.line == line
    assert str(err.value).startswith(f"Kubefile:{line}: ")
    assert message in str(err.value)


def test_binary_and_non_utf8_input() -> None:
    with pytest.raises(KubefileError, match=r"^Kubefile:2: not valid UTF-8"):
        parse_bytes(b"FROM scratch\nCOPY \xff\xfe b\n")
    with pytest.raises(KubefileError, match=r"^Kubefile:2: contains a NUL"):
        parse_bytes(b"FROM scratch\n\x00\x01\x02")


def test_trailing_comment_rules() -> None:
    kf = parse('FROM scratch # base\nCOPY "a # b" c#d dest # note\nRUN echo 1 # the shell sees this\n')
    copy = kf.instructions[1]
    assert isinstance(copy, CopyInstr) and copy.sources == ("a # b", "c#d") and copy.dest == "dest"
    run = kf.instructions[2]
    assert isinstance(run, RunInstr) and run.command == "echo 1 # the shell sees this"


def test_run_network_option() -> None:
    kf = parse(
        'FROM scratch\nRUN --network=host curl -fsS x\nRUN --network=none ["a", "b c"]\nRUN echo --network=host\n'
    )
    runs = [i for i in kf.instructions if isinstance(i, RunInstr)]
    assert [(r.command, r.network) for r in runs] == [
        ("curl -fsS x", True),
        ("a 'b c'", False),
        ("echo --network=host", False),
    ]
