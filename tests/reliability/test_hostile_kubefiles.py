"""Malformed and hostile Kubefiles, through ``sealer build`` itself: each exits non-zero with one
line ``Kubefile:N: ...`` naming the line at fault, and writes nothing (the store is unchanged,
nothing appears outside the context)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import Sealer
from tests.reliability.conftest import store_state

# (Kubefile text, line named, words of the message)
CASES: dict[str, tuple[bytes, int, str]] = {
    # FROM
    "FROM missing": (b"COPY a b\n", 1, "FROM must come first"),
    "FROM without argument": (b"FROM\n", 1, "needs an argument"),
    "FROM with two images": (b"FROM a b\n", 1, "one image"),
    "FROM multi-stage": (b"FROM a AS b\n", 1, "multi-stage"),
    "FROM invalid reference": (b"FROM Bad:Ref\n", 1, "invalid reference"),
    "FROM twice": (b"FROM scratch\nFROM scratch\n", 2, "only one FROM"),
    "FROM an image not in the store": (b"FROM nowhere/base:v1\n", 1, "FROM nowhere/base:v1"),
    "no FROM at all": (b"# only a comment\n", 1, "no FROM"),
    "empty file": (b"", 1, "no FROM"),
    # COPY
    "COPY without destination": (b"FROM scratch\nCOPY onlyone\n", 2, "at least one source"),
    "COPY without argument": (b"FROM scratch\nCOPY\n", 2, "needs an argument"),
    "COPY --from": (b"FROM scratch\nCOPY --from=x a b\n", 2, "not supported"),
    "COPY unknown variable": (b"FROM scratch\nCOPY $NOPE b\n", 2, "unknown variable"),
    "COPY malformed variable": (b"FROM scratch\nCOPY ${b-ad} b\n", 2, "invalid variable"),
    "COPY lone dollar": (b"FROM scratch\nCOPY a$ b\n", 2, "lone"),
    "COPY unterminated quote": (b"FROM scratch\nCOPY 'a b\n", 2, "cannot split"),
    "COPY unterminated JSON": (b'FROM scratch\nCOPY ["a", \n', 2, "malformed JSON"),
    "COPY JSON with a number": (b'FROM scratch\nCOPY ["a", 1]\n', 2, "array of strings"),
    "COPY source missing": (b"FROM scratch\nCOPY missing.txt dest\n", 2, "missing.txt"),
    "COPY ../ source": (b"FROM scratch\nCOPY ../outside dest\n", 2, "escapes the build context"),
    "COPY deep ../ source": (b"FROM scratch\nCOPY d/../../outside dest\n", 2, "escapes the build context"),
    "COPY absolute source": (b"FROM scratch\nCOPY /etc/passwd dest\n", 2, "escapes the build context"),
    "COPY through a symlink out": (b"FROM scratch\nCOPY link-out/passwd dest\n", 2, "outside the build context"),
    "COPY a symlink to ..": (b"FROM scratch\nCOPY up/outside dest\n", 2, "outside the build context"),
    "COPY destination ../..": (b"FROM scratch\nCOPY a.txt ../..\n", 2, "escapes the rootfs"),
    "COPY per-arch file missing": (b"FROM scratch\nCOPY ${ARCH}/tool bin\n", 2, "arm64/tool"),
    # RUN / CMD
    "RUN without argument": (b"FROM scratch\nRUN\n", 2, "needs an argument"),
    "RUN empty JSON": (b"FROM scratch\nRUN []\n", 2, "at least a program"),
    "RUN unterminated JSON": (b'FROM scratch\nRUN ["a",\n', 2, "malformed JSON"),
    "CMD unterminated JSON": (b'FROM scratch\nCMD ["a",\n', 2, "malformed JSON"),
    "CMD without argument": (b"FROM scratch\nCMD\n", 2, "needs an argument"),
    # ARG / ENV / LABEL
    "ARG without argument": (b"FROM scratch\nARG\n", 2, "needs an argument"),
    "ARG bad name": (b"FROM scratch\nARG 1bad\n", 2, "invalid ARG name"),
    "ARG two names": (b"FROM scratch\nARG a b\n", 2, "one name"),
    "ARG overriding ARCH": (b"FROM scratch\nARG ARCH=x\n", 2, "set by the build"),
    "ARG without value used": (b"ARG V\nFROM scratch\nCOPY a.txt $V\n", 3, "no value"),
    "ENV without value": (b"FROM scratch\nENV novalue\n", 2, "key=value"),
    "ENV half pairs": (b"FROM scratch\nENV a=1 b\n", 2, "key=value"),
    "ENV bad key": (b"FROM scratch\nENV 1a=1\n", 2, "invalid ENV key"),
    "LABEL empty key": (b"FROM scratch\nLABEL =x\n", 2, "invalid LABEL key"),
    # shape of the file
    "unknown instruction": (b"FROM scratch\nEXPOSE 80\n", 2, "unknown instruction 'EXPOSE'"),
    "unterminated continuation": (b"FROM scratch\nCOPY a.txt \\\n", 2, "unterminated line continuation"),
    "huge line": (b"FROM scratch\nRUN " + b"x" * 70000 + b"\n", 2, "longer than"),
    "huge continued instruction": (b"FROM scratch\nRUN " + b"x \\\n" * 40000 + b"x\n", 2, "longer than"),
    "non-UTF-8": (b"FROM scratch\nCOPY \xff\xfe b\n", 2, "not valid UTF-8"),
    "NUL byte": (b"FROM scratch\n\x00\x01\x02\n", 2, "NUL"),
    "binary garbage": (b"FROM scratch\n" + bytes(range(128, 256)) * 4, 2, "not valid UTF-8"),
    "huge file": (b"FROM scratch\n" + b"# padding\n" * 500_000, 0, "larger than"),
}


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-kubefiles")
    (root / "outside").write_text("not for the image")
    ctx = root / "ctx"
    (ctx / "d").mkdir(parents=True)
    (ctx / "a.txt").write_text("a")
    (ctx / "amd64").mkdir()
    (ctx / "amd64" / "tool").write_bytes(b"\x7fELF")
    os.symlink("/etc", ctx / "link-out")
    os.symlink("..", ctx / "up")
    return ctx


@pytest.mark.parametrize("case", list(CASES))
def test_build_refuses(case: str, context: Path, sealer: Sealer, tmp_path: Path) -> None:
    text, line, words = CASES[case]
    kubefile = tmp_path / "Kubefile"
    kubefile.write_bytes(text)
    before = store_state(sealer)
    outside = sorted(context.parent.rglob("*"))
    proc = sealer.run("build", "-f", str(kubefile), "--platform", "linux/amd64,linux/arm64", "-t", "h:v1",
                      str(context), check=False)  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.startswith(f"sealer: error: {kubefile}:{line}: "), proc.stderr[:300]
    assert words in proc.stderr, proc.stderr[:300]
    assert proc.stderr.count("\n") == 1, proc.stderr[:300]
    assert store_state(sealer) == before
    assert sorted(context.parent.rglob("*")) == outside
