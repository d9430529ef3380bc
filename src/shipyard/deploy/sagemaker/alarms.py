"""The alarms, SNS topic and dashboard every sagemaker deployment gets (``--no-alarms`` opts out).

The alarms (``Names.alarm(METRIC)``; dimensions EndpointName + VariantName ``AllTraffic``; one-minute periods;
missing data is not breaching, so an endpoint without traffic is OK):

- ``ModelLatency`` (µs): p99 above the threshold in 3 of 5 minutes. The threshold is 2 × the p99 of the
  last ``shipyard bench`` (the client's latency, which ModelLatency is below), at least 50 ms; without a
  bench, 1000 ms. ``shipyard bench`` re-puts it (``tune``).
- ``OverheadLatency`` (µs): p99 above 100 ms in 3 of 5 minutes (SageMaker's own share is a few ms).
- ``Invocation5XXErrors``: 5 or more (Sum) in 5 minutes (a few failures, not one).
- ``Invocation4XXErrors``: a rate, 100 × 4xx / invocations above 10 % in 3 of 5 minutes (metric math with
  IF/FILL: no traffic is 0 %, not an alarm).
- ``CPUUtilization`` (``/aws/sagemaker/Endpoints``): average above 90 % of the instance's vCPUs for 5 minutes;
  the metric is summed over cores (up to 100 × vCPUs), the vCPUs come from the type's size (medium, large: 2;
  xlarge: 4; Nxlarge: 4 × N, as AWS sizes its general-purpose and compute types).
- ``MemoryUtilization`` (``/aws/sagemaker/Endpoints``): average above 90 % for 5 minutes.
- serverless, instead of CPU and memory: ``ModelSetupTime`` (µs, cold starts) p99 above 10 s over 5 minutes.

With ``--notify EMAIL`` a topic (``Names.topic``) is created and mails it; ``--notify arn:aws:sns:...`` uses
that topic as it is (recorded, not owned). Every alarm's AlarmActions and OKActions point at the topic.
The dashboard (``Names.dashboard``) shows invocations, ModelLatency p50/p90/p99 (and OverheadLatency p99),
4xx/5xx errors, CPU, memory and the instance count (SageMaker publishes no instance-count metric: it is
Invocations ÷ InvocationsPerInstance, since each request adds 1/instances to the latter, so it shows only
while there is traffic); serverless: ModelSetupTime instead of CPU, memory and instances.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.cloud.cloudwatch import AlarmSpec
from shipyard.deploy.base import DeployRun, SilentReporter
from shipyard.deploy.sagemaker.cleanup import remove as remove_kinds
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import VARIANT, Names
from shipyard.deploy.state import BenchFigures, Deployment

__all__ = [
    "DEFAULT_LATENCY_MS",
    "METRICS",
    "Watch",
    "alarm_specs",
    "dashboard_body",
    "ensure",
    "latency_threshold_ms",
    "remove",
    "topic",
    "tune",
    "vcpus",
]

SAGEMAKER_NS = "AWS/SageMaker"
INSTANCE_NS = "/aws/sagemaker/Endpoints"
DEFAULT_LATENCY_MS = 1000.0  # ModelLatency p99 without a bench
LATENCY_FACTOR, LATENCY_FLOOR_MS = 2.0, 50.0
OVERHEAD_MS = 100.0
ERRORS_5XX, ERRORS_5XX_MINUTES = 5, 5
RATE_4XX_PCT = 10.0
UTILIZATION_PCT = 90.0
SETUP_S = 10.0
# every metric a deployment may have an alarm on (reconcile looks for each name)
METRICS = ("ModelLatency", "OverheadLatency", "Invocation5XXErrors", "Invocation4XXErrors", "CPUUtilization",
           "MemoryUtilization", "ModelSetupTime")  # fmt: skip
_SIZE = re.compile(r"\.(\d*)xlarge$")


@dataclass(frozen=True)
class Watch:
    """One alarm to put, and its rule in words (``status NAME`` shows it)."""

    spec: AlarmSpec
    rule: str


@dataclass(frozen=True)
class Shape:
    """What decides a deployment's alarms: serverless or not, the instance type, the last bench."""

    serverless: bool
    instance_type: str | None
    bench: BenchFigures | None

    @classmethod
    def of(cls, record: Deployment) -> Shape:
        return cls(record.serverless is not None, record.instance_type, record.bench)


def latency_threshold_ms(bench: BenchFigures | None) -> tuple[float, str]:
    """ModelLatency's p99 threshold in ms: 2 × the bench's p99, at least 50 ms; 1000 ms without a bench."""
    if bench is None:
        return DEFAULT_LATENCY_MS, "the default: no `shipyard bench` yet"
    threshold = max(round(LATENCY_FACTOR * bench.p99_ms, 1), LATENCY_FLOOR_MS)
    return threshold, f"2 × the bench's p99 {bench.p99_ms:g} ms, at least {LATENCY_FLOOR_MS:g} ms"


