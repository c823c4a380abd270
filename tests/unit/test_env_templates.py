"""Env: KEY=value parsing, sealer's template syntax rendered into *.tmpl files, exported variables."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from sealer.cluster.env import (
    escape_template,
    exported_env,
    host_env,
    parse_env,
    render_text,
    render_tree,
    shell_exports,
)
from sealer.errors import ClusterfileError, TemplateError

ENV = {"Name": "web", "Pass": "s3cret", "Enc": base64.b64encode(b"decoded").decode()}


def test_env_entries_parse_and_a_hosts_value_replaces_the_clusters() -> None:
    env = parse_env([("A=1", "Clusterfile:5: spec.env"), ("B=x=y", "Clusterfile:6: spec.env"), ("C=", "f:7: spec.env")])
    assert env == {"A": "1", "B": "x=y", "C": ""}
    assert host_env(env, {"A": "2", "D": "4"}) == {"A": "2", "B": "x=y", "C": "", "D": "4"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("REGION", "Clusterfile:6: spec.env entry 'REGION' is not key=value"),
        ("=v", "Clusterfile:6: spec.env entry '=v' is not key=value"),
        ("etcd-dir=/data", "Clusterfile:6: spec.env entry 'etcd-dir=/data': 'etcd-dir' is not a variable name"),
        ("A=2", "Clusterfile:6: spec.env entry 'A=2': A is given twice"),
    ],
)
def test_env_entry_errors_name_the_entry(entry: str, message: str) -> None:
    with pytest.raises(ClusterfileError) as err:
        parse_env([("A=1", "Clusterfile:5: spec.env"), (entry, "Clusterfile:6: spec.env")])
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("name: {{ .Name }}\n", "name: web\n"),
        ("name: {{.Name}}", "name: web"),
        ("p: {{ .Pass | b64enc }}", f"p: {base64.b64encode(b's3cret').decode()}"),
        ("p: {{ b64enc .Pass }}", f"p: {base64.b64encode(b's3cret').decode()}"),
        ("d: {{ .Enc | b64dec }}", "d: decoded"),
        ("d: {{ b64dec .Enc }}", "d: decoded"),
        ("r: {{ .Pass | b64enc | b64dec }}", "r: s3cret"),
        ("a\n  {{- .Name -}}  \nb", "awebb"),
        ("a\n{{-\t.Name\n-}}\nb", "awebb"),
        ("n: {{ .Name }}-", "n: web-"),
        ("x{{/* a comment */}}y", "xy"),
        ('{{ "{{" }} .Name }}', "{{ .Name }}"),
        ("{{`{{`}} raw", "{{ raw"),
        ("no action at all", "no action at all"),
    ],
)
def test_sealers_template_syntax_renders(template: str, rendered: str) -> None:
    assert render_text(template, ENV, "etc/a.yaml.tmpl") == rendered


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("a: 1\nb: {{ .Missing }}\n", "etc/a.yaml.tmpl:2: Missing is not in the cluster's env"),
        ("a\n\n{{ if .Name }}x{{ end }}", "etc/a.yaml.tmpl:3: {{ if .Name }}: sealer renders {{ .KEY }}"),
        ("{{ .Name | upper }}", "etc/a.yaml.tmpl:1: {{ .Name | upper }}: sealer renders"),
        ("{{ b64enc .Name .Pass }}", "etc/a.yaml.tmpl:1: b64enc takes one value"),
        ("{{ .Name | }}", "etc/a.yaml.tmpl:1: {{ .Name | }} is not a template action sealer renders"),
        ("{{ .Name | b64dec }}", "etc/a.yaml.tmpl:1: b64dec: 'web' is not base64 of text"),
    ],
)
def test_template_errors_name_file_line_and_key(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        render_text(template, ENV, "etc/a.yaml.tmpl")
    assert str(err.value).startswith(message)
    assert "<no value>" not in str(err.value)


def test_escaped_text_renders_back_to_itself() -> None:
    text = 'a {{ .X }} b {{"{{"}} {{`{{`}}'
    assert render_text(escape_template(text), {}, "f") == text
    assert escape_template({"k": [text, 1]}) == {"k": [escape_template(text), 1]}


def make_tree(root: Path) -> None:
    for rel, text in {
        "etc/kubeadm.yaml.tmpl": "podSubnet: {{ .Name }}\n",
        "charts/app/values.yaml.tmpl": "password: {{ .Pass | b64enc }}\n",
        "manifests/deep/x.yaml.tmpl": "name: {{ .Name }}\n",
        "scripts/init.sh.tmpl": "{{ .NotRendered }}",  # outside etc/, charts/, manifests/
        "etc/plain.yaml": "{{ .NotATemplate }}",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_render_tree_writes_each_template_beside_itself_truncated(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "etc/kubeadm.yaml").write_text("stale bytes from an earlier, much longer rendering\n" * 3)
    changed = render_tree(tmp_path, ENV)
    assert changed == ["etc/kubeadm.yaml", "charts/app/values.yaml", "manifests/deep/x.yaml"]
    assert (tmp_path / "etc/kubeadm.yaml").read_text() == "podSubnet: web\n"
    assert (tmp_path / "charts/app/values.yaml").read_text() == f"password: {base64.b64encode(b's3cret').decode()}\n"
    assert not (tmp_path / "scripts/init.sh").exists()
    assert (tmp_path / "etc/plain.yaml").read_text() == "{{ .NotATemplate }}"
    assert render_tree(tmp_path, ENV) == []  # the same env again: nothing to write


def test_render_tree_per_host_into_another_directory(tmp_path: Path) -> None:
    root, out = tmp_path / "rootfs", tmp_path / "host-b"
    make_tree(root)
    changed = render_tree(root, {**ENV, "Name": "host-b"}, out)
    assert "manifests/deep/x.yaml" in changed
    assert (out / "manifests/deep/x.yaml").read_text() == "name: host-b\n"
    assert not (root / "manifests/deep/x.yaml").exists()


def test_a_template_that_fails_leaves_every_file_unwritten(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "manifests/late.yaml.tmpl").write_text("ok: 1\nbad: {{ .Missing }}\n")
    with pytest.raises(TemplateError, match=r"^manifests/late.yaml.tmpl:2: Missing is not in the cluster's env"):
        render_tree(tmp_path, ENV)
    assert not (tmp_path / "etc/kubeadm.yaml").exists()


def test_a_symlinked_template_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0\n")
    (tmp_path / "rootfs/etc").mkdir(parents=True)
    os.symlink(secret, tmp_path / "rootfs/etc/shadow.tmpl")
    with pytest.raises(TemplateError, match=r"etc/shadow\.tmpl: a template is a file of the image, not a symlink"):
        render_tree(tmp_path / "rootfs", ENV)
    assert not (tmp_path / "rootfs/etc/shadow").exists()


def test_exported_env_reaches_a_child_process_with_host_ip() -> None:
    env = exported_env({"A": 'it\'s "quoted" $HOME', "B": "2"}, "10.0.0.7")
    script = shell_exports(env) + 'sh -c \'printf "%s|%s|%s" "$A" "$B" "$HostIP"\''
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, env={})
    assert out.stdout == 'it\'s "quoted" $HOME|2|10.0.0.7'
