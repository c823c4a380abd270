"""The one line sealer shows for a failed task: what the task said, not Ansible's generic words."""

from __future__ import annotations

from sealer.cluster.runner import _reason


def test_a_module_message_is_the_reason() -> None:
    assert _reason({"msg": "Destination /etc not writable", "stderr": "x"}) == "Destination /etc not writable"


def test_a_failed_raw_task_is_explained_by_its_output_without_ssh_noise() -> None:
    res = {
        "msg": "non-zero return code",
        "stdout": "10.0.0.2: the image has no executable bin/registry for arm64\r\n",
        "stderr": "Shared connection to 10.0.0.2 closed.\r\n",
    }
    assert _reason(res) == "10.0.0.2: the image has no executable bin/registry for arm64"


def test_a_failed_command_keeps_its_last_three_lines_of_stderr() -> None:
    res = {"msg": "non-zero return code", "stderr": "a\nb\n\nc\nd\n", "stdout": "ignored"}
    assert _reason(res) == "b | c | d"


def test_nothing_said_is_failed() -> None:
    assert _reason({}) == "failed"


def test_a_loops_failure_is_its_failed_items() -> None:
    res = {"msg": "One or more items failed", "results": [
        {"msg": "fine", "failed": False},
        {"msg": "plugin smoke (Clusterfile:9) failed on 10.0.0.1 in PostInstall (exit 3): no answer", "failed": True},
    ]}  # fmt: skip
    assert _reason(res) == "plugin smoke (Clusterfile:9) failed on 10.0.0.1 in PostInstall (exit 3): no answer"
