"""Multi-model endpoints on the sagemaker target against moto (images pushed to a real registry on 127.0.0.1), the
options' checks, and the local target with the real image (one integration test)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import jsonschema
import orjson
import pytest

from infra.aws_shapes import check_params
from infra.cli import shipyard
from infra.moto import ACCOUNT, REGION
from infra.oci_registry import OciRegistry
from shipyard.bundle.archive import pack
from shipyard.client.sagemaker import SageMakerTransport
from shipyard.cloud import Aws
from shipyard.deploy import Deployer, DeployOptions
from shipyard.deploy.base import DeployRun
from shipyard.deploy.engine_images import EngineImages
from shipyard.deploy.images import ResolvedImage
from shipyard.deploy.local import LocalTarget
from shipyard.deploy.multimodel import add_model, add_to_directory, archive_name, image_source, models_in
from shipyard.deploy.options import AsyncInference, Serverless
from shipyard.deploy.sagemaker import SageMakerTarget
from shipyard.deploy.state import Deployment, StateStore
from shipyard.errors import SpecError

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


class Steps:
    def step(self, message: str) -> None:
        pass

    def status(self, state: str, elapsed_s: float, detail: str = "") -> None:
        pass


def make(state_path: Path) -> tuple[Deployer, SageMakerTarget, Steps]:
    target = SageMakerTarget(EngineImages("podman"), aws=Aws(REGION), poll_s=0.01)
    steps = Steps()
    return Deployer(StateStore(state_path), targets={"sagemaker": target}, reporter=steps), target, steps


def spec(source: Path | str, image: str, registry: OciRegistry, **changes: Any) -> DeployOptions:
    values: dict[str, Any] = {
        "source": str(source),
        "name": "fleet",
        "target": "sagemaker",
        "image": image,
        "registry_override": registry.host,
        "region": REGION,
        "multi_model": True,
        **changes,
    }
    return DeployOptions(**values)


def models_dir(tmp_path: Path, digits_bundle: Path) -> Path:
    """A directory of two models: a bundle directory and a model.tar.gz."""
    directory = tmp_path / "models"
    directory.mkdir()
    shutil.copytree(digits_bundle, directory / "digits")
    pack(digits_bundle, directory / "archived.tar.gz")
    (directory / "notes.txt").write_text("not a model")
    return directory


def test_options_refuse_serverless_and_an_s3_source_on_local(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="Serverless Inference does not host them") as refused:
        DeployOptions(
            source="s3://b/p/", name="fleet", target="sagemaker", multi_model=True, serverless=Serverless(2048, 5)
        )
    assert refused.value.option == "serverless"
    with pytest.raises(SpecError, match="asynchronous inference hosts one model") as refused:
        DeployOptions(
            source="s3://b/p/", name="fleet", target="sagemaker", multi_model=True, asynchronous=AsyncInference()
        )
    assert refused.value.option == "async_inference"
    with pytest.raises(SpecError, match="from a directory"):
        DeployOptions(source="s3://b/p/", name="fleet", target="local", multi_model=True)
    with pytest.raises(SpecError, match="ends with /"):
        DeployOptions(source="s3://b/p", name="fleet", target="sagemaker", multi_model=True)
    with pytest.raises(SpecError, match="give --image"):
        image_source("s3://b/p/", None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpecError, match="no model in it"):
        image_source(str(empty), None)
    assert archive_name(tmp_path / "digits") == "digits.tar.gz"
    assert archive_name(tmp_path / "x.tar.gz", "b") == "b.tar.gz"
    with pytest.raises(SpecError):
        archive_name(tmp_path / "digits", "../escape")


@pytest.mark.parametrize("instance_type", ["ml.g5.xlarge", "ml.p3.2xlarge", "ml.inf2.xlarge", "ml.trn1.2xlarge"])
def test_multi_model_refuses_gpu_and_accelerator_instance_types(instance_type: str) -> None:
    """SageMaker hosts GPU multi-model endpoints only with its NVIDIA Triton container, not this CPU image."""
    with pytest.raises(SpecError, match="only with its NVIDIA Triton Inference Server container") as refused:
        DeployOptions(
            source="s3://b/p/", name="fleet", target="sagemaker", multi_model=True, instance_type=instance_type
        )
    assert refused.value.option == "instance_type"
    DeployOptions(source="s3://b/p/", name="one", target="sagemaker", instance_type=instance_type)  # one model: fine
    DeployOptions(source="s3://b/p/", name="fleet", target="sagemaker", multi_model=True, instance_type="ml.c5.xlarge")


def _archived_members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def test_local_models_dir_holds_each_model_as_its_sagemaker_target_model(tmp_path: Path, digits_bundle: Path) -> None:
    """A bundle directory is packed as NAME.tar.gz (what create.py uploads it as), an archive is copied as it is,
    anything else is left out: the same TargetModel names on both targets."""
    directory = models_dir(tmp_path, digits_bundle)
    target = LocalTarget(state_path=tmp_path / "state.json")
    options = DeployOptions(source=str(directory), name="fleet", target="local", multi_model=True)
    served = target._models_dir(options, 1)
    names = sorted(p.name for p in served.iterdir())
    assert names == sorted(archive_name(m) for m in models_in(directory)) == ["archived.tar.gz", "digits.tar.gz"]
    assert _archived_members(served / "digits.tar.gz") == _archived_members(directory / "archived.tar.gz")
    assert all(p.stat().st_mode & 0o004 for p in served.iterdir())  # the unprivileged workers read them
    assert (directory / "digits").is_dir() and not (directory / "digits.tar.gz").exists()  # the user's is untouched


def test_local_update_of_a_multi_model_endpoint_builds_from_a_model_and_keeps_the_added_ones(
    tmp_path: Path, digits_bundle: Path
) -> None:
    """deploy --update resolves the image from the directory's first model (as deploy does, not the directory),
    and the new version's models directory keeps what `models add` put into the one served so far."""
    directory = models_dir(tmp_path, digits_bundle)
    asked: list[str] = []

    class Images:
        def resolve(self, source: str, **_: object) -> ResolvedImage:
            asked.append(source)
            raise RuntimeError("resolved")  # stop here: the rest needs a container engine

    target = LocalTarget(Images(), state_path=tmp_path / "state.json")  # type: ignore[arg-type]
    options = DeployOptions(source=str(directory), name="fleet", target="local", multi_model=True)
    served = target._models_dir(options, 1)
    add_to_directory(digits_bundle, served, "added")  # what `shipyard models add fleet BUNDLE --as added` does
    record = Deployment("fleet", "local", "InService", str(directory), "t", "t", options=options)
    record.details.version, record.details.model_dir = "1", str(served)
    with pytest.raises(RuntimeError, match="resolved"):
        target.update(DeployRun(options, record, lambda _: None, Steps()))
    assert asked == [str(directory / "archived.tar.gz")]  # image_source: the first model by name
    (directory / "later.tar.gz").write_bytes((directory / "archived.tar.gz").read_bytes())
    (served / "digits.tar.gz").write_bytes(b"the old copy")  # a model of the directory wins over the old copy
    updated = target._models_dir(options, 2, previous=str(served))
    assert sorted(p.name for p in updated.iterdir()) == [
        "added.tar.gz", "archived.tar.gz", "digits.tar.gz", "later.tar.gz"
    ]  # fmt: skip
    assert (updated / "added.tar.gz").read_bytes() == (served / "added.tar.gz").read_bytes()
    assert _archived_members(updated / "digits.tar.gz") == _archived_members(directory / "archived.tar.gz")


