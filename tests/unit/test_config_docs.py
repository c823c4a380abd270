"""kind: Config applied to a rootfs tree: every strategy, every processor (sealer's golden), paths."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import yaml

from sealer.cluster.config_docs import ConfigDoc, apply_configs, parse_config, processed
from sealer.errors import ClusterfileError

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: gu-demo-configuration
  namespace: default
type: Opaque
data:
  kept: a2VwdA==
"""


def config(
    path: str = "etc/app.yaml", data: str = "", strategy: str | None = None, process: str | None = None
) -> ConfigDoc:
    spec: dict[str, object] = {"path": path, "data": data}
    if strategy:
        spec["strategy"] = strategy
    if process:
        spec["process"] = process
    return parse_config({"metadata": {"name": "c"}, "spec": spec}, "Clusterfile:20")


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_golden_value_tojson_tobase64_tosecret_sets_the_secrets_key(tmp_path: Path) -> None:
    write(tmp_path, "manifests/secret.yaml", SECRET)
    doc = config(
        "manifests/secret.yaml", "config:\n  username: root\n  passwd: xxx\n", process="value|toJson|toBase64|toSecret"
    )
    assert apply_configs([doc], tmp_path) == ["manifests/secret.yaml"]
    secret = yaml.safe_load((tmp_path / "manifests/secret.yaml").read_text())
    assert secret["data"]["config"] == base64.b64encode(b'{"passwd":"xxx","username":"root"}').decode()
    assert secret["data"]["kept"] == "a2VwdA=="  # the Secret's other keys stay
    assert secret["metadata"] == {"name": "gu-demo-configuration", "namespace": "default"}


def test_value_tojson_tobase64_matches_sealers_own_output() -> None:
    # sealer's pre_process_test: the same data gives the same text
    doc = config(data="config:\n  usrname: root\n  passwd: xxx\n", process="value|toJson|toBase64")
    assert processed(doc) == "config: eyJwYXNzd2QiOiJ4eHgiLCJ1c3JuYW1lIjoicm9vdCJ9\n"


def test_tojson_and_tobase64_without_value_take_the_whole_data(tmp_path: Path) -> None:
    assert processed(config(data="b: [1, 2]\na: x\n", process="toJson")) == '{"a":"x","b":[1,2]}'
    whole = processed(config(data="a: x\n", process="toJson|toBase64"))
    assert base64.b64decode(str(whole)) == b'{"a":"x"}'
    assert processed(config(data="plain text\n", process="toBase64")) == base64.b64encode(b"plain text\n").decode()


def test_value_tojson_gives_each_top_level_value_as_json_text() -> None:
    out = yaml.safe_load(str(processed(config(data="a: {y: 1, x: 2}\nb: [1]\n", process="value|toJson"))))
    assert out == {"a": '{"x":2,"y":1}', "b": "[1]"}


def test_tosecret_without_tobase64_encodes_each_value_once(tmp_path: Path) -> None:
    write(tmp_path, "s.yaml", SECRET)
    apply_configs([config("s.yaml", "user: root\npass: p@ss\n", process="value|toSecret")], tmp_path)
    data = yaml.safe_load((tmp_path / "s.yaml").read_text())["data"]
    assert base64.b64decode(data["user"]) == b"root"
    assert base64.b64decode(data["pass"]) == b"p@ss"


def test_tosecret_makes_a_secret_the_owner_alone_reads_when_there_is_none(tmp_path: Path) -> None:
    apply_configs([config("manifests/new.yaml", "k: v\n", process="toSecret")], tmp_path)
    path = tmp_path / "manifests/new.yaml"
    secret = yaml.safe_load(path.read_text())
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == "c"
    assert base64.b64decode(secret["data"]["k"]) == b"v"
    assert path.stat().st_mode & 0o777 == 0o600


def test_tosecret_refuses_a_file_without_one_secret(tmp_path: Path) -> None:
    write(tmp_path, "cm.yaml", "kind: ConfigMap\n")
    with pytest.raises(
        ClusterfileError, match=r"^Clusterfile:20: Config c: toSecret needs one Secret in cm.yaml, found 0$"
    ):
        apply_configs([config("cm.yaml", "k: v\n", process="toSecret")], tmp_path)


