"""``run_sagemaker`` against a real moto server, with the image pushed to a real OCI registry on 127.0.0.1 and
recorded in moto's ECR (the registry override the deploy target uses: moto serves ECR's API, no registry).

What moto does with training jobs (moto 5.2.5, probed): CreateTrainingJob stores the request and the job is
``Completed`` at once (SecondaryStatus Completed, one "Starting" transition), ``ModelArtifacts`` is
``S3OutputPath/JOB/output/model.tar.gz``, ``FinalMetricDataList`` is a canned ``train:progress=100`` and the
MetricDefinitions echoed back are canned too; there is no BillableTimeInSeconds, TrainingTimeInSeconds or
FailureReason, no log is written, StopTrainingJob answers HTTP 500, and a second job of the same name overwrites
the first. So a job that runs for a while, writes its log, fails or stops is scripted at DescribeTrainingJob
(and StopTrainingJob) only, through botocore's before-call hook (tests/infra/scripted_aws.py): each scripted
answer is moto's own description of the job that was created, with the status fields a running job has. The log
lines are written into moto's CloudWatch Logs, where SageMaker writes them, and read back through the real API.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.aws_shapes import check_params
from infra.moto import aws, moto_server  # noqa: F401 - fixtures
from infra.oci_registry import OciRegistry, tiny_image
from infra.registry import local_registry
from infra.scripted_aws import answer, error
from shipyard.cloud import Aws
from shipyard.errors import SpecError, TrainFailed, TrainStopped
from shipyard.experiments.record import Channel, RunStore, TrainRun
from shipyard.settings import Settings
from shipyard.train.api import TrainContext, TrainEvent
from shipyard.train.options import TrainOptions
from shipyard.train.sagemaker import run_sagemaker

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
BUCKET = f"sagemaker-us-east-1-{ACCOUNT}"
GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture(scope="session")
def registry() -> Iterator[OciRegistry]:
    with local_registry() as host:
        yield OciRegistry(host)


@pytest.fixture(scope="session")
def small_image() -> str:
    return tiny_image()


class Harness:
    """One test's training context: settings pointing at the registry override, the run store, what was told."""

    def __init__(self, tmp_path: Path, registry: OciRegistry) -> None:
        self.settings = Settings.from_env(
            {"HOME": str(tmp_path), "SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_ECR_REGISTRY": registry.host}
        )
        self.store = RunStore(self.settings)
        self.events: list[TrainEvent] = []
        self.interrupt_on: str | None = None  # a phase text that "Ctrl-C"s the wait
        self.stop_answer = True
        self.asked: list[str] = []
        self.aws = Aws("us-east-1")
        self.source = tmp_path / "digits"
        self.source.mkdir()
        (self.source / "train.py").write_text("print('training')\n")

    def on_event(self, event: TrainEvent) -> None:
        self.events.append(event)
        if self.interrupt_on and event.kind == "phase" and event.text.startswith(self.interrupt_on):
            self.interrupt_on = None
            raise KeyboardInterrupt

    def on_interrupt(self, run: TrainRun) -> bool:
        self.asked.append(run.name)
        return self.stop_answer

    def context(self) -> TrainContext:
        return TrainContext(self.settings, self.store, on_event=self.on_event, on_interrupt=self.on_interrupt)

    def options(self, **fields: Any) -> TrainOptions:
        return TrainOptions.parse(self.source / "train.py", target="sagemaker", **fields)

    def new_run(self, options: TrainOptions, name: str) -> TrainRun:
        """The record as ``train()`` hands it over: named, saved, local channels versioned."""
        channels = [
            Channel(n, str(Path(p).resolve()), "sha256:" + hashlib.sha256(n.encode()).hexdigest())
            for n, p in options.channels.items()
            if not p.startswith("s3://")
        ]
        run = TrainRun(name, "sagemaker", options.experiment_name, options.entry, str(self.source), channels=channels)
        self.store.save(run)
        return run

    def train(self, options: TrainOptions, name: str, image: str) -> TrainRun:
        return run_sagemaker(options, self.new_run(options, name), self.context(), image, aws=self.aws, poll_s=0.01)

    def phases(self) -> list[str]:
        return [e.text for e in self.events if e.kind == "phase"]

    def sent(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every ``operation`` call this test's client makes (captured, not answered)."""
        calls: list[dict[str, Any]] = []
        self.aws.client("sagemaker").meta.events.register(
            f"before-parameter-build.sagemaker.{operation}", lambda params, **_: calls.append(dict(params))
        )
        return calls


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path, registry: OciRegistry) -> Harness:
    request.getfixturevalue("aws")  # a fresh moto and boto3 pointed at it, before the first client is made
    return Harness(tmp_path, registry)


