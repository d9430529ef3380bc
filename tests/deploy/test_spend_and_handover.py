"""Issue 16 end to end against moto: a digits deploy with ``--ttl`` and ``--idle --idle-action delete``, a budget,
the export in all three formats (checked by cfn-lint, a CDK synth and python-hcl2), and a cleanup that leaves
no schedule, alarm, rule, state machine or role behind; with the AWS calls each feature makes.

The pieces have their own tests (test_guards.py, test_cost.py, test_export.py, test_export_iac.py); this one runs
them together, the way a user does, so that what the guards make is what the export writes and what cleanup
removes. What moto cannot do (run the schedule's target, deliver the alarm's state change, answer GetProducts)
is not needed here: nothing fires.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from test_deploy_sagemaker import make, spec, tagged_everywhere

from deploy.test_export import lint
from deploy.test_export_iac import check_cdk, check_terraform, synthesize
from infra.moto import REGION
from infra.oci_registry import OciRegistry
from shipyard.deploy import cost
from shipyard.deploy.export.collect import collect
from shipyard.deploy.state import parse_time

pytestmark = pytest.mark.integration

GUARDS = {"TtlSchedule", "GuardRole", "IdleAlarm", "IdleRule", "IdleStateMachine"}


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    """The calls made between two readings of ``Aws.calls``."""
    return {call: n - before.get(call, 0) for call, n in sorted(after.items()) if n > before.get(call, 0)}


def substituted(value: Any, account: str) -> Any:
    """A template value with its ``Fn::Sub`` worked out as CloudFormation would for this deployment."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = str(value["Fn::Sub"])
        for key, known in (("AWS::Partition", "aws"), ("AWS::Region", REGION), ("AWS::AccountId", account),
                           ("DeploymentName", "digits")):  # fmt: skip
            text = text.replace("${" + key + "}", known)
        return text
    return value


def left_in_moto() -> dict[str, list[str]]:
    """What the guards and the alarms make, listed through boto3 (not the state): empty after cleanup."""
    scheduler, events = boto3.client("scheduler"), boto3.client("events")
    cloudwatch, sfn, iam = boto3.client("cloudwatch"), boto3.client("stepfunctions"), boto3.client("iam")
    return {
        "schedules": [s["Name"] for s in scheduler.list_schedules()["Schedules"]],
        "rules": [r["Name"] for r in events.list_rules()["Rules"]],
        "alarms": [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]],
        "state machines": [m["name"] for m in sfn.list_state_machines()["stateMachines"]],
        "roles": [r["RoleName"] for r in iam.list_roles(PathPrefix="/shipyard/")["Roles"]],
    }


def test_guards_budget_export_and_cleanup_end_to_end(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    deployer, target, _ = make(state_path)
    session = target.aws(REGION)
    calls: dict[str, dict[str, int]] = {}

    # 1. deploy with a TTL and an idle guard that deletes
    before = Counter(session.calls)
    options = spec(
        digits_bundle, small_image, registry, ttl=timedelta(days=3), idle=timedelta(hours=4), idle_action="delete",
        notify="ops@example.com",
    )  # fmt: skip
    deployer.deploy(options)
    calls["deploy"] = delta(session.calls, before)
    record = deployer.record("digits")
    assert {"ttl-schedule", "idle-alarm", "idle-rule", "state-machine", "guard-role"} <= {
        r.kind for r in record.resources
    }
    schedule = boto3.client("scheduler").get_schedule(Name="shipyard-digits-ttl")
    expires = parse_time(record.expires_at)
    assert expires is not None
    assert schedule["ScheduleExpression"] == f"at({expires.replace(tzinfo=None).isoformat(timespec='seconds')})"
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:deleteEndpoint"
    for call in ("scheduler:CreateSchedule", "events:PutRule", "events:PutTargets", "stepfunctions:CreateStateMachine"):
        assert calls["deploy"].get(call, 0) >= 1, (call, calls["deploy"])
    (row,) = deployer.status("digits")
    assert any("TTL" in line and "shipyard-digits-ttl" in line for line in row.guards), row.guards
    assert any("idle" in line.lower() for line in row.guards), row.guards
    assert row.hourly_usd and row.price_source  # moto has no Price List: the shipped table, and it says so

    # 2. a budget on Shipyard's cost-allocation tag
    before = Counter(session.calls)
    cost.set_budget(session, "10/month", emails=["ops@example.com"])
    budget = cost.budget_status(session)
    calls["budget set + status"] = delta(session.calls, before)
    assert budget is not None and budget.limit_usd == 10.0
    assert {call.split(":")[1] for call in calls["budget set + status"]} >= {"CreateBudget", "DescribeBudget"}

    # 3. the export: every guard in the template, which lints, synthesizes the same through the CDK and parses
    # as Terraform naming every resource
    before = Counter(session.calls)
    files = deployer.export("digits", "cloudformation", tmp_path / "cfn")
    calls["export"] = delta(session.calls, before)
    assert all(call.split(":")[1].startswith(("Get", "Describe", "List")) for call in calls["export"]), calls
    template_path = next(f for f in files if f.name == "template.yaml")
    assert lint(template_path) == []
    document: dict[str, Any] = yaml.safe_load(template_path.read_text())
    assert set(document["Resources"]) >= GUARDS
    exported = document["Resources"]["TtlSchedule"]["Properties"]
    # the TTL's time and the idle guard's arming time are parameters (defaults: the live ones): a new stack made
    # from the template with times long past would delete its endpoint as soon as it exists
    assert exported["ScheduleExpression"] == {"Fn::Sub": "at(${TtlAt})"}
    assert f"at({document['Parameters']['TtlAt']['Default']})" == schedule["ScheduleExpression"]
    armed = document["Parameters"]["IdleArmedAt"]["Default"]
    definition = document["Resources"]["IdleStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    assert '"Timestamp": "${IdleArmedAt}"' in definition and armed not in definition
    live = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=record.one("state-machine"))
    assert json.loads(live["definition"])["States"]["WaitUntilArmed"]["Timestamp"] == armed
    assert substituted(exported["Target"]["Arn"], session.account) == schedule["Target"]["Arn"]
    assert substituted(exported["Target"]["Input"], session.account) == schedule["Target"]["Input"]
    stack = collect(target.context_of(record), record)
    check_cdk(stack, synthesize(stack, tmp_path / "cdk"))
    parsed = check_terraform(stack, tmp_path / "tf")
    assert parsed  # every file parsed
    assert [f.name for f in deployer.export("digits", "terraform", tmp_path / "tf-cli")] == [
        "main.tf", "variables.tf", "imports.tf", "outputs.tf"
    ]  # fmt: skip

    # 4. cleanup removes the schedule, the alarms, the rule, the state machine and both roles too
    assert any(left_in_moto().values())
    before = Counter(session.calls)
    report = deployer.cleanup("digits")
    calls["cleanup"] = delta(session.calls, before)
    assert report.forgotten
    assert left_in_moto() == {"schedules": [], "rules": [], "alarms": [], "state machines": [], "roles": []}
    assert tagged_everywhere() == {}
    assert cost.remove_budget(session)
    assert boto3.client("budgets").describe_budgets(AccountId=session.account).get("Budgets", []) == []

    for feature, made in calls.items():  # `pytest -s` prints them (docs/cost.md and the closing note quote them)
        print(f"{feature}: " + ", ".join(f"{call} ×{n}" if n > 1 else call for call, n in made.items()))
