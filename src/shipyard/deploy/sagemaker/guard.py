"""Guarded updates: SageMaker's deployment guardrails on ``deploy --update`` (``--canary``, ``--linear``,
``--all-at-once``, ``--bake``).

UpdateEndpoint gets a ``DeploymentConfig``: a blue/green update policy (how traffic moves to the new fleet, how
long SageMaker keeps the old one with all traffic on the new, the longest the whole may take) and an automatic
rollback on the deployment's alarms. While SageMaker works, DescribeEndpoint shows ``EndpointStatus`` Updating and
a ``PendingDeploymentSummary`` whose ``ProductionVariants[].VariantStatus`` moves through Creating, Updating,
ActivatingTraffic and Baking; :class:`Progress` turns each change into a step the user sees. When an alarm fires
during a baking period SageMaker shifts all traffic back to the old fleet and the endpoint ends InService on the
old config: :func:`fired` names the alarm.

The alarms rolled back on are the error and latency ones (:data:`ROLLBACK_METRICS`): ``Invocation5XXErrors``
(the new model fails) and ``ModelLatency`` (it answers too slowly). Not ``Invocation4XXErrors`` (callers' bad
requests say nothing about the new model), nor CPU/memory or ``OverheadLatency``/``ModelSetupTime`` (a new fleet
warming up trips them without being wrong).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shipyard.cloud.cloudwatch import Alarm
from shipyard.deploy.base import DeployRun
from shipyard.deploy.options import DeployOptions, Rollout, update_budget_s
from shipyard.deploy.sagemaker.context import Context
from shipyard.deploy.state import Deployment
from shipyard.errors import ShipyardError
from shipyard.units import format_duration

__all__ = ["ROLLBACK_METRICS", "Progress", "deployment_config", "fired", "rollback_alarms"]

ROLLBACK_METRICS = ("Invocation5XXErrors", "ModelLatency")
# MaximumExecutionTimeoutInSeconds: botocore's bounds
_EXECUTION_S = (600, 28800)
_ALARM = "ALARM"


def rollback_alarms(ctx: Context, record: Deployment) -> list[str]:
    """The deployment's recorded alarms of :data:`ROLLBACK_METRICS` (none when it was deployed with --no-alarms)."""
    recorded = {r.id for r in record.of("alarm")}
    return [name for name in (ctx.names.alarm(m) for m in ROLLBACK_METRICS) if name in recorded]


def deployment_config(options: DeployOptions, alarms: list[str]) -> dict[str, Any] | None:
    """UpdateEndpoint's ``DeploymentConfig`` for ``options``' rollout and bake; None for a plain update.

    The alarms watch the new fleet during each step's baking period, ``WaitIntervalInSeconds`` (SageMaker's
    guardrails guide). So ``--all-at-once --bake D`` sends D there: the one step's watched bake. After a canary or
    linear rollout, whose watched periods are its steps' waits, ``--bake`` keeps the old fleet that long
    (``TerminationWaitInSeconds``): a rollback stays quick, though the alarms no longer roll back by themselves.
    """
    if options.rollout is None and options.bake_s is None:
        return None
    rollout = options.rollout or Rollout("ALL_AT_ONCE")
    at_once = rollout.kind == "ALL_AT_ONCE"
    bake = options.bake_s or 0
    routing: dict[str, Any] = {"Type": rollout.kind, "WaitIntervalInSeconds": bake if at_once else rollout.wait_s}
    if rollout.kind == "CANARY":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": rollout.size_pct}
    elif rollout.kind == "LINEAR":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": rollout.size_pct}
    low, high = _EXECUTION_S
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 0 if at_once else bake,
            "MaximumExecutionTimeoutInSeconds": min(max(update_budget_s(options), low), high),
        }
    }
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarms]}
    return config


def fired(ctx: Context, alarms: list[str], since: datetime) -> Alarm | None:
    """The alarm that made SageMaker roll back: one of ``alarms`` in ALARM now, else the first whose history shows
    it went to ALARM after ``since`` (a 3-of-5-minutes alarm is often back to OK once traffic is on the old fleet
    again). None when none did, or when the history cannot be read (the rollback is reported without a name)."""
    if not alarms:
        return None
    now = next((a for a in ctx.cloudwatch.describe_alarms(alarms) if a.state == _ALARM), None)
    if now is not None:
        return now
    try:
        return ctx.cloudwatch.went_to_alarm(alarms, since)
    except ShipyardError:  # no permission, throttled: the rollback is still reported, without the name
        return None


class Progress:
    """Watches DescribeEndpoint during a guarded update; reports each change of the new fleet's variant status
    as a step ("canary: 10% of capacity on the new fleet, waiting 5m", "baking 10m", "all traffic on CONFIG").

    A change is a new (status, start time) of the first variant of ``PendingDeploymentSummary``; the traffic
    step is counted from the ActivatingTraffic phases seen (a Baking without one before it counts as one: a poll
    may miss a short activation).
    """

    def __init__(self, run: DeployRun, options: DeployOptions, new_config: str) -> None:
        self.run = run
        self.rollout = options.rollout or Rollout("ALL_AT_ONCE")
        self.bake_s = options.bake_s or 0
        self.new_config = new_config
        self.step = 0  # traffic steps begun
        self._last: tuple[str, str] | None = None
        self._activated = False
        self._done = False

    def __call__(self, described: dict[str, Any]) -> None:
        if described.get("EndpointStatus") == "InService":
            if described.get("EndpointConfigName") == self.new_config and not self._done:
                self._done = True
                self.run.step(f"all traffic on {self.new_config}")
            return
        pending = described.get("PendingDeploymentSummary") or {}
        variants = pending.get("ProductionVariants") or [{}]
        statuses = variants[0].get("VariantStatus") or []
        if not statuses:
            return
        status = str(statuses[0].get("Status"))
        key = (status, str(statuses[0].get("StartTime", "")))
        if key == self._last:
            return
        self._last = key
        message = self._say(status, variants[0])
        if message:
            self.run.step(message)

    def _say(self, status: str, variant: dict[str, Any]) -> str | None:
        if status == "ActivatingTraffic":
            self.step += 1
            self._activated = True
            return f"{self._share()}: turning on traffic"
        if status == "Baking":
            if not self._activated:
                self.step += 1
            self._activated = False
            if self.step >= self.rollout.steps:
                bake = format_duration(self.bake_s)
                return f"baking {bake}: all traffic on the new fleet, the old one kept until then"
            return f"{self._share()}, waiting {format_duration(self.rollout.wait_s)}"
        if status == "Creating":
            count = variant.get("DesiredInstanceCount")
            fleet = f" ({count} instance{'s' if count != 1 else ''})" if count else ""
            return f"creating the new fleet{fleet} for {self.new_config}"
        if status == "Deleting":
            return "removing the old fleet"
        return f"the new fleet is {status}"

    def _share(self) -> str:
        """What this traffic step puts on the new fleet."""
        rollout = self.rollout
        if rollout.kind == "ALL_AT_ONCE" or self.step >= rollout.steps:
            return "all traffic moving to the new fleet"
        size = min(100, (rollout.size_pct or 100) * self.step)
        if rollout.kind == "CANARY":
            return f"canary: {size}% of capacity on the new fleet"
        return f"linear step {self.step}/{rollout.steps}: {size}% of capacity on the new fleet"
