"""The training-job gateway and the S3 sync against a real moto server.

moto's CreateTrainingJob/DescribeTrainingJob keep the request (the job is Completed at once) and StopTrainingJob
answers HTTP 500; the refusal AWS gives to stopping an ended job is scripted at that one call."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest

from infra.scripted_aws import answer, error
from shipyard.cloud import Aws
from shipyard.cloud.logs import LogsGateway
from shipyard.cloud.s3 import PART_BYTES, S3Gateway, local_etag
from shipyard.cloud.training import TRAINING_LOG_GROUP, JobLogs, TrainingGateway
from shipyard.errors import CloudError

pytestmark = pytest.mark.integration


def put(logs: object, stream: str, *lines: str) -> None:
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream, logEvents=events)  # type: ignore[attr-defined]


def test_job_logs_read_each_line_once_across_streams(aws: object) -> None:
    reader = JobLogs(LogsGateway(Aws("us-east-1")), "job-1")
    assert reader.read() == []  # no group yet: nothing, no error
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
    for stream in ("job-1/algo-1-1700000000", "job-10/algo-1-1700000000"):  # job-10 is another job
        logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream)
    put(logs, "job-1/algo-1-1700000000", "one", "two")
    put(logs, "job-10/algo-1-1700000000", "not ours")
    assert [e.message for e in reader.read()] == ["one", "two"]
    assert reader.read() == []
    time.sleep(0.01)
    logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName="job-1/algo-2-1700000000")
    put(logs, "job-1/algo-1-1700000000", "three")
    put(logs, "job-1/algo-2-1700000000", "host two")
    assert sorted(e.message for e in reader.read()) == ["host two", "three"]
    assert reader.streams == ["job-1/algo-1-1700000000", "job-1/algo-2-1700000000"]
    assert reader.read() == []


def test_describe_missing_and_stop_an_ended_job(aws: object) -> None:
    aws_ = Aws("us-east-1")
    gateway = TrainingGateway(aws_)
    assert gateway.describe("nope") is None
    refused = error("ValidationException", "The training job job-1 is not in progress. Stop failed.")
    answer(aws_.client("sagemaker"), "StopTrainingJob", refused)
    assert gateway.stop("job-1") is False
    with pytest.raises(CloudError) as caught:
        gateway.create({"TrainingJobName": "job-1"})  # botocore refuses it before sending
    assert "create the training job job-1" in str(caught.value)


def test_sync_up_skips_what_is_there_and_versions_the_prefix(aws: object, tmp_path: Path) -> None:
    s3 = S3Gateway(Aws("us-east-1"))
    s3.create_bucket("bucket")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "small.txt").write_text("hello\n")
    (folder / "exact.bin").write_bytes(b"x" * PART_BYTES)  # at the threshold: a multipart upload of one part
    first = s3.sync_up(folder, "s3://bucket/data/v1", tags={"k": "v"})
    assert (first.uri, first.uploaded, first.skipped) == ("s3://bucket/data/v1/", 2, 0)
    there = s3.objects("bucket", "data/v1/")
    assert there["data/v1/exact.bin"] == (PART_BYTES, local_etag(folder / "exact.bin"))
    assert local_etag(folder / "exact.bin").endswith("-1")
    again = s3.sync_up(folder, "s3://bucket/data/v1/", tags={"k": "v"})
    assert (again.uploaded, again.skipped, again.bytes_sent) == (0, 2, 0)
    (folder / "small.txt").write_text("changed\n")
    changed = s3.sync_up(folder, "s3://bucket/data/v1/", tags={"k": "v"})
    assert (changed.uploaded, changed.skipped) == (1, 1)
    version = s3.prefix_version("s3://bucket/data/v1/")
    assert version.files == 2 and version.size == PART_BYTES + len("changed\n")
    assert version.version.startswith("etag:") and s3.prefix_version("s3://bucket/data/v1/") == version
    assert s3.object_tags("bucket", "data/v1/small.txt") == {"k": "v"}
    single = s3.sync_up(folder / "small.txt", "s3://bucket/one/", tags={})
    assert single.uploaded == 1 and s3.keys("bucket", "one/") == ["one/small.txt"]
