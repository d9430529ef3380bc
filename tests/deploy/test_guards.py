"""The spend guards that run in AWS (deploy/sagemaker/guards.py) against a moto server, read back through boto3:
the TTL schedule, the guard role, the idle alarm, its EventBridge rule and its state machine.

moto's Scheduler stores schedules but never runs their targets, its EventBridge does not deliver CloudWatch's
alarm state changes, and its Step Functions does not run aws-sdk tasks; so the firing of a guard is scripted
where it is tested: the endpoint is deleted as the schedule's target would (DeleteEndpoint), the schedule stays
(ActionAfterCompletion NONE keeps it), and the TTL's time is moved into the past in the record.
UpdateEndpoint and DescribeEndpoint are scripted on update (moto lacks UpdateEndpoint), as in the update tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from test_deploy_sagemaker import make, spec, tagged_everywhere
from test_deploy_sagemaker_failures import _emulate_update

from infra.moto import ACCOUNT, REGION
from infra.oci_registry import OciRegistry
from infra.scripted_aws import answer, error
from shipyard.deploy.options import DeployOptions, Serverless, idle_window, parse_idle
from shipyard.errors import SpecError

pytestmark = pytest.mark.integration

ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/digits"
MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:shipyard-digits-idle"
ALARM_ARN = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:shipyard-digits-idle"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/shipyard/shipyard-digits.guard"
TAG = {"Key": "shipyard:deployment", "Value": "digits"}
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def guards_in_moto() -> dict[str, list[str]]:
    """Every schedule, rule, state machine, idle alarm and guard role in moto (listed through boto3)."""
    scheduler, events, sfn = boto3.client("scheduler"), boto3.client("events"), boto3.client("stepfunctions")
    cloudwatch, iam = boto3.client("cloudwatch"), boto3.client("iam")
    idle = cloudwatch.describe_alarms(AlarmNamePrefix="shipyard-digits-idle")["MetricAlarms"]
    return {
        "schedules": [s["Name"] for s in scheduler.list_schedules()["Schedules"]],
        "rules": [r["Name"] for r in events.list_rules()["Rules"]],
        "state_machines": [m["name"] for m in sfn.list_state_machines()["stateMachines"]],
        "idle_alarms": [a["AlarmName"] for a in idle],
        "guard_roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].endswith(".guard")],
    }


NONE_LEFT: dict[str, list[str]] = {"schedules": [], "rules": [], "state_machines": [], "idle_alarms": [],
                                   "guard_roles": []}  # fmt: skip


def schedule_at(name: str = "shipyard-digits-ttl") -> datetime:
    found = boto3.client("scheduler").get_schedule(Name=name)
    expression = found["ScheduleExpression"]
    assert expression.startswith("at(") and expression.endswith(")")
    return datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)


def test_ttl_and_idle_delete_make_every_guard_exactly_update_moves_the_schedule_and_cleanup_removes_all(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _target, steps = make(state_path)
    before = datetime.now(UTC)
    deployer.deploy(
        spec(digits_bundle, small_image, registry, ttl=timedelta(days=3), idle=timedelta(hours=4),
             idle_action="delete", notify="ops@example.com")
    )  # fmt: skip
    record = deployer.record("digits")
    expires = datetime.fromisoformat(record.expires_at or "")

    # The TTL schedule: one-time at the record's expiry (UTC, to the second), DeleteEndpoint on this endpoint.
    schedule = boto3.client("scheduler").get_schedule(Name="shipyard-digits-ttl")
    assert schedule_at() == expires.replace(microsecond=0)
    assert before + timedelta(days=3) - timedelta(seconds=2) <= schedule_at() <= expires
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "NONE" and schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:deleteEndpoint"
    assert json.loads(target["Input"]) == {"EndpointName": "digits"}
    assert target["RoleArn"] == ROLE_ARN
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}

    # The guard role: trusted by the three services for this account only; deletes exactly this endpoint.
    iam = boto3.client("iam")
    role = iam.get_role(RoleName="shipyard-digits.guard")["Role"]
    assert role["Path"] == "/shipyard/"
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert sorted(trust["Principal"]["Service"]) == [
        "events.amazonaws.com", "scheduler.amazonaws.com", "states.amazonaws.com"
    ]  # fmt: skip
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert TAG in iam.list_role_tags(RoleName="shipyard-digits.guard")["Tags"]
    policy = iam.get_role_policy(RoleName="shipyard-digits.guard", PolicyName="shipyard-guard")["PolicyDocument"]
    assert {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]} == {
        "DeleteThisEndpoint": ("sagemaker:DeleteEndpoint", ENDPOINT_ARN),
        "StartItsStateMachine": ("states:StartExecution", MACHINE_ARN),
        "ReadItsIdleAlarm": ("cloudwatch:DescribeAlarms", ALARM_ARN),
    }

    # The idle alarm: Invocations Sum ≤ 0 in each of 4 one-hour periods, missing data breaching, tells the topic.
    cloudwatch = boto3.client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["shipyard-digits-idle"])["MetricAlarms"]
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:shipyard-digits-alarms"
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"],
            alarm["DatapointsToAlarm"], alarm["Threshold"], alarm["ComparisonOperator"],
            alarm["TreatMissingData"]) == ("AWS/SageMaker", "Invocations", "Sum", 3600, 4, 4, 0.0,
                                           "LessThanOrEqualToThreshold", "breaching")  # fmt: skip
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "digits"},
                                   {"Name": "VariantName", "Value": "AllTraffic"}]  # fmt: skip
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == []
    assert TAG in cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]

    # The rule: the alarm going to ALARM, its one target the state machine, with the guard role.
    events = boto3.client("events")
    rule = events.describe_rule(Name="shipyard-digits-idle")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [ALARM_ARN],
        "detail": {"alarmName": ["shipyard-digits-idle"], "state": {"value": ["ALARM"]}},
    }
    assert rule["State"] == "ENABLED"
    (rule_target,) = events.list_targets_by_rule(Rule="shipyard-digits-idle")["Targets"]
    assert (rule_target["Arn"], rule_target["RoleArn"]) == (MACHINE_ARN, ROLE_ARN)
    assert TAG in events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"]

    # The state machine: wait until armed, read the alarm, delete the endpoint only when still in ALARM.
    sfn = boto3.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=MACHINE_ARN)
    assert (machine["roleArn"], machine["type"]) == (ROLE_ARN, "STANDARD")
    definition = json.loads(machine["definition"])
    states = definition["States"]
    assert definition["StartAt"] == "WaitUntilArmed"
    armed = datetime.fromisoformat(states["WaitUntilArmed"]["Timestamp"])
    assert before + timedelta(hours=4) - timedelta(seconds=2) <= armed <= datetime.now(UTC) + timedelta(hours=4)
    assert states["ReadAlarm"]["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:describeAlarms"
    assert states["ReadAlarm"]["Parameters"] == {"AlarmNames": ["shipyard-digits-idle"]}
    assert states["StillIdle"]["Choices"] == [{"Variable": "$.state", "StringEquals": "ALARM",
                                              "Next": "DeleteEndpoint"}]  # fmt: skip
    assert states["DeleteEndpoint"]["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:deleteEndpoint"
    assert states["DeleteEndpoint"]["Parameters"] == {"EndpointName": "digits"} and states["DeleteEndpoint"]["End"]
    assert {"key": "shipyard:deployment", "value": "digits"} in sfn.list_tags_for_resource(
        resourceArn=MACHINE_ARN)["tags"]  # fmt: skip

    # Recorded with their kinds; status shows each guard in a line.
    assert {kind: [r.id for r in record.of(kind)] for kind in
            ("ttl-schedule", "idle-rule", "state-machine", "idle-alarm", "guard-role")} == {
        "ttl-schedule": ["shipyard-digits-ttl"], "idle-rule": ["shipyard-digits-idle"],
        "state-machine": [MACHINE_ARN], "idle-alarm": ["shipyard-digits-idle"],
        "guard-role": ["shipyard-digits.guard"]}  # fmt: skip
    (row,) = deployer.status("digits")
    at = expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert row.guards == (
        f"TTL: EventBridge Scheduler deletes the endpoint at {at} UTC (shipyard-digits-ttl)",
        "idle 4h: alarm shipyard-digits-idle notifies ops@example.com; deletes via EventBridge rule "
        "shipyard-digits-idle → Step Functions shipyard-digits-idle",
    )
    assert row.ended_by is None
    assert any("TTL schedule shipyard-digits-ttl" in s and "idle alarm shipyard-digits-idle" in s for s in steps.steps)

    # An update with a new --ttl moves the schedule (now + 5d); the idle guard is kept (the record's options).
    time.sleep(1.1)  # versions are per second
    deployer2, target2, _ = make(state_path)
    _emulate_update(target2, ["Updating", "InService"])
    deployer2.update("digits", str(digits_bundle), image=small_image, ttl="5d")
    moved = deployer2.record("digits")
    assert schedule_at() == datetime.fromisoformat(moved.expires_at or "").replace(microsecond=0)
    assert schedule_at() >= before + timedelta(days=5) - timedelta(seconds=2)
    assert moved.options is not None and moved.options.idle == timedelta(hours=4)
    assert guards_in_moto()["rules"] == ["shipyard-digits-idle"]

    # cleanup: no guard left in moto, nothing tagged left.
    report = deployer2.cleanup("digits")
    assert guards_in_moto() == NONE_LEFT
    assert tagged_everywhere() == {} and report.already_gone == []


def test_updates_drop_the_idle_delete_then_every_guard_with_off_then_add_a_ttl(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    deployer.deploy(
        spec(digits_bundle, small_image, registry, idle=timedelta(minutes=90), idle_action="delete", notify="a@b.co")
    )
    (alarm,) = boto3.client("cloudwatch").describe_alarms(AlarmNames=["shipyard-digits-idle"])["MetricAlarms"]
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (2700, 2)  # 90 min in whole periods under an hour
    assert guards_in_moto() == {**NONE_LEFT, "rules": ["shipyard-digits-idle"],
                                "state_machines": ["shipyard-digits-idle"], "idle_alarms": ["shipyard-digits-idle"],
                                "guard_roles": ["shipyard-digits.guard"]}  # fmt: skip
    time.sleep(1.1)
    deployer2, target2, steps = make(state_path)
    _emulate_update(target2, ["Updating", "InService"])
    deployer2.update("digits", str(digits_bundle), image=small_image, idle_action="notify")
    assert guards_in_moto() == {**NONE_LEFT, "idle_alarms": ["shipyard-digits-idle"]}
    record = deployer2.record("digits")
    assert not record.of("idle-rule") and not record.of("state-machine") and not record.of("guard-role")
    assert any(s.startswith("removed the guards no longer asked for") for s in steps.steps)
    # --idle off (and --ttl off) on an update removes that guard
    time.sleep(1.1)
    deployer3, target3, _ = make(state_path)
    _emulate_update(target3, ["Updating", "InService"])
    deployer3.update("digits", str(digits_bundle), image=small_image, idle="off", ttl="off")
    assert guards_in_moto() == NONE_LEFT
    off = deployer3.record("digits")
    assert off.options is not None and off.options.idle is None and off.expires_at is None
    assert not any(off.of(kind) for kind in ("idle-alarm", "ttl-schedule", "guard-role"))
    time.sleep(1.1)
    deployer4, target4, _ = make(state_path)
    _emulate_update(target4, ["Updating", "InService"])
    deployer4.update("digits", str(digits_bundle), image=small_image, ttl="12h")  # a TTL added by an update
    assert guards_in_moto() == {**NONE_LEFT, "schedules": ["shipyard-digits-ttl"],
                                "guard_roles": ["shipyard-digits.guard"]}  # fmt: skip
    deployer2.cleanup("digits")
    assert guards_in_moto() == NONE_LEFT and tagged_everywhere() == {}


def test_a_fired_ttl_schedule_is_told_by_status_and_cleanup_finishes_the_rest(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """The firing is scripted (moto's Scheduler runs no target): DeleteEndpoint as the schedule's target calls it,
    the schedule kept (ActionAfterCompletion NONE), the record's expiry moved into the past."""
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, ttl=timedelta(hours=2)))
    assert guards_in_moto() == {**NONE_LEFT, "schedules": ["shipyard-digits-ttl"],
                                "guard_roles": ["shipyard-digits.guard"]}  # fmt: skip
    boto3.client("sagemaker").delete_endpoint(EndpointName="digits")  # what the schedule's target does
    record = deployer.record("digits")
    fired = datetime.now(UTC) - timedelta(minutes=1)
    record.expires_at = fired.isoformat()
    deployer.state.put(record)

    (row,) = deployer.status("digits")
    assert row.status == "Deleted"
    assert row.ended_by == f"its TTL schedule shipyard-digits-ttl deleted the endpoint at {fired:%Y-%m-%d %H:%M} UTC"
    assert deployer.record("digits").details.ended_by == row.ended_by

    report = deployer.cleanup("digits")
    assert "endpoint digits" in report.already_gone
    assert "ttl-schedule shipyard-digits-ttl" in report.deleted
    assert guards_in_moto() == NONE_LEFT and tagged_everywhere() == {}
    assert report.forgotten


