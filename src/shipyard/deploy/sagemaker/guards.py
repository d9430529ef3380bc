"""The spend guards that run in AWS, not on the laptop: ``--ttl`` and ``--idle`` (docs/cost.md, "Spend guards").

- ``--ttl 3d``: a one-time EventBridge Scheduler schedule (``Names.ttl_schedule``) at ``record.expires_at``
  whose universal target calls SageMaker's DeleteEndpoint on this endpoint, with the guard role.
  ActionAfterCompletion NONE: the schedule stays after it fired (a finished one-time schedule costs nothing), so
  ``status`` can read it back and say what deleted the endpoint; ``cleanup`` deletes it.
- ``--idle 4h``: a CloudWatch alarm (``Names.idle``) on the endpoint's ``Invocations`` (Sum) ≤ 0 over the whole
  window, missing data breaching (an endpoint nobody calls publishes no Invocations at all). It notifies the
  alarms' topic (``--notify``); with ``--idle-action delete`` an EventBridge rule on the alarm's change to ALARM
  starts a Step Functions state machine that deletes the endpoint. Scheduler cannot listen to alarms and an
  alarm's actions cannot call SageMaker, so the rule and a one-task state machine are the smallest thing that
  can, with no Lambda code to own.

The state machine waits until ``idle`` after the deploy or update that set it up, then deletes the endpoint only
if the alarm is still in ALARM: CloudWatch's first evaluation of a new alarm looks back over ``idle`` of time
before the endpoint existed (all missing: breaching), and that first ALARM must not delete a fresh endpoint.

The guard role (``Names.guard_role``, path /shipyard/) is trusted by scheduler, states and events
(``aws:SourceAccount`` this account) and may only DeleteEndpoint on this endpoint, and, for the idle delete,
read this alarm and start this state machine. Every guard is tagged where its API takes tags (a schedule
takes none) and recorded with its kind (``cleanup.GUARD_KINDS``) the moment it exists.
"""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from typing import Any

from shipyard.cloud.cloudwatch import AlarmSpec
from shipyard.cloud.session import Aws
from shipyard.deploy.base import DeployRun, SilentReporter
from shipyard.deploy.options import DeployOptions, idle_window
from shipyard.deploy.sagemaker import alarms
from shipyard.deploy.sagemaker.cleanup import GUARD_KINDS
from shipyard.deploy.sagemaker.cleanup import remove as remove_kinds
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import ROLE_PATH, VARIANT, Names
from shipyard.deploy.state import Deployment, now_utc, parse_time
from shipyard.units import format_duration

__all__ = [
    "GUARD_POLICY",
    "RETRY",
    "alarm_pattern",
    "ensure",
    "guard_policy",
    "guard_trust",
    "idle_alarm",
    "machine_arn",
    "state_machine_definition",
    "wanted",
]

GUARD_POLICY = "shipyard-guard"
GUARD_SERVICES = ("scheduler.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com")
# Scheduler retries a failed DeleteEndpoint (throttled, the endpoint Updating) for up to a day (its maxima: 185
# attempts, 86,400 s)
RETRY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86_400}
TARGET_ID = "shipyard-idle-delete"
SOONEST = timedelta(minutes=1)  # a schedule is put at least this far ahead (an update past the expiry)


def wanted(options: DeployOptions, record: Deployment) -> set[str]:
    """The guard kinds a deployment of ``options`` has: the schedule with an expiry, the alarm with ``idle``,
    the rule and state machine with ``idle_action="delete"``, the role when something deletes."""
    kinds: set[str] = set()
    if record.expires_at:
        kinds.add("ttl-schedule")
    if options.idle is not None:
        kinds.add("idle-alarm")
        if options.idle_action == "delete":
            kinds.update({"idle-rule", "state-machine"})
    if kinds & {"ttl-schedule", "state-machine"}:
        kinds.add("guard-role")
    return kinds


def guard_trust(account: str) -> dict[str, Any]:
    """Scheduler, Step Functions and EventBridge may assume the guard role, on behalf of this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": list(GUARD_SERVICES)},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def _endpoint_arn(ctx: Context) -> str:
    # SageMaker's ARNs are lower case whatever the endpoint name's case
    return ctx.aws.arn("sagemaker", f"endpoint/{ctx.names.endpoint.lower()}")


def machine_arn(aws: Aws, names: Names) -> str:
    """The idle state machine's ARN (``deploy`` makes it, ``status --reconcile`` looks for it)."""
    return aws.arn("states", f"stateMachine:{names.idle}")