MULTI = """\
apiVersion: v1
data:
  key1: one
kind: ConfigMap
metadata:
  name: first
---
apiVersion: v1
data:
  key2: two
kind: ConfigMap
metadata:
  name: second
"""


def test_merge_reaches_every_document_and_adds_new_keys(tmp_path: Path) -> None:
    write(tmp_path, "etc/cm.yaml", MULTI)
    change = "data:\n  added: yes-new\nmetadata:\n  namespace: ns\n  labels: {a: b}\n"
    assert apply_configs([config("etc/cm.yaml", change, "merge")], tmp_path) == ["etc/cm.yaml"]
    docs = list(yaml.safe_load_all((tmp_path / "etc/cm.yaml").read_text()))
    assert [d["data"] for d in docs] == [{"key1": "one", "added": "yes-new"}, {"key2": "two", "added": "yes-new"}]
    assert [d["metadata"] for d in docs] == [
        {"name": "first", "namespace": "ns", "labels": {"a": "b"}},
        {"name": "second", "namespace": "ns", "labels": {"a": "b"}},
    ]


def test_merge_replaces_values_and_lists_and_merges_nested_mappings(tmp_path: Path) -> None:
    write(tmp_path, "charts/app/values.yaml", "image: {tag: v1, repo: r}\nports: [80, 443]\nreplicas: 1\n")
    apply_configs([config("charts/app/values.yaml", "image: {tag: v2}\nports: [8080]\n", "merge")], tmp_path)
    values = yaml.safe_load((tmp_path / "charts/app/values.yaml").read_text())
    assert values == {"image": {"tag": "v2", "repo": "r"}, "ports": [8080], "replicas": 1}


def test_merge_into_a_missing_file_writes_the_data(tmp_path: Path) -> None:
    apply_configs([config("etc/new.yaml", "a: 1\n", "merge")], tmp_path)
    assert (tmp_path / "etc/new.yaml").read_text() == "a: 1\n"


@pytest.mark.parametrize(
    ("existing", "data", "message"),
    [
        ("a: [1\n", "a: 1\n", "etc/x.yaml is not valid YAML to merge into"),
        ("- 1\n", "a: 1\n", "etc/x.yaml holds a document that is not a mapping"),
        ("a: 1\n", "- 1\n", "strategy merge needs spec.data to be a mapping"),
    ],
)
def test_merge_errors(tmp_path: Path, existing: str, data: str, message: str) -> None:
    write(tmp_path, "etc/x.yaml", existing)
    with pytest.raises(ClusterfileError, match=message) as err:
        apply_configs([config("etc/x.yaml", data, "merge")], tmp_path)
    assert str(err.value).startswith("Clusterfile:20: Config c: ")
    assert (tmp_path / "etc/x.yaml").read_text() == existing


def test_overwrite_is_the_default_and_keeps_the_files_mode(tmp_path: Path) -> None:
    path = write(tmp_path, "etc/a.conf", "old content that is longer\n")
    path.chmod(0o640)
    assert apply_configs([config("etc/a.conf", "new\n")], tmp_path) == ["etc/a.conf"]
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("strategy", "existing", "data", "result"),
    [
        ("insert", "b\n", "a\n", "a\nb\n"),
        ("insert", "b\n", "a", "a\nb\n"),
        ("append", "a\n", "b\n", "a\nb\n"),
        ("append", "a", "b\n", "a\nb\n"),
        ("append", None, "b\n", "b\n"),
        ("insert", None, "a\n", "a\n"),
    ],
)
def test_insert_and_append(tmp_path: Path, strategy: str, existing: str | None, data: str, result: str) -> None:
    if existing is not None:
        write(tmp_path, "etc/hosts.add", existing)
    apply_configs([config("etc/hosts.add", data, strategy)], tmp_path)
    assert (tmp_path / "etc/hosts.add").read_text() == result