def test_reconcile_finds_the_guards_by_their_names(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, ttl=timedelta(hours=2), idle=timedelta(hours=1),
                         idle_action="delete"))  # fmt: skip
    state_path.unlink()
    (found,) = [r for r in deployer.reconcile(REGION) if r.name == "digits"]
    assert {kind: [r.id for r in found.of(kind)] for kind in
            ("ttl-schedule", "idle-rule", "state-machine", "idle-alarm", "guard-role")} == {
        "ttl-schedule": ["shipyard-digits-ttl"], "idle-rule": ["shipyard-digits-idle"],
        "state-machine": [MACHINE_ARN], "idle-alarm": ["shipyard-digits-idle"],
        "guard-role": ["shipyard-digits.guard"]}  # fmt: skip
    assert [r.id for r in found.of("role")] == ["shipyard-digits"]
    deployer.cleanup("digits")
    assert guards_in_moto() == NONE_LEFT


def test_plan_lists_every_guard_with_its_cost(aws: object, digits_bundle: Path, small_image: str,
                                              registry: OciRegistry, state_path: Path) -> None:  # fmt: skip
    deployer, _, _ = make(state_path)
    plan = deployer.plan(spec(digits_bundle, small_image, registry, ttl=timedelta(days=1), idle=timedelta(hours=4),
                              idle_action="delete"))  # fmt: skip
    rows = {(r.kind, r.name): r for r in plan.resources}
    schedule = rows[("EventBridge Scheduler schedule", "shipyard-digits-ttl")]
    assert "DeleteEndpoint digits" in schedule.detail and "14 million free" in schedule.detail
    assert schedule.monthly_usd == 0.0
    alarm = rows[("CloudWatch alarm", "shipyard-digits-idle")]
    assert "Sum ≤ 0 for 4h (4 × 3600 s)" in alarm.detail and alarm.monthly_usd == 0.10
    assert rows[("EventBridge rule", "shipyard-digits-idle")].monthly_usd == 0.0
    assert "4,000 free" in rows[("Step Functions state machine", "shipyard-digits-idle")].detail
    assert ("IAM role", "shipyard-digits.guard (path /shipyard/)") in rows


