"""kind: Plugin: types and phases, spec.on selectors, phase order, plugin order, HOSTNAME/LABEL/TAINT data."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from sealer.cluster.plugins import (
    OPERATIONS,
    PHASES,
    HostLike,
    Plugin,
    Taint,
    check_addresses,
    hostnames,
    label_commands,
    load_image_plugins,
    nodes_by_address,
    not_ready,
    operation_steps,
    parse_plugin,
    plugins_for_phase,
    select_hosts,
    shell_workdir,
    taint_commands,
)
from sealer.errors import ClusterfileError

HOSTS = [
    HostLike("10.0.0.1", "master"),
    HostLike("10.0.0.2", "master"),
    HostLike("10.0.0.5", "node"),
    HostLike("10.0.0.6", "node"),
    HostLike("10.0.0.7", "node"),
]
ADDRESSES = [h.address for h in HOSTS]


def plugin(
    type_: str = "SHELL", action: str = "PostInstall", on: str | None = None, data: str = "echo hi", name: str = "p"
) -> Plugin:
    """A Plugin document starting at line 5 of a Clusterfile (its data from line 13, with no spec.on)."""
    spec = f"  type: {type_}\n  action: {action}\n"
    if on is not None:
        spec += f"  on: {on!r}\n"
    spec += "  data: |\n" + textwrap.indent(data, "    ") + "\n"
    text = "\n" * 4 + f"apiVersion: sealer.aliyun.com/v1alpha1\nkind: Plugin\nmetadata:\n  name: {name}\nspec:\n{spec}"
    node = yaml.compose(text)
    assert node is not None
    return parse_plugin(node, "Clusterfile")


def test_every_type_parses_and_sealers_taint_spelling_is_taken() -> None:
    assert plugin("SHELL", "PreInit").type == "SHELL"
    assert plugin("HOSTNAME", "PreInit", data="10.0.0.1 m1").type == "HOSTNAME"
    assert plugin("LABEL", "PreGuest", data="10.0.0.5 a=b").type == "LABEL"
    assert plugin("TAINT", "PostInstall", data="10.0.0.5 a=b:NoSchedule").type == "TAINT"
    assert plugin("Taint", "PostInstall", data="10.0.0.5 a=b:NoSchedule").type == "TAINT"
    assert plugin("CLUSTERCHECK", "PostInstall", data="").type == "CLUSTERCHECK"
    assert plugin(action="PreJoin|PostJoin").actions == ("PreJoin", "PostJoin")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"type_": "ETCD"},
            "Clusterfile:5: plugin p: spec.type is one of SHELL, HOSTNAME, LABEL, TAINT, CLUSTERCHECK, not 'ETCD'",
        ),
        (
            {"action": "post-install"},
            "Clusterfile:5: plugin p: spec.action 'post-install' is not one of Originally, PreInit",
        ),
        ({"action": "PreInit|Later"}, "spec.action 'Later' is not one of"),
        ({"type_": "LABEL", "action": "PreInit", "data": "10.0.0.5 a=b"}, "a LABEL plugin runs in PostJoin, PreGuest"),
        (
            {"type_": "HOSTNAME", "action": "PostInstall", "data": "10.0.0.5 n"},
            "a HOSTNAME plugin runs in Originally, PreInit, PreJoin, not PostInstall",
        ),
        ({"on": "app=web", "action": "PreInit"}, "on 'app=web' selects nodes by label, which exist only in PostJoin"),
        ({"on": "app=web", "action": "PostInstall|Originally"}, "not in Originally"),
        ({"on": "10.0.0.300"}, "spec.on: '10.0.0.300' is not an IP address or an IPv4 range A-B"),
        ({"on": "10.0.0.9-10.0.0.1"}, "bad address range '10.0.0.9-10.0.0.1'"),
        ({"on": "master||node"}, "has an empty selector"),
        ({"on": "app=we b"}, "'app=we b' is not a node label key=value"),
        ({"data": "  "}, "a SHELL plugin's spec.data is its script"),
    ],
)
def test_bad_plugins_are_refused_with_one_line(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ClusterfileError) as err:
        plugin(**kwargs)
    assert message in str(err.value)
    assert str(err.value).startswith("Clusterfile:")
    assert "\n" not in str(err.value)


def test_unknown_fields_are_refused_at_their_line() -> None:
    node = yaml.compose(
        "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: p}\nspec:\n  type: SHELL\n  scope: master\n"
    )
    assert node is not None
    with pytest.raises(ClusterfileError, match=r"^Clusterfile:6: unknown field 'spec.scope'$"):
        parse_plugin(node, "Clusterfile")


@pytest.mark.parametrize(
    ("on", "phase", "expected"),
    [
        (None, "PostInstall", ADDRESSES),
        ("", "PreInit", ADDRESSES),
        ("master", "PostInstall", ["10.0.0.1", "10.0.0.2"]),
        ("node", "PostInstall", ["10.0.0.5", "10.0.0.6", "10.0.0.7"]),
        ("master0", "PostInstall", ["10.0.0.1"]),
        ("10.0.0.7,10.0.0.2", "PostInstall", ["10.0.0.2", "10.0.0.7"]),
        ("10.0.0.5-10.0.0.6", "PostInstall", ["10.0.0.5", "10.0.0.6"]),
        ("master0|10.0.0.7", "PostInstall", ["10.0.0.1", "10.0.0.7"]),
        ("disk=ssd", "PostInstall", ["10.0.0.5", "10.0.0.7"]),
        ("disk=ssd,zone=a", "PostInstall", ["10.0.0.7"]),
    ],
)
def test_selectors(on: str | None, phase: str, expected: list[str]) -> None:
    labels = {"10.0.0.5": {"disk": "ssd"}, "10.0.0.6": {"disk": "hdd"}, "10.0.0.7": {"disk": "ssd", "zone": "a"}}
    chosen = select_hosts(plugin(action=phase, on=on), phase, HOSTS, node_labels=labels)
    assert chosen == expected


def test_join_and_delete_phases_act_on_their_hosts_only() -> None:
    p = plugin(action="PreJoin|PostJoin|PreClean|PostClean|PostInstall", on="node")
    for phase in ("PreJoin", "PostJoin", "PreClean", "PostClean"):
        assert select_hosts(p, phase, HOSTS, scope=["10.0.0.6", "10.0.0.2"]) == ["10.0.0.6"]
    assert select_hosts(p, "PostInstall", HOSTS, scope=["10.0.0.6"]) == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]


def test_a_label_selector_is_refused_in_a_phase_before_the_nodes_exist() -> None:
    p = plugin(action="PostInstall", on="disk=ssd")
    with pytest.raises(
        ClusterfileError, match=r"^Clusterfile:5: plugin p: on 'disk=ssd' selects nodes by label.*not in PreInit$"
    ):
        select_hosts(p, "PreInit", HOSTS)


def test_addresses_that_are_not_the_clusters_are_refused() -> None:
    check_addresses(plugin(on="10.0.0.1-10.0.0.2"), ADDRESSES)
    with pytest.raises(ClusterfileError, match=r"^Clusterfile:5: plugin p: 10.0.0.9 is not a host of the cluster$"):
        check_addresses(plugin(on="10.0.0.9"), ADDRESSES)
    with pytest.raises(ClusterfileError, match=r"10\.0\.0\.8 is not a host"):
        check_addresses(plugin("TAINT", data="10.0.0.7-10.0.0.8 a:NoSchedule"), ADDRESSES)


def phases(operation: str) -> list[str]:
    return [s for s in OPERATIONS[operation] if not s.startswith("@")]


def test_phase_order_of_each_operation() -> None:
    create = OPERATIONS["create"]
    assert phases("create") == ["Originally", "PreInit", "PostInit", "PreGuest", "PostInstall"]
    assert create.index("PreInit") < create.index("@init") < create.index("@join") < create.index("PreGuest")
    assert create.index("PreGuest") < create.index("@cmds") < create.index("PostInstall")
    assert create.index("Originally") < create.index("@deliver") < create.index("PreInit")
    assert OPERATIONS["join"] == ("PreJoin", "@join", "PostJoin")
    assert OPERATIONS["delete"] == ("PreClean", "@reset", "PostClean")
    assert OPERATIONS["upgrade"] == ("PreUpgrade", "@upgrade", "PostUpgrade")
    assert sorted(p for op in OPERATIONS for p in phases(op)) == sorted(PHASES)
    assert shell_workdir("Originally", "/var/lib/sealer/c") is None
    assert shell_workdir("PreInit", "/var/lib/sealer/c") == "/var/lib/sealer/c"


IMAGE_A = """\
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {name: a1}
spec: {type: SHELL, action: PostInstall, data: echo a1}
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {name: a2}
spec: {type: SHELL, action: PreInit|PostInstall, data: echo a2}
"""
IMAGE_B = """\
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {name: shared}
spec: {type: SHELL, action: PostInstall, data: echo image}
"""


def test_plugin_order_image_files_by_name_then_clusterfile_and_a_name_overrides(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins/b.yaml").write_text(IMAGE_B)
    (tmp_path / "plugins/a.yaml").write_text(IMAGE_A)
    (tmp_path / "plugins/notes.txt").write_text("not a plugin")
    image = load_image_plugins(tmp_path)
    assert [p.name for p in image] == ["a1", "a2", "shared"]
    clusterfile = [plugin(name="c1"), plugin(name="c0"), plugin(name="shared", data="echo mine")]
    ordered = plugins_for_phase("PostInstall", image, clusterfile)
    assert [(p.name, p.data.strip()) for p in ordered] == [
        ("a1", "echo a1"),
        ("a2", "echo a2"),
        ("c1", "echo hi"),
        ("c0", "echo hi"),
        ("shared", "echo mine"),
    ]
    assert [p.name for p in plugins_for_phase("PreInit", image, clusterfile)] == ["a2"]
    steps = [(step, [p.name for p in found]) for step, found in operation_steps("create", image, clusterfile)]
    assert steps == [
        ("Originally", []),
        ("@deliver", []),
        ("PreInit", ["a2"]),
        ("@init", []),
        ("PostInit", []),
        ("@join", []),
        ("PreGuest", []),
        ("@cmds", []),
        ("PostInstall", ["a1", "a2", "c1", "c0", "shared"]),
    ]
    assert plugins_for_phase("PostClean", image, clusterfile) == []


def test_image_plugins_are_rendered_with_the_env_when_given(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    text = "apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: z}\nspec:\n  type: SHELL\n  action: PreInit\n"
    text += "  data: echo {{ .Zone }}\n"
    (tmp_path / "plugins/x.yml").write_text(text)
    assert load_image_plugins(tmp_path)[0].data == "echo {{ .Zone }}"
    assert load_image_plugins(tmp_path, {"Zone": "a"})[0].data == "echo a"
    with pytest.raises(ClusterfileError, match=r"^plugins/x\.yml:7: Zone is not in the cluster's env"):
        load_image_plugins(tmp_path, {})


def test_an_image_plugin_file_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins/x.yaml").write_text(IMAGE_B + "---\nkind: Config\n")
    with pytest.raises(ClusterfileError, match=r"^plugins/x.yaml:6: a document of kind Config is not a Plugin$"):
        load_image_plugins(tmp_path)
    (tmp_path / "plugins/x.yaml").write_text(IMAGE_B.replace("SHELL", "WASM"))
    with pytest.raises(ClusterfileError, match=r"^plugins/x.yaml:1: plugin shared: spec.type is one of"):
        load_image_plugins(tmp_path)


def test_hostname_lines() -> None:
    p = plugin("HOSTNAME", "PreInit", data="10.0.0.1 master-1\n# a comment\n\n10.0.0.5 node-1.example")
    assert hostnames(p) == {"10.0.0.1": "master-1", "10.0.0.5": "node-1.example"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("10.0.0.1 m1\n10.0.0.5", "Clusterfile:14: plugin p: '10.0.0.5' is not 'IP name'"),
        ("10.0.0.1 m1\n10.0.0.1 m2", "Clusterfile:14: plugin p: 10.0.0.1 is named twice"),
        ("10.0.0.1 Master_1", "Clusterfile:13: plugin p: 'Master_1' is not a host name"),
        ("host-a m1", "Clusterfile:13: plugin p: 'host-a' is not an IP address"),
    ],
)
def test_hostname_errors_name_plugin_and_line(data: str, message: str) -> None:
    with pytest.raises(ClusterfileError) as err:
        plugin("HOSTNAME", "PreInit", data=data)
    assert str(err.value).startswith(message)


NODES = {"10.0.0.5": "node-5", "10.0.0.6": "node-6", "10.0.0.7": "node-7"}


def test_label_commands_for_the_selected_hosts() -> None:
    p = plugin("LABEL", "PreGuest", data="10.0.0.5 disk=ssd,example.com/zone=a\n10.0.0.6-10.0.0.7 tier=")
    assert label_commands(p, NODES, ["10.0.0.5", "10.0.0.7"]) == [
        ["kubectl", "label", "node", "node-5", "disk=ssd", "example.com/zone=a", "--overwrite"],
        ["kubectl", "label", "node", "node-7", "tier=", "--overwrite"],
    ]
    with pytest.raises(ClusterfileError, match=r"no node has the address 10\.0\.0\.6"):
        label_commands(p, {"10.0.0.5": "node-5"}, ["10.0.0.6"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("10.0.0.5 disk", "Clusterfile:13: plugin p: 'disk' is not a node label key=value"),
        ("10.0.0.5\n", "Clusterfile:13: plugin p: '10.0.0.5' is not 'IP k=v,k2=v2'"),
        ("10.0.0.5 a=b\n10.0.0.6 -bad=x", "Clusterfile:14: plugin p: '-bad=x' is not a node label"),
    ],
)
def test_label_errors_name_plugin_and_line(data: str, message: str) -> None:
    with pytest.raises(ClusterfileError) as err:
        plugin("LABEL", "PreGuest", data=data)
    assert str(err.value).startswith(message)


def test_taint_commands_skip_what_is_already_so() -> None:
    data = "\n".join(
        [
            "10.0.0.5,10.0.0.6 dedicated=db:NoSchedule",
            "10.0.0.7 gpu:NoExecute",
            "10.0.0.5 old:PreferNoSchedule-",
            "10.0.0.6 gone:NoSchedule-",
            "10.0.0.7 every-",
        ]
    )
    p = plugin("TAINT", "PostInstall", data=data)
    current = {
        "10.0.0.5": [Taint("dedicated", "db", "NoSchedule"), Taint("old", "", "PreferNoSchedule")],
        "10.0.0.6": [Taint("dedicated", "web", "NoSchedule")],
        "10.0.0.7": [Taint("every", "x", "NoSchedule"), Taint("every", "y", "NoExecute")],
    }
    assert taint_commands(p, NODES, current, ["10.0.0.5", "10.0.0.6", "10.0.0.7"]) == [
        ["kubectl", "taint", "node", "node-6", "dedicated=db:NoSchedule", "--overwrite"],
        ["kubectl", "taint", "node", "node-7", "gpu:NoExecute"],
        ["kubectl", "taint", "node", "node-5", "old:PreferNoSchedule-"],
        ["kubectl", "taint", "node", "node-7", "every-"],
    ]
    assert taint_commands(p, NODES, current, ["10.0.0.6"]) == [
        ["kubectl", "taint", "node", "node-6", "dedicated=db:NoSchedule", "--overwrite"]
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "10.0.0.5 a=b:NoWay",
            "Clusterfile:13: plugin p: taint effect 'NoWay' is not one of NoSchedule, PreferNoSchedule, NoExecute",
        ),
        ("10.0.0.5 a=b", "Clusterfile:13: plugin p: 'a=b' needs an effect"),
        ("10.0.0.5 a=b:NoSchedule\n10.0.0.5", "Clusterfile:14: plugin p: '10.0.0.5' is not 'IPs key=value:Effect'"),
        ("10.0.0.5 =b:NoSchedule", "Clusterfile:13: plugin p: '=b:NoSchedule' is not a taint"),
    ],
)
def test_taint_errors_name_plugin_and_line(data: str, message: str) -> None:
    with pytest.raises(ClusterfileError) as err:
        plugin("TAINT", "PostInstall", data=data)
    assert str(err.value).startswith(message)


def test_nodes_as_kubectl_shows_them() -> None:
    nodes = {
        "items": [
            {
                "metadata": {"name": "m1", "labels": {"a": "b"}},
                "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "m1"}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            },
            {
                "metadata": {"name": "n1"},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
                    "conditions": [{"type": "Ready", "status": "False"}],
                },
            },
        ]
    }
    found = nodes_by_address(nodes)
    assert found["10.0.0.1"] == {
        "name": "m1",
        "labels": {"a": "b"},
        "taints": [Taint("k", "", "NoSchedule")],
        "ready": True,
    }
    assert not_ready(nodes, ["10.0.0.1", "10.0.0.5", "10.0.0.6"]) == ["10.0.0.5", "10.0.0.6"]