def test_with_the_images_tree_as_source_a_second_run_changes_nothing(tmp_path: Path) -> None:
    source, target = tmp_path / "image", tmp_path / "target"
    write(source, "etc/list", "base\n")
    write(target, "etc/list", "base\n")
    docs = [config("etc/list", "first\n", "insert"), config("etc/list", "last\n", "append")]
    assert apply_configs(docs, target, source) == ["etc/list"]
    stat = (target / "etc/list").stat()
    assert apply_configs(docs, target, source) == []
    assert (target / "etc/list").read_text() == "first\nbase\nlast\n"
    assert (target / "etc/list").stat().st_mtime_ns == stat.st_mtime_ns
    assert (source / "etc/list").read_text() == "base\n"


def test_a_failing_config_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "etc/bad.yaml", "- a list\n")
    docs = [config("etc/good", "x\n"), config("etc/bad.yaml", "a: 1\n", "merge")]
    with pytest.raises(ClusterfileError):
        apply_configs(docs, tmp_path)
    assert not (tmp_path / "etc/good").exists()


def test_a_symlink_on_the_path_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink(outside, root / "etc")
    with pytest.raises(ClusterfileError, match=r"etc/x: etc is a symlink"):
        apply_configs([config("etc/x", "data\n")], root)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "must be relative to the rootfs, without '..'"),
        ("../x", "must be relative to the rootfs, without '..'"),
        ("etc/../../x", "must be relative to the rootfs, without '..'"),
        ("etc/", "names a directory"),
        (".", "names a directory"),
        ("", "is not a file path"),
    ],
)
def test_bad_paths_are_refused_with_one_line(path: str, message: str) -> None:
    with pytest.raises(ClusterfileError, match=message) as err:
        parse_config(
            {"metadata": {"name": "c"}, "spec": {"path": path, "data": "x"}}, "Clusterfile:9", "Clusterfile:12"
        )
    assert str(err.value).startswith("Clusterfile:12: spec.path") or "is required" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"path": "a", "strategy": "replace"},
            "spec.strategy is one of overwrite, merge, insert, append, not 'replace'",
        ),
        (
            {"path": "a", "process": "value|toYaml"},
            "spec.process 'toYaml' is not one of value, toJson, toBase64, toSecret",
        ),
        ({"path": "a", "process": "toSecret", "strategy": "merge"}, "toSecret sets a Secret's keys"),
        (
            {"path": "a", "process": "value", "data": "just text"},
            "with process value or toSecret, spec.data is a mapping",
        ),
        ({"path": "a", "process": "value|toBase64", "data": "a: {b: c}"}, "the value of a is not text"),
        ({"data": "x"}, "spec.path is required"),
    ],
)
def test_bad_specs_are_refused_when_read(spec: dict[str, str], message: str) -> None:
    with pytest.raises(ClusterfileError, match=message) as err:
        parse_config({"metadata": {"name": "c"}, "spec": spec}, "Clusterfile:9")
    assert str(err.value).startswith("Clusterfile:9: ")


def test_data_written_as_yaml_is_taken_as_its_text(tmp_path: Path) -> None:
    doc = parse_config({"spec": {"path": "etc/v.yaml", "data": {"a": {"b": 1}}}}, "Clusterfile:1")
    apply_configs([doc], tmp_path)
    assert yaml.safe_load((tmp_path / "etc/v.yaml").read_text()) == {"a": {"b": 1}}


def test_a_file_on_the_path_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    write(tmp_path, "etc/hosts", "127.0.0.1 localhost\n")
    with pytest.raises(
        ClusterfileError, match=r"^Clusterfile:20: Config c: etc/hosts/extra: etc/hosts is a file, not a directory$"
    ):
        apply_configs([config("etc/first", "x\n"), config("etc/hosts/extra", "y\n")], tmp_path)
    assert not (tmp_path / "etc/first").exists()


def test_processors_act_in_their_order_value_switching_to_each_value_from_where_it_stands() -> None:
    late = yaml.safe_load(str(processed(config(data="a: x\nb: 2\n", process="toJson|value|toBase64"))))
    assert late == {"a": base64.b64encode(b"x").decode(), "b": base64.b64encode(b"2").decode()}
    early = yaml.safe_load(str(processed(config(data="a: x\nb: 2\n", process="value|toJson|toBase64"))))
    assert early == {"a": base64.b64encode(b'"x"').decode(), "b": base64.b64encode(b"2").decode()}