def write_log(job: str, lines: list[str], host: str = "algo-1-1700000000") -> None:
    """What SageMaker does with the container's output: lines into the job's stream of the training log group."""
    logs = boto3.client("logs", region_name="us-east-1")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=GROUP)
    stream = f"{job}/{host}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)


def job_script(states: list[dict[str, Any]], logs: dict[int, list[str]]) -> Callable[[dict[str, Any]], Any]:
    """DescribeTrainingJob's answers: moto's description of the created job, with ``states[i]`` over it at the
    i-th call (the last one repeats); before answering call i, ``logs[i]`` lands in the job's log stream."""
    moto = boto3.client("sagemaker", region_name="us-east-1")  # unscripted: moto's own answer
    count = {"n": 0}

    def respond(params: dict[str, Any]) -> Any:
        try:
            job = moto.describe_training_job(TrainingJobName=params["TrainingJobName"])
        except moto.exceptions.ClientError as exc:  # before the job exists (the name check): moto's own refusal
            return error(exc.response["Error"]["Code"], exc.response["Error"]["Message"])
        index = count["n"]
        count["n"] += 1
        if index in logs:
            write_log(params["TrainingJobName"], logs[index])
        job.pop("ResponseMetadata")
        for key in ("BillableTimeInSeconds", "TrainingTimeInSeconds", "FailureReason"):
            job.pop(key, None)
        job.update(states[min(index, len(states) - 1)])
        return dict(job)

    return respond