def vcpus(instance_type: str | None) -> int:
    """The vCPUs of a type from its size: medium, large: 2; xlarge: 4; Nxlarge: 4 × N (AWS's sizes)."""
    found = _SIZE.search(instance_type or "")
    if found is None:
        return 2
    return 4 * int(found.group(1) or 1)


def alarm_specs(names: Names, shape: Shape) -> list[Watch]:
    """The alarms of a deployment of this shape (see the module's table)."""
    dims = {"EndpointName": names.endpoint, "VariantName": VARIANT}
    latency_ms, why = latency_threshold_ms(shape.bench)

    def alarm(metric: str, namespace: str = SAGEMAKER_NS, **values: Any) -> AlarmSpec:
        return AlarmSpec(name=names.alarm(metric), metric=metric, namespace=namespace, dimensions=dims, **values)

    watches = [
        Watch(
            alarm(
                "ModelLatency",
                statistic="p99",
                threshold=latency_ms * 1000,
                evaluation_periods=5,
                datapoints=3,
                unit="Microseconds",
                description=f"ModelLatency p99 above {latency_ms:g} ms ({why})",
            ),
            f"p99 > {latency_ms:g} ms in 3 of 5 min ({why})",
        ),
        Watch(
            alarm(
                "OverheadLatency",
                statistic="p99",
                threshold=OVERHEAD_MS * 1000,
                evaluation_periods=5,
                datapoints=3,
                unit="Microseconds",
                description=f"OverheadLatency p99 above {OVERHEAD_MS:g} ms",
            ),
            f"p99 > {OVERHEAD_MS:g} ms in 3 of 5 min",
        ),
        Watch(
            alarm(
                "Invocation5XXErrors",
                statistic="Sum",
                threshold=ERRORS_5XX,
                evaluation_periods=1,
                datapoints=1,
                period_s=ERRORS_5XX_MINUTES * 60,
                comparison="GreaterThanOrEqualToThreshold",
                description=f"{ERRORS_5XX} or more 5xx answers in {ERRORS_5XX_MINUTES} minutes",
            ),
            f"≥ {ERRORS_5XX} in {ERRORS_5XX_MINUTES} min",
        ),
        Watch(
            alarm(
                "Invocation4XXErrors",
                threshold=RATE_4XX_PCT,
                evaluation_periods=5,
                datapoints=3,
                expression="IF(invocations > 0, 100 * FILL(errors, 0) / invocations, 0)",
                inputs={"errors": "Invocation4XXErrors", "invocations": "Invocations"},
                description=f"more than {RATE_4XX_PCT:g} % of the requests answered 4xx",
            ),
            f"rate > {RATE_4XX_PCT:g} % in 3 of 5 min",
        ),
    ]
    return watches + (_serverless(alarm) if shape.serverless else _instances(alarm, shape.instance_type))


def _instances(alarm: Any, instance_type: str | None) -> list[Watch]:
    cores = vcpus(instance_type)
    cpu = UTILIZATION_PCT * cores
    return [
        Watch(
            alarm("CPUUtilization", INSTANCE_NS, threshold=cpu, evaluation_periods=5, datapoints=5,
                  description=f"CPU above {UTILIZATION_PCT:g} % of {cores} vCPUs ({cpu:g} of {100 * cores})"),
            f"average > {cpu:g} % ({UTILIZATION_PCT:g} % of {cores} vCPUs) for 5 min",
        ),
        Watch(
            alarm("MemoryUtilization", INSTANCE_NS, threshold=UTILIZATION_PCT, evaluation_periods=5, datapoints=5,
                  description=f"memory above {UTILIZATION_PCT:g} %"),
            f"average > {UTILIZATION_PCT:g} % for 5 min",
        ),
    ]  # fmt: skip


def _serverless(alarm: Any) -> list[Watch]:
    return [
        Watch(
            alarm("ModelSetupTime", statistic="p99", threshold=SETUP_S * 1_000_000, evaluation_periods=1,
                  datapoints=1, period_s=300, unit="Microseconds",
                  description=f"cold starts (ModelSetupTime p99) above {SETUP_S:g} s"),
            f"p99 > {SETUP_S:g} s over 5 min (cold starts)",
        )
    ]  # fmt: skip


