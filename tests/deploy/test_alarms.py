"""The alarms, SNS topic and dashboard of a sagemaker deployment, against a moto server (see
tests/deploy/test_deploy_sagemaker.py for how the deploy runs), read back through boto3.

moto answers GetMetricData from put_metric_data for Sum and Average but fails on percentile statistics
(p50/p99: HTTP 500, "float() argument must be ... not 'NoneType'", moto 5.x), so the health tests answer the one
GetMetricData call that asks for percentiles from a script (:func:`_script_percentiles`); the sums come from moto.
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
from botocore.awsrequest import AWSResponse
from test_deploy_sagemaker import make, spec, tagged_everywhere
from test_deploy_sagemaker_failures import _emulate_update

from infra.moto import ACCOUNT, REGION
from infra.oci_registry import OciRegistry
from shipyard.deploy.options import DeployOptions, Serverless
from shipyard.deploy.state import BenchFigures
from shipyard.errors import SpecError

pytestmark = pytest.mark.integration

DIMS = [{"Name": "EndpointName", "Value": "digits"}, {"Name": "VariantName", "Value": "AllTraffic"}]
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:shipyard-digits-alarms"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def alarms() -> dict[str, dict[str, Any]]:
    found = boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix="shipyard-digits-")["MetricAlarms"]
    return {a["AlarmName"].removeprefix("shipyard-digits-"): a for a in found}


def watched() -> dict[str, list[Any]]:
    """Every alarm, dashboard and topic in moto (listed through boto3, not the state)."""
    cloudwatch, sns = boto3.client("cloudwatch"), boto3.client("sns")
    return {
        "alarms": [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]],
        "dashboards": [d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]],
        "topics": [t["TopicArn"] for t in sns.list_topics()["Topics"]],
    }


def plain(alarm: dict[str, Any]) -> dict[str, Any]:
    keys = ("Namespace", "MetricName", "Dimensions", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
            "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions")  # fmt: skip
    shape = {key: alarm.get(key) for key in keys}
    shape["stat"] = alarm.get("ExtendedStatistic") or alarm.get("Statistic")
    return shape


def expected(metric: str, stat: str, threshold: float, periods: int, datapoints: int, **more: Any) -> dict[str, Any]:
    return {
        "Namespace": more.get("namespace", "AWS/SageMaker"),
        "MetricName": metric,
        "Dimensions": DIMS,
        "Period": more.get("period", 60),
        "EvaluationPeriods": periods,
        "DatapointsToAlarm": datapoints,
        "Threshold": threshold,
        "ComparisonOperator": more.get("comparison", "GreaterThanThreshold"),
        "TreatMissingData": "notBreaching",
        "AlarmActions": more.get("actions", [TOPIC]),
        "OKActions": more.get("actions", [TOPIC]),
        "stat": stat,
    }


def widgets() -> dict[str, list[list[Any]]]:
    body = json.loads(boto3.client("cloudwatch").get_dashboard(DashboardName="shipyard-digits")["DashboardBody"])
    for widget in body["widgets"]:
        assert widget["type"] == "metric" and widget["properties"]["region"] == REGION
    return {w["properties"]["title"].split(" (")[0].split(":")[0]: w["properties"]["metrics"] for w in body["widgets"]}


def test_every_alarm_topic_and_dashboard_field_by_field_then_bench_health_and_cleanup(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, target, steps = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, instance_type="ml.m5.xlarge", notify="ops@example.com"))
    found = alarms()
    assert sorted(found) == sorted(
        ["ModelLatency", "OverheadLatency", "Invocation5XXErrors", "Invocation4XXErrors", "CPUUtilization",
         "MemoryUtilization"]
    )  # fmt: skip
    # ModelLatency in µs: the default 1000 ms without a bench.
    assert plain(found["ModelLatency"]) == expected("ModelLatency", "p99", 1_000_000.0, 5, 3)
    assert plain(found["OverheadLatency"]) == expected("OverheadLatency", "p99", 100_000.0, 5, 3)
    assert plain(found["Invocation5XXErrors"]) == expected(
        "Invocation5XXErrors", "Sum", 5.0, 1, 1, period=300, comparison="GreaterThanOrEqualToThreshold"
    )
    # ml.m5.xlarge has 4 vCPUs: CPUUtilization goes up to 400; 90 % of it is 360.
    endpoints = "/aws/sagemaker/Endpoints"
    assert plain(found["CPUUtilization"]) == expected("CPUUtilization", "Average", 360.0, 5, 5, namespace=endpoints)
    assert plain(found["MemoryUtilization"]) == expected(
        "MemoryUtilization", "Average", 90.0, 5, 5, namespace=endpoints
    )
    rate = found["Invocation4XXErrors"]
    assert (rate.get("MetricName"), rate["Threshold"], rate["EvaluationPeriods"], rate["DatapointsToAlarm"]) == (
        None, 10.0, 5, 3)  # fmt: skip
    assert rate["AlarmActions"] == rate["OKActions"] == [TOPIC] and rate["TreatMissingData"] == "notBreaching"
    expression, *inputs = rate["Metrics"]
    assert expression["Expression"] == "IF(invocations > 0, 100 * FILL(errors, 0) / invocations, 0)"
    assert expression["ReturnData"] is True
    assert {m["Id"]: (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"], m["MetricStat"]["Period"],
                      m["MetricStat"]["Metric"]["Dimensions"], m["ReturnData"]) for m in inputs} == {
        "errors": ("Invocation4XXErrors", "Sum", 60, DIMS, False),
        "invocations": ("Invocations", "Sum", 60, DIMS, False),
    }  # fmt: skip
    cloudwatch = boto3.client("cloudwatch")
    tags = cloudwatch.list_tags_for_resource(ResourceARN=found["ModelLatency"]["AlarmArn"])["Tags"]
    assert {"Key": "shipyard:deployment", "Value": "digits"} in tags

    # The topic (tagged) and its email subscription.
    sns = boto3.client("sns")
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [TOPIC]
    assert {"Key": "shipyard:deployment", "Value": "digits"} in sns.list_tags_for_resource(ResourceArn=TOPIC)["Tags"]
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")

    # The dashboard: each widget's metrics.
    board = widgets()
    line = ["EndpointName", "digits", "VariantName", "AllTraffic"]
    assert [[*m[:6], m[6]["stat"]] for m in board["invocations"]] == [["AWS/SageMaker", "Invocations", *line, "Sum"]]
    assert [(m[1], m[6]["stat"]) for m in board["latency"]] == [
        ("ModelLatency", "p50"), ("ModelLatency", "p90"), ("ModelLatency", "p99"), ("OverheadLatency", "p99")
    ]  # fmt: skip
    assert [(m[1], m[6]["stat"]) for m in board["errors"]] == [
        ("Invocation4XXErrors", "Sum"),
        ("Invocation5XXErrors", "Sum"),
    ]
    assert [[*m[:6], m[6]["stat"]] for m in board["CPU"]] == [[endpoints, "CPUUtilization", *line, "Average"]]
    assert [m[:2] for m in board["memory"]] == [[endpoints, "MemoryUtilization"]]
    expression_line, *hidden = board["instances"]
    assert expression_line[0]["expression"] == "invocations / perinstance"
    assert [(m[1], m[6]["id"], m[6]["visible"]) for m in hidden] == [
        ("Invocations", "invocations", False), ("InvocationsPerInstance", "perinstance", False)
    ]  # fmt: skip
    record = deployer.record("digits")
    assert sorted(r.id for r in record.of("alarm")) == sorted(f"shipyard-digits-{m}" for m in found)
    assert [r.id for r in record.of("dashboard")] == ["shipyard-digits"]
    assert [(r.id, r.owned) for r in record.of("sns-topic")] == [(TOPIC, True)]
    assert record.options is not None and record.options.notify == "ops@example.com" and record.options.alarms

    # A bench moves the ModelLatency threshold: 2 × p99 (120 ms → 240 ms); below 25 ms the floor is 50 ms.
    deployer.note_bench("digits", BenchFigures(p50_ms=40.0, p99_ms=120.0, max_ms=200.0))
    assert alarms()["ModelLatency"]["Threshold"] == 240_000.0
    assert alarms()["ModelLatency"]["AlarmActions"] == [TOPIC]
    assert any("shipyard-digits-ModelLatency: p99 > 240 ms" in s and "was 1000 ms" in s for s in steps.steps)
    deployer.note_bench("digits", BenchFigures(p50_ms=5.0, p99_ms=20.0, max_ms=30.0))
    assert alarms()["ModelLatency"]["Threshold"] == 50_000.0

    # health(): the states after set_alarm_state, the hour's sums from moto, the percentiles scripted.
    cloudwatch.set_alarm_state(AlarmName="shipyard-digits-Invocation5XXErrors", StateValue="ALARM", StateReason="t")
    _put_traffic(cloudwatch, invocations=40, errors_4xx=2, errors_5xx=1)
    asked = _script_percentiles(target, {"p50": 12_000.0, "p99": 250_000.0})
    health = deployer.health("digits")
    states = {a.metric: a.state for a in health.alarms}
    assert states["Invocation5XXErrors"] == "ALARM" and states["ModelLatency"] == "OK" and len(states) == 6
    latency = next(a for a in health.alarms if a.metric == "ModelLatency")
    assert latency.threshold.startswith("p99 > 50 ms in 3 of 5 min")
    assert (health.window, health.invocations, health.errors_4xx, health.errors_5xx) == ("last hour", 40, 2, 1)
    assert (health.p50_ms, health.p99_ms) == (12.0, 250.0)
    assert [(q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"]) for q in asked[0]] == [
        ("ModelLatency", "p50"), ("ModelLatency", "p99")
    ]  # fmt: skip
    assert asked[0][0]["MetricStat"]["Metric"]["Dimensions"] == DIMS

    # cleanup: zero alarms, dashboards and topics (listed in moto), and nothing else tagged.
    report = deployer.cleanup("digits")
    assert watched() == {"alarms": [], "dashboards": [], "topics": []}
    assert tagged_everywhere() == {} and report.already_gone == []


def _put_traffic(cloudwatch: Any, **sums: int) -> None:
    names = {"invocations": "Invocations", "errors_4xx": "Invocation4XXErrors", "errors_5xx": "Invocation5XXErrors"}
    at = datetime.now(UTC) - timedelta(minutes=10)
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": names[key], "Dimensions": DIMS, "Value": float(value), "Timestamp": at}
            for key, value in sums.items()
        ],
    )


def _script_percentiles(target: Any, values: dict[str, float]) -> list[list[dict[str, Any]]]:
    """Answer GetMetricData calls that ask for a percentile (moto fails on them); the others go to moto."""
    client = target.aws(REGION).client("cloudwatch")
    asked: list[list[dict[str, Any]]] = []

    def capture(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["queries"] = params.get("MetricDataQueries", [])

    def respond(context: dict[str, Any], **_: Any) -> Any:
        queries = context.get("queries", [])
        if not any(q["MetricStat"]["Stat"].startswith("p") for q in queries):
            return None  # moto answers
        asked.append(queries)
        results = [
            {"Id": q["Id"], "Label": q["Id"], "Timestamps": [datetime.now(UTC)], "Values": [values[q["Id"]]],
             "StatusCode": "Complete"} if q["Id"] in values else
            {"Id": q["Id"], "Label": q["Id"], "Timestamps": [], "Values": [], "StatusCode": "Complete"}
            for q in queries
        ]  # fmt: skip
        return AWSResponse("https://scripted", 200, {}, None), {"MetricDataResults": results}

    client.meta.events.register("before-parameter-build.cloudwatch.GetMetricData", capture)
    client.meta.events.register("before-call.cloudwatch.GetMetricData", respond)
    return asked


def test_serverless_gets_model_setup_time_instead_of_cpu_and_memory(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, target, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, serverless=Serverless(2048, 10)))
    found = alarms()
    assert sorted(found) == sorted(
        ["ModelLatency", "OverheadLatency", "Invocation5XXErrors", "Invocation4XXErrors", "ModelSetupTime"]
    )
    assert plain(found["ModelSetupTime"]) == expected(
        "ModelSetupTime", "p99", 10_000_000.0, 1, 1, period=300, actions=[]
    )
    assert found["ModelLatency"]["AlarmActions"] == [] and boto3.client("sns").list_topics()["Topics"] == []
    board = widgets()
    assert "CPU" not in board and "memory" not in board and "instances" not in board
    assert [(m[1], m[6]["stat"]) for m in board["cold starts"]] == [
        ("ModelSetupTime", "p50"),
        ("ModelSetupTime", "p99"),
    ]
    _script_percentiles(target, {"p50": 3_000.0, "p99": 9_000.0, "setup_p99": 4_500_000.0})
    health = deployer.health("digits")
    assert health.extra == {"model_setup_p99_ms": 4500.0} and health.invocations is None
    assert "no invocations in the last hour" in health.notes[0]
    deployer.cleanup("digits")
    assert watched() == {"alarms": [], "dashboards": [], "topics": []}


def test_no_alarms_creates_none_and_a_given_topic_is_used_and_kept(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry, alarms=False))
    assert watched() == {"alarms": [], "dashboards": [], "topics": []}
    assert not deployer.record("digits").of("alarm") and deployer.record("digits").options.alarms is False  # type: ignore[union-attr]
    deployer.cleanup("digits")

    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:nobody"
    with pytest.raises(SpecError, match="no such SNS topic") as refused:
        deployer.deploy(spec(digits_bundle, small_image, registry, notify=missing))
    assert refused.value.option == "notify" and tagged_everywhere() == {}  # stopped before the first resource

    given = boto3.client("sns").create_topic(Name="team-pager")["TopicArn"]
    deployer.deploy(spec(digits_bundle, small_image, registry, notify=given))
    assert {a["AlarmActions"][0] for a in alarms().values()} == {given}
    assert [(r.id, r.owned) for r in deployer.record("digits").of("sns-topic")] == [(given, False)]
    report = deployer.cleanup("digits")
    assert f"sns-topic {given} (not created by Shipyard)" in report.kept
    assert watched() == {"alarms": [], "dashboards": [], "topics": [given]}


def test_the_deploy_flags_name_themselves(aws: object, tmp_path: Path) -> None:
    bad = _cli("deploy", str(tmp_path), "--name", "d", "--target", "sagemaker", "--notify", "nobody", "--dry-run")
    assert bad.returncode == 2 and "--notify 'nobody': give an email address" in bad.stderr
    plan = _cli("deploy", str(tmp_path), "--name", "d", "--target", "sagemaker", "--no-alarms", "--dry-run",
                "--region", "us-east-1")  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "--no-alarms: no CloudWatch alarms" in plan.stdout and "shipyard-d-ModelLatency" not in plan.stdout


def test_notify_is_checked_when_the_options_are_made() -> None:
    with pytest.raises(SpecError, match="email address") as bad:
        DeployOptions(source="x", name="digits", target="sagemaker", notify="not-an-address")
    assert bad.value.option == "notify"
    made = DeployOptions(source="x", name="digits", target="sagemaker", notify="a@b.io")
    assert made.to_json()["notify"] == "a@b.io"
    assert DeployOptions(source="x", name="digits").to_json()["alarms"] is True
    # the local target has no alarms: saying anything of them there is refused, naming the flag
    for option, changes in (("notify", {"notify": "a@b.io"}), ("alarms", {"alarms": False})):
        with pytest.raises(SpecError, match="for sagemaker deployments") as local:
            DeployOptions(source="x", name="digits", **changes)  # type: ignore[arg-type]
        assert local.value.option == option


def test_update_to_serverless_changes_which_alarms_exist(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """UpdateEndpoint and DescribeEndpoint are scripted (moto lacks UpdateEndpoint), as in the update tests."""
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry))
    assert "CPUUtilization" in alarms()
    time.sleep(1.1)  # versions are per second
    deployer2, target2, _ = make(state_path)
    _emulate_update(target2, ["Updating", "InService"])
    deployer2.update("digits", str(digits_bundle), image=small_image, serverless="2048:10")
    assert sorted(alarms()) == sorted(
        ["ModelLatency", "OverheadLatency", "Invocation5XXErrors", "Invocation4XXErrors", "ModelSetupTime"]
    )
    assert "cold starts" in widgets() and "CPU" not in widgets()
    assert sorted(r.id.removeprefix("shipyard-digits-") for r in deployer2.record("digits").of("alarm")) == sorted(
        alarms()
    )
    time.sleep(1.1)
    deployer3, target3, _ = make(state_path)
    _emulate_update(target3, ["Updating", "InService"])
    deployer3.update("digits", str(digits_bundle), image=small_image, alarms=False)
    assert watched() == {"alarms": [], "dashboards": [], "topics": []}
    record = deployer3.record("digits")
    assert not record.of("alarm") and not record.of("dashboard")
    deployer3.cleanup("digits")
    assert tagged_everywhere() == {}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "shipyard")
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120, check=False
    )


def test_status_name_shows_the_alarms_and_the_hour_in_table_and_json(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    """The CLI runs in its own process: no percentile is put, so moto answers every GetMetricData (empty)."""
    deployer, _, _ = make(state_path)
    deployer.deploy(spec(digits_bundle, small_image, registry))
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="shipyard-digits-CPUUtilization", StateValue="ALARM", StateReason="hot")
    _put_traffic(cloudwatch, invocations=7, errors_5xx=3)

    table = _cli("status", "digits", "--state", str(state_path))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    cpu = next(line for line in lines if "shipyard-digits-CPUUtilization" in line)
    assert "ALARM" in cpu and "> 180 %" in cpu  # 90 % of ml.m5.large's 2 vCPUs
    assert "last hour: invocations 7, 4xx –, 5xx 3, latency p50 –, p99 –" in table.stdout

    done = _cli("status", "digits", "--state", str(state_path), "--output", "json")
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads((SCHEMAS / "status.v1.json").read_text()))
    health = document["health"]
    assert {a["metric"]: a["state"] for a in health["alarms"]}["CPUUtilization"] == "ALARM"
    assert (health["invocations"], health["errors_5xx"], health["errors_4xx"], health["p99_ms"]) == (7, 3, None, None)
    everyone = json.loads(_cli("status", "--state", str(state_path), "--output", "json").stdout)
    assert "health" not in everyone  # status without a NAME makes no health calls
    deployer.cleanup("digits")


def test_dry_run_lists_the_alarms_and_dashboard_with_their_cost(aws: object, tmp_path: Path) -> None:
    from shipyard.deploy.sagemaker import SageMakerTarget

    plan = SageMakerTarget().plan(DeployOptions(source=str(tmp_path), name="digits", target="sagemaker",
                                                notify="ops@example.com"))  # fmt: skip
    rows = {(r.kind, r.name): r.monthly_usd for r in plan.resources}
    assert rows[("CloudWatch alarm", "shipyard-digits-ModelLatency")] == pytest.approx(0.10)
    assert rows[("CloudWatch alarm", "shipyard-digits-Invocation4XXErrors")] == pytest.approx(0.20)  # two metrics
    assert rows[("CloudWatch dashboard", "shipyard-digits")] == pytest.approx(3.00)
    assert rows[("SNS topic", "shipyard-digits-alarms")] == 0.0
    assert sum(1 for kind, _ in rows if kind == "CloudWatch alarm") == 6
    quiet = SageMakerTarget().plan(DeployOptions(source=str(tmp_path), name="d", target="sagemaker", alarms=False))
    assert not [r for r in quiet.resources if r.kind.startswith("CloudWatch alarm")]