RUNNING = [
    {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting", "FinalMetricDataList": []},
    {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Downloading", "FinalMetricDataList": []},
    {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training", "FinalMetricDataList": []},
]


def test_spot_job_from_push_to_cost(harness: Harness, small_image: str, registry: OciRegistry, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n")
    options = harness.options(
        data={"train": str(data)},
        hp={"epochs": 3, "C": 0.5, "kernel": "rbf", "shrinking": False},
        metrics=["accuracy", "loss=loss: ([0-9.]+)"],
        spot=True,
        max_runtime="1h",
        max_wait="2h",
        instance_type="ml.m5.xlarge",
        instance_count=2,
        tags={"team": "ml"},
    )
    created = harness.sent("CreateTrainingJob")
    final = {
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "BillableTimeInSeconds": 120,
        "TrainingTimeInSeconds": 400,
        "FinalMetricDataList": [
            {"MetricName": "accuracy", "Value": 0.5},  # seen in the log: the log's values stand
            {"MetricName": "val_auc", "Value": 0.91},  # never in the log: added from here
        ],
    }
    script = job_script(
        [*RUNNING, final],
        {
            1: ["Downloading the data", "[metric] accuracy=0.8 step=1", "loss: 0.52"],
            3: ["[metric] accuracy=0.95 step=2", "loss: 0.21", "done"],
        },
    )
    described = answer(harness.aws.client("sagemaker"), "DescribeTrainingJob", script)

    run = harness.train(options, "digits-spot-1", small_image)

    # The request: exactly what was sent, valid against the API's shapes.
    assert len(created) == 1
    request = created[0]
    check_params("sagemaker", "CreateTrainingJob", request)  # types, required members, enums, patterns, ranges
    ecr = boto3.client("ecr", region_name="us-east-1")
    image = ecr.describe_images(repositoryName="shipyard-train/digits", imageIds=[{"imageTag": "digits-spot-1"}])
    digest = image["imageDetails"][0]["imageDigest"]
    assert registry.manifest("shipyard-train/digits", "digits-spot-1").status_code == 200
    repository_uri = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/shipyard-train/digits"
    assert request["AlgorithmSpecification"]["TrainingImage"] == f"{repository_uri}@{digest}"
    assert run.image == f"{repository_uri}@{digest}" and run.image_digest == digest
    assert request["HyperParameters"] == {"epochs": "3", "C": "0.5", "kernel": "rbf", "shrinking": "false"}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    checkpoints = f"s3://{BUCKET}/shipyard-train/digits/checkpoints/digits-spot-1/"
    assert request["CheckpointConfig"] == {"S3Uri": checkpoints, "LocalPath": "/opt/ml/checkpoints"}
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/shipyard-train/digits/output/"}
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30}
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags == {"team": "ml", "shipyard:training-run": "digits-spot-1", "shipyard:experiment": "digits"}
    # moto keeps what it was sent: the job it describes is this request.
    stored = boto3.client("sagemaker", region_name="us-east-1").describe_training_job(TrainingJobName="digits-spot-1")
    assert stored["RoleArn"] == request["RoleArn"] == run.extra["role"]
    assert stored["CheckpointConfig"] == request["CheckpointConfig"]

    # The wait: each secondary status once, in order; every log line told; the metrics of both kinds.
    assert len(described) >= 4
    statuses = [p for p in harness.phases() if p.split(":")[0] in ("Starting", "Downloading", "Training", "Completed")]
    assert [s.split(":")[0] for s in statuses] == ["Starting", "Downloading", "Training", "Completed"]
    logged = [e.text for e in harness.events if e.kind == "log"]
    assert logged == ["Downloading the data", "[metric] accuracy=0.8 step=1", "loss: 0.52", *script_tail()]
    values = [(m.name, m.value, m.step) for m in run.metrics]
    assert values == [
        ("accuracy", 0.8, 1),
        ("loss", 0.52, None),
        ("accuracy", 0.95, 2),
        ("loss", 0.21, None),
        ("val_auc", 0.91, None),
    ]
    assert run.final_metrics == {"accuracy": 0.95, "loss": 0.21, "val_auc": 0.91}

    # The end: artifact, billable seconds, the spot saving and the cost (120 s × 2 × ml.m5.xlarge's $0.23/h).
    assert run.status == "Completed"
    assert run.model_artifact == f"s3://{BUCKET}/shipyard-train/digits/output/digits-spot-1/output/model.tar.gz"
    assert run.billable_seconds == 120 and run.training_seconds == 400
    assert run.spot_saving_pct == 70.0
    assert run.cost_usd == pytest.approx(120 * 2 * 0.23 / 3600)
    assert run.job_arn == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/digits-spot-1"
    saved = harness.store.load("digits-spot-1")
    assert saved.status == "Completed" and saved.cost_usd == run.cost_usd and saved.final_metrics == run.final_metrics


def script_tail() -> list[str]:
    return ["[metric] accuracy=0.95 step=2", "loss: 0.21", "done"]


def test_role_policy_reads_inputs_writes_output(harness: Harness, small_image: str, tmp_path: Path) -> None:
    """The role as IAM (moto) holds it: trust, tags, and each statement's actions and resources."""
    data = tmp_path / "train"
    data.mkdir()
    (data / "a.csv").write_text("1\n")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="datasets")
    s3.put_object(Bucket="datasets", Key="digits/validation/v.csv", Body=b"2\n")
    options = harness.options(data={"train": str(data), "validation": "s3://datasets/digits/validation/"})
    run = harness.train(options, "digits-role-1", small_image)  # moto: Completed at once

    iam = boto3.client("iam")
    role = iam.get_role(RoleName="shipyard-train-digits-role-1")["Role"]
    assert role["Arn"] == run.extra["role"] and role["Path"] == "/shipyard-train/"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]}
    assert tags["shipyard:training-run"] == "digits-role-1"
    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="shipyard-training")["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    train_uri = next(c.uri for c in run.channels if c.name == "train")
    assert train_uri.startswith(f"s3://{BUCKET}/shipyard-train/digits/data/train/")
    assert by_sid["ReadInputs"] == {
        "Sid": "ReadInputs",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": sorted(
            [f"arn:aws:s3:::{train_uri.removeprefix('s3://')}*", "arn:aws:s3:::datasets/digits/validation/*"]
        ),
    }
    assert by_sid["WriteOutput"]["Action"] == "s3:PutObject"
    assert by_sid["WriteOutput"]["Resource"] == f"arn:aws:s3:::{BUCKET}/shipyard-train/digits/output/*"
    assert [s["Sid"] for s in policy["Statement"] if "PutObject" in str(s["Action"])] == ["WriteOutput"]
    assert "Checkpoints" not in by_sid  # no spot, no --checkpoints
    assert by_sid["PullImage"]["Resource"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/shipyard-train/digits"


def test_failed_job_records_reason_and_log_tail(harness: Harness, small_image: str) -> None:
    options = harness.options(max_runtime="10m")
    failed = {
        "TrainingJobStatus": "Failed",
        "SecondaryStatus": "Failed",
        "FailureReason": "AlgorithmError: ValueError: C must be positive",
        "BillableTimeInSeconds": 30,
        "TrainingTimeInSeconds": 30,
    }
    lines = [f"epoch {i}" for i in range(60)] + ["Traceback (most recent call last):", "ValueError: C must be positive"]
    answer(harness.aws.client("sagemaker"), "DescribeTrainingJob", job_script([*RUNNING[:2], failed], {1: lines}))

    with pytest.raises(TrainFailed) as caught:
        harness.train(options, "digits-fail-1", small_image)

    assert caught.value.reason == "AlgorithmError: ValueError: C must be positive"
    assert caught.value.log_tail[-1] == "ValueError: C must be positive"
    assert len(caught.value.log_tail) == 50 and caught.value.log_tail[0] == "epoch 12"
    saved = harness.store.load("digits-fail-1")
    assert saved.status == "Failed" and saved.failure_reason == caught.value.reason
    assert saved.log_tail == list(caught.value.log_tail) and saved.billable_seconds == 30
    assert saved.spot_saving_pct is None  # on-demand


def test_s3_channel_used_as_it_is_with_its_etag_version(harness: Harness, small_image: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="datasets")
    for key, body in [("digits/train/a.csv", b"1,2\n"), ("digits/train/sub/b.csv", b"3,4\n" * 100)]:
        s3.put_object(Bucket="datasets", Key=key, Body=body)
    s3.put_object(Bucket="datasets", Key="digits/other.csv", Body=b"not this")
    created = harness.sent("CreateTrainingJob")

    run = harness.train(harness.options(data={"train": "s3://datasets/digits/train/"}), "digits-s3-1", small_image)

    channel = created[0]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert channel["S3Uri"] == "s3://datasets/digits/train/"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="shipyard-train/digits/data/").get("KeyCount") == 0
    listed = s3.list_objects_v2(Bucket="datasets", Prefix="digits/train/")["Contents"]
    digest = hashlib.sha256()
    for item in sorted(listed, key=lambda i: i["Key"]):
        digest.update(f"{item['Key'].removeprefix('digits/train/')}\0{item['ETag'].strip(chr(34))}\n".encode())
    assert run.channels == [Channel("train", "s3://datasets/digits/train/", f"etag:{digest.hexdigest()}", 404, 2)]
    # The ETag of a PutObject is the body's MD5: the version follows the content.
    assert {i["ETag"].strip('"') for i in listed} == {
        hashlib.md5(b"1,2\n").hexdigest(),
        hashlib.md5(b"3,4\n" * 100).hexdigest(),
    }


