"""Model Monitor's files as AWS's own tools write and read them (issue 11 §4).

* constraints.json edited by the SageMaker Python SDK's ``Constraints.set_monitoring`` (the real class, its
  file saved through S3 on moto) turns a feature's checks, or all of them, off for ``shipyard monitor check``;
* violation descriptions read as Model Monitor's, and AWS's own parsers get the distance out of them;
* statistics.json / constraints.json in the shape a SageMaker baseline job writes them are a baseline;
* a TF Serving request ``{"instances": [1.0, 2.0, 5.0]}`` answered with three predictions is three rows.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from monitor_helpers import T0, records_payloads, write_capture
from sagemaker_files import baseline_job_files
from typer.testing import CliRunner

from infra.moto import REGION, aws, moto_server  # noqa: F401 - fixtures
from shipyard.cli import app
from shipyard.monitor import make_baseline, run_check

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

# the parser AWS's Model Monitor examples run on constraint_violations.json (post-processing scripts and the
# CloudWatch-metric lambdas of amazon-sagemaker-examples): both groups go through float()
AWS_DRIFT_PARSER = re.compile("distance: (.+) exceeds threshold: (.+)")


def pairs(violations: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in violations}


def check_exit(capture: Path, baseline: Path, out: Path) -> int:
    result = CliRunner().invoke(app, ["monitor", "check", str(capture), "-b", str(baseline), "-o", str(out)])
    assert result.exit_code in (0, 3), result.output
    return int(result.exit_code)


def csv_rows(columns: list[np.ndarray]) -> list[str]:
    return [",".join(f"{v:.4f}" for v in row) for row in zip(*columns, strict=True)]


# -- the SDK's Constraints.set_monitoring ------------------------------------------------------------
@pytest.fixture
def sdk_session(aws: Any) -> Any:  # noqa: F811 - the moto fixture
    import boto3
    from sagemaker import Session

    # a named default bucket: the SDK would otherwise ask STS (at its own regional URL, not moto's) for the account
    return Session(boto_session=boto3.Session(region_name=REGION), default_bucket="shipyard-monitor-tests")


def sdk_edit(session: Any, baseline: Path, out: Path, edit: Callable[[Any], None]) -> dict[str, Any]:
    """``baseline``'s constraints.json through the SDK's ``Constraints``: read, ``edit``, ``save`` (to S3),
    and the saved object downloaded into ``out`` next to a copy of the statistics."""
    from sagemaker.model_monitor import Constraints

    constraints = Constraints.from_file_path(str(baseline / "constraints.json"), sagemaker_session=session)
    edit(constraints)
    uri = constraints.save()
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    out.mkdir(parents=True, exist_ok=True)
    (out / "constraints.json").write_bytes(body)
    shutil.copy(baseline / "statistics.json", out / "statistics.json")
    document: dict[str, Any] = orjson.loads(body)
    return document


@pytest.mark.integration
def test_sdk_set_monitoring_turns_a_feature_and_then_everything_off(sdk_session: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train = [rng.normal(0, 1, 5000) for _ in range(3)]
    (tmp_path / "train.csv").write_text("\n".join(csv_rows(train)) + "\n")
    make_baseline(tmp_path / "train.csv", tmp_path / "baseline", header=False)  # Model Monitor's _c0, _c1, _c2
    current = [rng.normal(0, 1, 3000) for _ in range(3)]
    current[0] += 1.0  # _c0 drifts by one standard deviation
    rows = csv_rows(current)
    write_capture(tmp_path / "one", [(T0 + i, "text/csv", r.encode()) for i, r in enumerate(rows)])
    assert check_exit(tmp_path / "one", tmp_path / "baseline", tmp_path / "o1") == 3

    def off_c0(constraints: Any) -> None:
        constraints.set_monitoring(False, "_c0")

    per_feature = sdk_edit(sdk_session, tmp_path / "baseline", tmp_path / "per-feature", off_c0)
    c0 = next(f for f in per_feature["features"] if f["name"] == "_c0")
    assert c0["monitoring_config_overrides"] == {"evaluate_constraints": "Disabled"}  # the SDK's spelling
    assert check_exit(tmp_path / "one", tmp_path / "per-feature", tmp_path / "o2") == 0
    drift = orjson.loads((tmp_path / "o2" / "drift.json").read_bytes())
    scored = {f["name"]: f for f in drift["features"]}
    assert scored["_c0"]["score"] > scored["_c0"]["threshold"] and not scored["_c0"]["evaluated"]
    assert not scored["_c0"]["drifted"] and scored["_c1"]["evaluated"]

    current[1] += 1.0  # now _c1 drifts too: it is still checked
    rows = csv_rows(current)
    write_capture(tmp_path / "two", [(T0 + i, "text/csv", r.encode()) for i, r in enumerate(rows)])
    assert check_exit(tmp_path / "two", tmp_path / "per-feature", tmp_path / "o3") == 3
    violations = orjson.loads((tmp_path / "o3" / "constraint_violations.json").read_bytes())["violations"]
    assert pairs(violations) == {("_c1", "baseline_drift_check")}

    def off(constraints: Any) -> None:
        constraints.set_monitoring(False)

    everything = sdk_edit(sdk_session, tmp_path / "per-feature", tmp_path / "all-off", off)
    assert everything["monitoring_config"]["evaluate_constraints"] == "Disabled"
    assert check_exit(tmp_path / "two", tmp_path / "all-off", tmp_path / "o4") == 0
    assert orjson.loads((tmp_path / "o4" / "constraint_violations.json").read_bytes()) == {"violations": []}
    assert (tmp_path / "o4" / "statistics.json").exists()  # the statistics are still computed

    # the camelCase spelling of AWS's schema page is read too
    camel = orjson.loads((tmp_path / "baseline" / "constraints.json").read_bytes())
    for feature in camel["features"]:
        if feature["name"] in ("_c0", "_c1"):
            feature["monitoringConfigOverrides"] = {"evaluate_constraints": "Disabled"}
    shutil.copytree(tmp_path / "baseline", tmp_path / "camel")
    (tmp_path / "camel" / "constraints.json").write_bytes(orjson.dumps(camel))
    assert check_exit(tmp_path / "two", tmp_path / "camel", tmp_path / "o5") == 0


# -- the wording of the violations ------------------------------------------------------------------
MODEL_MONITOR_SENTENCES = {
    "data_type_check": r"Data type match requirement is not met\. Expected data type: (Integral|Fractional|String), "
    r"Expected match: [0-9.E-]+%\. Observed: Only [0-9.E-]+% of data is \1\.",
    "completeness_check": r"Data completeness requirement is not met\. Expected completeness: [0-9.E-]+%\. "
    r"Observed: Only [0-9.E-]+% of data is complete\.",
    "categorical_values_check": r"Categorical values requirement is not met\. Expected match: [0-9.E-]+%\. "
    r"Observed: Only [0-9.E-]+% of data is within the baseline domain\.",
    "baseline_drift_check": r"Baseline drift distance: [0-9.E-]+ exceeds threshold: [0-9.E-]+",
    "missing_column_check": r"There are missing columns in current dataset\. Number of columns in current dataset: "
    r"\d+, Number of columns in baseline constraints: \d+",
    "extra_column_check": r"There are extra columns in current dataset\. Number of columns in current dataset: "
    r"\d+, Number of columns in baseline constraints: \d+",
}


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(7)
    n = 20_000
    root = tmp_path_factory.mktemp("wording")
    rows = {
        "a": rng.normal(0, 1, n).tolist(),
        "b": rng.normal(5, 2, n).tolist(),
        "c": rng.uniform(0, 10, n).tolist(),
        "d": rng.poisson(3, n).tolist(),
        "color": rng.choice(["red", "green", "blue"], n).tolist(),
    }
    (root / "train.jsonl").write_bytes(
        b"".join(orjson.dumps(dict(zip(rows, r, strict=True))) + b"\n" for r in zip(*rows.values(), strict=True))
    )
    make_baseline(root / "train.jsonl", root / "baseline")
    return root


def planted(n: int, seed: int) -> dict[str, list[Any]]:
    """Shift b by 1σ, a new colour, no column c, 10 % of a missing, text in 5 % of d, an extra column e."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {
        "a": [None if i % 10 == 0 else float(v) for i, v in enumerate(rng.normal(0, 1, n))],
        "b": (rng.normal(5, 2, n) + 2.0).tolist(),
        "d": ["n/a" if i % 20 == 0 else int(v) for i, v in enumerate(rng.poisson(3, n))],
        "color": [("purple" if rng.random() < 0.2 else str(v)) for v in rng.choice(["red", "green", "blue"], n)],
        "e": [1] * n,
    }
    return rows


