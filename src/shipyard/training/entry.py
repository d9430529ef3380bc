"""The image's ``train`` command: SageMaker runs ``IMAGE train``; this runs the user's script the toolkit's way.

1. The program: ``SAGEMAKER_PROGRAM`` (set by the training image), else the ``sagemaker_program``
   hyperparameter; it lives in ``SAGEMAKER_SUBMIT_DIRECTORY`` (a local folder), else ``/opt/ml/code``.
2. The environment: the ``SM_*`` variables of :func:`~shipyard.training.contract.training_env`.
3. ``python PROGRAM --name value ...`` as a child, its working folder the code folder; its stdout and stderr passed
   through line by line; SIGTERM and SIGINT forwarded to it (SageMaker stops a job with SIGTERM, then SIGKILL).
4. When it fails and wrote no ``/opt/ml/output/failure`` itself, the failure file gets its exit status and the
   last lines of its stderr (the exception); ``[shipyard] training seconds=S`` reports the script's own run time;
   ``train`` exits with the script's status (128 + N for a signal N).

``SHIPYARD_OPT_ML`` moves the root (``/opt/ml``) elsewhere: the tests run ``train`` on a temporary folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from shipyard.training.contract import DEFAULT_ROOT, Paths, read_config, to_cmd_args, training_env

__all__ = ["SECONDS_LINE", "main", "run_program"]

SECONDS_LINE = "[shipyard] training seconds="
_TAIL = 20  # lines of stderr kept for the failure file


class ProgramError(Exception):
    """No program to run (a failure of the contract, not of the script)."""


def find_program(paths: Paths) -> tuple[str, Path]:
    """(the program, relative to the code folder; the code folder)."""
    submit = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    code = Path(submit) if submit and "://" not in submit else paths.code_dir
    program = os.environ.get("SAGEMAKER_PROGRAM") or str(read_config(paths).framework.get("sagemaker_program") or "")
    if not program:
        raise ProgramError("no training program: set SAGEMAKER_PROGRAM or the sagemaker_program hyperparameter")
    if not (code / program).is_file():
        raise ProgramError(f"the training program {program} is not in {code}")
    return program, code


def _pump(source: IO[bytes], sink: IO[bytes], tail: deque[str] | None) -> None:
    for line in iter(source.readline, b""):
        sink.write(line)
        sink.flush()
        if tail is not None:
            tail.append(line.decode(errors="replace").rstrip("\n"))
    source.close()


def run_program(paths: Paths, program: str, code: Path, args: Sequence[str]) -> tuple[int, float, list[str]]:
    """Run the script; (its exit status, its run time in seconds, the last lines of its stderr)."""
    env = {
        **os.environ,
        **training_env(paths, program=program, code_dir=code, job_name=os.environ.get("TRAINING_JOB_NAME")),
    }
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, program, *args], cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    tail: deque[str] = deque(maxlen=_TAIL)
    assert child.stdout is not None and child.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(child.stdout, sys.stdout.buffer, None), daemon=True),
        threading.Thread(target=_pump, args=(child.stderr, sys.stderr.buffer, tail), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        code_ = child.wait()
        for pump in pumps:
            pump.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    status = code_ if code_ >= 0 else 128 - code_
    return status, time.perf_counter() - started, list(tail)


def write_failure(paths: Paths, text: str) -> None:
    """The failure reason, unless the script wrote one itself."""
    if paths.failure_file.is_file() and paths.failure_file.stat().st_size > 0:
        return
    paths.failure_file.parent.mkdir(parents=True, exist_ok=True)
    paths.failure_file.write_text(text)


def main() -> None:
    """``train``: run the training program under the contract; exit with its status."""
    paths = Paths(Path(os.environ.get("SHIPYARD_OPT_ML") or DEFAULT_ROOT))
    try:
        program, code = find_program(paths)
    except ProgramError as exc:
        print(f"[shipyard] {exc}", file=sys.stderr, flush=True)
        write_failure(paths, f"AlgorithmError: {exc}\n")
        sys.exit(2)
    args = to_cmd_args(read_config(paths).hyperparameters)
    status, seconds, tail = run_program(paths, program, code, args)
    if status != 0:
        shown = "\n".join(tail[-10:])
        write_failure(
            paths, f"AlgorithmError: ExecuteUserScriptError: {program} exited with status {status}\n{shown}\n"
        )
    print(f"{SECONDS_LINE}{seconds:.3f} status={status}", flush=True)
    sys.exit(status)
