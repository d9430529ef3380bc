"""``verify --limits serverless[:MEMORY_MB]`` without an engine: parsing, the cgroup peak on both cgroup layouts
(fake /proc and /sys/fs/cgroup roots), the serverless checks' verdicts, and the command line's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cli import shipyard
from shipyard.deploy.options import Serverless
from shipyard.errors import SpecError
from shipyard.image.engine import cgroup_memory_peak
from shipyard.image.run import ContainerRun
from shipyard.image.verify import Check, Limits, VerifyOptions, VerifyReport, _serverless_checks, parse_limits
from shipyard.units import SERVERLESS_MEMORY_MB


def test_serverless_limits_default_to_2048_mb_and_take_each_size_serverless_allows() -> None:
    assert parse_limits("serverless") == Limits("serverless", 2048)
    assert parse_limits("serverless:3072") == Limits("serverless", 3072)
    assert str(parse_limits(" Serverless:6144 ")) == "serverless:6144"
    assert [parse_limits(f"serverless:{mb}").memory_mb for mb in SERVERLESS_MEMORY_MB] == [
        1024, 2048, 3072, 4096, 5120, 6144,
    ]  # fmt: skip
    assert parse_limits("serverless:1024").memory == "1024m"
    options = VerifyOptions(limits=parse_limits("serverless:1024"))
    assert options.container_memory == "1024m" and VerifyOptions().container_memory == "2g"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("serverless:1000", "allows 1024, 2048, 3072, 4096, 5120 or 6144 MB"),
        ("serverless:7168", "allows 1024"),
        ("serverless:lots", "allows 1024"),
        ("lambda:2048", "the only limits are serverless[:MEMORY_MB]"),
        ("", "the only limits are serverless"),
    ],
)
def test_other_limits_are_a_spec_error_naming_the_option(text: str, says: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_limits(text)
    assert caught.value.option == "limits" and says in str(caught.value)
    assert str(caught.value).startswith("limits ")  # the CLI turns it into "--limits ..."


def test_deploy_serverless_takes_its_sizes_from_the_same_home() -> None:
    assert Serverless(3072, 5).memory_mb == 3072
    with pytest.raises(SpecError, match="allows 1024, 2048, 3072, 4096, 5120 or 6144"):
        Serverless(1000, 5)


def _proc(root: Path, pid: int, text: str) -> Path:
    (root / "proc" / str(pid)).mkdir(parents=True)
    (root / "proc" / str(pid) / "cgroup").write_text(text)
    return root / "proc"


def test_cgroup_v1_peak_is_the_memory_controllers_max_usage(tmp_path: Path) -> None:
    proc = _proc(
        tmp_path, 41, "12:pids:/libpod_parent/libpod-abc\n4:memory:/libpod_parent/libpod-abc\n0::/libpod_parent\n"
    )
    cgroups = tmp_path / "sys"
    (cgroups / "memory" / "libpod_parent" / "libpod-abc").mkdir(parents=True)
    (cgroups / "memory" / "libpod_parent" / "libpod-abc" / "memory.max_usage_in_bytes").write_text("77557760\n")
    (cgroups / "libpod_parent").mkdir()
    (cgroups / "libpod_parent" / "memory.peak").write_text("1\n")  # hybrid host: memory stays on v1
    assert cgroup_memory_peak(41, proc=proc, cgroups=cgroups) == 77557760


def test_cgroup_v2_peak_is_memory_peak(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 7, "0::/machine.slice/libpod-def.scope/container\n")
    where = tmp_path / "sys" / "machine.slice" / "libpod-def.scope" / "container"
    where.mkdir(parents=True)
    (where / "memory.peak").write_text("123456789\n")
    assert cgroup_memory_peak(7, proc=proc, cgroups=tmp_path / "sys") == 123456789


def test_no_cgroup_file_or_no_peak_file_is_none(tmp_path: Path) -> None:
    assert cgroup_memory_peak(99, proc=tmp_path / "proc", cgroups=tmp_path / "sys") is None
    proc = _proc(tmp_path, 8, "0::/gone\n")  # a v2 kernel before 5.19 has no memory.peak
    assert cgroup_memory_peak(8, proc=proc, cgroups=tmp_path / "sys") is None
    proc = _proc(tmp_path, 9, "garbage\n")
    assert cgroup_memory_peak(9, proc=proc, cgroups=tmp_path / "sys") is None


def test_the_container_runs_without_swap_under_the_limit() -> None:
    run = ContainerRun(engine=None, image="i", name="n", port=1, memory="1024m", memory_swap="1024m")  # type: ignore[arg-type]
    options = run._options()
    assert options[options.index("--memory") + 1] == "1024m"
    assert options[options.index("--memory-swap") + 1] == "1024m"


def _verdicts(
    peak: int | None, oom_killed: bool, request_s: float | None = 0.05, ping: float = 1.2
) -> dict[str, Check]:
    limits = Limits("serverless", 1024)
    report = VerifyReport("i", cold_start_s=ping, cold_start_prediction_s=1.3, memory_peak_bytes=peak)
    checks: list[Check] = []
    _serverless_checks(limits, report, request_s, oom_killed, lambda *args: checks.append(Check(*args)))
    return {check.name: check for check in checks}


def test_serverless_checks_pass_under_the_limit_and_say_cpu_is_not_limited() -> None:
    checks = _verdicts(300 * 1024**2, False)
    assert {name: c.status for name, c in checks.items()} == {
        "serverless-ping": "pass", "serverless-latency": "pass", "serverless-memory": "pass",
    }  # fmt: skip
    assert "peak 300 MiB of 1024 MiB (29%" in checks["serverless-memory"].detail
    assert "CPU not limited" in checks["serverless-memory"].detail
    assert checks["serverless-memory"].value == 300
    assert "little headroom" in _verdicts(1000 * 1024**2, False)["serverless-memory"].detail


def test_serverless_checks_fail_on_an_oom_kill_a_peak_at_the_limit_or_slow_answers() -> None:
    assert _verdicts(300 * 1024**2, True)["serverless-memory"].status == "fail"
    assert _verdicts(1024 * 1024**2, False)["serverless-memory"].status == "fail"
    assert _verdicts(None, False)["serverless-memory"].status == "skip"
    assert _verdicts(1, False, request_s=61.0)["serverless-latency"].status == "fail"
    assert _verdicts(1, False, request_s=None)["serverless-latency"].status == "skip"
    assert _verdicts(1, False, ping=181.0)["serverless-ping"].status == "fail"


def test_the_command_names_limits_and_refuses_it_with_memory() -> None:
    done = shipyard("verify", "nothing:1", "--limits", "serverless:1000")
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())  # the message wraps at the terminal's width
    assert "--limits 'serverless:1000': SageMaker Serverless allows 1024" in said
    done = shipyard("verify", "nothing:1", "--limits", "serverless", "--memory", "4g")
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert "--limits serverless sets the memory itself" in said and "drop --memory 4g" in said