def test_s3_channel_with_no_objects_is_refused_before_the_job(harness: Harness, small_image: str) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="datasets")
    with pytest.raises(SpecError) as caught:
        harness.train(harness.options(data={"train": "s3://datasets/missing/"}), "digits-s3-2", small_image)
    assert caught.value.option == "channels" and "no objects" in str(caught.value)
    assert boto3.client("sagemaker", region_name="us-east-1").list_training_jobs()["TrainingJobSummaries"] == []


def test_local_channel_uploaded_once(harness: Harness, small_image: str, tmp_path: Path) -> None:
    """The second run of the same data uploads nothing: each object is there with the same size and ETag (one
    file is over the 8 MiB part size, so its ETag is a multipart one, predicted locally)."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels.csv").write_text("0\n1\n")
    (data / "images" / "big.bin").write_bytes(bytes(range(256)) * (9 * 4096))  # 9 MiB: two parts
    options = harness.options(data={"train": str(data)})

    first = harness.train(options, "digits-up-1", small_image)
    puts_after_first = harness.aws.calls["s3:PutObject"] + harness.aws.calls["s3:CreateMultipartUpload"]
    second = harness.train(options, "digits-up-2", small_image)
    puts_after_second = harness.aws.calls["s3:PutObject"] + harness.aws.calls["s3:CreateMultipartUpload"]

    assert puts_after_first == 2 and puts_after_second == puts_after_first
    assert first.channels[0].uri == second.channels[0].uri
    assert first.channels[0].version == second.channels[0].version == options_version(harness, "train")
    objects = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=first.channels[0].uri.split(BUCKET + "/")[1])
    etags = {o["Key"].rsplit("/", 1)[1]: o["ETag"].strip('"') for o in objects["Contents"]}
    assert etags["big.bin"].endswith("-2") and etags["labels.csv"] == hashlib.md5(b"0\n1\n").hexdigest()
    assert any("already uploaded: 2 files" in p for p in harness.phases())
    assert second.extra["uploaded_from"] == {"train": str(data.resolve())}

    # Changed data goes to a new prefix: the first run's objects stay as it read them.
    (data / "labels.csv").write_text("0\n1\n2\n")
    third = harness.train(options, "digits-up-3", small_image)
    assert third.channels[0].uri != first.channels[0].uri


def options_version(harness: Harness, name: str) -> str:
    """The local version train() recorded (the test's stand-in: the channel name's hash) is kept."""
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def test_ctrl_c_then_stop(harness: Harness, small_image: str) -> None:
    """Ctrl-C during the wait, answered "stop": StopTrainingJob (scripted: moto answers it with HTTP 500), the
    wait goes on until Stopped, and the run ends TrainStopped, recorded Stopped."""
    client = harness.aws.client("sagemaker")
    stopped = {"TrainingJobStatus": "Stopped", "SecondaryStatus": "Stopped", "BillableTimeInSeconds": 12}
    stopping = {"TrainingJobStatus": "Stopping", "SecondaryStatus": "Stopping"}
    answer(client, "DescribeTrainingJob", job_script([*RUNNING, stopping, stopped], {2: ["epoch 1"]}))
    stops = answer(client, "StopTrainingJob", {})
    harness.interrupt_on = "Training"

    with pytest.raises(TrainStopped):
        harness.train(harness.options(), "digits-stop-1", small_image)

    assert harness.asked == ["digits-stop-1"]
    assert stops == [{"TrainingJobName": "digits-stop-1"}]
    saved = harness.store.load("digits-stop-1")
    assert saved.status == "Stopped" and saved.billable_seconds == 12
    assert [e.text for e in harness.events if e.kind == "status"][-2:] == ["Stopping", "Stopped"]


def test_ctrl_c_then_leave_running(harness: Harness, small_image: str) -> None:
    """Ctrl-C answered "leave it": no StopTrainingJob, the record says InProgress, the call returns."""
    client = harness.aws.client("sagemaker")
    answer(client, "DescribeTrainingJob", job_script(RUNNING, {}))
    stops = answer(client, "StopTrainingJob", {})
    harness.interrupt_on = "Training"
    harness.stop_answer = False

    run = harness.train(harness.options(), "digits-leave-1", small_image)

    assert harness.asked == ["digits-leave-1"] and stops == []
    assert run.status == "InProgress" and harness.store.load("digits-leave-1").status == "InProgress"
    assert run.job_arn and run.ended_at is None


def test_existing_job_name_is_refused(harness: Harness, small_image: str) -> None:
    harness.train(harness.options(), "digits-dup-1", small_image)
    with pytest.raises(SpecError) as caught:
        harness.train(harness.options(), "digits-dup-1", small_image)
    assert caught.value.option == "name" and "already exists" in str(caught.value)


def test_given_role_is_used_and_no_role_is_made(harness: Harness, small_image: str) -> None:
    created = harness.sent("CreateTrainingJob")
    arn = f"arn:aws:iam::{ACCOUNT}:role/team-training"
    run = harness.train(harness.options(role=arn), "digits-given-1", small_image)
    assert created[0]["RoleArn"] == arn and run.extra["role"] == arn
    assert boto3.client("iam").list_roles(PathPrefix="/shipyard-train/")["Roles"] == []


def test_local_checkpoints_are_uploaded_to_resume_from_and_output_goes_where_asked(
    harness: Harness, small_image: str, tmp_path: Path
) -> None:
    """A spot run with a local --checkpoints folder: its files go to the run's checkpoint prefix first (the job
    resumes from them), CheckpointConfig points there, and --output replaces the default output prefix."""
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    (checkpoints / "epoch-3.pt").write_bytes(b"weights")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="results")
    created = harness.sent("CreateTrainingJob")
    options = harness.options(spot=True, checkpoints=str(checkpoints), output="s3://results/digits/")

    run = harness.train(options, "digits-resume-1", small_image)

    prefix = "shipyard-train/digits/checkpoints/digits-resume-1/"
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "epoch-3.pt")["Body"].read() == b"weights"
    request = created[0]
    assert request["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/{prefix}", "LocalPath": "/opt/ml/checkpoints"}
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://results/digits/"}
    assert run.checkpoints == f"s3://{BUCKET}/{prefix}"
    assert run.model_artifact == "s3://results/digits/digits-resume-1/output/model.tar.gz"  # moto's layout
    policy = boto3.client("iam").get_role_policy(
        RoleName="shipyard-train-digits-resume-1", PolicyName="shipyard-training"
    )
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert by_sid["WriteOutput"]["Resource"] == "arn:aws:s3:::results/digits/*"
    assert by_sid["Checkpoints"] == {
        "Sid": "Checkpoints",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": f"arn:aws:s3:::{BUCKET}/{prefix}*",
    }
    assert "ReadInputs" not in by_sid  # no channel: nothing to read


def test_an_image_already_pushed_under_the_run_name_is_refused(harness: Harness, small_image: str) -> None:
    """Tags are immutable: a run of a name whose image was pushed before (by a run stopped before its job was
    created) would train the older image, so it is refused before anything is created."""
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName="shipyard-train/digits", imageTagMutability="IMMUTABLE")
    manifest = '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}'
    ecr.put_image(repositoryName="shipyard-train/digits", imageManifest=manifest, imageTag="digits-img-1")
    with pytest.raises(SpecError) as caught:
        harness.train(harness.options(), "digits-img-1", small_image)
    assert caught.value.option == "name" and "shipyard-train/digits:digits-img-1 already exists" in str(caught.value)
    assert boto3.client("sagemaker", region_name="us-east-1").list_training_jobs()["TrainingJobSummaries"] == []