def _options(**values: Any) -> DeployOptions:
    return DeployOptions(**{"source": "bundle", "name": "digits", "target": "sagemaker", **values})


@pytest.mark.parametrize(
    ("values", "option", "words"),
    [
        ({"target": "local", "idle": timedelta(hours=2)}, "idle", "for sagemaker deployments"),
        ({"target": "local", "idle_action": "delete"}, "idle_action", "for sagemaker deployments"),
        ({"idle": timedelta(hours=2), "idle_action": "stop"}, "idle_action", "choose one of notify, delete"),
        ({"idle_action": "delete"}, "idle_action", "needs --idle"),
        ({"idle": timedelta(days=8), "idle_action": "delete"}, "idle", "at most 7 days"),
        ({"idle": timedelta(hours=30, minutes=30), "idle_action": "delete"}, "idle", "give whole hours"),
        ({"idle": timedelta(hours=2)}, "idle", "notifies nobody"),
        ({"idle": timedelta(hours=2), "idle_action": "delete", "serverless": Serverless(2048, 5)}, "idle",
         "bills only the seconds it serves"),
    ],
)  # fmt: skip
def test_idle_options_are_checked(values: dict[str, Any], option: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        _options(**values)
    assert caught.value.option == option and words in str(caught.value)


def test_idle_windows_multiply_to_the_idle_time() -> None:
    assert idle_window(timedelta(hours=4)) == (3600, 4)
    assert idle_window(timedelta(days=7)) == (3600, 168)
    assert idle_window(timedelta(minutes=90)) == (2700, 2)
    assert _options(idle=timedelta(days=7), idle_action="delete").idle == timedelta(days=7)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "shipyard")
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120, check=False
    )