def _alarm_arn(ctx: Context) -> str:
    return ctx.aws.arn("cloudwatch", f"alarm:{ctx.names.idle}")


def guard_policy(ctx: Context, kinds: set[str]) -> dict[str, Any]:
    """DeleteEndpoint on exactly this endpoint; with the idle delete, DescribeAlarms on its alarm and
    StartExecution on its state machine."""
    statements: list[dict[str, Any]] = [
        {"Sid": "DeleteThisEndpoint", "Effect": "Allow", "Action": "sagemaker:DeleteEndpoint",
         "Resource": _endpoint_arn(ctx)},
    ]  # fmt: skip
    if "state-machine" in kinds:
        statements += [
            {"Sid": "StartItsStateMachine", "Effect": "Allow", "Action": "states:StartExecution",
             "Resource": machine_arn(ctx.aws, ctx.names)},
            {"Sid": "ReadItsIdleAlarm", "Effect": "Allow", "Action": "cloudwatch:DescribeAlarms",
             "Resource": _alarm_arn(ctx)},
        ]  # fmt: skip
    return {"Version": "2012-10-17", "Statement": statements}


def idle_alarm(names: Names, idle: timedelta) -> AlarmSpec:
    """Invocations (Sum) ≤ 0 in every period of the window, Period × EvaluationPeriods = ``idle``; missing data
    breaching."""
    period, count = idle_window(idle)
    return AlarmSpec(
        name=names.idle,
        metric="Invocations",
        namespace=alarms.SAGEMAKER_NS,
        dimensions={"EndpointName": names.endpoint, "VariantName": VARIANT},
        threshold=0.0,
        evaluation_periods=count,
        datapoints=count,
        period_s=period,
        statistic="Sum",
        comparison="LessThanOrEqualToThreshold",
        description=f"Shipyard: no invocations of {names.endpoint} for {format_duration(period * count)}",
        missing_data="breaching",
    )


