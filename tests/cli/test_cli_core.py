"""The shipyard command: inspect, pack, invoke (table and --raw), and its error messages and exit codes."""

from __future__ import annotations

import tarfile
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from infra.cli import shipyard  # the installed console script: errors are formatted by cli.main
from infra.server import Server
from shipyard.cli import app

runner = CliRunner()


def test_version() -> None:
    result = shipyard("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("shipyard ")


def test_inspect_a_directory(digits_bundle: Path) -> None:
    result = runner.invoke(app, ["inspect", str(digits_bundle)])
    assert result.exit_code == 0, result.output
    for expected in ("digits", "sklearn", "float64[N × 64]", "int64[N]", "scikit-learn==", "requirements"):
        assert expected in result.output


def test_inspect_json_of_an_archive(digits_bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    assert runner.invoke(app, ["pack", str(digits_bundle), "-o", str(archive)]).exit_code == 0
    result = runner.invoke(app, ["inspect", str(archive), "--json"])
    assert result.exit_code == 0, result.output
    info = orjson.loads(result.stdout)
    assert info["flavor"] == "sklearn"
    assert info["name"] == "digits"
    assert info["input"] == "float64[N × 64]"
    assert info["archive_bytes"] == archive.stat().st_size
    assert any(line.startswith("scikit-learn==") for line in info["requirements"])


def test_inspect_a_handler_directory(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(
        "def model_fn(d):\n    pass\ndef input_fn(b, c):\n    pass\ndef output_fn(p, a):\n    pass\n"
    )
    info = orjson.loads(runner.invoke(app, ["inspect", str(tmp_path), "--json"]).stdout)
    assert info["flavor"] == "handler"
    assert info["handler_functions"] == ["model_fn", "input_fn", "output_fn"]


def test_inspect_a_broken_handler_script(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(:\n")
    result = shipyard("inspect", str(tmp_path))
    assert result.returncode == 2
    assert "inference.py is not valid Python: invalid syntax" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_pack(digits_bundle: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "model.tar.gz"
    result = runner.invoke(app, ["pack", str(digits_bundle), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "model.tar.gz" in result.output
    with tarfile.open(output) as tar:
        assert "shipyard.toml" in tar.getnames()
    first = output.read_bytes()
    runner.invoke(app, ["pack", str(digits_bundle), "--output", str(output)])
    assert output.read_bytes() == first


@pytest.mark.integration
def test_invoke_prints_a_table(digits_server: Server, digits_bundle: Path, tmp_path: Path) -> None:
    example = orjson.loads((digits_bundle / "example.json").read_bytes())
    request = tmp_path / "request.json"
    request.write_bytes(orjson.dumps({"instances": example["instances"]}))
    result = runner.invoke(app, ["invoke", digits_server.url, "--data", str(request)])
    assert result.exit_code == 0, result.output
    assert f"{len(example['predictions'])} predictions in" in result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    values = [line.split("│")[2].strip() for line in lines if line.split("│")[1].strip().isdigit()]
    assert values == [str(p) for p in example["predictions"]]


@pytest.mark.integration
def test_invoke_raw(digits_server: Server, digits_rows: list[list[float]], tmp_path: Path) -> None:
    request = tmp_path / "rows.csv"
    request.write_text("".join(",".join(map(str, row)) + "\n" for row in digits_rows))
    result = runner.invoke(app, ["invoke", digits_server.url, "--data", str(request), "--raw"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == len(digits_rows)  # CSV in, CSV out, one line per row
    json_raw = runner.invoke(
        app, ["invoke", digits_server.url, "--data", str(request), "--accept", "application/json", "--raw"]
    )
    assert list(orjson.loads(json_raw.stdout)) == ["predictions"]


@pytest.mark.integration
def test_invoke_from_stdin(digits_server: Server, digits_rows: list[list[float]]) -> None:
    result = shipyard("invoke", digits_server.url, "--data", "-", "--raw", stdin=orjson.dumps(digits_rows[:2]))
    assert result.returncode == 0, result.stderr
    assert len(orjson.loads(result.stdout)["predictions"]) == 2


@pytest.mark.integration
def test_invoke_error_from_the_server(digits_server: Server, tmp_path: Path) -> None:
    request = tmp_path / "bad.json"
    request.write_text("[[1, 2, 3]]")
    result = shipyard("invoke", digits_server.url, "--data", str(request))
    assert result.returncode == 4
    assert "error: 400 Bad Request: expected 64 features per row, got 3" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["invoke", "http://127.0.0.1:1", "--data", "{request}"], 4, "error: cannot reach http://127.0.0.1:1"),
        (["invoke", "http://[::1", "--data", "{request}"], 4, "is not a valid URL"),
        (["invoke", "http://127.0.0.1:1", "--data", "/no/such/x.json"], 4, "--data /no/such/x.json: no such file"),
        (["inspect", "/no/such/bundle"], 2, "error: /no/such/bundle does not exist"),
        # an error message is text: square brackets in it (`shipyard[aws]`, a path) are not rich markup
        (["inspect", "/no/such/b[aws]"], 2, "error: /no/such/b[aws] does not exist"),
        (["pack", "{empty}", "-o", "{empty}/x.tar.gz"], 2, "is not a model bundle"),
        (["invoke"], 2, "Missing argument"),
    ],
)
def test_clear_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    (tmp_path / "request.json").write_text("[[1]]")
    (tmp_path / "empty").mkdir()
    filled = [a.format(request=tmp_path / "request.json", empty=tmp_path / "empty") for a in args]
    result = shipyard(*filled)
    assert result.returncode == code
    assert message in " ".join(result.stderr.split())  # rich may wrap long lines
    assert "Traceback" not in result.stderr