def test_the_cli_takes_idle_flags_and_status_shows_the_guards(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    bad = _cli("deploy", str(tmp_path), "--name", "d", "--target", "sagemaker", "--idle", "2h", "--idle-action",
               "stop", "--dry-run")  # fmt: skip
    assert bad.returncode == 2 and "--idle-action 'stop': choose one of notify, delete" in bad.stderr
    local = _cli("deploy", str(tmp_path), "--name", "d", "--idle", "2h", "--dry-run")
    assert local.returncode == 2 and "--idle is for sagemaker deployments" in local.stderr
    plan = _cli("deploy", str(tmp_path), "--name", "d", "--target", "sagemaker", "--idle", "3h", "--idle-action",
                "delete", "--ttl", "1d", "--dry-run", "--region", REGION)  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    for name in ("shipyard-d-ttl", "shipyard-d-idle", "shipyard-d.guard"):
        assert name in plan.stdout

    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, ttl=timedelta(hours=6), idle=timedelta(hours=2),
                         idle_action="delete"))  # fmt: skip
    table = _cli("status", "digits", "--state", str(state_path))
    assert table.returncode == 0, table.stderr
    assert "guard: TTL: EventBridge Scheduler deletes the endpoint at" in table.stdout
    assert "guard: idle 2h: alarm shipyard-digits-idle notifies nobody; deletes via EventBridge rule" in table.stdout
    done = _cli("status", "digits", "--state", str(state_path), "--output", "json")
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads((SCHEMAS / "status.v1.json").read_text()))
    (row,) = document["deployments"]
    assert len(row["guards"]) == 2 and row["ended_by"] is None
    deployer.cleanup("digits")
    assert guards_in_moto() == NONE_LEFT


