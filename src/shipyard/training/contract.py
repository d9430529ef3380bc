"""SageMaker's training contract: the files under ``/opt/ml/input/config`` and the ``SM_*`` environment.

The host side (the local target) writes what SageMaker writes before it starts a training container:

    input/config/hyperparameters.json   every value a string (a non-string JSON-encoded: 10 → "10", True → "true")
    input/config/inputdataconfig.json   per channel: TrainingInputMode File, S3DistributionType FullyReplicated,
                                        RecordWrapperType None, ContentType when known
    input/config/resourceconfig.json    current_host algo-1, hosts, network_interface_name eth0, instance type,
                                        current_group_name homogeneousCluster, instance_groups

The container side (:func:`training_env`, used by the image's ``train``) computes the environment the
sagemaker-training-toolkit gives a script from those files: hyperparameter values decoded with ``json.loads``
(falling back to the string), ``sagemaker_*`` ones kept out of the user's, ``SM_HP_<NAME>`` upper-cased, the user
arguments ``--name value`` in sorted order (``-n value`` for a one-letter name), every non-string value of the
environment JSON-encoded compactly with sorted keys. Every path hangs off :class:`Paths` (default ``/opt/ml``),
so tests run the contract on a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CURRENT_HOST",
    "DEFAULT_ROOT",
    "GROUP_NAME",
    "Paths",
    "decode_hyperparameters",
    "encode_hyperparameters",
    "read_config",
    "to_cmd_args",
    "training_env",
    "write_config",
]

DEFAULT_ROOT = Path("/opt/ml")
CURRENT_HOST = "algo-1"
GROUP_NAME = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"
_SAGEMAKER_PREFIX = "sagemaker_"  # the toolkit's own hyperparameters (sagemaker_program, ...), not the user's
_LOG_LEVEL = 20  # logging.INFO, the toolkit's default sagemaker_container_log_level


@dataclass(frozen=True)
class Paths:
    """The contract's folders under ``root`` (``/opt/ml`` in a container)."""

    root: Path = DEFAULT_ROOT

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def data_dir(self) -> Path:
        return self.input_dir / "data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def resource_config_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"