@pytest.mark.parametrize("rows", [3000, 400])  # the distance methods, and the small-sample tests (KS, chi²)
def test_descriptions_read_as_model_monitors_and_parse_as_aws_parsers_do(
    tabular: Path, tmp_path: Path, rows: int
) -> None:
    write_capture(tmp_path / "capture", records_payloads(planted(rows, 2), T0))
    result = run_check(tmp_path / "capture", tabular / "baseline", tmp_path / "out")
    assert pairs(result.violations) == {
        ("b", "baseline_drift_check"),
        ("color", "baseline_drift_check"),
        ("color", "categorical_values_check"),
        ("c", "missing_column_check"),
        ("e", "extra_column_check"),
        ("a", "completeness_check"),
        ("d", "data_type_check"),
    }
    for violation in result.violations:
        sentence = MODEL_MONITOR_SENTENCES[violation["constraint_check_type"]]
        assert re.fullmatch(sentence, violation["description"]), violation
    drifts = [v for v in result.violations if v["constraint_check_type"] == "baseline_drift_check"]
    for violation in drifts:
        match = AWS_DRIFT_PARSER.search(violation["description"])
        assert match is not None
        distance, threshold = float(match.group(1)), float(match.group(2))
        assert (distance, threshold) == (violation["distance"], violation["threshold"])
        assert distance > threshold
        entry = next(f for f in result.drift["features"] if f["name"] == violation["feature_name"])
        assert violation["method"] == entry["method"]
        if entry["method"] in ("ks", "chi_squared"):  # a test: its statistic against its critical value
            assert rows == 400
            assert distance == entry["scores"][entry["method"]]
            assert violation["p_value"] == entry["score"] and violation["p_value"] < violation["level"]
            assert violation["p_adjusted"] == entry["p_adjusted"] < violation["alpha"] == 0.05
        else:
            assert rows == 3000
            assert (distance, threshold) == (entry["score"], entry["threshold"])
            assert "p_value" not in violation
    completeness = next(v for v in result.violations if v["constraint_check_type"] == "completeness_check")
    assert completeness["description"].endswith("Observed: Only 90.0% of data is complete.")
    data_type = next(v for v in result.violations if v["constraint_check_type"] == "data_type_check")
    assert data_type["description"] == (
        "Data type match requirement is not met. Expected data type: Integral, Expected match: 100.0%. "
        "Observed: Only 95.0% of data is Integral."
    )
    assert (data_type["values_mismatched"], data_type["values_checked"]) == (rows // 20, rows)


# -- a baseline written by a SageMaker baseline job -------------------------------------------------
def test_a_sagemaker_baseline_jobs_files_are_a_baseline(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    train = {
        "Account Length": rng.integers(1, 240, n),
        "Day Mins": np.round(rng.normal(180, 54, n), 1),
        "Day Calls": rng.poisson(100, n),
        "State": [str(s) for s in rng.choice(["CA", "NY", "TX", "WA"], n)],
    }
    statistics, constraints = baseline_job_files(train)
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "statistics.json").write_bytes(orjson.dumps(statistics))
    (tmp_path / "baseline" / "constraints.json").write_bytes(orjson.dumps(constraints))

    def current(m: int, seed: int) -> dict[str, list[Any]]:
        r = np.random.default_rng(seed)
        return {
            "Account Length": r.integers(1, 240, m).tolist(),
            "Day Mins": np.round(r.normal(180, 54, m), 1).tolist(),
            "Day Calls": r.poisson(100, m).tolist(),
            "State": [str(s) for s in r.choice(["CA", "NY", "TX", "WA"], m)],
        }

    same = current(3000, 4)
    write_capture(tmp_path / "same", records_payloads(same, T0))
    assert run_check(tmp_path / "same", tmp_path / "baseline", tmp_path / "o1").violations == []
    assert check_exit(tmp_path / "same", tmp_path / "baseline", tmp_path / "o1") == 0

    shifted = current(3000, 5)
    shifted["Day Mins"] = [v + 30.0 for v in shifted["Day Mins"]]  # 0.55 σ
    shifted["Day Calls"] = [v + 0.5 if i % 10 == 0 else v for i, v in enumerate(shifted["Day Calls"])]
    write_capture(tmp_path / "shifted", records_payloads(shifted, T0))
    result = run_check(tmp_path / "shifted", tmp_path / "baseline", tmp_path / "o2")
    assert pairs(result.violations) == {("Day Mins", "baseline_drift_check"), ("Day Calls", "data_type_check")}
    data_type = next(v for v in result.violations if v["constraint_check_type"] == "data_type_check")
    # datatype_check_threshold 1.0, as a baseline job writes it: every value must be Integral
    assert data_type["description"] == (
        "Data type match requirement is not met. Expected data type: Integral, Expected match: 100.0%. "
        "Observed: Only 90.0% of data is Integral."
    )
    assert check_exit(tmp_path / "shifted", tmp_path / "baseline", tmp_path / "o2") == 3


# -- how many rows a TF Serving request holds -------------------------------------------------------
def tf_serving_capture(root: Path, requests: list[list[float]], predictions: int | None, body: str) -> None:
    """Capture records of ``requests`` as TF Serving's ``{"instances": [...]}`` or a bare list (the SDK's
    JSONSerializer of a 1-D array), each answered with ``predictions`` predictions (``None``: no answer)."""
    from sagemaker.serializers import JSONSerializer

    serializer = JSONSerializer()
    for index, values in enumerate(requests):
        if body == "instances":
            payload = orjson.dumps({"instances": values})
        else:
            payload = serializer.serialize(np.array(values)).encode()
        answer = b"" if predictions is None else orjson.dumps({"predictions": [0.5] * predictions})
        write_capture(root, [(T0 + index, "application/json", payload)], answer=answer)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Baselines of a one-feature and of a three-feature model (N(0, 1) features)."""
    rng = np.random.default_rng(8)
    root = tmp_path_factory.mktemp("widths")
    out = {}
    for width in (1, 3):
        rows = [{f"x{j}": float(v) for j, v in enumerate(row)} for row in rng.normal(0, 1, (5000, width))]
        (root / f"train{width}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        make_baseline(root / f"train{width}.jsonl", root / f"baseline{width}")
        out[width] = root / f"baseline{width}"
    return out


@pytest.mark.parametrize("body", ["instances", "bare list"])
def test_a_flat_list_answered_with_as_many_predictions_is_that_many_rows(
    baselines: dict[int, Path], tmp_path: Path, body: str
) -> None:
    rng = np.random.default_rng(9)
    requests = [[float(v) for v in rng.normal(0, 1, 3)] for _ in range(400)]
    tf_serving_capture(tmp_path / "three", requests, 3, body)
    result = run_check(tmp_path / "three", baselines[1], tmp_path / "o1")
    assert result.rows == 1200  # three one-feature rows per request, not one row of three features
    assert result.violations == []
    values = orjson.loads((tmp_path / "o1" / "statistics.json").read_bytes())["features"][0]["numerical_statistics"]
    assert values["mean"] == pytest.approx(float(np.mean(requests)), rel=1e-12, abs=1e-12)
    # the same lists answered with one prediction each: one row of three features
    tf_serving_capture(tmp_path / "one", requests, 1, body)
    wide = run_check(tmp_path / "one", baselines[3], tmp_path / "o2")
    assert wide.rows == 400 and wide.violations == []
    # the answer decides even against the baseline's width: three predictions are three rows
    narrow = run_check(tmp_path / "three", baselines[3], tmp_path / "o3")
    assert narrow.rows == 1200
    assert pairs(narrow.violations) == {("x1", "missing_column_check"), ("x2", "missing_column_check")}
    # no answer to go by: the baseline's width decides
    tf_serving_capture(tmp_path / "none", requests, None, body)
    assert run_check(tmp_path / "none", baselines[1], tmp_path / "o4").rows == 1200
    assert run_check(tmp_path / "none", baselines[3], tmp_path / "o5").rows == 400


@pytest.mark.integration
def test_texts_sent_to_a_real_server_are_one_row_each(running_server: Any, tmp_path: Path) -> None:
    """A text model behind the real server: ``{"instances": [three texts]}`` is answered with three
    predictions, captured, and read back as three rows of the one text feature."""
    import httpx

    import shipyard

    def lengths(texts: Any) -> list[int]:
        return [len(t) for t in texts]

    shipyard.save(lengths, tmp_path / "bundle", example=["a", "bb"])
    words = ["red", "green", "blue", "teal"]
    (tmp_path / "train.jsonl").write_bytes(b"".join(orjson.dumps({"text": w}) + b"\n" for w in words * 500))
    make_baseline(tmp_path / "train.jsonl", tmp_path / "baseline")
    server = running_server(tmp_path / "bundle", env={"SHIPYARD_CAPTURE_DESTINATION": str(tmp_path / "capture")})
    rng = np.random.default_rng(2)
    sent: list[str] = []
    with httpx.Client(timeout=30) as client:
        for index in range(60):
            texts = [str(w) for w in rng.choice(words, 3)]
            body = {"instances": texts} if index % 2 else texts
            answer = client.post(f"{server.url}/invocations", json=body)
            assert answer.status_code == 200 and answer.json()["predictions"] == [len(t) for t in texts]
            sent += texts
    assert server.stop() == 0
    result = run_check(tmp_path / "capture", tmp_path / "baseline", tmp_path / "out")
    assert result.rows == len(sent) == 180
    assert result.violations == []
    feature = orjson.loads((tmp_path / "out" / "statistics.json").read_bytes())["features"][0]
    counts = {b["value"]: b["count"] for b in feature["string_statistics"]["distribution"]["categorical"]["buckets"]}
    assert counts == {w: sent.count(w) for w in set(sent)}
