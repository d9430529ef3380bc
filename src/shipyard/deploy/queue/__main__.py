"""``python -m shipyard.deploy.queue --endpoint NAME --upstream URL --port P --bucket DIR [--concurrency N]
[--timeout S] [--grace S] [--notify-success] [--notify-error]``: the queue, served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from shipyard.deploy.queue.app import AsyncQueue, QueueConfig
from shipyard.deploy.queue.store import file_uri


def parse(argv: Sequence[str] | None = None) -> tuple[QueueConfig, int]:
    parser = argparse.ArgumentParser(prog="python -m shipyard.deploy.queue", description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--upstream", required=True, help="the container's URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", required=True, help="the directory standing in for the S3 prefix")
    parser.add_argument("--output", default=None, help="where answers go (file:// or s3://): BUCKET/output")
    parser.add_argument("--failure", default=None, help="where errors go: BUCKET/failure")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--grace", type=float, default=5.0, help="on SIGTERM, how long running requests may take")
    parser.add_argument("--notify-success", action="store_true")
    parser.add_argument("--notify-error", action="store_true")
    args = parser.parse_args(argv)
    bucket = Path(args.bucket)
    config = QueueConfig(
        endpoint=args.endpoint,
        upstream=args.upstream.rstrip("/"),
        output_prefix=args.output or file_uri(bucket / "output"),
        failure_prefix=args.failure or file_uri(bucket / "failure"),
        concurrency=args.concurrency,
        timeout_s=args.timeout,
        notify_dir=bucket / "notifications",
        notify_success=args.notify_success,
        notify_error=args.notify_error,
        jobs_dir=bucket / "queue",
        grace_s=args.grace,
    )
    return config, int(args.port)


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    config, port = parse(argv)
    print(
        f"queue on http://127.0.0.1:{port} → {config.upstream}/invocations, {config.concurrency} at a time",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(AsyncQueue(config), host="127.0.0.1", port=port, access_log=False, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
