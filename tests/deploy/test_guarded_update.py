"""Guarded updates on the sagemaker target (``deploy --update NAME NEW --canary/--linear/--all-at-once --bake``).

Every deploy runs against the moto server (IAM, ECR with a real registry on 127.0.0.1, S3, SageMaker, CloudWatch
Logs, CloudWatch alarms). moto does not implement UpdateEndpoint (HTTP 500) and keeps every endpoint InService, so
two operations are scripted on the target's own SageMaker client (tests/infra/scripted_aws.py): UpdateEndpoint
(its request is recorded and asserted) and DescribeEndpoint once the update is asked (SageMaker's blue/green
states: Updating with a ``PendingDeploymentSummary`` whose variant status moves, then InService on the new config,
or back on the old one after an alarm). Before UpdateEndpoint, DescribeEndpoint answers as moto would (InService on
the deployed config). The alarms are real moto alarms (PutMetricAlarm, SetAlarmState); the deploy that would make
them belongs to another part of issue 15, so these tests create them and record them as the deploy does
(``alarm`` resources named ``Names.alarm(METRIC)``), and delete them themselves before cleanup.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from test_deploy_sagemaker import make, spec, tagged_everywhere
from typer.testing import CliRunner

from infra.moto import REGION
from infra.oci_registry import OciRegistry
from infra.scripted_aws import answer
from shipyard.deploy import Deployer
from shipyard.deploy.options import DeployOptions, Rollout, parse_changes
from shipyard.deploy.sagemaker import SageMakerTarget
from shipyard.deploy.sagemaker.names import Names
from shipyard.errors import DeployFailed, SpecError

pytestmark = pytest.mark.integration

METRICS = ("ModelLatency", "OverheadLatency", "Invocation5XXErrors", "Invocation4XXErrors", "CPUUtilization")
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

# (EndpointStatus, the new fleet's variant status or None, minutes since the update began: that status's StartTime)
CANARY = [
    ("Updating", "Creating", 0),
    ("Updating", "Creating", 0),  # the same status seen twice: reported once
    ("Updating", "ActivatingTraffic", 6),
    ("Updating", "Baking", 7),
    ("Updating", "ActivatingTraffic", 12),
    ("Updating", "Baking", 13),
    ("InService", None, 23),
]


def _alarms(deployer: Deployer) -> list[str]:
    """The rollback alarms the deploy made (real alarms in moto, recorded in the state)."""
    names = Names("digits")
    recorded = {r.id for r in deployer.record("digits").of("alarm")}
    wanted = [names.alarm(m) for m in METRICS]
    assert set(wanted) <= recorded
    return wanted


def _blue_green(
    target: SageMakerTarget, phases: list[tuple[str, str | None, int]], *, back_to_old: bool = False, on: Any = None
) -> dict[str, Any]:
    """UpdateEndpoint recorded; DescribeEndpoint, once it was asked, through ``phases`` (the last repeats).

    ``back_to_old``: the update ends InService on the old config (SageMaker rolled it back). ``on(phase)`` runs as
    each phase is answered (an alarm is put into ALARM during the canary's bake).
    """
    sagemaker = target.aws(REGION).client("sagemaker")
    deployed = sagemaker.describe_endpoint(EndpointName="digits")
    old = deployed["EndpointConfigName"]
    seen: dict[str, Any] = {"asked": [], "old": old}
    script = list(phases)

    def update(params: dict[str, Any]) -> dict[str, Any]:
        seen["asked"].append(params)
        return {"EndpointArn": deployed["EndpointArn"]}

    def describe(params: dict[str, Any]) -> dict[str, Any]:
        base = {k: deployed[k] for k in ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime")}
        if not seen["asked"]:  # before the update: as moto answers
            return {**base, "EndpointStatus": "InService", "EndpointConfigName": old}
        if len(seen["asked"]) > 1:  # Shipyard's own rollback (UpdateEndpoint to the old config): done
            return {
                **base,
                "EndpointStatus": "InService",
                "EndpointConfigName": seen["asked"][-1]["EndpointConfigName"],
            }
        status, variant, minute = script.pop(0) if len(script) > 1 else script[0]
        if on is not None:
            on((status, variant, minute))
        new = seen["asked"][0]["EndpointConfigName"]
        live = new if status == "InService" and not back_to_old else old
        described: dict[str, Any] = {
            **base,
            "EndpointStatus": status,
            "EndpointConfigName": live,
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}],
        }
        if variant is not None:
            described["PendingDeploymentSummary"] = {
                "EndpointConfigName": new,
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "DesiredInstanceCount": 2,
                        "VariantStatus": [{"Status": variant, "StartTime": T0 + timedelta(minutes=minute)}],
                    }
                ],
            }
        if status == "UpdateRollbackFailed":
            described["FailureReason"] = "The deployment failed and so did the automatic rollback."
        if back_to_old and status == "InService":
            described["FailureReason"] = "The deployment was rolled back because an alarm was triggered."
        return described

    # Aws.calls does not see these two (an operation's own before-call handler answers ahead of the counter)
    seen["UpdateEndpoint"] = answer(sagemaker, "UpdateEndpoint", update)
    seen["DescribeEndpoint"] = answer(sagemaker, "DescribeEndpoint", describe)
    return seen


def _deployed(
    state_path: Path, bundle: Path, image: str, registry: OciRegistry, **changes: Any
) -> tuple[Deployer, Any]:
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(bundle, image, registry, instance_count=2, **changes))
    time.sleep(1.1)  # versions are per second
    return deployer, dataclasses.replace(deployer.record("digits").details)


def test_canary_update_request_progress_and_the_old_version_dropped(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """--canary 10%:5m --bake 10m. Scripted: UpdateEndpoint (moto lacks it) and DescribeEndpoint after it (moto keeps
    the endpoint InService): the canary's states, Creating → ActivatingTraffic → Baking twice → InService on the new
    config."""
    deployer, old = _deployed(state_path, digits_bundle, small_image, registry)
    alarms = _alarms(deployer)
    deployer2, target2, steps = make(state_path)
    seen = _blue_green(target2, CANARY)
    aws_calls = target2.aws(REGION).calls
    before = Counter(aws_calls)
    deployer2.update("digits", str(digits_bundle), image=small_image, canary="10%:5m", bake="10m")
    (request,) = seen["asked"]
    record = deployer2.record("digits")
    new = record.details.endpoint_config
    assert request["EndpointName"] == "digits" and request["EndpointConfigName"] == new != old.endpoint_config
    assert request["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 600,
            # the start (600 s) and provisioning (1800 s), two traffic steps of 300 s, the bake (600 s)
            "MaximumExecutionTimeoutInSeconds": 600 + 1800 + 2 * 300 + 600,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [
                {"AlarmName": "shipyard-digits-Invocation5XXErrors"},
                {"AlarmName": "shipyard-digits-ModelLatency"},
            ]
        },
    }
    assert {a["AlarmName"] for a in request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]} < set(alarms)
    start = steps.steps.index(f"updating digits to {new} (canary 10%:5m, bake 10m, rolls back on "
                              "shipyard-digits-Invocation5XXErrors, shipyard-digits-ModelLatency)")  # fmt: skip
    assert steps.steps[start + 1 : start + 8] == [
        f"creating the new fleet (2 instances) for {new}",
        "canary: 10% of capacity on the new fleet: turning on traffic",
        "canary: 10% of capacity on the new fleet, waiting 5m",
        "all traffic moving to the new fleet: turning on traffic",
        "baking 10m: all traffic on the new fleet, the old one kept until then",
        f"all traffic on {new}",
        f"deleted the previous version {old.endpoint_config}",
    ]
    # The old version is gone from AWS and from the record; the new options keep no rollout.
    sm = boto3.client("sagemaker")
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [new]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [record.details.model]
    assert record.status == "InService" and record.options is not None
    kept = json.loads(state_path.read_text())["deployments"]["digits"]["options"]
    assert "rollout" not in kept and "bake_s" not in kept
    calls = Counter(aws_calls)
    calls.subtract(before)
    assert calls["sagemaker:UpdateEndpoint"] == len(seen["UpdateEndpoint"])  # scripted calls are counted too
    print("AWS calls of a guarded update:", sorted((k, v) for k, v in calls.items() if v), calls.total())
    # DescribeEndpoint: the check that the endpoint is there, then one per poll (7 here: one per scripted phase)
    assert calls["sagemaker:UpdateEndpoint"] == 1 and calls["sagemaker:DescribeEndpoint"] == 1 + len(CANARY)
    assert calls["cloudwatch:DescribeAlarms"] == 0  # read only when SageMaker went back
    deployer2.cleanup("digits")
    assert tagged_everywhere() == {}


def test_alarm_rollback_is_reported_with_the_alarm_and_the_new_version_removed(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """--linear 50%:1m: the 5XX alarm fires during the first bake (SetAlarmState in moto, as the scripted
    DescribeEndpoint serves that phase) and SageMaker rolls back: the scripted DescribeEndpoint ends InService on the
    old config. Scripted: UpdateEndpoint and DescribeEndpoint (moto lacks the one and keeps endpoints InService)."""
    deployer, old = _deployed(state_path, digits_bundle, small_image, registry)
    _alarms(deployer)
    cloudwatch = boto3.client("cloudwatch")
    reason = "Threshold Crossed: 1 datapoint [4.0] was greater than or equal to the threshold (1.0)."

    def trip(phase: tuple[str, str | None, int]) -> None:
        if phase[1] == "Baking":
            cloudwatch.set_alarm_state(
                AlarmName="shipyard-digits-Invocation5XXErrors", StateValue="ALARM", StateReason=reason
            )

    deployer2, target2, steps = make(state_path)
    phases = [
        ("Updating", "Creating", 0),
        ("Updating", "ActivatingTraffic", 5),
        ("Updating", "Baking", 6),
        ("Updating", None, 7),  # rolling back: no pending deployment
        ("InService", None, 8),
    ]
    seen = _blue_green(target2, phases, back_to_old=True, on=trip)
    before = Counter(target2.aws(REGION).calls)
    with pytest.raises(DeployFailed) as raised:
        deployer2.update("digits", str(digits_bundle), image=small_image, linear="50%:1m")
    calls = Counter(target2.aws(REGION).calls)
    calls.subtract(before)
    assert calls["sagemaker:UpdateEndpoint"] == len(seen["UpdateEndpoint"])  # scripted calls are counted too
    print("AWS calls of a guarded update rolled back:", sorted((k, v) for k, v in calls.items() if v), calls.total())
    assert calls["cloudwatch:DescribeAlarms"] == 1  # which alarm fired, read once SageMaker went back
    assert str(raised.value) == (
        f"rolled back: alarm shipyard-digits-Invocation5XXErrors fired ({reason}); the endpoint is back on "
        f"{old.endpoint_config}"
    )
    assert raised.value.alarm == "shipyard-digits-Invocation5XXErrors"
    (request,) = seen["asked"]  # SageMaker went back by itself: no second UpdateEndpoint
    routing = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "LINEAR", "WaitIntervalInSeconds": 60, "LinearStepSize": {"Type": "CAPACITY_PERCENT",
                                                                                          "Value": 50}}  # fmt: skip
    assert "linear step 1/2: 50% of capacity on the new fleet, waiting 1m" in steps.steps
    record = deployer2.record("digits")
    assert record.status == "InService"
    assert (record.details.endpoint_config, record.details.model) == (old.endpoint_config, old.model)
    sm = boto3.client("sagemaker")
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [old.endpoint_config]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [old.model]
    assert [r.id for r in record.of("endpoint-config")] == [old.endpoint_config]
    deployer2.cleanup("digits")
    assert tagged_everywhere() == {}


def test_an_alarm_back_to_ok_after_the_rollback_is_named_from_its_history(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """The latency alarm fired during the bake and is OK again once traffic is back on the old fleet (a 3-of-5
    minutes alarm does that): the rollback still names it, from DescribeAlarmHistory. Scripted: UpdateEndpoint and
    DescribeEndpoint (moto lacks the one and keeps endpoints InService), and DescribeAlarmHistory (moto answers it
    with HTTP 500), answered with the StateUpdate items CloudWatch writes."""
    import json as jsonlib
    from datetime import UTC, datetime

    deployer, old = _deployed(state_path, digits_bundle, small_image, registry)
    _alarms(deployer)
    reason = "Threshold Crossed: 3 out of the last 5 datapoints were greater than the threshold (250000.0)."
    deployer2, target2, _steps = make(state_path)
    phases = [("Updating", "Creating", 0), ("Updating", "Baking", 4), ("InService", None, 8)]
    _blue_green(target2, phases, back_to_old=True)
    asked: list[str] = []

    def history(params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params["AlarmName"])
        items = []
        if params["AlarmName"] == "shipyard-digits-ModelLatency":
            change = {"oldState": {"stateValue": "OK"}, "newState": {"stateValue": "ALARM", "stateReason": reason}}
            items.append(
                {
                    "AlarmName": params["AlarmName"],
                    "Timestamp": datetime.now(UTC),
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": "Alarm updated from OK to ALARM",
                    "HistoryData": jsonlib.dumps(change),
                }
            )
        return {"AlarmHistoryItems": items}

    answer(target2.aws(REGION).client("cloudwatch"), "DescribeAlarmHistory", history)
    with pytest.raises(DeployFailed) as raised:
        deployer2.update("digits", str(digits_bundle), image=small_image, all_at_once=True, bake="5m")
    assert str(raised.value).startswith(f"rolled back: alarm shipyard-digits-ModelLatency fired ({reason})")
    assert raised.value.alarm == "shipyard-digits-ModelLatency"
    assert sorted(asked) == ["shipyard-digits-Invocation5XXErrors", "shipyard-digits-ModelLatency"]
    assert deployer2.record("digits").details.endpoint_config == old.endpoint_config
    deployer2.cleanup("digits")
    assert tagged_everywhere() == {}


def test_update_rollback_failed_stops_the_wait_and_shipyard_rolls_back(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """SageMaker's own rollback fails (EndpointStatus UpdateRollbackFailed: a mix of both configs serves): the wait
    stops there (it no longer polls until its time-out) and the existing rollback updates the endpoint back to the
    old config. Scripted: UpdateEndpoint and DescribeEndpoint (moto lacks the one and keeps endpoints InService)."""
    deployer, old = _deployed(state_path, digits_bundle, small_image, registry)
    _alarms(deployer)
    deployer2, target2, steps = make(state_path)
    phases = [("Updating", "Creating", 0), ("Updating", "ActivatingTraffic", 3), ("UpdateRollbackFailed", None, 4)]
    seen = _blue_green(target2, phases, on=None)
    with pytest.raises(DeployFailed, match="is UpdateRollbackFailed: The deployment failed and so did") as raised:
        deployer2.update("digits", str(digits_bundle), image=small_image, canary="20%:1m")
    assert str(raised.value).endswith(f"the endpoint is back on {old.endpoint_config}")
    assert [a["EndpointConfigName"] for a in seen["asked"]][1:] == [old.endpoint_config]
    assert "DeploymentConfig" not in seen["asked"][1]  # the way back is a plain update
    assert f"rolling back digits to {old.endpoint_config}" in steps.steps
    assert deployer2.record("digits").details.endpoint_config == old.endpoint_config
    deployer2.cleanup("digits")
    assert tagged_everywhere() == {}


def test_no_alarms_warns_and_sends_no_auto_rollback(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """A deployment without alarms (--no-alarms): --all-at-once --bake 2m goes on with a warning and no
    AutoRollbackConfiguration. Scripted: UpdateEndpoint and DescribeEndpoint (moto lacks the one and keeps
    endpoints InService)."""
    _deployed(state_path, digits_bundle, small_image, registry, alarms=False)
    deployer2, target2, steps = make(state_path)
    phases = [("Updating", "Creating", 0), ("Updating", "ActivatingTraffic", 4), ("Updating", "Baking", 5),
              ("InService", None, 7)]  # fmt: skip
    seen = _blue_green(target2, phases)
    deployer2.update("digits", str(digits_bundle), image=small_image, all_at_once=True, bake="2m")
    (request,) = seen["asked"]
    assert request["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            # all at once: --bake is the one step's baking period, the one the alarms watch
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120},
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": 600 + 1800 + 120,
        }
    }
    assert any(s.startswith("warning: digits has no alarms") and "only if it fails" in s for s in steps.steps)
    assert "all traffic moving to the new fleet: turning on traffic" in steps.steps
    assert "baking 2m: all traffic on the new fleet, the old one kept until then" in steps.steps
    deployer2.cleanup("digits")
    assert tagged_everywhere() == {}


def test_a_plain_update_sends_no_deployment_config(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """Without a rollout flag the update is as before: UpdateEndpoint without DeploymentConfig, no DescribeAlarms.
    Scripted: UpdateEndpoint and DescribeEndpoint (moto lacks the one and keeps endpoints InService)."""
    deployer, _ = _deployed(state_path, digits_bundle, small_image, registry)
    _alarms(deployer)
    deployer2, target2, _steps = make(state_path)
    seen = _blue_green(target2, [("Updating", None, 0), ("InService", None, 1)])
    deployer2.update("digits", str(digits_bundle), image=small_image)
    (request,) = seen["asked"]
    assert "DeploymentConfig" not in request
    assert target2.aws(REGION).calls["cloudwatch:DescribeAlarms"] == 0
    deployer2.cleanup("digits")


def test_cli_update_with_canary_end_to_end_and_the_rollback_history(
    aws: object,
    digits_bundle: Path,
    small_image: str,
    registry: OciRegistry,
    state_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`shipyard deploy --update digits digits/2 --canary 10%:1m --bake 1m` of registered versions, in process
    (typer's runner), the command's deployer being the test's, whose SageMaker client scripts UpdateEndpoint and
    DescribeEndpoint (moto lacks the one and keeps endpoints InService); the ModelLatency alarm fires, the command
    fails naming it and both versions' histories name it."""
    from shipyard.cli import app
    from shipyard.cli import deploy as cli_deploy

    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_STATE", str(state_path))
    monkeypatch.setenv("SHIPYARD_ECR_REGISTRY", registry.host)
    runner = CliRunner()
    for args in (["register", str(digits_bundle), "--group", "digits"],) * 2 + (
        ["models", "approve", "digits/1"],
        ["models", "approve", "digits/2"],
    ):
        assert runner.invoke(app, args).exit_code == 0
    deployer, target, _ = make(state_path)
    monkeypatch.setattr(cli_deploy, "deployer_for", lambda state, reporter=None: deployer)
    common = ["--image", small_image, "--registry", "local"]
    done = runner.invoke(app, ["deploy", "digits/1", "--name", "digits", "--target", "sagemaker", *common,
                               "--instance-count", "2", "--region", REGION])  # fmt: skip
    assert done.exit_code == 0, done.output
    old = deployer.record("digits").details.endpoint_config
    _alarms(deployer)
    time.sleep(1.1)  # versions are per second
    reason = "Threshold Crossed: p99 ModelLatency 900000 > 250000"

    def trip(phase: tuple[str, str | None, int]) -> None:
        if phase[1] == "Baking":
            boto3.client("cloudwatch").set_alarm_state(
                AlarmName="shipyard-digits-ModelLatency", StateValue="ALARM", StateReason=reason
            )

    phases = [("Updating", "Creating", 0), ("Updating", "ActivatingTraffic", 3), ("Updating", "Baking", 4),
              ("InService", None, 6)]  # fmt: skip
    seen = _blue_green(target, phases, back_to_old=True, on=trip)
    done = runner.invoke(app, ["deploy", "digits/2", "--update", "digits", *common, "--canary", "10%:1m",
                               "--bake", "1m"])  # fmt: skip
    assert done.exit_code != 0 and isinstance(done.exception, DeployFailed)
    assert str(done.exception).startswith(f"rolled back: alarm shipyard-digits-ModelLatency fired ({reason})")
    assert seen["asked"][0]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 60
    record = deployer.record("digits")
    assert record.details.endpoint_config == old and record.model_version == "digits/1"

    def history(ref: str) -> list[dict[str, str]]:
        shown = runner.invoke(app, ["models", "show", ref, "--output", "json"])
        assert shown.exit_code == 0, shown.output
        entries: list[dict[str, str]] = json.loads(shown.stdout)["version"]["history"]
        return entries

    first, second = history("digits/1"), history("digits/2")
    assert [h["action"] for h in first] == ["deploy", "rollback"]
    assert "rolled back: alarm shipyard-digits-ModelLatency fired" in first[1]["detail"]
    assert [(h["action"], h["detail"]) for h in second] == [
        ("rollback", "alarm shipyard-digits-ModelLatency fired; back on digits/1")
    ]
    deployer.cleanup("digits")
    assert tagged_everywhere() == {}


# -- the options: SageMaker's limits, the flags named ---------------------------------------------------------


def test_rollout_parsing_and_limits(tmp_path: Path) -> None:
    """No AWS: the options as the CLI and the Python API parse them."""
    from shipyard.deploy.state import StateStore

    first = DeployOptions.parse("b", "n", target="sagemaker", canary="10%:5m")
    with pytest.raises(SpecError, match="guards an update") as raised:
        Deployer(StateStore(tmp_path / "state.json")).deploy(first)  # a first deploy: refused before any AWS call
    assert raised.value.option == "canary"
    assert parse_changes(canary="10%:5m", bake="10m") == {"rollout": Rollout("CANARY", 10, 300), "bake_s": 600}
    assert parse_changes(linear="25%:2m")["rollout"].steps == 4
    assert parse_changes(all_at_once=True)["rollout"] == Rollout("ALL_AT_ONCE")
    bad = {
        "canary": [("0%:5m", "1% to 50%"), ("60%:5m", "1% to 50%"), ("10:5m", "PERCENT%:WAIT"),
                   ("10%:2h", "0 to 3600 s"), ("10%:soon", "a number and a unit")],
        "linear": [("5%:1m", "10% to 50%"), ("10%:1h", "28800 s")],
    }  # fmt: skip
    for option, cases in bad.items():
        for text, said in cases:
            with pytest.raises(SpecError, match=said) as raised:
                DeployOptions.parse("b", "n", target="sagemaker", **{option: text})
            assert raised.value.option == option, text
    with pytest.raises(SpecError, match="0 to 3600 s") as raised:
        DeployOptions.parse("b", "n", target="sagemaker", bake="2h")
    assert raised.value.option == "bake_s"
    with pytest.raises(SpecError, match="choose one way") as raised:
        parse_changes(canary="10%:5m", all_at_once=True)
    assert raised.value.option == "rollout"
    with pytest.raises(SpecError, match="local target replaces its one container") as raised:
        DeployOptions.parse("b", "n", target="local", canary="10%:5m")
    assert raised.value.option == "canary"
    with pytest.raises(SpecError, match="serverless endpoint has no instances") as raised:
        DeployOptions.parse("b", "n", target="sagemaker", serverless="2048:5", linear="20%:1m")
    assert raised.value.option == "linear"
    # serverless may take all at once with a bake (blue/green without steps)
    assert DeployOptions.parse("b", "n", target="sagemaker", serverless="2048:5", all_at_once=True, bake="5m").bake_s


def test_cli_refuses_guard_flags_naming_the_flag(tmp_path: Path) -> None:
    """The real command (no AWS reached): without --update, two rollout flags, a bad percent, a local update."""
    from shipyard.cli import app

    runner = CliRunner()
    state = ["--state", str(tmp_path / "state.json")]

    def refused(*args: str) -> str:
        done = runner.invoke(app, ["deploy", str(tmp_path), *args, *state])
        assert done.exit_code != 0 and isinstance(done.exception, SpecError), done.output
        return str(done.exception)

    assert refused("--name", "x", "--canary", "10%:5m").startswith("--canary guards an update: use it with --update")
    assert refused("--name", "x", "--bake", "5m").startswith("--bake guards an update")
    assert refused("--name", "x", "--all-at-once").startswith("--all-at-once guards an update")
    # an update of a local deployment
    from shipyard.deploy.state import Deployment, StateStore

    now = datetime.now(UTC).isoformat()
    options = DeployOptions(source=str(tmp_path), name="x", target="local")
    StateStore(tmp_path / "state.json").put(
        Deployment(name="x", target="local", status="InService", source=str(tmp_path), created_at=now,
                   updated_at=now, expires_at=None, options=options)
    )  # fmt: skip
    assert refused("--update", "x", "--canary", "10%:5m").startswith("--canary is for sagemaker updates")
    assert refused("--update", "x", "--canary", "70%:5m").startswith("--canary size 70%: SageMaker takes 1% to 50%")
    assert refused("--update", "x", "--canary", "10%:5m", "--linear", "20%:1m") == (
        "canary and linear given together: choose one way to shift traffic (--canary/--linear/--all-at-once)"
    )
