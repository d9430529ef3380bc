"""What a ``constraints.json`` asks of a check: the monitoring settings, and each feature's overrides.

    settings = Settings.of(read_json(path, "constraints.json"))
    settings.evaluated("_c0")          # False after Constraints.set_monitoring(False, "_c0")
    settings.override("b", "comparison_threshold")

The file may come from ``shipyard monitor baseline``, from a SageMaker baseline job, or from the SageMaker
Python SDK's ``Constraints`` after ``set_monitoring``; each spells a feature's overrides its own way, and all
are read and merged (a key in an earlier one of these wins):

* ``monitoring_config_overrides`` on the feature — what the SDK's ``set_monitoring(False, name)`` writes;
* ``monitoringConfigOverrides`` on the feature — the spelling of AWS's schema page;
* ``string_constraints.monitoring_config_overrides`` — where older SDK versions wrote it.

An override holds ``evaluate_constraints`` (``Enabled``/``Disabled``), Shipyard's ``comparison_method`` and
``comparison_threshold``, and optionally Model Monitor's ``distribution_constraints`` (``perform_comparison``,
``comparison_threshold``). ``monitoring_config.evaluate_constraints = "Disabled"`` (the SDK's
``set_monitoring(False)``) turns every check off; ``distribution_constraints.perform_comparison =
"Disabled"`` turns off the drift checks only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.monitor.formats import DEFAULTS

__all__ = ["Settings"]

_SPELLINGS = ("monitoring_config_overrides", "monitoringConfigOverrides")


def _enabled(value: Any) -> bool:
    """Model Monitor's flags are ``"Enabled"`` / ``"Disabled"``; anything but ``Disabled`` leaves it on."""
    return not (isinstance(value, str) and value.strip().lower() == "disabled") and value is not False


@dataclass(frozen=True)
class Settings:
    config: dict[str, Any]  # monitoring_config over the defaults, distribution_constraints flattened in
    features: dict[str, dict[str, Any]]  # the constraints of each feature, by name
    overrides: dict[str, dict[str, Any]]  # each feature's monitoring overrides, whichever the spelling

    @classmethod
    def of(cls, constraints: dict[str, Any]) -> Settings:
        given = constraints.get("monitoring_config") or {}
        config = {k: v for k, v in DEFAULTS.items() if k != "distribution_constraints"}
        config.update({k: v for k, v in given.items() if k != "distribution_constraints"})
        distribution = dict(DEFAULTS["distribution_constraints"])
        distribution.update(given.get("distribution_constraints") or {})
        config.update(distribution)
        features = {f["name"]: f for f in constraints.get("features") or [] if isinstance(f, dict) and "name" in f}
        return cls(config, features, {name: _overrides(feature) for name, feature in features.items()})

    @property
    def evaluates(self) -> bool:
        """Whether constraints are evaluated at all (``monitoring_config.evaluate_constraints``)."""
        return _enabled(self.config.get("evaluate_constraints"))

    def evaluated(self, name: str) -> bool:
        """Whether ``name``'s constraints are evaluated (globally, and in its overrides)."""
        return self.evaluates and _enabled(self.overrides.get(name, {}).get("evaluate_constraints"))

    def compared(self, name: str) -> bool:
        """Whether ``name``'s distribution is compared with the baseline's (a ``baseline_drift_check``)."""
        local = self.overrides.get(name, {}).get("distribution_constraints") or {}
        return (
            self.evaluated(name)
            and _enabled(self.config.get("perform_comparison"))
            and _enabled(local.get("perform_comparison"))
        )

    def override(self, name: str, key: str) -> Any:
        """``key`` from ``name``'s overrides (or from their ``distribution_constraints``), else ``None``."""
        overrides = self.overrides.get(name, {})
        if key in overrides:
            return overrides[key]
        return (overrides.get("distribution_constraints") or {}).get(key)


def _overrides(feature: dict[str, Any]) -> dict[str, Any]:
    strings = feature.get("string_constraints")
    found = [(strings or {}).get("monitoring_config_overrides") if isinstance(strings, dict) else None]
    found += [feature.get(key) for key in reversed(_SPELLINGS)]
    merged: dict[str, Any] = {}
    for value in found:  # least to most authoritative
        if isinstance(value, dict):
            merged.update(value)
    return merged