def test_an_idle_delete_is_told_by_status_from_the_state_machines_last_execution(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """EventBridge's start of the state machine is scripted (moto delivers no alarm state change): StartExecution
    with the event, then DeleteEndpoint as the state machine's task calls it. moto's executions stay RUNNING (it
    runs no aws-sdk task), so the finished execution (ListExecutions, DescribeExecution) is answered from a
    script: SUCCEEDED, its output keeping the alarm's state ALARM."""
    deployer, target, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, idle=timedelta(hours=2), idle_action="delete"))
    sfn = boto3.client("stepfunctions")
    event = {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "resources": [ALARM_ARN],
             "detail": {"alarmName": "shipyard-digits-idle", "state": {"value": "ALARM"}}}  # fmt: skip
    started = sfn.start_execution(stateMachineArn=MACHINE_ARN, name="alarm-1", input=json.dumps(event))
    boto3.client("sagemaker").delete_endpoint(EndpointName="digits")

    (row,) = deployer.status("digits")
    assert row.status == "Deleted"
    assert row.ended_by == "its idle state machine shipyard-digits-idle is deleting the endpoint (execution alarm-1)"

    stopped = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    client = target.aws(REGION).client("stepfunctions")
    answer(
        client,
        "ListExecutions",
        {
            "executions": [
                {
                    "executionArn": started["executionArn"],
                    "name": "alarm-1",
                    "stateMachineArn": MACHINE_ARN,
                    "status": "SUCCEEDED",
                    "startDate": stopped,
                    "stopDate": stopped,
                }
            ]
        },
    )
    answer(
        client,
        "DescribeExecution",
        {
            "executionArn": started["executionArn"],
            "stateMachineArn": MACHINE_ARN,
            "status": "SUCCEEDED",
            "startDate": stopped,
            "output": json.dumps({"state": "ALARM", "deleted": {}}),
        },
    )
    (row,) = deployer.status("digits")  # fmt: skip
    assert row.ended_by == (
        "its idle state machine shipyard-digits-idle deleted the endpoint at 2026-12-03 09:30 UTC (execution "
        "alarm-1: the alarm shipyard-digits-idle saw no invocation for its whole window)"
    )
    report = deployer.cleanup("digits")
    assert "endpoint digits" in report.already_gone and "state-machine " + MACHINE_ARN in report.deleted
    assert guards_in_moto() == NONE_LEFT and tagged_everywhere() == {}


