"""``shipyard status NAME`` on sagemaker: each recorded alarm's state, and the last hour from CloudWatch.

Two GetMetricData calls over the hour (one period of 3600 s; a figure spread over two periods is summed, a
percentile takes the larger): the sums (Invocations, Invocation4XXErrors, Invocation5XXErrors), then the
percentiles (ModelLatency p50 and p99; serverless: ModelSetupTime p99), µs → ms. A metric with no datapoint
in the hour (no traffic) is None.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shipyard.cloud.cloudwatch import MetricQuery
from shipyard.deploy.base import AlarmState, Health
from shipyard.deploy.sagemaker.alarms import SAGEMAKER_NS, Shape, alarm_specs
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.sagemaker.names import VARIANT
from shipyard.deploy.state import Deployment

__all__ = ["WINDOW", "read"]

WINDOW = timedelta(hours=1)
_SUMS = {"invocations": "Invocations", "errors_4xx": "Invocation4XXErrors", "errors_5xx": "Invocation5XXErrors"}


def read(ctx: Context, record: Deployment, now: datetime) -> Health:
    health = Health(window="last hour", alarms=alarm_states(ctx, record))
    dims = {"EndpointName": ctx.names.endpoint, "VariantName": VARIANT}
    start = now - WINDOW
    sums = ctx.cloudwatch.metric_data(
        [MetricQuery(key, SAGEMAKER_NS, metric, dims, "Sum") for key, metric in _SUMS.items()], start, now
    )
    health.invocations, health.errors_4xx, health.errors_5xx = (_total(sums[key]) for key in _SUMS)
    percentiles = [MetricQuery("p50", SAGEMAKER_NS, "ModelLatency", dims, "p50"),
                   MetricQuery("p99", SAGEMAKER_NS, "ModelLatency", dims, "p99")]  # fmt: skip
    serverless = record.serverless is not None
    if serverless:
        percentiles.append(MetricQuery("setup_p99", SAGEMAKER_NS, "ModelSetupTime", dims, "p99"))
    found = ctx.cloudwatch.metric_data(percentiles, start, now)
    health.p50_ms, health.p99_ms = _ms(found["p50"]), _ms(found["p99"])
    if serverless:
        health.extra["model_setup_p99_ms"] = _ms(found["setup_p99"])
    if health.invocations is None:
        health.notes.append("no invocations in the last hour (CloudWatch has no datapoint)")
    if not record.of("alarm"):
        health.notes.append("no alarms (deployed with --no-alarms, or before Shipyard made them)")
    return health


def alarm_states(ctx: Context, record: Deployment) -> list[AlarmState]:
    """The recorded alarms as DescribeAlarms answers them, with their rule in words; a missing one says so."""
    names = [r.id for r in record.of("alarm")]
    if not names:
        return []
    rules = {w.spec.name: w for w in alarm_specs(ctx.names, Shape.of(record))}
    live = {alarm.name: alarm for alarm in ctx.cloudwatch.describe_alarms(names)}
    states = []
    for name in names:
        watch, alarm = rules.get(name), live.get(name)
        metric = alarm.metric if alarm else (watch.spec.metric if watch else name.rsplit("-", 1)[-1])
        states.append(
            AlarmState(
                name=name,
                metric=metric,
                state=alarm.state if alarm else "MISSING",
                reason=alarm.reason if alarm else "not found in CloudWatch: `shipyard deploy --update` puts it back",
                threshold=watch.rule if watch else "",
            )
        )
    return states


def _total(values: list[float]) -> float | None:
    return sum(values) if values else None


def _ms(values: list[float]) -> float | None:
    return round(max(values) / 1000, 3) if values else None