# -- the dashboard ------------------------------------------------------------------------------------------
def dashboard_body(names: Names, region: str, *, serverless: bool, cores: int = 2) -> str:
    """The dashboard's JSON (CloudWatch's dashboard body structure: metric widgets, two per row)."""
    dims = ["EndpointName", names.endpoint, "VariantName", VARIANT]

    def line(metric: str, stat: str, namespace: str = SAGEMAKER_NS, **more: Any) -> list[Any]:
        return [namespace, metric, *dims, {"stat": stat, "label": more.pop("label", f"{metric} {stat}"), **more}]

    widgets: list[tuple[str, list[list[Any]]]] = [
        ("invocations (per minute)", [line("Invocations", "Sum")]),
        (
            "latency (µs): ModelLatency p50/p90/p99, OverheadLatency p99",
            [*(line("ModelLatency", p) for p in ("p50", "p90", "p99")), line("OverheadLatency", "p99")],
        ),
        ("errors (per minute)", [line("Invocation4XXErrors", "Sum"), line("Invocation5XXErrors", "Sum")]),
    ]
    if serverless:
        widgets.append(("cold starts: ModelSetupTime (µs)", [line("ModelSetupTime", p) for p in ("p50", "p99")]))
    else:
        widgets += [
            (
                f"CPU (% summed over {cores} vCPUs: up to {100 * cores})",
                [line("CPUUtilization", "Average", INSTANCE_NS)],
            ),
            ("memory (%)", [line("MemoryUtilization", "Average", INSTANCE_NS)]),
            (
                "instances (Invocations ÷ InvocationsPerInstance: SageMaker publishes no instance count; "
                "shown only while there is traffic)",
                [
                    [{"expression": "invocations / perinstance", "label": "instances", "id": "instances"}],
                    line("Invocations", "Sum", id="invocations", visible=False),
                    line("InvocationsPerInstance", "Sum", id="perinstance", visible=False),
                ],
            ),
        ]
    body = [
        {
            "type": "metric",
            "x": 12 * (i % 2),
            "y": 6 * (i // 2),
            "width": 12,
            "height": 6,
            "properties": {"title": title, "metrics": metrics, "region": region, "period": 60, "view": "timeSeries"},
        }
        for i, (title, metrics) in enumerate(widgets)
    ]
    return json.dumps({"widgets": body})


# -- create, keep right, remove -------------------------------------------------------------------------
def ensure(ctx: Context, run: DeployRun) -> None:
    """Put the alarms, topic and dashboard a deployment of ``run.options`` should have (a deploy, or an update:
    the same names; a change of serverless/instances changes which alarms exist); ``alarms=False``: none."""
    record = run.record
    if not run.options.alarms:
        removed = remove(ctx, run)
        if removed:
            run.step(f"removed {len(removed)} alarms and the dashboard (--no-alarms)")
        return
    actions = topic(ctx, run)
    watches = alarm_specs(ctx.names, Shape(run.options.serverless is not None, run.options.instance_type, record.bench))
    for watch in watches:
        ctx.cloudwatch.put_metric_alarm(watch.spec, actions=actions, tags=ctx.tag_list)
        record.add("alarm", watch.spec.name)
        run.save()
    wanted = {watch.spec.name for watch in watches}
    for stale in [r.id for r in record.of("alarm") if r.id not in wanted]:
        ctx.cloudwatch.delete_alarm(stale)
        record.drop("alarm", stale)
        run.save()
    body = dashboard_body(
        ctx.names, ctx.aws.region, serverless=run.options.serverless is not None, cores=vcpus(run.options.instance_type)
    )
    ctx.cloudwatch.put_dashboard(ctx.names.dashboard, body)
    record.add("dashboard", ctx.names.dashboard)
    run.save()
    told = f", notifying {run.options.notify}" if actions else ""
    metrics = ", ".join(w.spec.metric for w in watches)
    run.step(f"{len(watches)} CloudWatch alarms ({metrics}){told}, dashboard {ctx.names.dashboard}")


def topic(ctx: Context, run: DeployRun) -> list[str]:
    """The topic the alarms notify: a given ARN (checked in the preflight), or one created for an email."""
    notify, record = run.options.notify, run.record
    if notify is None:
        return []
    if notify.startswith("arn:"):
        record.add("sns-topic", notify, owned=False)
        run.save()
        return [notify]
    arn = ctx.sns.create_topic(ctx.names.topic, tags=ctx.tag_list)  # the existing one on an update
    record.add("sns-topic", arn)
    run.save()
    ctx.sns.subscribe_email(arn, notify)
    run.step(f"SNS topic {ctx.names.topic} mailing {notify} (AWS mails a confirmation link first)")
    return [arn]


def remove(ctx: Context, run: DeployRun) -> list[str]:
    """Delete the recorded alarms and dashboard (``deploy --update NAME --no-alarms``); what went. Through
    cleanup's one delete loop (``cleanup.remove``)."""
    report = remove_kinds(ctx, run.record, ("alarm", "dashboard"), run.saver, SilentReporter())
    return [*report.deleted, *report.already_gone]


def tune(ctx: Context, record: Deployment, tags: Sequence[dict[str, str]] = ()) -> str | None:
    """Re-put the ModelLatency alarm with the threshold of the record's (new) bench; what changed, or None."""
    name = ctx.names.alarm("ModelLatency")
    if not any(r.id == name for r in record.of("alarm")):
        return None
    watch = next(w for w in alarm_specs(ctx.names, Shape.of(record)) if w.spec.metric == "ModelLatency")
    found = ctx.cloudwatch.describe_alarms([name])
    before = found[0].threshold if found else None
    if before is not None and abs(before - watch.spec.threshold) < 1e-6:
        return None
    actions = [r.id for r in record.of("sns-topic")]
    ctx.cloudwatch.put_metric_alarm(watch.spec, actions=actions, tags=tags)
    was = f" (was {before / 1000:g} ms)" if before is not None else ""
    return f"alarm {name}: {watch.rule}{was}"
