"""``shipyard transform --target sagemaker`` against moto: CreateTransformJob's request checked field by field
against botocore's shapes, the local input uploaded, the job waited for and its output downloaded.

What moto cannot do: its transform jobs are bookkeeping only. No container runs and no record is processed,
so DescribeTransformJob answers Completed at once and the output prefix stays empty; the output the download
finds here is put by the test itself where SageMaker would write it (``<input>.out`` under S3OutputPath).
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from infra.aws_shapes import check_params
from infra.moto import ACCOUNT, REGION
from shipyard.deploy.transform import TransformOptions
from shipyard.deploy.transform.sagemaker import job_request, run_sagemaker
from shipyard.errors import SpecError

ROLE = f"arn:aws:iam::{ACCOUNT}:role/shipyard-digits"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shipyard-digits:1"


def make_model(name: str = "digits-model") -> str:
    boto3.client("sagemaker").create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    return name


def test_the_request_has_every_field_of_the_options_and_fits_botocores_shapes(tmp_path: Path) -> None:
    options = TransformOptions(
        "digits-model", "s3://data/in/", "s3://data/out/", target="sagemaker", content_type="text/csv",
        accept="text/csv", strategy="MultiRecord", max_payload_mb=6, max_concurrent=4, join_source="Input",
        input_filter="$[1:]", output_filter="$[0,-1]", instance_type="ml.c5.xlarge", instance_count=2,
        environment={"LOG_LEVEL": "info"}, tags={"team": "ml"},
    )  # fmt: skip
    request = job_request(
        options, job_name="digits-1", model_name="digits-model", input_uri="s3://data/in/", output_uri="s3://data/out/"
    )
    check_params("sagemaker", "CreateTransformJob", request)
    assert request == {
        "TransformJobName": "digits-1",
        "ModelName": "digits-model",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://data/in/"}},
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": "s3://data/out/", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2},
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 3},
        "MaxConcurrentTransforms": 4,
        "MaxPayloadInMB": 6,
        "BatchStrategy": "MultiRecord",
        "Environment": {"LOG_LEVEL": "info"},
        "DataProcessing": {"InputFilter": "$[1:]", "OutputFilter": "$[0,-1]", "JoinSource": "Input"},
        "Tags": [{"Key": "shipyard:transform", "Value": "digits-1"}, {"Key": "team", "Value": "ml"}],
    }
    # left to the container's /execution-parameters when not given, as SageMaker does
    plain = job_request(
        TransformOptions("m", "s3://d/rows.csv", "s3://d/o/", target="sagemaker"),
        job_name="j", model_name="m", input_uri="s3://d/rows.csv", output_uri="s3://d/o/",
    )  # fmt: skip
    check_params("sagemaker", "CreateTransformJob", plain)
    assert not {"MaxConcurrentTransforms", "MaxPayloadInMB", "BatchStrategy", "DataProcessing"} & set(plain)


def test_a_local_input_is_uploaded_the_job_created_and_the_output_downloaded(aws: object, tmp_path: Path) -> None:
    model = make_model()
    data = tmp_path / "in"
    (data / "part").mkdir(parents=True)
    (data / "a.csv").write_text("1,2\n3,4\n")
    (data / "part" / "b.csv").write_text("5,6\n")
    bucket = f"sagemaker-{REGION}-{ACCOUNT}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    job = "digits-transform-1"
    prefix = f"shipyard-transform/{job}/output/"
    # what SageMaker would write, since moto's jobs process nothing (see the module's docstring)
    boto3.client("s3").put_object(Bucket=bucket, Key=prefix + "part/b.csv.out", Body=b"7\n")
    out = tmp_path / "out"
    polled: list[str] = []
    options = TransformOptions(
        model, str(data), str(out), target="sagemaker", instance_type="ml.m5.large", job_name=job, max_concurrent=2
    )
    result = run_sagemaker(options, poll_s=0.0, on_poll=lambda status, _: polled.append(status))

    check_params("sagemaker", "CreateTransformJob", result.request)
    described = boto3.client("sagemaker").describe_transform_job(TransformJobName=job)
    assert described["ModelName"] == model
    assert described["TransformInput"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": f"s3://{bucket}/shipyard-transform/{job}/input/",
    }
    assert described["TransformInput"]["ContentType"] == "text/csv"
    assert described["TransformInput"]["SplitType"] == "Line"
    assert described["TransformOutput"]["S3OutputPath"] == f"s3://{bucket}/{prefix}"
    assert described["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    assert described["MaxConcurrentTransforms"] == 2
    keys = sorted(
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="shipyard-transform/")["Contents"]
    )
    assert f"shipyard-transform/{job}/input/a.csv" in keys and f"shipyard-transform/{job}/input/part/b.csv" in keys
    assert polled[-1] == "Completed" and result.status == "Completed"
    assert (out / "part" / "b.csv.out").read_text() == "7\n" and result.downloaded == [str(out / "part/b.csv.out")]
    assert result.cost is not None and result.cost.hourly_usd == pytest.approx(0.115)


def test_a_bundle_needs_an_image_and_a_role_and_an_unknown_source_is_named(
    aws: object, digits_bundle: Path, tmp_path: Path
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("1\n")
    with pytest.raises(SpecError, match="--image"):
        run_sagemaker(TransformOptions(str(digits_bundle), str(data), "s3://b/o/", target="sagemaker"), poll_s=0)
    with pytest.raises(SpecError, match="no deployment, bundle or SageMaker model"):
        run_sagemaker(TransformOptions("nothing-here", str(data), "s3://b/o/", target="sagemaker"), poll_s=0)


def test_a_bundle_becomes_a_model_with_its_archive_uploaded(aws: object, digits_bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("1\n")
    options = TransformOptions(
        str(digits_bundle), str(data), "s3://out-bucket/o/", target="sagemaker", image=IMAGE, role_arn=ROLE
    )
    boto3.client("s3").create_bucket(Bucket="out-bucket")
    result = run_sagemaker(options, poll_s=0.0)
    model = boto3.client("sagemaker").describe_model(ModelName=result.model_name)
    assert model["PrimaryContainer"]["Image"] == IMAGE and model["ExecutionRoleArn"] == ROLE
    url = model["PrimaryContainer"]["ModelDataUrl"]
    assert url == f"s3://sagemaker-{REGION}-{ACCOUNT}/shipyard-transform/{result.model_name}/model.tar.gz"
    assert result.output_uri == "s3://out-bucket/o/" and result.downloaded == []


def test_the_cli_runs_the_job_and_prints_its_json(aws: object, tmp_path: Path) -> None:
    import json

    import jsonschema

    from infra.cli import shipyard

    model = make_model("digits-cli")
    data = tmp_path / "rows.csv"
    data.write_text("1,2\n")
    done = shipyard(
        "transform", model, "--target", "sagemaker", "--input", str(data), "--output", "s3://scored/out/",
        "--instance-type", "ml.c5.xlarge", "--instance-count", "2", "--job-name", "cli-job",
        "--env", "LOG_LEVEL=debug", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    schema = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "transform.v1.json"
    jsonschema.validate(document, json.loads(schema.read_text()))
    assert (document["target"], document["job_name"], document["status"]) == ("sagemaker", "cli-job", "Completed")
    described = boto3.client("sagemaker").describe_transform_job(TransformJobName="cli-job")
    assert described["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    assert described["TransformOutput"]["S3OutputPath"] == "s3://scored/out/"
    assert described["Environment"] == {"LOG_LEVEL": "debug"}
    assert "uploaded 1 file(s)" in done.stderr  # progress on stderr, the document alone on stdout


def test_the_local_target_reads_and_writes_s3_as_sagemaker_does(
    aws: object, digits_server: object, digits_rows: list[list[float]]
) -> None:
    """The local target with moto's S3 as the bucket: every object under the input prefix transformed, each
    ``<key>.out`` uploaded under the output prefix with its relative key."""
    from shipyard.deploy.transform.local import run_local

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    lines = "".join(",".join(map(str, r)) + "\n" for r in digits_rows)
    s3.put_object(Bucket="data", Key="in/a.csv", Body=lines.encode())
    s3.put_object(Bucket="data", Key="in/day=2/b.csv", Body=lines.encode())
    url = digits_server.url  # type: ignore[attr-defined]
    result = run_local(TransformOptions(url, "s3://data/in/", "s3://data/scored/", content_type="text/csv"))
    assert result.failed == [] and result.records == 2 * len(digits_rows)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="scored/")["Contents"])
    assert keys == ["scored/a.csv.out", "scored/day=2/b.csv.out"]
    answer = s3.get_object(Bucket="data", Key="scored/day=2/b.csv.out")["Body"].read().decode()
    assert answer.count("\n") == len(digits_rows)


def test_a_registry_version_is_transformed_only_when_approved(
    aws: object, digits_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GROUP/VERSION through the console script: refused while PendingManualApproval (nothing made), then its
    archive is the model of the job (uploaded, CreateModel with the given image and role)."""
    from infra.cli import shipyard

    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    assert shipyard("register", str(digits_bundle), "--group", "digits").returncode == 0
    data = tmp_path / "rows.csv"
    data.write_text("1,2\n")
    args = ["transform", "digits/1", "--target", "sagemaker", "--input", str(data), "--output", "s3://o/x/",
            "--image", IMAGE, "--role-arn", ROLE, "--job-name", "from-registry"]  # fmt: skip
    refused = shipyard(*args)
    assert refused.returncode != 0 and "PendingManualApproval" in refused.stderr
    assert boto3.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []
    done = shipyard(*args, "--allow-unapproved")
    assert done.returncode == 0, done.stderr
    job = boto3.client("sagemaker").describe_transform_job(TransformJobName="from-registry")
    model = boto3.client("sagemaker").describe_model(ModelName=job["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith(f"/{job['ModelName']}/model.tar.gz")


def test_an_s3_key_leading_outside_the_download_folder_is_refused_naming_it(aws: object, tmp_path: Path) -> None:
    """``prefix/../../x`` would be written two folders above the one downloaded to: refused before anything is
    written, for the local target's s3 input as for any download."""
    from shipyard.cloud.session import Aws
    from shipyard.cloud.transform import TransformGateway
    from shipyard.deploy.transform.local import run_local
    from shipyard.errors import UsageError

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="in/a.csv", Body=b"1\n")
    s3.put_object(Bucket="data", Key="in/../../escaped.csv", Body=b"2\n")
    assert "in/../../escaped.csv" in [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]]
    target = tmp_path / "deep" / "down"
    with pytest.raises(UsageError, match=r"s3://data/in/\.\./\.\./escaped\.csv: the key leads outside"):
        TransformGateway(Aws(region=REGION)).download("data", "in/", target)
    assert not (tmp_path / "escaped.csv").exists() and not target.exists()  # nothing written at all
    # the local target's s3 input goes through the same download: refused before any server is asked
    with pytest.raises(UsageError, match="leads outside"):
        run_local(
            TransformOptions("http://127.0.0.1:9", "s3://data/in/", str(tmp_path / "out"), content_type="text/csv")
        )
    # a key that stays inside once resolved is downloaded as before
    s3.delete_object(Bucket="data", Key="in/../../escaped.csv")
    s3.put_object(Bucket="data", Key="in/part/../b.csv", Body=b"3\n")
    got = TransformGateway(Aws(region=REGION)).download("data", "in/", target)
    assert sorted(p.relative_to(target.resolve()).as_posix() for p in got) == ["a.csv", "b.csv"]


