"""``python -m shipyard.deploy.front --upstream URL --port P --path /predict --rate R --burst B
[--quota 100000/month] [--auth api-key --key-file F]``: the front, served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shipyard.deploy.expose import API_TIMEOUT_S, Quota
from shipyard.deploy.front.app import Front, FrontConfig

TIMEOUT_ENV = "SHIPYARD_FRONT_TIMEOUT_S"  # tests shorten API Gateway's 29 s


def parse(argv: Sequence[str] | None = None) -> tuple[FrontConfig, int]:
    parser = argparse.ArgumentParser(prog="python -m shipyard.deploy.front", description=__doc__)
    parser.add_argument("--upstream", required=True, help="the container's URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/predict")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (the token bucket's refill)")
    parser.add_argument("--burst", type=int, default=100, help="the token bucket's size")
    parser.add_argument("--quota", default=None, help="COUNT/PERIOD, e.g. 100000/month")
    parser.add_argument("--auth", choices=("api-key", "none"), default="api-key")
    parser.add_argument("--key-file", default=None, help="the API key (--auth api-key), one line")
    args = parser.parse_args(argv)
    if args.auth == "api-key" and not args.key_file:
        parser.error("--auth api-key needs --key-file")
    key = Path(args.key_file).read_text().strip() if args.auth == "api-key" else None
    config = FrontConfig(
        upstream=args.upstream,
        path=args.path,
        rate=args.rate,
        burst=args.burst,
        quota=Quota.parse(args.quota) if args.quota else None,
        key=key,
        timeout_s=float(os.environ.get(TIMEOUT_ENV, API_TIMEOUT_S)),
    )
    return config, int(args.port)


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    config, port = parse(argv)
    print(f"front on http://127.0.0.1:{port}{config.path} → {config.invocations}", file=sys.stderr, flush=True)
    uvicorn.run(Front(config), host="127.0.0.1", port=port, access_log=False, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
