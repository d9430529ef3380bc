"""The local target's health, read from the container's own ``/metrics`` (Prometheus text, serving/metrics.py).

Counts of the ``invocations`` route by status class, and p50/p99 estimated from the latency histogram the way
PromQL's ``histogram_quantile`` estimates them (:func:`histogram_quantile`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prometheus_client.parser import text_string_to_metric_families

from shipyard.deploy.base import Health

__all__ = ["LOCAL_WINDOW", "health_from_metrics", "histogram_quantile"]

LOCAL_WINDOW = "since the container started"
ROUTE = "invocations"
_REQUESTS = "shipyard_requests"
_LATENCY = "shipyard_request_duration_seconds"


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets (the last bound +Inf), as PromQL does it:
    find the bucket the rank falls in and interpolate linearly inside it (the first bucket starts at 0); a rank
    in the +Inf bucket answers the highest finite bound. None when nothing was observed."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for index, (bound, count) in enumerate(ordered):
        if count >= rank:
            if math.isinf(bound):
                return ordered[index - 1][0] if index else None
            if index == 0 and bound <= 0:
                return bound
            in_bucket = count - lower_count
            if in_bucket <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
        lower_bound, lower_count = bound, count
    return None


def health_from_metrics(text: str) -> Health:
    """The Health of a local container from its ``/metrics`` text."""
    counts = {"total": 0.0, "4xx": 0.0, "5xx": 0.0}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("route") != ROUTE:
                continue
            if sample.name == f"{_REQUESTS}_total":  # the family is named with or without _total
                code = sample.labels.get("code", "")
                counts["total"] += sample.value
                if code[:1] in "45" and code:
                    counts[f"{code[0]}xx"] += sample.value
            elif sample.name == f"{_LATENCY}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    pairs = list(buckets.items())
    p50, p99 = histogram_quantile(0.5, pairs), histogram_quantile(0.99, pairs)
    return Health(
        window=LOCAL_WINDOW,
        invocations=counts["total"],
        errors_4xx=counts["4xx"],
        errors_5xx=counts["5xx"],
        p50_ms=None if p50 is None else p50 * 1000.0,
        p99_ms=None if p99 is None else p99 * 1000.0,
        notes=["no alarms on the local target: `shipyard deploy --target sagemaker` sets CloudWatch alarms"],
    )
