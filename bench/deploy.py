"""Deploy figures: AWS API calls of a sagemaker deploy and cleanup, of ``expose`` and of a guarded update, and
local deploy time with a warm cache.

    .venv/bin/python bench/deploy.py [--runs 5]

* AWS calls are counted with a botocore ``before-call`` hook (:attr:`shipyard.cloud.Aws.calls`) against a
  moto server (the same calls real AWS receives; moto answers DescribeEndpoint InService at once, so the
  waiter polls once here where real AWS is polled every 15 s for a few minutes).
* ``expose`` (API key, quota) and ``unexpose``, and ``deploy --update --canary 10%:5m --bake 10m`` on a deployment
  with its default alarms: moto lacks UpdateEndpoint and keeps endpoints InService, so those two operations are
  answered from a script (tests/infra/scripted_aws.py) walking through a canary's phases (Creating, the two
  traffic steps with their bakes, InService: six polls); scripted calls are counted like the others.
* Local: ``deploy`` of the digits bundle to InService (image up to date, container start, /ping), the
  median of ``--runs`` after one warm-up deploy that builds the image when needed.

Writes bench/results/deploy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples" / "digits"))

from train import main as train  # noqa: E402

from infra.base_image import ensure_base_image  # noqa: E402
from infra.moto import start_moto  # noqa: E402
from infra.oci_registry import tiny_image  # noqa: E402
from infra.registry import local_registry  # noqa: E402
from infra.scripted_aws import answer  # noqa: E402
from shipyard.cloud import Aws  # noqa: E402
from shipyard.deploy import Deployer, DeployOptions  # noqa: E402
from shipyard.deploy.engine_images import EngineImages  # noqa: E402
from shipyard.deploy.expose import ExposeOptions, Quota  # noqa: E402
from shipyard.deploy.local import LocalTarget  # noqa: E402
from shipyard.deploy.options import Autoscale, Rollout, SecretRef  # noqa: E402
from shipyard.deploy.sagemaker import SageMakerTarget  # noqa: E402
from shipyard.deploy.state import StateStore  # noqa: E402


def aws_calls(work: Path, bundle: Path) -> dict[str, object]:
    moto = start_moto(work)
    os.environ.update(
        AWS_ENDPOINT_URL=moto.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
    )
    results: dict[str, object] = {}
    try:
        with local_registry() as registry:
            image = tiny_image()
            for label, extra in (
                ("instances", {}),
                (
                    "instances+autoscale+secret+capture",
                    {
                        "autoscale": Autoscale(1, 4, 20.0),
                        "secrets": (SecretRef.parse("db/password"),),
                        "data_capture_pct": 10,
                    },
                ),
            ):
                moto.reset()
                import boto3

                boto3.client("secretsmanager").create_secret(Name="db/password", SecretString="x")
                aws = Aws("us-east-1")
                deployer = Deployer(
                    StateStore(work / f"state-{label}.json"),
                    targets={"sagemaker": SageMakerTarget(EngineImages("podman"), aws=aws, poll_s=0.01)},
                )
                spec = DeployOptions(
                    source=str(bundle),
                    name="digits",
                    target="sagemaker",
                    image=image,
                    registry_override=registry,
                    region="us-east-1",
                    **extra,
                )  # type: ignore[arg-type]
                deployer.deploy(spec)
                deploy_calls = dict(aws.calls)
                aws.calls.clear()
                deployer.cleanup("digits")
                results[label] = {
                    "deploy_calls": sum(deploy_calls.values()),
                    "cleanup_calls": sum(aws.calls.values()),
                    "deploy_by_operation": dict(sorted(deploy_calls.items())),
                    "cleanup_by_operation": dict(sorted(aws.calls.items())),
                }
            moto.reset()
            results["expose+guarded-update"] = edge_calls(work, bundle, registry, image)
    finally:
        moto.stop()
    return results


# A canary as DescribeEndpoint shows it after UpdateEndpoint: (EndpointStatus, the new fleet's VariantStatus).
CANARY_PHASES = [
    ("Updating", "Creating"),
    ("Updating", "ActivatingTraffic"),
    ("Updating", "Baking"),
    ("Updating", "ActivatingTraffic"),
    ("Updating", "Baking"),
    ("InService", None),
]


def _script_canary(aws: Aws) -> None:
    """UpdateEndpoint and DescribeEndpoint answered as SageMaker does during a canary (moto lacks the first)."""
    sagemaker = aws.client("sagemaker")
    deployed = sagemaker.describe_endpoint(EndpointName="digits")
    asked: list[dict[str, object]] = []
    phases = list(CANARY_PHASES)

    def update(params: dict[str, object]) -> dict[str, object]:
        asked.append(params)
        return {"EndpointArn": deployed["EndpointArn"]}

    def describe(params: dict[str, object]) -> dict[str, object]:
        base = {k: deployed[k] for k in ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime")}
        if not asked:
            return {**base, "EndpointStatus": "InService", "EndpointConfigName": deployed["EndpointConfigName"]}
        status, variant = phases.pop(0) if len(phases) > 1 else phases[0]
        new = asked[-1]["EndpointConfigName"]
        described: dict[str, object] = {
            **base,
            "EndpointStatus": status,
            "EndpointConfigName": new if status == "InService" else deployed["EndpointConfigName"],
        }
        if variant:
            described["PendingDeploymentSummary"] = {
                "EndpointConfigName": new,
                "ProductionVariants": [{"VariantName": "AllTraffic", "VariantStatus": [{"Status": variant}]}],
            }
        return described

    answer(sagemaker, "UpdateEndpoint", update)
    answer(sagemaker, "DescribeEndpoint", describe)


def edge_calls(work: Path, bundle: Path, registry: str, image: str) -> dict[str, object]:
    """The calls of ``expose`` and ``unexpose``, of a guarded update, and of the cleanup of all of it."""
    aws = Aws("us-east-1")
    deployer = Deployer(
        StateStore(work / "state-edge.json"),
        targets={"sagemaker": SageMakerTarget(EngineImages("podman"), aws=aws, poll_s=0.01)},
    )
    options = DeployOptions(
        source=str(bundle),
        name="digits",
        target="sagemaker",
        image=image,
        registry_override=registry,
        region="us-east-1",
        instance_count=2,
    )
    deployer.deploy(options)
    phases: dict[str, dict[str, int]] = {}

    def measured(label: str) -> None:
        phases[label] = dict(sorted(aws.calls.items()))
        aws.calls.clear()

    aws.calls.clear()
    deployer.expose("digits", ExposeOptions(auth="api-key", rate=50.0, burst=100, quota=Quota(100000, "MONTH")))
    measured("expose")
    deployer.unexpose("digits")
    measured("unexpose")
    _script_canary(aws)
    aws.calls.clear()
    deployer.update("digits", str(bundle), image=image, rollout=Rollout.parse("CANARY", "10%:5m"), bake_s=600)
    measured("guarded_update")
    deployer.expose("digits")
    aws.calls.clear()
    deployer.cleanup("digits")
    measured("cleanup_with_api_and_alarms")
    return {
        **{f"{label}_calls": sum(calls.values()) for label, calls in phases.items()},
        **{f"{label}_by_operation": calls for label, calls in phases.items()},
    }


def local_deploy(work: Path, bundle: Path, runs: int) -> dict[str, object]:
    base = ensure_base_image()
    deployer = Deployer(
        StateStore(work / "state-local.json"), targets={"local": LocalTarget(EngineImages("podman"), engine="podman")}
    )
    spec = DeployOptions(source=str(bundle), name="digits-bench", base_image=base)
    started = time.perf_counter()
    deployer.deploy(spec)
    first = time.perf_counter() - started
    deployer.cleanup("digits-bench")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        endpoint = deployer.deploy(spec)
        times.append(time.perf_counter() - started)
        assert endpoint.status == "InService"
        deployer.cleanup("digits-bench")
    return {
        "first_deploy_s": round(first, 2),
        "warm_deploy_s": [round(t, 2) for t in times],
        "warm_deploy_median_s": round(statistics.median(times), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-deploy-") as tmp:
        work = Path(tmp)
        bundle = train(str(work / "digits"))
        result = {
            "aws": aws_calls(work, bundle),
            "local": local_deploy(work, bundle, args.runs),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
        }
    for label, numbers in result["aws"].items():  # type: ignore[union-attr]
        if "deploy_calls" not in numbers:
            print(f"sagemaker {label}: " + ", ".join(f"{k} {v}" for k, v in numbers.items() if k.endswith("_calls")))
            continue
        print(f"sagemaker {label}: deploy {numbers['deploy_calls']} AWS calls, cleanup {numbers['cleanup_calls']}")
    local = result["local"]
    print(
        f"local: first deploy {local['first_deploy_s']} s; warm deploy median {local['warm_deploy_median_s']} s "  # type: ignore[index]
        f"({local['warm_deploy_s']})"
    )  # type: ignore[index]
    out = ROOT / "bench" / "results" / "deploy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