# -- the host side ---------------------------------------------------------------------------------------------
def encode_hyperparameters(values: Mapping[str, Any]) -> dict[str, str]:
    """``hyperparameters.json``'s form: a string stays as it is, anything else is JSON-encoded."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def input_data_config(channels: Mapping[str, str | None]) -> dict[str, dict[str, str]]:
    """``inputdataconfig.json`` for ``channels`` (name → content type, None when unknown)."""
    config: dict[str, dict[str, str]] = {}
    for name, content_type in channels.items():
        entry = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        if content_type:
            entry["ContentType"] = content_type
        config[name] = entry
    return config


def resource_config(instance_type: str, hosts: list[str] | None = None) -> dict[str, Any]:
    """``resourceconfig.json`` for one homogeneous group of ``hosts`` (default: ``algo-1`` alone)."""
    hosts = hosts or [CURRENT_HOST]
    return {
        "current_host": hosts[0],
        "current_instance_type": instance_type,
        "current_group_name": GROUP_NAME,
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": GROUP_NAME, "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": NETWORK_INTERFACE,
    }


def write_config(
    paths: Paths,
    *,
    hyperparameters: Mapping[str, Any],
    channels: Mapping[str, str | None],
    instance_type: str,
) -> None:
    """Write the three files of ``input/config`` (and make the contract's folders)."""
    for folder in (paths.config_dir, paths.data_dir, paths.model_dir, paths.output_data_dir, paths.checkpoints_dir):
        folder.mkdir(parents=True, exist_ok=True)
    files = {
        paths.hyperparameters_file: encode_hyperparameters(hyperparameters),
        paths.input_data_config_file: input_data_config(channels),
        paths.resource_config_file: resource_config(instance_type),
    }
    for path, data in files.items():
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# -- the container side ----------------------------------------------------------------------------------------
def decode_hyperparameters(raw: Mapping[str, str]) -> dict[str, Any]:
    """Each value ``json.loads``-ed, falling back to the string itself (the toolkit's rule)."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """The user arguments: ``--name value`` (``-n value`` for a one-letter name), names sorted; a mapping value
    as ``k=v,k=v``, anything else as ``str(value)``."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


@dataclass(frozen=True)
class Config:
    """What ``input/config`` holds, read back."""

    hyperparameters: dict[str, Any]  # the user's, decoded
    framework: dict[str, Any]  # the sagemaker_* ones, decoded
    input_data_config: dict[str, Any]
    resource_config: dict[str, Any]


def read_config(paths: Paths) -> Config:
    """Read the three files (a missing one reads as empty, as the toolkit does for hyperparameters)."""
    raw = _read_json(paths.hyperparameters_file)
    decoded = decode_hyperparameters({str(k): str(v) if not isinstance(v, str) else v for k, v in raw.items()})
    user = {k: v for k, v in decoded.items() if not k.startswith(_SAGEMAKER_PREFIX)}
    framework = {k: v for k, v in decoded.items() if k.startswith(_SAGEMAKER_PREFIX)}
    resources = _read_json(paths.resource_config_file) or resource_config("local")
    return Config(user, framework, _read_json(paths.input_data_config_file), resources)


def training_env(
    paths: Paths,
    *,
    program: str,
    code_dir: Path | None = None,
    job_name: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
) -> dict[str, str]:
    """The ``SM_*`` variables (and ``SM_TRAINING_ENV``) a script gets, from the files under ``paths``."""
    config = read_config(paths)
    channels = sorted(config.input_data_config)
    code = code_dir or paths.code_dir
    resources = config.resource_config
    facts: dict[str, Any] = {
        "model_dir": str(paths.model_dir),
        "channels": channels,
        "hps": config.hyperparameters,
        "num_cpus": num_cpus if num_cpus is not None else os.cpu_count() or 1,
        "num_gpus": num_gpus if num_gpus is not None else count_gpus(),
        "hosts": resources.get("hosts", [CURRENT_HOST]),
        "current_host": resources.get("current_host", CURRENT_HOST),
        "current_instance_type": resources.get("current_instance_type", "local"),
        "output_data_dir": str(paths.output_data_dir),
        "output_dir": str(paths.output_dir),
        "input_dir": str(paths.input_dir),
        "input_config_dir": str(paths.config_dir),
        "input_data_config": config.input_data_config,
        "resource_config": resources,
        "user_args": to_cmd_args(config.hyperparameters),
        "user_entry_point": program,
        "module_dir": str(code),
        "module_name": re.sub(r"\.py$", "", program),
        "log_level": int(config.framework.get("sagemaker_container_log_level", _LOG_LEVEL)),
        "network_interface_name": resources.get("network_interface_name", NETWORK_INTERFACE),
        "output_intermediate_dir": str(paths.output_dir / "intermediate"),
    }
    env = {f"SM_{key.upper()}": _env_value(value) for key, value in facts.items()}
    env.update({f"SM_CHANNEL_{name.upper()}": str(paths.data_dir / name) for name in channels})
    env.update({f"SM_HP_{key.upper()}": _env_value(value) for key, value in config.hyperparameters.items()})
    training = {k: v for k, v in facts.items() if k not in ("channels", "hps")}
    training.update(
        channel_input_dirs={name: str(paths.data_dir / name) for name in channels},
        hyperparameters=config.hyperparameters,
        job_name=job_name,
        additional_framework_parameters={},
    )
    env["SM_TRAINING_ENV"] = _env_value(training)
    return env


def count_gpus() -> int:
    """The NVIDIA GPUs the container sees (``/dev/nvidiaN``)."""
    dev = Path("/dev")
    return sum(1 for p in dev.glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)) if dev.is_dir() else 0


def _env_value(value: Any) -> str:
    """The toolkit's rule for an environment value: a string as it is, None empty, else compact sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text() or "{}")
    return data if isinstance(data, dict) else {}
