"""``shipyard transform``'s SageMaker side, run by the local engine against a real server over real HTTP
(the digits bundle served by ``serve``): every file of a directory, ``<input>.out`` by line with relative paths
kept, the container's /execution-parameters respected, JSONPath filters and JoinSource on CSV and JSON lines,
and failed requests reported with the server's message while the other files' outputs are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from infra.server import Server, ServerFactory
from shipyard.client.records import TransformSettings, pack, split_records
from shipyard.client.transport import HTTPTransport
from shipyard.deploy.transform import TransformOptions
from shipyard.deploy.transform.engine import _fast_batches, execution_parameters, settings_for, transform_files
from shipyard.deploy.transform.filters import record_filter
from shipyard.deploy.transform.local import run_local
from shipyard.errors import SpecError, UsageError


def predict(bundle: Path, rows: list[list[float]]) -> list[int]:
    """The model's own answers, in-process (what every transformed record must match)."""
    import joblib

    model = joblib.load(bundle / "model" / "model.joblib")
    return [int(v) for v in model.predict(np.asarray(rows))]


def csv_line(row: list[float]) -> str:
    return ",".join(str(v) for v in row)


@pytest.fixture
def rows(digits_rows: list[list[float]]) -> list[list[float]]:
    return (digits_rows * 40)[:200]