def test_a_multi_model_deployment_or_model_is_refused_as_the_source(aws: object, tmp_path: Path) -> None:
    """Batch transform cannot run a model whose Mode is MultiModel: refused before anything is made."""
    from shipyard.deploy.options import DeployOptions
    from shipyard.deploy.state import Deployment, Details, StateStore

    now = "2026-12-03T00:00:00+00:00"
    kept = DeployOptions(source="s3://b/models/", name="fleet", target="sagemaker", multi_model=True)
    StateStore().put(
        Deployment("fleet", "sagemaker", "InService", "s3://b/models/", now, now, options=kept,
                   details=Details(model="fleet-model"))
    )  # fmt: skip
    data = tmp_path / "rows.csv"
    data.write_text("1\n")
    with pytest.raises(SpecError, match="fleet is a multi-model deployment") as refused:
        run_sagemaker(TransformOptions("fleet", str(data), "s3://o/x/", target="sagemaker"), poll_s=0)
    assert refused.value.option == "source"
    boto3.client("sagemaker").create_model(
        ModelName="fleet-mme", PrimaryContainer={"Image": IMAGE, "Mode": "MultiModel"}, ExecutionRoleArn=ROLE
    )
    with pytest.raises(SpecError, match="fleet-mme is a multi-model SageMaker model"):
        run_sagemaker(TransformOptions("fleet-mme", str(data), "s3://o/x/", target="sagemaker"), poll_s=0)
    assert boto3.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []


