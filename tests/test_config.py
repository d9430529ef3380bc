"""ServerConfig.from_env: every setting read from the environment in one place, bad values refused clearly."""

from __future__ import annotations

import pytest

from shipyard.config import ServerConfig, usable_cores
from shipyard.errors import ShipyardError


def test_defaults() -> None:
    config = ServerConfig.from_env({})
    assert config.model_dir == "/opt/ml/model"
    assert config.host == "0.0.0.0"
    assert config.port == 8080
    assert config.workers == usable_cores()
    assert config.timeout_s == 60.0
    assert config.max_payload_bytes == 6 * 1024 * 1024
    assert config.default_accept is None
    assert config.program == "inference.py"
    assert config.log_level == "INFO"
    assert config.max_batch_size == 64
    assert config.max_batch_delay_ms == 0.0
    assert config.max_queue == 2048
    assert config.access_log is True
    assert config.graceful_timeout_s == 30.0
    assert config.run_as is None


def test_sagemaker_names() -> None:
    config = ServerConfig.from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "12.5",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.5",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_PROGRAM": "serve.py",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "40",  # the toolkit's numeric levels
            "SM_MODEL_DIR": "/models/a",
        }
    )
    assert config.port == 9090
    assert config.workers == 3
    assert config.timeout_s == 12.5
    assert config.max_payload_bytes == 512 * 1024
    assert config.default_accept == "text/csv"
    assert config.program == "serve.py"
    assert config.log_level == "ERROR"
    assert config.model_dir == "/models/a"


def test_shipyard_names() -> None:
    config = ServerConfig.from_env(
        {
            "SM_MODEL_DIR": "/models/a",
            "SHIPYARD_MODEL_DIR": "/models/b",  # wins over SM_MODEL_DIR
            "SHIPYARD_HOST": "127.0.0.1",
            "SHIPYARD_MAX_BATCH_SIZE": "8",
            "SHIPYARD_MAX_BATCH_DELAY_MS": "2.5",
            "SHIPYARD_MAX_QUEUE": "10",
            "SHIPYARD_ACCESS_LOG": "off",
            "SHIPYARD_GRACEFUL_TIMEOUT": "5",
            "SHIPYARD_RUN_AS": "nobody",
            "SHIPYARD_LOG_LEVEL": "debug",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "ERROR",
        }
    )
    assert config.model_dir == "/models/b"
    assert config.host == "127.0.0.1"
    assert config.max_batch_size == 8
    assert config.max_batch_delay_ms == 2.5
    assert config.max_queue == 10
    assert config.access_log is False
    assert config.graceful_timeout_s == 5.0
    assert config.run_as == "nobody"
    assert config.log_level == "DEBUG"  # SHIPYARD_LOG_LEVEL wins


@pytest.mark.parametrize(("raw", "level"), [("warn", "WARNING"), ("20", "INFO"), (" critical ", "CRITICAL")])
def test_log_levels(raw: str, level: str) -> None:
    assert ServerConfig.from_env({"SAGEMAKER_CONTAINER_LOG_LEVEL": raw}).log_level == level


def test_blank_values_mean_the_default() -> None:
    config = ServerConfig.from_env({"SAGEMAKER_BIND_TO_PORT": " ", "SAGEMAKER_MODEL_SERVER_TIMEOUT": ""})
    assert (config.port, config.timeout_s) == (8080, 60.0)


def test_overrides_win_and_none_means_unset() -> None:
    config = ServerConfig.from_env({"SAGEMAKER_BIND_TO_PORT": "9090"}, port=7070, workers=None, host="::1")
    assert config.port == 7070
    assert config.workers == usable_cores()
    assert config.host == "::1"
    with pytest.raises(TypeError, match="unknown server settings"):
        ServerConfig.from_env({}, no_such_setting=1)


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "5")
    assert ServerConfig.from_env().workers == 5


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("SAGEMAKER_BIND_TO_PORT", "http", "SAGEMAKER_BIND_TO_PORT='http' is not an integer"),
        ("SAGEMAKER_BIND_TO_PORT", "70000", r"SAGEMAKER_BIND_TO_PORT=70000 is out of range \[0, 65535\]"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0", "SAGEMAKER_MODEL_SERVER_WORKERS=0 is out of range"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "2.5", "is not an integer"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "soon", "SAGEMAKER_MODEL_SERVER_TIMEOUT='soon' is not a number"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0", "must be >= 0.001"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "nan", "must be a finite number"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "inf", "SAGEMAKER_MAX_PAYLOAD_IN_MB='inf' must be a finite number"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "-1", "must be >="),
        ("SHIPYARD_GRACEFUL_TIMEOUT", "inf", "must be a finite number"),
        ("SHIPYARD_CAPTURE_PERCENT", "150", "SHIPYARD_CAPTURE_PERCENT=150 must be between 0 and 100"),
        ("SHIPYARD_CAPTURE_PERCENT", "-1", "SHIPYARD_CAPTURE_PERCENT=-1 must be between 0 and 100"),
        ("SHIPYARD_MODEL_THREADS", "-1", r"SHIPYARD_MODEL_THREADS=-1 is out of range \[0, 4096\]"),
        ("SHIPYARD_MAX_BATCH_SIZE", "0", "out of range"),
        ("SHIPYARD_MAX_QUEUE", "many", "is not an integer"),
        ("SAGEMAKER_CONTAINER_LOG_LEVEL", "verbose", "log level 'verbose' is not one of DEBUG, INFO"),
    ],
)
def test_bad_values_are_clear_errors(name: str, raw: str, message: str) -> None:
    with pytest.raises(ShipyardError, match=message):
        ServerConfig.from_env({name: raw})


def test_with_replaces_fields() -> None:
    config = ServerConfig.from_env({})
    assert config.with_(port=1).port == 1
    assert config.port == 8080  # frozen: the original is unchanged


@pytest.mark.parametrize(
    ("raw", "value"),
    [("", "auto"), ("AUTO", "auto"), ("1", "on"), ("on", "on"), ("no", "off"),
     # every spelling of a yes/no setting (SHIPYARD_ACCESS_LOG's), not a shorter list of its own
     ("y", "on"), ("t", "on"), (" Yes ", "on"), ("TRUE", "on"), ("n", "off"), ("f", "off"), ("OFF", "off")],
)  # fmt: skip
def test_preload_setting(raw: str, value: str) -> None:
    assert ServerConfig.from_env({"SHIPYARD_PRELOAD": raw}).preload == value


def test_a_bad_preload_setting_names_the_variable() -> None:
    with pytest.raises(ShipyardError, match=r"SHIPYARD_PRELOAD='sometimes': use auto, on or off"):
        ServerConfig.from_env({"SHIPYARD_PRELOAD": "sometimes"})
