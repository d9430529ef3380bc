"""The `local` target with only the base install: nothing on its path may import boto3 (the `aws` extra).

Each check runs in a fresh interpreter whose import system refuses boto3, botocore and moto (a meta-path
hook), so the main suite, where they are installed, catches what `pip install shipyard[sklearn]` would hit.
scripts/ci-local-base.sh runs this file and the local deploy tests in a venv that truly lacks them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("boto3", "botocore", "moto", "s3transfer")

# Installed first in the child: `import boto3` (or a submodule) fails as it does without the aws extra.
BLOCKER = textwrap.dedent(
    f"""
    import sys
    class _NoAws:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: the base install has no aws extra)")
            return None
    sys.meta_path.insert(0, _NoAws())
    for name in list(sys.modules):
        if name.split(".")[0] in {BLOCKED!r}:
            del sys.modules[name]
    """
)


def run_without_aws(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "child.py"
    script.write_text(BLOCKER + textwrap.dedent(code))
    env = {**os.environ, "SHIPYARD_STATE": str(tmp_path / "state.json"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )


def test_the_blocker_blocks(tmp_path: Path) -> None:
    done = run_without_aws("import boto3\n", tmp_path)
    assert done.returncode == 1 and "blocked: the base install has no aws extra" in done.stderr


def test_the_local_path_imports_no_aws_module(digits_bundle: Path, tmp_path: Path) -> None:
    done = run_without_aws(
        """
        import json, sys
        from shipyard.deploy import Deployer, DeployOptions
        from shipyard.deploy.engine_images import EngineImages
        from shipyard.deploy.local import LocalTarget
        from shipyard.deploy.state import StateStore

        spec = DeployOptions(source=sys.argv[1], name="base-only")  # the check that imported cloud.logs
        target = LocalTarget(EngineImages("podman"), engine="podman")
        deployer = Deployer(StateStore(sys.argv[2]), targets={"local": target})
        plan = deployer.plan(spec)
        report = deployer.cleanup("never-deployed")
        import shipyard.cli.deploy, shipyard.cli.status, shipyard.cli.invoke, shipyard.cli.bench  # noqa: E401
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "moto"))
        print(json.dumps({"plan": [r.kind for r in plan.resources], "recorded": report.recorded, "aws": loaded}))
        """,
        tmp_path,
        str(digits_bundle),
        str(tmp_path / "state.json"),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"plan": ["image", "container"], "recorded": False, "aws": []}


def test_the_cli_on_the_local_target_without_aws(digits_bundle: Path, tmp_path: Path) -> None:
    cli = "import sys\nfrom shipyard.cli import main\nsys.argv[0] = 'shipyard'\nmain()\n"
    plan = run_without_aws(cli, tmp_path, "deploy", str(digits_bundle), "--name", "x", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "plan: deploy x to local" in plan.stdout and "container" in plan.stdout
    status = run_without_aws(cli, tmp_path, "status", "--output", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["deployments"] == []
    cleanup = run_without_aws(cli, tmp_path, "cleanup", "x")
    assert cleanup.returncode == 0 and "nothing to clean up" in cleanup.stdout
    # The sagemaker target says what is missing, with the extra's name intact (Rich markup once ate "[aws]").
    aws = run_without_aws(cli, tmp_path, "deploy", str(digits_bundle), "--name", "x", "--target", "sagemaker")
    assert aws.returncode == 5, aws.stderr
    assert "pip install 'shipyard[aws]'" in aws.stderr and "Traceback" not in aws.stderr


@pytest.mark.integration
def test_the_ci_selection_collects_without_aws(tmp_path: Path) -> None:
    """What scripts/ci-local-base.sh runs imports neither boto3 nor moto at module level (conftests included)."""
    script = (ROOT / "scripts" / "ci-local-base.sh").read_text()
    selection = [line.strip().rstrip("\\").strip() for line in script.splitlines() if line.strip().startswith("tests/")]
    assert "tests/deploy/test_deploy_local.py" in selection and "tests/deploy/test_local_base.py" in selection
    collect = (
        "import sys, pytest\nsys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))\n"
    )
    done = run_without_aws(
        collect,
        tmp_path,
        *(str(ROOT / path) for path in selection),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # pytest's own marker of a module that failed to import (not the word "error", which test ids may hold)
    assert "ERROR collecting" not in done.stdout, done.stdout[-3000:]
