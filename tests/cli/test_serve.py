"""``shipyard serve``: every setting the container reads from the environment is the default of one option.

The real console script serves real bundles over HTTP for the claims a user sees (SAGEMAKER_PROGRAM, the access
log, the port and workers, bare JSON); the mapping of each of the two dozen settings is checked through the
real typer command in process, with the server's entry function replaced by one that records the config it is
given (starting 24 servers would check nothing more).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import typer
from typer.testing import CliRunner

from infra.cli import SHIPYARD
from infra.server import ServerFactory, server_env
from shipyard.cli import app
from shipyard.config import ENV, ServerConfig, usable_cores

runner = CliRunner()


def _serve_params() -> dict[str, Any]:
    command = typer.main.get_command(app)
    serve = command.commands["serve"]  # type: ignore[attr-defined]
    return {param.name: param for param in serve.params}


def test_every_container_setting_is_an_option_default() -> None:
    envvars = {tuple(param.envvar or ()) for param in _serve_params().values()}
    missing = [names for names in ENV.values() if names not in envvars]
    assert not missing, f"settings the container reads that shipyard serve has no option for: {missing}"


def test_each_option_is_named_as_its_setting_and_reads_that_settings_variables() -> None:
    """serve hands its arguments to the config by name: each parameter but the bundle is a key of ENV."""
    params = {name: param for name, param in _serve_params().items() if name != "help"}
    assert set(params) - {"bundle"} == set(ENV) - {"model_dir"}
    assert all(tuple(param.envvar or ()) == ENV[name] for name, param in params.items() if name != "bundle")
    flags = {name: param.opts[0] for name, param in params.items() if name in ("timeout_s", "graceful_timeout_s")}
    assert flags == {"timeout_s": "--timeout", "graceful_timeout_s": "--graceful-timeout"}  # the flags stay


def test_every_option_shows_its_real_default() -> None:
    for name, param in _serve_params().items():
        if name == "help" or getattr(param, "required", False):
            continue
        shown = param.show_default
        assert isinstance(shown, str) or (shown is not False and param.default is not None), name
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "220", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.output)
    assert " ." not in text  # a "[default: ...]" eaten by rich markup left " ." behind before
    for names in ENV.values():
        assert ", ".join(names) in text
    assert "[default: (one per usable core)]" in text and "[default: 8080]" in text


# -- in process: each variable reaches the config, and an explicit option wins over it ----------------------------
CASES = [
    # (config field, variable, its value, config value; option, its value, config value)
    ("host", "SHIPYARD_HOST", "10.0.0.1", "10.0.0.1", "--host", "127.0.0.2", "127.0.0.2"),
    ("port", "SAGEMAKER_BIND_TO_PORT", "9090", 9090, "--port", "7070", 7070),
    ("workers", "SAGEMAKER_MODEL_SERVER_WORKERS", "3", 3, "--workers", "2", 2),
    ("timeout_s", "SAGEMAKER_MODEL_SERVER_TIMEOUT", "12.5", 12.5, "--timeout", "3", 3.0),
    ("max_payload_bytes", "SAGEMAKER_MAX_PAYLOAD_IN_MB", "0.5", 512 * 1024, "--max-payload-mb", "1", 1 << 20),
    ("default_accept", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv", "text/csv", "--default-accept",
     "application/jsonlines", "application/jsonlines"),
    ("program", "SAGEMAKER_PROGRAM", "custom_script.py", "custom_script.py", "--program", "other.py", "other.py"),
    ("log_level", "SAGEMAKER_CONTAINER_LOG_LEVEL", "40", "ERROR", "--log-level", "debug", "DEBUG"),
    ("log_level", "SHIPYARD_LOG_LEVEL", "warn", "WARNING", "--log-level", "20", "INFO"),
    ("max_batch_size", "SHIPYARD_MAX_BATCH_SIZE", "8", 8, "--max-batch-size", "4", 4),
    ("max_batch_delay_ms", "SHIPYARD_MAX_BATCH_DELAY_MS", "2.5", 2.5, "--max-batch-delay-ms", "1", 1.0),
    ("max_queue", "SHIPYARD_MAX_QUEUE", "10", 10, "--max-queue", "20", 20),
    ("access_log", "SHIPYARD_ACCESS_LOG", "0", False, "--access-log", None, True),
    ("access_log", "SHIPYARD_ACCESS_LOG", "on", True, "--no-access-log", None, False),
    ("graceful_timeout_s", "SHIPYARD_GRACEFUL_TIMEOUT", "5", 5.0, "--graceful-timeout", "7", 7.0),
    ("max_header_bytes", "SHIPYARD_MAX_HEADER_BYTES", "8192", 8192, "--max-header-bytes", "4096", 4096),
    ("header_timeout_s", "SHIPYARD_HEADER_TIMEOUT", "2.5", 2.5, "--header-timeout", "10", 10.0),
    ("max_connections", "SHIPYARD_MAX_CONNECTIONS", "100", 100, "--max-connections", "0", 0),
    ("run_as", "SHIPYARD_RUN_AS", "nobody", "nobody", "--run-as", "model", "model"),
    ("capture_destination", "SHIPYARD_CAPTURE_DESTINATION", "/tmp/a", "/tmp/a", "--capture-destination", "/tmp/b",
     "/tmp/b"),
    ("capture_percent", "SHIPYARD_CAPTURE_PERCENT", "50", 50.0, "--capture-percent", "25", 25.0),
    ("capture_queue", "SHIPYARD_CAPTURE_QUEUE", "5", 5, "--capture-queue", "6", 6),
    ("capture_flush_s", "SHIPYARD_CAPTURE_FLUSH_SECONDS", "3", 3.0, "--capture-flush-seconds", "4", 4.0),
    ("model_threads", "SHIPYARD_MODEL_THREADS", "2", 2, "--model-threads", "1", 1),
    ("secrets", "SHIPYARD_SECRETS", "A=a", ("A=a",), "--secrets", "B=b,C=c", ("B=b", "C=c")),
    ("region", "AWS_REGION", "eu-west-1", "eu-west-1", "--region", "us-west-2", "us-west-2"),
    ("preload", "SHIPYARD_PRELOAD", "off", "off", "--preload", "on", "on"),
    ("preload", "SHIPYARD_PRELOAD", "y", "on", "--preload", "OFF", "off"),  # the yes/no spellings; any case
    ("preload", "SHIPYARD_PRELOAD", "0", "off", "--preload", "Auto", "auto"),
    ("json_envelope", "SHIPYARD_JSON_ENVELOPE", "0", False, "--json-envelope", None, True),
    ("json_envelope", "SHIPYARD_JSON_ENVELOPE", "1", True, "--bare-json", None, False),
]  # fmt: skip


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    configs: list[ServerConfig] = []

    def record(config: ServerConfig) -> int:
        configs.append(config)
        return 0

    monkeypatch.setattr("shipyard.hosting.serve", record)
    for names in ENV.values():  # this test's environment says nothing about the server
        for name in names:
            monkeypatch.delenv(name, raising=False)
    return configs


def _config(recorded: list[ServerConfig], args: list[str], env: dict[str, str]) -> ServerConfig:
    result = runner.invoke(app, ["serve", *args], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return recorded.pop()


@pytest.mark.parametrize(("field", "variable", "raw", "value", "option", "given", "wins"), CASES)
def test_a_variable_is_the_default_and_the_option_wins(
    recorded: list[ServerConfig], digits_bundle: Path,
    field: str, variable: str, raw: str, value: Any, option: str, given: str | None, wins: Any,
) -> None:  # fmt: skip
    bundle = [str(digits_bundle)]
    assert getattr(_config(recorded, bundle, {variable: raw}), field) == value
    args = [*bundle, option] if given is None else [*bundle, option, given]
    assert getattr(_config(recorded, args, {variable: raw}), field) == wins


def test_without_any_setting_the_laptop_defaults_apply(recorded: list[ServerConfig], digits_bundle: Path) -> None:
    config = _config(recorded, [str(digits_bundle)], {})
    assert (config.host, config.port, config.workers, config.access_log) == ("127.0.0.1", 8080, usable_cores(), True)
    assert config.json_envelope is None and config.program == "inference.py"
    assert config.model_dir == str(digits_bundle)


def test_the_bundle_may_come_from_the_model_dir_variable(recorded: list[ServerConfig], digits_bundle: Path) -> None:
    assert _config(recorded, [], {"SM_MODEL_DIR": str(digits_bundle)}).model_dir == str(digits_bundle)


# -- the real console script ----------------------------------------------------------------------------------------
def _custom_script_bundle(root: Path) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "code" / "custom_script.py").write_text(
        "def model_fn(model_dir):\n    return None\n"
        "def transform_fn(model, body, content_type, accept):\n    return 'custom script', 'text/plain'\n"
    )
    return root


@pytest.mark.integration
def test_sagemaker_program_names_the_script(tmp_path: Path, running_server: ServerFactory) -> None:
    bundle = _custom_script_bundle(tmp_path / "custom")
    server = running_server(
        bundle, env={"SAGEMAKER_PROGRAM": "custom_script.py"}, command=[SHIPYARD, "serve", str(bundle)]
    )
    answer = httpx.post(f"{server.url}/invocations", content=b"{}", timeout=30)
    assert (answer.status_code, answer.text) == (200, "custom script")
    # the option, for the same bundle, without the variable
    other = running_server(bundle, command=[SHIPYARD, "serve", str(bundle), "--program", "custom_script.py"])
    assert httpx.post(f"{other.url}/invocations", content=b"{}", timeout=30).text == "custom script"


def _access_lines(server: Any) -> list[dict[str, Any]]:
    return [line for line in server.log_lines() if line.get("path") == "/invocations"]


@pytest.mark.integration
def test_access_log_variable_and_option(
    running_server: ServerFactory, digits_bundle: Path, digits_rows: list[list[float]]
) -> None:
    body = orjson.dumps({"instances": digits_rows})
    quiet = running_server(
        digits_bundle, env={"SHIPYARD_ACCESS_LOG": "0"}, command=[SHIPYARD, "serve", str(digits_bundle)]
    )
    loud = running_server(
        digits_bundle, env={"SHIPYARD_ACCESS_LOG": "0"}, command=[SHIPYARD, "serve", str(digits_bundle), "--access-log"]
    )
    for server in (quiet, loud):
        assert httpx.post(f"{server.url}/invocations", content=body, timeout=30).status_code == 200
    loud.wait_log(lambda line: line.get("path") == "/invocations")
    assert quiet.stop() == 0  # stopped: everything it was going to write is written
    assert _access_lines(quiet) == []


@pytest.mark.integration
def test_port_workers_and_json_shape_come_from_the_environment(
    running_server: ServerFactory, digits_bundle: Path, digits_rows: list[list[float]]
) -> None:
    # start_server's environment: SAGEMAKER_BIND_TO_PORT=0 and SHIPYARD_HOST=127.0.0.1, no --port or --host
    server = running_server(
        digits_bundle,
        env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SHIPYARD_JSON_ENVELOPE": "0"},
        command=[SHIPYARD, "serve", str(digits_bundle)],
    )
    listening = server.wait_log(lambda line: line.get("message") == "listening")
    assert listening["port"] != 8080 and listening["workers"] == 2
    answer = httpx.post(f"{server.url}/invocations", content=orjson.dumps({"instances": digits_rows}), timeout=30)
    assert isinstance(answer.json(), list) and len(answer.json()) == len(digits_rows)


@pytest.mark.parametrize(
    ("env", "args", "code", "message"),
    [
        ({"SHIPYARD_ACCESS_LOG": "maybe"}, [], 2, "SHIPYARD_ACCESS_LOG"),
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, [], 2, "SAGEMAKER_MODEL_SERVER_WORKERS"),
        ({}, ["--timeout", "inf"], 2, "must be a finite number"),  # a bad setting is a usage error (exit 2)
        ({}, ["--preload", "sometimes"], 2, "Invalid value for '--preload'"),  # a usage error naming the option
        ({"SHIPYARD_PRELOAD": "sometimes"}, [], 2, "SHIPYARD_PRELOAD"),
    ],
)
def test_bad_settings_are_clear_errors(
    digits_bundle: Path, env: dict[str, str], args: list[str], code: int, message: str
) -> None:
    done = subprocess.run(
        [SHIPYARD, "serve", str(digits_bundle), *args],
        env=server_env(env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