def test_the_cli_refuses_multi_model_serverless(tmp_path: Path, digits_bundle: Path) -> None:
    done = shipyard(
        "deploy", "--multi-model", str(digits_bundle.parent), "--name", "fleet", "--target", "sagemaker",
        "--serverless", "2048:5", "--region", REGION, "--dry-run",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())  # rich wraps the line
    assert "Serverless Inference does not host them" in said and "(--serverless)" in said


@pytest.mark.integration
def test_sagemaker_multi_model_from_a_directory_uploads_each_model_and_creates_a_multimodel_model(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path, tmp_path: Path
) -> None:
    directory = models_dir(tmp_path, digits_bundle)
    assert [p.name for p in models_in(directory)] == ["archived.tar.gz", "digits"]
    deployer, _target, _steps = make(state_path)
    deployer.deploy(spec(directory, small_image, registry))
    record = deployer.record("fleet")
    bucket = f"sagemaker-{REGION}-{ACCOUNT}"
    prefix = "shipyard/fleet/models/"

    s3 = boto3.client("s3")
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    assert keys == [prefix + "archived.tar.gz", prefix + "digits.tar.gz"]
    for key in keys:
        assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"

    sm = boto3.client("sagemaker")
    model = sm.describe_model(ModelName=record.details.model)
    container = model["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == f"s3://{bucket}/{prefix}"
    assert container["Image"] == record.image
    assert container["Environment"] == {"SAGEMAKER_REGION": REGION, "SAGEMAKER_MULTI_MODEL": "true"}
    check_params(
        "sagemaker",
        "CreateModel",
        {"ModelName": "m", "PrimaryContainer": container, "ExecutionRoleArn": model["ExecutionRoleArn"]},
    )
    assert record.options is not None and record.options.multi_model

    # models add: packed and uploaded next to the others; refused over an existing one
    target_model, url = add_model(deployer, "fleet", digits_bundle, "third")
    assert (target_model, url) == ("third.tar.gz", f"s3://{bucket}/{prefix}third.tar.gz")
    assert s3.get_object_tagging(Bucket=bucket, Key=prefix + "third.tar.gz")["TagSet"] == [
        {"Key": "shipyard:deployment", "Value": "fleet"}
    ]
    with pytest.raises(SpecError, match="exists"):
        add_model(deployer, "fleet", digits_bundle, "third")


@pytest.mark.integration
def test_sagemaker_multi_model_from_an_s3_prefix_reads_it_with_the_role(
    aws: object, digits_bundle: Path, small_image: str, registry: OciRegistry, state_path: Path
) -> None:
    deployer, _target, _steps = make(state_path)
    deployer.deploy(spec("s3://models-b/fleet/", small_image, registry))
    record = deployer.record("fleet")
    model = boto3.client("sagemaker").describe_model(ModelName=record.details.model)
    assert model["PrimaryContainer"]["Mode"] == "MultiModel"
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://models-b/fleet/"
    policy = boto3.client("iam").get_role_policy(RoleName="shipyard-fleet", PolicyName="shipyard-endpoint")
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert by_sid["ReadMultiModels"] == {
        "Sid": "ReadMultiModels",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::models-b/fleet/*",
    }


def test_invoke_sends_target_model(aws: object) -> None:
    """InvokeEndpoint with TargetModel against moto's sagemaker-runtime (which answers canned data: the request
    is what is checked, captured by a before-call handler on the real boto3 client and checked against the
    API's shape)."""
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sagemaker-runtime.InvokeEndpoint", lambda params, **_: sent.append(dict(params))
    )
    reply = SageMakerTransport(client, "fleet", target_model="a.tar.gz").post(
        b'{"instances": [[1]]}', content_type="application/json", accept=None, timeout_s=5
    )
    assert reply.status == 200
    assert sent == [
        {
            "EndpointName": "fleet",
            "Body": b'{"instances": [[1]]}',
            "ContentType": "application/json",
            "TargetModel": "a.tar.gz",
        }
    ]
    check_params("sagemaker-runtime", "InvokeEndpoint", sent[0])


@pytest.mark.integration
def test_local_multi_model_deploy_add_invoke_and_cleanup(
    digits_bundle: Path, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    """The real image under podman with the directory at /opt/ml/models: invoke --target-model on a bundle
    directory (digits.tar.gz, as on SageMaker) and on a model.tar.gz, models add, the server's registry, cleanup."""
    from infra.base_image import ensure_base_image

    directory = models_dir(tmp_path, digits_bundle)
    state = tmp_path / "state.json"
    env = {"SHIPYARD_STATE": str(state)}
    name = f"fleet-{uuid.uuid4().hex[:6]}"  # other sessions may share this Podman
    request = tmp_path / "request.json"
    request.write_bytes(orjson.dumps({"instances": digits_rows[:3]}))
    try:
        done = shipyard(
            "deploy", "--multi-model", str(directory), "--name", name, "--base", ensure_base_image(),
            "--engine", "podman", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        record = Deployer(StateStore(state)).record(name)
        url = record.url
        assert url
        label = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{json .Labels}}", record.image or ""],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert orjson.loads(label.stdout)["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"
        answers = []
        for target_model in ("digits.tar.gz", "archived.tar.gz"):  # the names SageMaker knows them by
            invoked = shipyard("invoke", name, "--data", str(request), "--target-model", target_model, "--raw", env=env)
            assert invoked.returncode == 0, invoked.stdout + invoked.stderr
            answers.append(orjson.loads(invoked.stdout))
        assert answers[0] == answers[1]
        endpoint = Deployer(StateStore(state)).get(name)  # the Python API: predict(..., target_model=)
        assert endpoint.predict(digits_rows[:3], target_model="archived.tar.gz") == answers[0]["predictions"]
        added = shipyard("models", "add", name, str(digits_bundle), "--as", "new", "--output", "json", env=env)
        assert added.returncode == 0, added.stdout + added.stderr
        document = orjson.loads(added.stdout)  # all of stdout: one JSON document, valid against its schema
        jsonschema.validate(document, orjson.loads((SCHEMAS / "models-add.v1.json").read_bytes()))
        assert document["target_model"] == "new.tar.gz" and document["deployment"] == name
        served = Path(Deployer(StateStore(state)).record(name).details.model_dir or "")
        assert document["location"] == str(served / "new.tar.gz") and (served / "new.tar.gz").is_file()
        assert not (directory / "new.tar.gz").exists()  # the user's directory is left as it was
        third = shipyard("invoke", name, "--data", str(request), "--target-model", "new.tar.gz", "--raw", env=env)
        assert orjson.loads(third.stdout) == answers[0]
        listed = httpx.get(f"{url}/models").json()["models"]
        assert sorted(m["modelName"] for m in listed) == ["archived.tar.gz", "digits.tar.gz", "new.tar.gz"]
        assert all(m["modelUrl"].startswith("/opt/ml/models/") for m in listed)
        for absent in ("nope", "digits"):  # a bundle directory is digits.tar.gz, as on SageMaker
            missing = shipyard("invoke", name, "--data", str(request), "--target-model", absent, env=env)
            assert missing.returncode != 0 and "404" in missing.stdout + missing.stderr
        done = shipyard("cleanup", name, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert StateStore(state).get(name) is None
        assert (directory / "digits").is_dir()  # the models are the user's: cleanup leaves them
        assert not served.exists()  # the copy it served is cleanup's
    finally:
        Deployer(StateStore(state)).cleanup(name)
