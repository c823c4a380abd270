"""upgrade: a running cluster moved to a new image, one host at a time."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sealer.cluster.upgrade import UpgradeRequest, upgrade_cluster
from sealer.cluster.upgrade_plan import Plan
from sealer.commands._options import reporter_for
from sealer.commands._output import become_password_source, info, print_json
from sealer.errors import SealerError, UsageError
from sealer.store.layout import Store


@dataclass(frozen=True)
class UpgradeArgs:
    """``sealer upgrade``'s command line."""

    image: str
    name: str | None
    check: bool = False
    max_unavailable: str = "1"
    no_drain: bool = False
    yes: bool = False
    strict_host_keys: bool = False
    output: str = "text"


def plan_lines(plan: Plan) -> list[str]:
    kubeadm = "kubeadm upgrades it" if plan.kubeadm else "the same version: no kubeadm call"
    lines = [
        f"cluster {plan.cluster}: {plan.old_image} (Kubernetes {plan.old_version}) -> {plan.new_image} "
        f"(Kubernetes {plan.new_version}), {kubeadm}",
        *(f"first: {step}" for step in plan.before),
    ]
    for i, host in enumerate(plan.hosts, 1):
        if host.done:
            lines.append(f"{i}. {host.address} ({host.role}, {host.platform}): at {plan.new_image} already, skipped")
            continue
        lines.append(f"{i}. {host.address} ({host.role}, {host.platform}, batch {host.batch + 1}):")
        lines.extend(f"   - {step}" for step in host.steps)
    lines.extend(f"then: {step}" for step in plan.after)
    return lines


def print_plan(plan: Plan, output: str) -> None:
    if output == "json":
        print_json(plan.to_json())
    else:
        sys.stdout.write("".join(f"{line}\n" for line in plan_lines(plan)))


def run(args: UpgradeArgs) -> None:
    request = UpgradeRequest(args.name, args.image, args.check, args.max_unavailable, not args.no_drain,
                             args.strict_host_keys, become_password_source())  # fmt: skip

    def confirm(plan: Plan) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("sealer upgrade changes every host of the cluster: give --yes (--check shows the plan)")
        print_plan(plan, "text")
        import click

        return click.confirm("Upgrade the cluster as planned?", default=False, err=True)

    result = upgrade_cluster(Store.open(), request, reporter_for(args.output), confirm)
    plan = result.plan
    if args.check:
        print_plan(plan, args.output)
        return
    if not result.runs:
        raise SealerError("not confirmed: nothing changed")
    if args.output == "json":
        print_json({**plan.to_json(), "upgraded": [h.address for h in plan.hosts if not h.done],
                    "skipped": result.skipped, "clusterDir": str(result.cluster_dir)})  # fmt: skip
        return
    if result.skipped:
        info(f"already at {plan.new_image}, skipped: {', '.join(result.skipped)}")
    info(f"cluster {plan.cluster} upgraded to {plan.new_image} (Kubernetes {plan.new_version})")