def test_reconcile_takes_the_expiry_from_the_schedule_and_the_idle_guard_from_the_alarm(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """The schedule is moved as an update's --ttl moves it (UpdateSchedule) while the endpoint's expiry tag stays."""
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, ttl=timedelta(hours=2), idle=timedelta(hours=3),
                         idle_action="delete"))  # fmt: skip
    scheduler = boto3.client("scheduler")
    current = scheduler.get_schedule(Name="shipyard-digits-ttl")
    moved = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    scheduler.update_schedule(
        Name="shipyard-digits-ttl", ScheduleExpression=f"at({moved:%Y-%m-%dT%H:%M:%S})",
        ScheduleExpressionTimezone="UTC", FlexibleTimeWindow={"Mode": "OFF"}, Target=current["Target"],
    )  # fmt: skip
    state_path.unlink()
    (found,) = [r for r in deployer.reconcile(REGION) if r.name == "digits"]
    assert found.expires_at == moved.isoformat()
    assert found.options is not None
    assert (found.options.idle, found.options.idle_action) == (timedelta(hours=3), "delete")
    deployer.cleanup("digits")
    assert guards_in_moto() == NONE_LEFT


def test_a_state_machine_waits_for_a_role_step_functions_cannot_assume_yet(aws: object) -> None:
    """CreateStateMachine's answer for a role made seconds ago is scripted (moto does not check the role)."""
    from shipyard.cloud import Aws
    from shipyard.cloud.stepfunctions import StepFunctionsGateway

    gateway = StepFunctionsGateway(Aws(REGION))
    not_yet = error("AccessDeniedException", "Neither the global service principal states.amazonaws.com, nor the "
                    "regional one is authorized to assume the provided role.")  # fmt: skip
    calls = answer(gateway.client, "CreateStateMachine", not_yet, {"stateMachineArn": MACHINE_ARN,
                                                                   "creationDate": datetime.now(UTC)})  # fmt: skip
    slept: list[float] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("shipyard.cloud.stepfunctions.time.sleep", slept.append)
        arn = gateway.put("shipyard-digits-idle", definition={"StartAt": "x", "States": {}}, role_arn=ROLE_ARN,
                          arn=MACHINE_ARN)  # fmt: skip
    assert arn == MACHINE_ARN and len(calls) == 2 and slept == [2.0]


def test_the_guards_names_fit_their_services_limits() -> None:
    from shipyard.deploy.sagemaker.names import Names

    long = Names("a" * 63)
    assert len(long.idle) <= 64 and long.idle.endswith("-idle") and long.idle != Names("a" * 62).idle  # rule names
    assert len(long.ttl_schedule) <= 64 and len(long.guard_role) <= 64 and long.guard_role.endswith(".guard")
    assert Names("digits").idle == "shipyard-digits-idle"


def test_an_update_to_serverless_drops_the_idle_guard_and_keeps_the_ttl(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """UpdateEndpoint and DescribeEndpoint are scripted (moto lacks UpdateEndpoint). Serverless bills nothing idle."""
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, ttl=timedelta(hours=5), idle=timedelta(hours=2),
                         idle_action="delete"))  # fmt: skip
    time.sleep(1.1)
    deployer2, target2, _ = make(state_path)
    _emulate_update(target2, ["Updating", "InService"])
    deployer2.update("digits", str(digits_bundle), image=small_image, serverless="2048:10")
    assert guards_in_moto() == {**NONE_LEFT, "schedules": ["shipyard-digits-ttl"],
                                "guard_roles": ["shipyard-digits.guard"]}  # fmt: skip
    policy = boto3.client("iam").get_role_policy(RoleName="shipyard-digits.guard", PolicyName="shipyard-guard")
    assert [s["Sid"] for s in policy["PolicyDocument"]["Statement"]] == ["DeleteThisEndpoint"]
    options = deployer2.record("digits").options
    assert options is not None and options.idle is None and options.serverless == Serverless(2048, 10)
    deployer2.cleanup("digits")
    assert guards_in_moto() == NONE_LEFT


def test_a_too_short_idle_says_the_minimum_in_the_flags_unit() -> None:
    """``--idle 30m`` was refused with "at least 3600 seconds"; the flag is written in hours."""
    with pytest.raises(SpecError, match=r"idle '30m': at least 1h$"):
        parse_idle("30m")
