"""The demo: a notebook model to a running endpoint and back, on the embedded default (the `local` target).

    bash scripts/demo.sh            save → build → verify → deploy → invoke → bench → status → cleanup
    bash scripts/demo.sh --quick    save → serve → invoke → stop (no container engine needed)

Every step is the real `shipyard` command, printed before it runs. The deployment is the real image under
Podman or Docker with SageMaker's lifecycle; at the end the demo asks the engine that none of its containers is
left. Options: --base IMAGE (the base image to build on; scripts/demo.sh passes a local one where no registry is
reachable), --engine docker|podman, --keep (skip the clean-up, to look around; `shipyard cleanup` later),
--name NAME (the deployment's name, default shipyard-demo-digits; the image is tagged after it, so that two runs
can share one engine).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train import main as train

from shipyard.client.http import wait_ready

NAME = "shipyard-demo-digits"  # the default deployment name (its image: shipyard-demo/digits:1)
LABEL = "dev.shipyard.deployment"  # what the local target labels its containers with


class Steps:
    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.perf_counter()
        self.shipyard = str(Path(sys.executable).parent / "shipyard")

    def step(self, text: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        print(f"\n\033[1m==> [{self.done}/{self.total}] {text}\033[0m  ({elapsed:.0f} s so far)", flush=True)

    def run(self, *args: str, env: dict[str, str] | None = None) -> None:
        print("$ shipyard " + " ".join(shlex.quote(a) for a in args), flush=True)
        subprocess.run([self.shipyard, *args], check=True, env=env)


def image_for(name: str) -> str:
    """The image the demo builds for deployment ``name``: shipyard-demo/NAME:1, less the name's own prefix.

    shipyard-demo-digits (the default) gives shipyard-demo/digits:1, as before; shipyard-demo-digits-1a2b gives
    shipyard-demo/digits-1a2b:1. A deployment name (letters, digits, inner hyphens) is a valid path component of
    an image name once lower-cased.
    """
    return f"shipyard-demo/{name.lower().removeprefix('shipyard-demo-')}:1"


def full(args: argparse.Namespace, work: Path) -> int:
    steps = Steps(11)
    env = {**os.environ, "SHIPYARD_STATE": str(work / "state.json")}  # the demo's own state: yours is untouched
    engine = ["--engine", args.engine] if args.engine else []
    name, image = args.name, image_for(args.name)

    # An earlier run under the default name that was interrupted before its clean-up: its state file is gone with
    # it, so its container is found by label and removed. Only under the default name: a name given with --name
    # may be another run's, alive right now (two demos, or a test, sharing one engine).
    stale = _containers(args.engine, name) if name == NAME else []
    if stale:
        print(f"removing what an interrupted demo run left: {', '.join(stale)}")
        subprocess.run([_engine(args.engine), "rm", "-f", *stale], check=True, capture_output=True)

    steps.step("train LogisticRegression on scikit-learn's digits; shipyard.save() writes a bundle")
    bundle = train(str(work / "digits-bundle"))
    steps.run("inspect", str(bundle))
    request = work / "request.json"
    example = json.loads((bundle / "example.json").read_text())
    request.write_text(json.dumps({"instances": example["instances"]}))

    steps.step("build a SageMaker-ready image (linux/amd64, the server inside, model baked in)")
    steps.run("build", str(bundle), "-t", image, *(["--base", args.base] if args.base else []), *engine)

    steps.step("verify it the way SageMaker runs it: serve, /ping, /invocations, SIGTERM, secrets")
    steps.run("verify", image, "--bundle", str(bundle), "--example", str(request), *engine)

    steps.step(f"deploy it as {name} on the local target (the real image, SageMaker's lifecycle)")
    steps.run("deploy", str(bundle), "--name", name, "--image", image, *engine, env=env)
    deployed = True
    try:
        steps.step("invoke the endpoint by its name")
        steps.run("invoke", name, "--data", str(request), env=env)
        print(f"expected (in-process): {example['predictions']}")

        steps.step("benchmark it for a few seconds: latency table, load sweep, plot, what to deploy on")
        report = work / "bench"
        steps.run(
            "bench", name, "--data", str(request), "--sizes", "1,5", "--repeats", "3", "--concurrency", "1,4,16",
            "--duration", "1", "--out", str(report), env=env,
        )  # fmt: skip
        print(f"plot: {report / 'bench.png'}")

        steps.step("expose it: a public API on 127.0.0.1 that behaves as API Gateway's (an API key, throttling)")
        steps.run("expose", name, "--rate", "20", "--burst", "40", env=env)

        steps.step("invoke it through that API, with its key, as its callers will")
        steps.run("invoke", name, "--via", "api", "--data", str(request), env=env)

        steps.step("status: every deployment, its state, URL and cost; then this one's traffic and latency")
        steps.run("status", env=env)
        steps.run("status", name, env=env)
    finally:
        if args.keep:
            print(f"\n--keep: {name} is still running; remove it with SHIPYARD_STATE={env['SHIPYARD_STATE']} "
                  f"shipyard cleanup {name}")  # fmt: skip
        else:
            steps.step("clean up everything the deployment created")
            steps.run("cleanup", name, env=env)
            deployed = False
    if not deployed:
        steps.step("check with the engine that nothing is left running")
        left = _containers(args.engine, name)
        if left:
            print(f"left behind: {', '.join(left)}", file=sys.stderr)
            return 1
        print(f"no container labelled {LABEL}={name} is left; the image {image} is kept for a faster rerun")
    print(f"\ndone in {time.perf_counter() - steps.started:.0f} s; files in {work}")
    return 0


def _engine(preferred: str | None) -> str:
    from shipyard.image.engine import detect

    return detect(preferred).binary


def _containers(preferred: str | None, name: str) -> list[str]:
    listed = subprocess.run(
        [_engine(preferred), "ps", "-a", "--filter", f"label={LABEL}={name}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def _deployment_name(text: str) -> str:
    """--name as `shipyard deploy` takes it, checked before a minute is spent building an image for it."""
    from shipyard.deploy.options import check_name
    from shipyard.errors import ShipyardError

    try:
        return check_name(text)
    except ShipyardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def quick(work: Path) -> int:
    """Serve the bundle with the same server the image runs, invoke it, stop it: no container engine."""
    steps = Steps(4)
    steps.step("train LogisticRegression on scikit-learn's digits; shipyard.save() writes a bundle")
    bundle = train(str(work / "digits-bundle"))
    steps.run("inspect", str(bundle))

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    steps.step(f"serve it: shipyard serve {bundle} --port {port}")
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [steps.shipyard, "serve", str(bundle), "--port", str(port), "--workers", "1"], stdout=log, stderr=log
    )
    try:
        print(f"ready after {wait_ready(url, timeout=60):.2f} s")
        request = work / "request.json"
        example = json.loads((bundle / "example.json").read_text())
        request.write_text(json.dumps({"instances": example["instances"]}))
        steps.step("invoke it")
        steps.run("invoke", url, "--data", str(request))
        print(f"expected (in-process): {example['predictions']}")
    finally:
        steps.step("stop the server (SIGTERM: in-flight requests drain)")
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        log.close()
        print(f"server exited with code {code}; its log: {work / 'server.log'}")
    return 0 if code == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="only serve and invoke (no container engine)")
    parser.add_argument("--base", help="base image to build on [default: shipyard build's]")
    parser.add_argument("--engine", choices=["docker", "podman"], help="container engine [default: detected]")
    parser.add_argument("--keep", action="store_true", help="leave the deployment running")
    parser.add_argument(
        "--name", default=NAME, type=_deployment_name,
        help=f"the deployment's name; its image: shipyard-demo/NAME:1, less a shipyard-demo- prefix [default: {NAME}]",
    )  # fmt: skip
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="shipyard-demo-"))
    try:
        return quick(work) if args.quick else full(args, work)
    except subprocess.CalledProcessError as exc:
        print(f"\nthe step failed (exit {exc.returncode}); files in {work}", file=sys.stderr)
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
