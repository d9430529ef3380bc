"""The demo: train → save → serve → invoke → predictions printed → server stopped.

bash scripts/demo.sh
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train import main as train

from shipyard.client.http import wait_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="shipyard-demo-"))
    bin_dir = Path(sys.executable).parent
    shipyard = str(bin_dir / "shipyard")

    step("train LogisticRegression on scikit-learn's digits and save a bundle")
    bundle = train(str(work / "digits-bundle"))
    subprocess.run([shipyard, "inspect", str(bundle)], check=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    step(f"serve it: shipyard serve {bundle} --port {port}")
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [shipyard, "serve", str(bundle), "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        print(f"ready after {wait_ready(url, timeout=60):.2f} s")
        request = work / "request.json"
        example = json.loads((bundle / "example.json").read_text())
        request.write_text(json.dumps({"instances": example["instances"]}))
        step(f"invoke it: shipyard invoke {url} --data request.json")
        subprocess.run([shipyard, "invoke", url, "--data", str(request)], check=True)
        print(f"expected (in-process): {example['predictions']}")
    finally:
        step("stop the server (SIGTERM: in-flight requests drain)")
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        log.close()
        print(f"server exited with code {code}; its log: {work / 'server.log'}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