def alarm_pattern(alarm_arn: str, alarm_name: str) -> dict[str, Any]:
    """EventBridge's pattern for this alarm going to ALARM (CloudWatch sends "CloudWatch Alarm State Change")."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [alarm_arn],
        "detail": {"alarmName": [alarm_name], "state": {"value": ["ALARM"]}},
    }


def state_machine_definition(endpoint: str, alarm: str, armed_at: str, partition: str = "aws") -> dict[str, Any]:
    """Wait until ``armed_at`` (``idle`` after the deploy/update: an execution started later passes at once),
    read the alarm, and delete the endpoint only if it is still in ALARM (Step Functions' AWS SDK integrations:
    no Lambda)."""
    sdk = f"arn:{partition}:states:::aws-sdk"
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "MaxAttempts": 5, "BackoffRate": 2.0}]
    return {
        "Comment": f"Shipyard: delete the idle endpoint {endpoint} when its alarm {alarm} is in ALARM",
        "StartAt": "WaitUntilArmed",
        "States": {
            "WaitUntilArmed": {"Type": "Wait", "Timestamp": armed_at, "Next": "ReadAlarm"},
            "ReadAlarm": {
                "Type": "Task",
                "Resource": f"{sdk}:cloudwatch:describeAlarms",
                "Parameters": {"AlarmNames": [alarm]},
                "ResultSelector": {"state.$": "$.MetricAlarms[0].StateValue"},
                "Retry": retry,
                "Next": "StillIdle",
            },
            "StillIdle": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.state", "StringEquals": "ALARM", "Next": "DeleteEndpoint"}],
                "Default": "NotIdle",
            },
            "NotIdle": {"Type": "Succeed"},
            "DeleteEndpoint": {
                "Type": "Task",
                "Resource": f"{sdk}:sagemaker:deleteEndpoint",
                "Parameters": {"EndpointName": endpoint},
                "ResultPath": "$.deleted",  # the output keeps {"state": "ALARM"}: status reads which way it ended
                "Retry": retry,
                "End": True,
            },
        },
    }


# -- create, keep right, remove -------------------------------------------------------------------------
def ensure(ctx: Context, run: DeployRun) -> None:
    """Put the guards ``run.options`` and ``run.record.expires_at`` ask for (a deploy, or an update: the same
    names, the schedule moved to the record's expiry) and remove those no longer asked for."""
    record = run.record
    kinds = wanted(run.options, record)
    stale = tuple(k for k in GUARD_KINDS if k not in kinds and record.of(k))
    if stale:
        report = remove_kinds(ctx, record, stale, run.saver, SilentReporter())
        run.step(f"removed the guards no longer asked for: {', '.join([*report.deleted, *report.already_gone])}")
    if not kinds:
        return
    role_arn = _role(ctx, run, kinds) if "guard-role" in kinds else None
    said: list[str] = []
    if "ttl-schedule" in kinds and role_arn:
        said.append(_schedule(ctx, run, role_arn))
    if "idle-alarm" in kinds:
        said.append(_idle(ctx, run, kinds, role_arn))
    run.step("; ".join(said))


def _role(ctx: Context, run: DeployRun, kinds: set[str]) -> str:
    names, record = ctx.names, run.record
    arn = ctx.iam.create_role(
        names.guard_role,
        trust=guard_trust(ctx.aws.account),
        path=ROLE_PATH,
        tags=ctx.tag_list,
        description=f"Shipyard's spend guards of {record.name}: delete its endpoint at its TTL or when idle",
    )
    record.add("guard-role", names.guard_role)
    run.save()
    ctx.iam.put_policy(names.guard_role, GUARD_POLICY, guard_policy(ctx, kinds))
    return arn


def _schedule(ctx: Context, run: DeployRun, role_arn: str) -> str:
    record, names = run.record, ctx.names
    soonest = now_utc() + SOONEST
    expires = max(parse_time(record.expires_at) or soonest, soonest)  # an expiry already past: at once
    at = expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    ctx.scheduler.put(
        names.ttl_schedule,
        at=at,
        target={
            "Arn": ctx.aws.arn("scheduler", "aws-sdk:sagemaker:deleteEndpoint", region=False, account=False),
            "RoleArn": role_arn,
            "Input": json.dumps({"EndpointName": names.endpoint}),
            "RetryPolicy": dict(RETRY),
        },
        description=f"Shipyard: delete the endpoint {names.endpoint} at its TTL ({at} UTC)",
    )
    record.add("ttl-schedule", names.ttl_schedule)
    run.save()
    return f"TTL schedule {names.ttl_schedule} deletes the endpoint at {at.replace('T', ' ')} UTC"


def _idle(ctx: Context, run: DeployRun, kinds: set[str], role_arn: str | None) -> str:
    record, names, options = run.record, ctx.names, run.options
    assert options.idle is not None
    topics = [r.id for r in record.of("sns-topic")] or (alarms.topic(ctx, run) if options.notify else [])
    spec = idle_alarm(names, options.idle)
    ctx.cloudwatch.put_metric_alarm(spec, actions=topics, ok_actions=[], tags=ctx.tag_list)
    record.add("idle-alarm", names.idle)
    run.save()
    idle = format_duration(int(options.idle.total_seconds()))
    said = f"idle alarm {names.idle} ({idle} without an invocation)" + (f" notifies {options.notify}" if topics else "")
    if "state-machine" not in kinds or role_arn is None:
        return said
    armed_at = (now_utc() + options.idle).strftime("%Y-%m-%dT%H:%M:%SZ")
    machine = ctx.stepfunctions.put(
        names.idle,
        definition=state_machine_definition(names.endpoint, names.idle, armed_at, ctx.aws.identity().partition),
        role_arn=role_arn,
        arn=machine_arn(ctx.aws, ctx.names),
        tags=[{"key": key, "value": value} for key, value in ctx.tags.items()],
    )
    record.add("state-machine", machine)
    run.save()
    ctx.events.put_rule(
        names.idle,
        pattern=alarm_pattern(_alarm_arn(ctx), names.idle),
        description=f"Shipyard: the idle alarm of {names.endpoint} went to ALARM: start {names.idle}",
        tags=ctx.tag_list,
    )
    record.add("idle-rule", names.idle)
    run.save()
    ctx.events.put_target(names.idle, target_id=TARGET_ID, arn=machine, role_arn=role_arn)
    current = ctx.cloudwatch.describe_alarms([names.idle])
    if current and current[0].state == "ALARM":  # already idle: no change to ALARM would reach the new rule
        ctx.cloudwatch.set_state(names.idle, "OK", "Shipyard armed the idle delete; the next evaluation decides")
    return f"{said}; EventBridge rule {names.idle} → Step Functions {names.idle} deletes it (not before {armed_at})"
