"""CloudWatch Logs: the endpoint's log group (retention set, tagged), its tail, and following it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from shipyard.cloud.errors import aws_call, error_code
from shipyard.cloud.session import Aws

__all__ = ["LogEvent", "LogsGateway", "endpoint_log_group"]


def endpoint_log_group(endpoint: str) -> str:
    """Where SageMaker writes an endpoint's container output."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


@dataclass(frozen=True)
class LogEvent:
    timestamp_ms: int
    stream: str
    message: str


class LogsGateway:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.client = aws.client("logs")

    def create_group(self, group: str, *, retention_days: int, tags: dict[str, str]) -> None:
        """Create (or adopt) ``group`` and set its retention; SageMaker's own groups never expire."""
        with aws_call(f"create the log group {group}", self.aws.region):
            try:
                self.client.create_log_group(logGroupName=group, tags=tags)
            except ClientError as exc:
                if error_code(exc) != "ResourceAlreadyExistsException":
                    raise
                self.client.tag_log_group(logGroupName=group, tags=tags)
            self.client.put_retention_policy(logGroupName=group, retentionInDays=retention_days)

    def describe(self, group: str) -> dict[str, object] | None:
        with aws_call(f"describe the log group {group}", self.aws.region):
            groups = self.client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        return next((dict(g) for g in groups if g["logGroupName"] == group), None)

    def tags(self, group: str) -> dict[str, str]:
        with aws_call(f"read the tags of {group}", self.aws.region):
            return dict(self.client.list_tags_log_group(logGroupName=group)["tags"])

    def untag(self, group: str, keys: list[str]) -> None:
        with aws_call(f"remove the tags {', '.join(keys)} from {group}", self.aws.region):
            self.client.untag_log_group(logGroupName=group, tags=keys)

    def groups(self, prefix: str) -> list[str]:
        names: list[str] = []
        with aws_call(f"list the log groups under {prefix}", self.aws.region):
            for page in self.client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
                names.extend(str(g["logGroupName"]) for g in page["logGroups"])
        return names

    def events(self, group: str, *, since_ms: int | None = None, limit: int = 10_000) -> list[LogEvent]:
        """Events of every stream in ``group`` after ``since_ms``, oldest first (none when it is missing)."""
        found: list[LogEvent] = []
        args: dict[str, object] = {"logGroupName": group, "interleaved": True}
        if since_ms is not None:
            args["startTime"] = since_ms
        with aws_call(f"read the logs of {group}", self.aws.region):
            try:
                for page in self.client.get_paginator("filter_log_events").paginate(**args):
                    found.extend(
                        LogEvent(int(e["timestamp"]), str(e.get("logStreamName", "")), str(e["message"]).rstrip("\n"))
                        for e in page["events"]
                    )
                    if len(found) >= limit:
                        break
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return []
                raise
        found.sort(key=lambda e: e.timestamp_ms)
        return found

    def streams(self, group: str, prefix: str) -> list[str]:
        """Names of the streams of ``group`` starting with ``prefix`` (none when the group is missing)."""
        names: list[str] = []
        with aws_call(f"list the log streams {group}/{prefix}*", self.aws.region):
            try:
                pages = self.client.get_paginator("describe_log_streams").paginate(
                    logGroupName=group, logStreamNamePrefix=prefix
                )
                for page in pages:
                    names.extend(str(s["logStreamName"]) for s in page["logStreams"])
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return []
                raise
        return sorted(names)

    def stream_events(self, group: str, stream: str, *, token: str | None) -> tuple[list[LogEvent], str | None]:
        """The events of one stream after ``token`` (None: from its start), oldest first, and the token to
        read on from (GetLogEvents' ``nextForwardToken``; the same token comes back when nothing is new)."""
        args: dict[str, object] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        events: list[LogEvent] = []
        with aws_call(f"read the log stream {group}/{stream}", self.aws.region):
            while True:
                if token is not None:
                    args["nextToken"] = token
                answer = self.client.get_log_events(**args)
                events.extend(
                    LogEvent(int(e["timestamp"]), stream, str(e["message"]).rstrip("\n")) for e in answer["events"]
                )
                following = answer.get("nextForwardToken")
                if not answer["events"] or following is None or following == token:
                    return events, str(following) if following is not None else token
                token = str(following)

    def tail(self, group: str, lines: int = 30, *, since_ms: int | None = None) -> list[LogEvent]:
        """The last ``lines`` events of ``group``."""
        return self.events(group, since_ms=since_ms)[-lines:]

    def follow(self, group: str, *, since_ms: int | None = None, interval_s: float = 2.0) -> Iterator[LogEvent]:
        """New events as they arrive, forever (the caller stops iterating)."""
        seen: set[tuple[int, str, str]] = set()
        cursor = since_ms
        while True:
            for event in self.events(group, since_ms=cursor):
                key = (event.timestamp_ms, event.stream, event.message)
                if key in seen:
                    continue
                seen.add(key)
                cursor = event.timestamp_ms  # same-millisecond events are kept apart by `seen`
                yield event
            if cursor is not None:  # only events at the cursor can come back: forget the older ones
                seen = {key for key in seen if key[0] >= cursor}
            time.sleep(interval_s)

    def delete_group(self, group: str) -> bool:
        with aws_call(f"delete the log group {group}", self.aws.region):
            try:
                self.client.delete_log_group(logGroupName=group)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
        return True