def test_two_transforms_of_one_bundle_share_one_model_and_one_artifact(
    aws: object, digits_bundle: Path, tmp_path: Path
) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("1\n")
    boto3.client("s3").create_bucket(Bucket="out-bucket")

    jobs = iter(range(1, 4))

    def run(image: str = IMAGE) -> str:
        options = TransformOptions(
            str(digits_bundle), str(data), "s3://out-bucket/o/", target="sagemaker", image=image, role_arn=ROLE,
            job_name=f"bundle-job-{next(jobs)}",
        )  # fmt: skip
        return run_sagemaker(options, poll_s=0.0).model_name

    def models() -> list[str]:
        return sorted(m["ModelName"] for m in boto3.client("sagemaker").list_models()["Models"])

    def artifacts() -> list[str]:
        listed = boto3.client("s3").list_objects_v2(
            Bucket=f"sagemaker-{REGION}-{ACCOUNT}", Prefix="shipyard-transform/"
        )
        return sorted(o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/model.tar.gz"))

    first = run()
    assert run() == first
    assert models() == [first] and artifacts() == [f"shipyard-transform/{first}/model.tar.gz"]
    assert len(boto3.client("sagemaker").list_transform_jobs()["TransformJobSummaries"]) == 2
    other = run(IMAGE.replace(":1", ":2"))  # another image is another model
    assert other != first and models() == sorted([first, other]) and len(artifacts()) == 2


def test_a_failed_file_leaves_no_earlier_output_in_the_s3_output(
    aws: object, digits_server: object, digits_rows: list[list[float]]
) -> None:
    """An earlier run's ``bad.csv.out`` under the output prefix is deleted when bad.csv fails now: what is
    there afterwards is this run's answers only."""
    from shipyard.deploy.transform.local import run_local

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    good = "".join(",".join(map(str, r)) + "\n" for r in digits_rows)
    s3.put_object(Bucket="data", Key="in/good.csv", Body=good.encode())
    s3.put_object(Bucket="data", Key="in/bad.csv", Body=b"1,2,3\n")
    s3.put_object(Bucket="data", Key="scored/bad.csv.out", Body=b"an earlier run's answer\n")
    url = digits_server.url  # type: ignore[attr-defined]
    result = run_local(TransformOptions(url, "s3://data/in/", "s3://data/scored/", content_type="text/csv"))
    assert [f.input for f in result.failed] == ["bad.csv"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="scored/")["Contents"])
    assert keys == ["scored/good.csv.out"]