def test_every_file_of_a_directory_is_transformed_by_line_keeping_relative_paths(
    digits_server: Server, digits_bundle: Path, rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "in"
    (data / "part").mkdir(parents=True)
    (data / "a.csv").write_text("\n".join(csv_line(r) for r in rows[:120]) + "\n")
    (data / "part" / "b.csv").write_text("\r\n".join(csv_line(r) for r in rows[120:]))  # CRLF, no last newline
    out = tmp_path / "out"
    options = TransformOptions(digits_server.url, str(data), str(out), max_payload_mb=1)
    result = run_local(options)
    assert [f.input for f in result.files] == ["a.csv", "part/b.csv"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.csv.out", "part", "part/b.csv.out"]
    expected = predict(digits_bundle, rows)
    assert [int(x) for x in (out / "a.csv.out").read_text().splitlines()] == expected[:120]
    assert [int(x) for x in (out / "part" / "b.csv.out").read_text().splitlines()] == expected[120:]
    assert result.records == 200 and result.failed == []
    # the digits server answers MULTI_RECORD with 1 worker: one request per file under 1 MB
    assert result.settings == TransformSettings(1, "MultiRecord", 1)
    assert result.requests == 2


def test_execution_parameters_are_the_servers_and_the_job_overrides_them(digits_server: Server) -> None:
    hints = execution_parameters(digits_server.url)
    assert isinstance(hints, dict) and hints["BatchStrategy"] == "MULTI_RECORD"
    options = TransformOptions(digits_server.url, ".", "out", content_type="text/csv")
    assert settings_for(options, hints) == TransformSettings(1, "MultiRecord", hints["MaxPayloadInMB"])
    mine = TransformOptions(
        digits_server.url, ".", "out", content_type="text/csv", strategy="SingleRecord", max_concurrent=3,
        max_payload_mb=2,
    )  # fmt: skip
    assert settings_for(mine, hints) == TransformSettings(3, "SingleRecord", 2)
    assert execution_parameters("http://127.0.0.1:9") is None  # nothing there: SageMaker's defaults apply


def test_multirecord_batches_fill_the_payload_limit_and_singlerecord_sends_one_each(
    digits_server: Server, digits_bundle: Path, rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("\n\n".join(csv_line(r) for r in rows) + "\n")  # empty lines are no records
    transport = HTTPTransport(digits_server.url)
    big = [rows[i % len(rows)] for i in range(8000)]
    data_big = tmp_path / "big.csv"
    data_big.write_text("\n".join(csv_line(r) for r in big) + "\n")
    options = TransformOptions(digits_server.url, str(data_big), str(tmp_path / "o1"))
    multi = transform_files(transport, options, TransformSettings(2, "MultiRecord", 1), tmp_path / "o1")
    packed = list(pack(split_records(data_big.read_bytes(), "Line"), "MultiRecord", 1))
    assert len(packed) == 3 and all(len(b.body) <= 1024 * 1024 for b in packed)  # as full as 1 MB allows
    assert multi.requests == 3 and multi.records == len(big)
    assert [int(x) for x in (tmp_path / "o1" / "big.csv.out").read_text().splitlines()] == predict(digits_bundle, big)
    options = TransformOptions(digits_server.url, str(data), str(tmp_path / "o2"))
    single = transform_files(transport, options, TransformSettings(4, "SingleRecord", 6), tmp_path / "o2")
    assert single.requests == 200
    assert [int(x) for x in (tmp_path / "o2" / "rows.csv.out").read_text().splitlines()] == predict(digits_bundle, rows)
    transport.close()


def test_input_filter_join_and_output_filter_on_csv(
    digits_server: Server, digits_bundle: Path, rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "ids.csv"  # an id column first, which the model must not see
    data.write_text("".join(f"{i},{csv_line(r)}\n" for i, r in enumerate(rows[:50])))
    out = tmp_path / "out"
    options = TransformOptions(
        digits_server.url, str(data), str(out), input_filter="$[1:]", join_source="Input", output_filter="$[0,-1]"
    )
    result = run_local(options)
    assert result.failed == []
    expected = predict(digits_bundle, rows[:50])
    # joined: the whole input row (id included) and the answer appended; the filter keeps the id and the answer
    assert (out / "ids.csv.out").read_text().splitlines() == [f"{i},{p}" for i, p in enumerate(expected)]


def test_input_filter_join_on_json_lines(
    digits_server: Server, digits_bundle: Path, rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_bytes(b"".join(orjson.dumps({"id": i, "features": r}) + b"\n" for i, r in enumerate(rows[:30])))
    out = tmp_path / "out"
    options = TransformOptions(
        digits_server.url, str(data), str(out), input_filter="$.features", join_source="Input",
        accept="application/json", output_filter="$['id','SageMakerOutput']",
    )  # fmt: skip
    result = run_local(options)
    assert result.failed == [], result.failed
    got = [orjson.loads(line) for line in (out / "rows.jsonl.out").read_bytes().splitlines()]
    assert got == [[i, p] for i, p in enumerate(predict(digits_bundle, rows[:30]))]


def test_a_failed_request_fails_its_file_only_with_the_servers_message(
    digits_server: Server, digits_bundle: Path, rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "good.csv").write_text("".join(csv_line(r) + "\n" for r in rows[:20]))
    bad = [csv_line(r) for r in rows[:20]]
    bad[13] = "1,2,3"  # 3 columns, not 64
    (data / "bad.csv").write_text("\n".join(bad) + "\n")
    out = tmp_path / "out"
    result = run_local(TransformOptions(digits_server.url, str(data), str(out), strategy="SingleRecord"))
    assert [f.input for f in result.failed] == ["bad.csv"]
    failure = result.failed[0].failure
    assert failure is not None and (failure.first_record, failure.records, failure.status) == (14, 1, 400)
    assert "64" in failure.message  # the server's own words about the shape
    assert not (out / "bad.csv.out").exists() and not list(out.glob("*.partial"))
    assert [int(x) for x in (out / "good.csv.out").read_text().splitlines()] == predict(digits_bundle, rows[:20])


def test_a_failed_file_removes_its_output_of_an_earlier_run(
    digits_server: Server, rows: list[list[float]], tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "bad.csv").write_text(csv_line(rows[0]) + "\n1,2,3\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "bad.csv.out").write_text("an earlier run's answer\n")
    result = run_local(TransformOptions(digits_server.url, str(data), str(out), strategy="SingleRecord"))
    assert [f.input for f in result.failed] == ["bad.csv"] and result.failed[0].output is None
    assert list(out.iterdir()) == []  # neither the stale output nor a .partial


def test_a_record_over_the_payload_limit_fails_its_file(digits_server: Server, tmp_path: Path) -> None:
    data = tmp_path / "huge.csv"
    data.write_text("1," * (1024 * 1024) + "1\n")
    result = run_local(TransformOptions(digits_server.url, str(data), str(tmp_path / "out"), max_payload_mb=1))
    failure = result.failed[0].failure
    assert failure is not None and failure.status is None and "over MaxPayloadInMB=1" in failure.message


def test_jsonpath_filters_as_sagemaker_reads_them() -> None:
    csv = record_filter("$[0,3:]", "text/csv", option="input_filter")
    assert csv is not None and csv(b"a,b,c,d,e") == b"a,d,e"
    one = record_filter("$[1]", "text/csv", option="input_filter")
    assert one is not None and one(b"a,b,c") == b"b"
    js = record_filter("$.features", "application/jsonlines", option="input_filter")
    assert js is not None and js(b'{"features": [1, 2], "id": 3}') == b"[1,2]"
    assert record_filter("$", "text/csv", option="input_filter") is None
    with pytest.raises(UsageError, match="starts with"):
        record_filter("features", "text/csv", option="input_filter")
    with pytest.raises(UsageError, match="CSV or JSON"):
        record_filter("$[1:]", "application/x-npy", option="input_filter")


def test_options_are_checked_once(tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("1\n")
    with pytest.raises(SpecError, match="strategy"):
        TransformOptions("b", str(data), "out", strategy="Many")
    with pytest.raises(SpecError, match="max_payload_mb"):
        TransformOptions("b", str(data), "out", max_payload_mb=101)
    with pytest.raises(SpecError, match="RecordIO"):
        TransformOptions("b", str(data), "out", split_type="RecordIO")
    with pytest.raises(SpecError, match="local target runs one"):
        TransformOptions("b", str(data), "out", instance_count=2)
    with pytest.raises(SpecError, match="content-type"):
        (tmp_path / "empty").mkdir()
        TransformOptions("b", str(tmp_path / "empty"), "out")  # an empty directory says no media type
    assert TransformOptions("b", str(data), "out").answer_type == "text/csv"


def test_concurrent_requests_keep_the_order(
    running_server: ServerFactory, digits_bundle: Path, rows: list[list[float]], tmp_path: Path
) -> None:
    server = running_server(digits_bundle, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    data = tmp_path / "rows.csv"
    many = rows * 5
    data.write_text("".join(csv_line(r) + "\n" for r in many))
    result = run_local(TransformOptions(server.url, str(data), str(tmp_path / "out"), strategy="SingleRecord"))
    assert result.settings.max_concurrent == 2  # the server's workers, from /execution-parameters
    assert [int(x) for x in (tmp_path / "out" / "rows.csv.out").read_text().splitlines()] == predict(
        digits_bundle, many
    )


@pytest.mark.parametrize(
    "data",
    [
        b"1,2\n3,4\n5,6\n",
        b"\n\n1,2\n\n3,4",
        b"1,2\r\n3,4\r\n\r\n5,6",
        b"".join(b"%d,%d\n" % (i, i * 7) for i in range(200_000)),
        b"x" * 700_000 + b"\n" + b"y" * 700_000 + b"\n" + b"z\n",
    ],
    ids=["plain", "empty-lines", "crlf", "many-blocks", "big-records"],
)
def test_the_fast_multirecord_cut_is_what_pack_makes(data: bytes, tmp_path: Path) -> None:
    """The fast path (blocks cut at newlines) against records.pack over split_records, byte for byte."""
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    expected = list(pack(split_records(data, "Line"), "MultiRecord", 1))
    assert list(_fast_batches(path, 1)) == expected


def test_a_local_deployments_name_is_its_url_and_a_sagemaker_one_is_refused(
    digits_server: Server, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    """The state file's record stands for a running local deployment here (its URL: the real server's)."""
    from shipyard.deploy.state import Deployment, StateStore
    from shipyard.settings import Settings

    settings = Settings.from_env(state_path=tmp_path / "state.json")
    store = StateStore(settings=settings)
    now = "2026-12-03T00:00:00+00:00"
    store.put(Deployment("digits", "local", "InService", "b/", now, now, url=digits_server.url))
    store.put(Deployment("digits-prod", "sagemaker", "InService", "b/", now, now))
    data = tmp_path / "rows.csv"
    data.write_text("".join(csv_line(r) + "\n" for r in digits_rows))
    result = run_local(TransformOptions("digits", str(data), str(tmp_path / "out")), settings=settings)
    assert result.records == len(digits_rows) and (tmp_path / "out" / "rows.csv.out").is_file()
    with pytest.raises(SpecError, match="--target sagemaker"):
        run_local(TransformOptions("digits-prod", str(data), str(tmp_path / "out")), settings=settings)


def test_a_multi_model_deployment_is_refused_as_the_source(tmp_path: Path) -> None:
    """Every request to a multi-model endpoint names its model: a transform job of it would fail each one."""
    from shipyard.deploy.options import DeployOptions
    from shipyard.deploy.state import Deployment, StateStore
    from shipyard.settings import Settings

    models = tmp_path / "models"
    models.mkdir()
    settings = Settings.from_env(state_path=tmp_path / "state.json")
    now = "2026-12-03T00:00:00+00:00"
    kept = DeployOptions(source=str(models), name="fleet", target="local", multi_model=True)
    StateStore(settings=settings).put(
        Deployment("fleet", "local", "InService", str(models), now, now, url="http://127.0.0.1:9", options=kept)
    )
    data = tmp_path / "rows.csv"
    data.write_text("1,2\n")
    with pytest.raises(SpecError, match="fleet is a multi-model deployment") as refused:
        run_local(TransformOptions("fleet", str(data), str(tmp_path / "out")), settings=settings)
    assert refused.value.option == "source" and not (tmp_path / "out").exists()


def test_the_cli_tells_each_file_and_the_failed_records(
    digits_server: Server, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    from infra.cli import shipyard

    data = tmp_path / "in"
    data.mkdir()
    (data / "good.csv").write_text("".join(csv_line(r) + "\n" for r in digits_rows))
    (data / "bad.csv").write_text("".join(csv_line(r) + "\n" for r in digits_rows[:2]) + "1,2,3\n")
    done = shipyard(
        "transform", digits_server.url, "--input", str(data), "--output", str(tmp_path / "out"),
        "--strategy", "SingleRecord", "--max-concurrent", "2",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "✗ bad.csv: record 3: CSV row 1 has 3 values, expected 64" in done.stderr  # the server's words
    assert "✓ good.csv" in done.stderr
    assert f"{len(digits_rows) + 2} records in" in done.stdout and "ml.m5.large at $0.115/h" in done.stdout


def test_the_containers_model_dir_is_the_bundle_or_a_readable_copy(digits_bundle: Path, tmp_path: Path) -> None:
    """What the job's container mounts at /opt/ml/model: the bundle as it is when everyone can read it, else
    (a private bundle, an archive) a copy extracted readable to the server's unprivileged workers."""
    import shutil

    from shipyard.bundle.archive import pack as pack_bundle
    from shipyard.deploy.transform.local import _model_dir

    open_copy = tmp_path / "open"
    shutil.copytree(digits_bundle, open_copy)
    for path in [open_copy, *open_copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (tmp_path / "a").mkdir()
    assert _model_dir(open_copy, tmp_path / "a") == open_copy.resolve()
    open_copy.chmod(0o700)
    (tmp_path / "b").mkdir()
    copy = _model_dir(open_copy, tmp_path / "b")
    assert copy != open_copy.resolve() and (copy / "model" / "model.joblib").stat().st_mode & 0o004
    archive = pack_bundle(digits_bundle, tmp_path / "model.tar.gz")
    (tmp_path / "c").mkdir()
    assert (_model_dir(archive, tmp_path / "c") / "shipyard.toml").is_file()
