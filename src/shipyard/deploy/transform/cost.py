"""What a transform job costs: its instances' list price per hour, billed per second of the job.

Batch transform bills the instance type at the same per-hour list price as real-time hosting (ml.m5.large
$0.115/h in us-east-1), so the hosting table (:func:`shipyard.pricing.prices`) prices it. ``seconds`` is the
job's time (TransformStartTime → TransformEndTime on SageMaker; the run's own time for a local run, which is
what the same work would bill at that speed, start-up not counted)."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.pricing import prices

__all__ = ["CostEstimate", "estimate"]


@dataclass(frozen=True, slots=True)
class CostEstimate:
    instance_type: str
    instance_count: int
    hourly_usd: float | None  # None: the type is not in the table
    seconds: float | None
    usd: float | None
    source: str

    def described(self) -> str:
        if self.hourly_usd is None:
            return f"{self.instance_type} is not in the price table ({self.source})"
        rate = f"{self.instance_count} × {self.instance_type} at ${self.hourly_usd / self.instance_count:.3f}/h"
        if self.usd is None or self.seconds is None:
            return f"{rate}, billed per second of the job ({self.source})"
        return f"{rate} for {self.seconds:.0f} s ≈ ${self.usd:.4f} ({self.source})"


def estimate(instance_type: str, instance_count: int, seconds: float | None = None) -> CostEstimate:
    table = prices()
    hourly = table.hourly(instance_type, instance_count)
    usd = hourly * seconds / 3600 if hourly is not None and seconds is not None else None
    return CostEstimate(instance_type, instance_count, hourly, seconds, usd, table.label)
