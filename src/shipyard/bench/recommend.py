"""From measurements to settings: items per request, concurrency, workers, instance type and count, autoscaling.

The arithmetic, so a reader can check it:

* **items per request**: the size with the most items/s whose median latency stays under the time budget
  (``time_limit × safety``) with no errors;
* **max sustainable req/s**: the best throughput of the sweep among levels with no errors and p99 within
  the SLO (default: 1 s, or 4× the lone-request p99 when that is larger);
* **instances**: the measured server had ``server_vcpus`` vCPUs; capacity per vCPU is assumed to carry over
  to an instance (an estimate: CPU generations differ, so re-run ``shipyard bench`` on the endpoint).
  For each CPU instance type in the price table: ``count = ceil(peak_rps / (capacity × safety))``, and the
  cheapest total hourly price wins (fewer instances on a tie);
* **autoscaling target** (SageMakerVariantInvocationsPerInstance, per minute):
  ``capacity per instance (req/s) × safety × 60``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.bench.load import LoadResult

__all__ = ["INSTANCE_VCPUS", "Recommendation", "recommend"]

# vCPUs of the CPU instance types SageMaker hosts on (from the instance-type pages; prices come from
# shipyard.pricing). Burstable t2 types (CPU credits run out under sustained load), Graviton and GPU types
# are left out: they throttle, need different images, or are not what a CPU benchmark can size.
INSTANCE_VCPUS = {
    "ml.m5.large": 2,
    "ml.m5.xlarge": 4,
    "ml.m5.2xlarge": 8,
    "ml.m5.4xlarge": 16,
    "ml.c5.large": 2,
    "ml.c5.xlarge": 4,
    "ml.c5.2xlarge": 8,
    "ml.c5.4xlarge": 16,
    "ml.c5.9xlarge": 36,
}


@dataclass
class Recommendation:
    items_per_request: int | None = None
    items_per_request_why: str = ""
    concurrency: int | None = None
    max_rps: float | None = None
    max_items_per_s: float | None = None
    slo_p99_ms: float | None = None
    workers: str = ""
    instance_type: str | None = None
    instance_count: int | None = None
    capacity_rps_per_instance: float | None = None
    hourly_usd: float | None = None
    autoscaling_target: int | None = None  # InvocationsPerInstance per minute
    deploy_command: str | None = None
    peak_rps: float | None = None
    safety: float = 0.5
    price_label: str = ""
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend(
    sizes: list[LoadResult],
    sweep: list[LoadResult],
    *,
    server_vcpus: int | None = None,
    peak_rps: float | None = None,
    safety: float = 0.5,
    slo_p99_ms: float | None = None,
    time_limit_s: float = 60.0,
    workers: int | None = None,
) -> Recommendation:
    rec = Recommendation(safety=safety)
    _items_per_request(rec, sizes, time_limit_s * safety)
    _sustainable(rec, sweep, slo_p99_ms)
    rec.workers = _workers_advice(workers, server_vcpus)
    if rec.max_rps and server_vcpus:
        _instances(rec, rec.max_rps / server_vcpus, peak_rps, safety)
    elif rec.max_rps:
        rec.notes.append("pass the measured server's vCPU count (--server-vcpus) to size SageMaker instances")
    return rec


def _items_per_request(rec: Recommendation, sizes: list[LoadResult], budget_s: float) -> None:
    best: tuple[float, int] | None = None
    for result in sizes:
        median = result.latency_ms(50)
        if result.errors or median is None:
            rec.notes.append(f"{result.items_per_request} items per request failed: {_errors(result)}")
            continue
        if median / 1000 > budget_s:
            rec.notes.append(
                f"{result.items_per_request} items per request take {median / 1000:.1f} s, over the "
                f"{budget_s:.0f} s budget: split them (shipyard invoke does)"
            )
            continue
        rate = result.items_per_request / (median / 1000)
        if best is None or rate > best[0] * 1.02:  # a bigger request must be clearly faster to be worth it
            best = (rate, result.items_per_request)
    if best is not None:
        rec.items_per_request = best[1]
        rec.items_per_request_why = f"{best[0]:.0f} items/s, the most of the sizes measured within the time budget"


def _sustainable(rec: Recommendation, sweep: list[LoadResult], slo_p99_ms: float | None) -> None:
    if not sweep:
        return
    if slo_p99_ms is None:
        lone = min(sweep, key=lambda r: r.level).latency_ms(99) or 0.0
        slo_p99_ms = max(1000.0, 4 * lone)
    rec.slo_p99_ms = round(slo_p99_ms, 1)
    good = [r for r in sweep if not r.errors and (r.latency_ms(99) or math.inf) <= slo_p99_ms]
    if not good:
        rec.notes.append(f"no load level kept p99 within {slo_p99_ms:.0f} ms without errors")
        return
    best = max(good, key=lambda r: r.requests_per_s)
    # The smallest level within 5 % of the best: more in flight past that point only adds latency.
    enough = min((r for r in good if r.requests_per_s >= 0.95 * best.requests_per_s), key=lambda r: r.level)
    rec.concurrency = int(enough.level) if enough.mode == "closed" else None
    rec.max_rps = round(best.requests_per_s, 2)
    rec.max_items_per_s = round(best.items_per_s, 2)


def _workers_advice(workers: int | None, vcpus: int | None) -> str:
    measured = f"measured with {workers} worker(s)" if workers else "worker count of the measured server unknown"
    return (
        f"one worker per vCPU, the server's default (SAGEMAKER_MODEL_SERVER_WORKERS unset), each with "
        f"vCPUs ÷ workers model threads (SHIPYARD_MODEL_THREADS unset); fewer workers only if workers × model "
        f"memory does not fit the instance ({measured})"
    )


def _instances(rec: Recommendation, per_vcpu_rps: float, peak_rps: float | None, safety: float) -> None:
    from shipyard.pricing import prices

    table = prices()
    rec.price_label = table.label
    peak = peak_rps if peak_rps is not None else rec.max_rps or 0.0
    rec.peak_rps = round(peak, 2)
    options: list[dict[str, Any]] = []
    for instance_type, vcpus in INSTANCE_VCPUS.items():
        hourly = table.hourly(instance_type)
        if hourly is None:
            continue
        capacity = per_vcpu_rps * vcpus
        count = max(1, math.ceil(peak / (capacity * safety))) if capacity > 0 else 1
        options.append(
            {
                "instance_type": instance_type,
                "vcpus": vcpus,
                "capacity_rps": round(capacity, 2),
                "count": count,
                "hourly_usd": round(hourly * count, 4),
            }
        )
    if not options:
        rec.notes.append("no CPU instance type of the price table is known to the recommender")
        return
    options.sort(key=lambda o: (o["hourly_usd"], o["count"]))
    best = options[0]
    rec.instance_type = best["instance_type"]
    rec.instance_count = best["count"]
    rec.capacity_rps_per_instance = best["capacity_rps"]
    rec.hourly_usd = best["hourly_usd"]
    rec.autoscaling_target = max(1, int(best["capacity_rps"] * safety * 60))
    count = int(best["count"])
    # shipyard deploy derives the same target from --max-rps (× 0.5 × 60); scaling bounds: the peak's count
    # is the ceiling's half, and the floor keeps two instances once the peak needs two.
    rec.deploy_command = (
        f"shipyard deploy BUNDLE --target sagemaker --instance-type {best['instance_type']} "
        f"--instance-count {count} --autoscale {min(count, 2)}:{2 * count} --max-rps {best['capacity_rps']:g}"
    )
    rec.alternatives = options[1:4]
    rec.notes.append(
        "instance capacity is extrapolated per vCPU from the measured server: run shipyard bench against the "
        "endpoint once it is up, and keep at least 2 instances for availability"
    )


def _errors(result: LoadResult) -> str:
    return ", ".join(f"{code} ×{count}" for code, count in result.errors.items()) or "no answer"
