"""Container engines: Podman and Docker (BuildKit through ``buildx``, or the legacy builder), one interface.

Both are driven through their command-line clients, which every user already has configured (contexts,
credential helpers, ``DOCKER_HOST``, registries.conf). :func:`detect` picks one: ``--engine`` or
``SHIPYARD_ENGINE`` (:attr:`Settings.engine <shipyard.settings.Settings.engine>`) when given, else Docker when
its daemon answers, else Podman; neither is an :class:`~shipyard.errors.EngineNotFound` that says what to
install. The engine's processes get :meth:`Settings.child_env <shipyard.settings.Settings.child_env>`.

Engine failures are turned into :class:`~shipyard.errors.ImageError` here, with the engine's own message.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from shipyard.errors import EngineNotFound, ImageError
from shipyard.image.wheelhouse import Platform
from shipyard.settings import Settings

__all__ = ["Engine", "ImageInfo", "Layer", "Process", "cgroup_memory_peak", "detect", "is_local_registry"]

Line = Callable[[str], None]

_PROBE = (
    "import platform, sys; "
    "print(f'{sys.version_info[0]}.{sys.version_info[1]}', platform.libc_ver()[1] or '0.0', platform.machine())"
)


@dataclass(frozen=True)
class Layer:
    size: int
    created_by: str


@dataclass(frozen=True)
class ImageInfo:
    id: str
    size: int
    os: str
    architecture: str
    env: dict[str, str]
    labels: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    user: str
    layers: int
    manifest_type: str | None = None  # podman knows it for local images

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> ImageInfo:
        config = data.get("Config") or {}
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in config.get("Env") or [])
        return cls(
            id=str(data.get("Id", "")).removeprefix("sha256:"),
            size=int(data.get("Size") or 0),
            os=str(data.get("Os", "")),
            architecture=str(data.get("Architecture", "")),
            env=env,
            labels=dict(config.get("Labels") or data.get("Labels") or {}),
            entrypoint=list(config.get("Entrypoint") or []),
            cmd=list(config.get("Cmd") or []),
            user=str(config.get("User") or ""),
            layers=len((data.get("RootFS") or {}).get("Layers") or []),
            manifest_type=data.get("ManifestType"),
        )


@dataclass(frozen=True)
class Process:
    pid: str
    ppid: str
    user: str
    command: str


@dataclass
class Engine:
    """One engine's client. ``builder`` is ``podman``, ``buildx`` or ``legacy`` (Docker without BuildKit)."""

    name: str  # podman | docker
    binary: str
    builder: str
    env: dict[str, str] = field(default_factory=dict)
    # The environment of the engine's processes (settings.child_env), DOCKER_HOST and the cache directory.
    settings: Settings = field(default_factory=Settings.from_env, repr=False, compare=False)

    # -- building ---------------------------------------------------------------------------------
    @property
    def mounts_build_context(self) -> bool:
        """Whether ``RUN --mount=type=bind,from=NAME`` with ``--build-context NAME=DIR`` works."""
        return self.builder in ("podman", "buildx")

    def build_command(
        self,
        context: Path,
        tag: str,
        *,
        platform: str,
        labels: Mapping[str, str],
        build_contexts: Mapping[str, Path],
        no_cache: bool = False,
    ) -> list[str]:
        args = [self.binary]
        if self.builder == "buildx":
            # One platform, no provenance or SBOM attestation: a plain image manifest, what SageMaker accepts.
            args += ["buildx", "build", "--load", "--provenance=false", "--sbom=false", "--progress=plain"]
        else:
            args += ["build"]
        if self.builder == "podman":
            args += ["--format", "docker", "--layers"]
        args += ["--platform", platform, "--tag", tag, "--file", str(context / "Containerfile")]
        if no_cache:
            args += ["--no-cache"]
        for key, value in sorted(labels.items()):
            args += ["--label", f"{key}={value}"]
        for name, path in sorted(build_contexts.items()):
            args += ["--build-context", f"{name}={path}"]
        return [*args, str(context)]

    def build(
        self,
        context: Path,
        tag: str,
        *,
        platform: str,
        labels: Mapping[str, str],
        build_contexts: Mapping[str, Path],
        no_cache: bool = False,
        on_line: Line | None = None,
    ) -> list[str]:
        """Build and tag; streams every output line to ``on_line``; returns the output."""
        command = self.build_command(
            context, tag, platform=platform, labels=labels, build_contexts=build_contexts, no_cache=no_cache
        )
        env = {**self.env, "DOCKER_BUILDKIT": "0"} if self.builder == "legacy" else self.env
        output: list[str] = []
        with self._stream(command, env) as lines:
            for line in lines:
                output.append(line)
                if on_line:
                    on_line(line)
        return output

    def probe_python(self, image: str, platform: str) -> Platform:
        """The CPython version, glibc and machine of ``image`` (runs it once, offline)."""
        out = self._run_text(
            [
                "run",
                "--rm",
                "--network",
                "none",
                "--platform",
                platform,
                "--entrypoint",
                "python3",
                image,
                "-c",
                _PROBE,
            ],
            what=f"probe Python in base image {image}",
        )
        try:
            python, libc, machine = out.split()[-3:]
            major, minor = (int(x) for x in libc.split(".")[:2])
        except ValueError:
            raise ImageError(f"the base image {image} did not report its Python and glibc: {out!r}") from None
        if (major, minor) < (2, 17):
            raise ImageError(f"the base image {image} has no glibc (musl?); manylinux wheels need a glibc base")
        return Platform(python=python, glibc=(major, minor), machine=machine)

    # -- images -----------------------------------------------------------------------------------
    def inspect_image(self, ref: str) -> ImageInfo:
        data = json.loads(self._run_text(["image", "inspect", ref], what=f"inspect image {ref}"))
        if not data:
            raise ImageError(f"no image {ref}")
        return ImageInfo.from_inspect(data[0])

    def image_exists(self, ref: str) -> bool:
        return self._run(["image", "inspect", ref]).returncode == 0

    def find_image(self, ref: str) -> ImageInfo | None:
        """``inspect_image``, or None when there is no such image (one engine call instead of two)."""
        done = self._run(["image", "inspect", ref])
        data = json.loads(done.stdout or "[]") if done.returncode == 0 else []
        return ImageInfo.from_inspect(data[0]) if data else None

    def is_manifest_list(self, ref: str) -> bool:
        """Whether the local ``ref`` names an image index (multi-platform list) rather than one image."""
        if self.name != "podman":
            return False  # Docker's classic store keeps single-platform images only
        return self._run(["manifest", "inspect", ref]).returncode == 0

    def history(self, ref: str) -> list[Layer]:
        out = self._run_text(
            ["history", "--no-trunc", "--format", "{{json .}}", ref], what=f"read the history of {ref}"
        )
        entries: list[dict[str, Any]] = []
        for line in out.splitlines():  # podman prints one JSON list, docker one object per line
            if line.strip():
                value = json.loads(line)
                entries += value if isinstance(value, list) else [value]
        return [
            Layer(size=_parse_size(e.get("size", e.get("Size", 0))), created_by=str(e.get("CreatedBy", "")))
            for e in entries
        ]

    def tag(self, source: str, target: str) -> None:
        self._run_text(["tag", source, target], what=f"tag {source} as {target}")

    def push(self, ref: str, *, on_line: Line | None = None) -> None:
        args = ["push"]
        if self.name == "podman":
            # Docker's v2 schema 2 manifest: accepted everywhere (ECR, SageMaker, every registry).
            args += ["--format", "v2s2"]
            if is_local_registry(ref):
                args += ["--tls-verify=false"]
        with self._stream([self.binary, *args, ref], self.env) as lines:
            for line in lines:
                if on_line:
                    on_line(line)

    def login(self, host: str, username: str, password: str) -> None:
        """Log in to the registry ``host``; the password goes on standard input, never on a command line."""
        done = self._run(["login", "--username", username, "--password-stdin", host], timeout=60, input=password)
        if done.returncode != 0:
            raise ImageError(f"{self.name} could not log in to {host}: {done.stderr.strip()[-300:]}")

    def pull(self, ref: str, *, platform: str = "linux/amd64") -> None:
        args = ["pull", "--platform", platform]
        if self.name == "podman" and is_local_registry(ref):
            args += ["--tls-verify=false"]
        self._run_text([*args, ref], what=f"pull {ref}")

    def remove_image(self, ref: str) -> None:
        self._run(["image", "rm", "--force", ref])

    @contextmanager
    def save(self, ref: str) -> Iterator[IO[bytes]]:
        """The image as a ``docker save`` tar stream (every layer, as pushed)."""
        process = subprocess.Popen(
            [self.binary, "save", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env(self.env)
        )
        assert process.stdout is not None
        try:
            yield process.stdout
        finally:
            process.stdout.close()
            process.kill()
            process.wait()

    # -- containers -------------------------------------------------------------------------------
    def run_detached(
        self, image: str, args: Sequence[str], options: Sequence[str], env: Mapping[str, str] | None = None
    ) -> str:
        """Start a container; its id. ``env``: variables of the engine's own process (what ``-e VAR`` passes on)."""
        done = self._run_text(["run", "--detach", *options, image, *args], what=f"run {image}", env=env)
        return done.strip().splitlines()[-1]

    def start_container(self, container: str) -> bool:
        """Start a stopped container again; whether the engine did."""
        return self._run(["start", container], timeout=60).returncode == 0

    def container_state(self, container: str) -> dict[str, Any]:
        out = self._run(["container", "inspect", "--format", "{{json .State}}", container])
        if out.returncode != 0:
            return {}
        state: dict[str, Any] = json.loads(out.stdout or "{}")
        return state

    def top(self, container: str) -> list[Process]:
        """The container's processes with their effective user (names resolved inside the container)."""
        if self.name == "podman":
            out = self._run_text(["top", container, "pid", "ppid", "user", "args"], what="list processes")
        else:
            # Docker runs the host's ps with these options; Podman's Docker API takes its own descriptors.
            done = self._run(["top", container, "-eo", "pid,ppid,user,args"])
            if done.returncode != 0 or not done.stdout.strip():
                done = self._run(["top", container, "pid,ppid,user,args"])
            if done.returncode != 0:
                raise ImageError(f"docker could not list the processes of {container}: {done.stderr.strip()}")
            out = done.stdout
        processes = []
        for line in out.splitlines()[1:]:
            parts = line.split(None, 3)
            if len(parts) >= 3:
                processes.append(Process(parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
        return processes

    def stop(self, container: str, grace: float) -> None:
        self._run(["stop", "--time", str(max(1, round(grace))), container], timeout=grace + 30)

    def logs(self, container: str, tail: int = 40) -> str:
        out = self._run(["logs", "--tail", str(tail), container])
        return (out.stdout or "") + (out.stderr or "")

    def follow_logs(self, container: str, tail: int | None = 40) -> Iterator[str]:
        """The last ``tail`` lines of the container's log (None: all of it), then each new one as it comes, until
        the container stops or the iterator is closed."""
        process = subprocess.Popen(
            [self.binary, "logs", "--follow", *(["--tail", str(tail)] if tail is not None else []), container],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._env(self.env),
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                yield line.rstrip("\n")
        finally:
            process.terminate()
            process.wait(timeout=10)

    def wait(self, container: str, timeout: float = 600) -> int | None:
        """Wait for the container to stop; its exit status (None when the engine cannot say)."""
        done = self._run(["wait", container], timeout=timeout)
        lines = (done.stdout or "").strip().splitlines()
        try:
            return int(lines[-1]) if done.returncode == 0 and lines else None
        except ValueError:
            return None

    def remove_container(self, container: str) -> None:
        self._run(["rm", "--force", container])

    def memory_peak(self, container: str) -> int | None:
        """The most memory the running container's cgroup has used, in bytes (cgroup v1 ``memory.max_usage_in_bytes``,
        v2 ``memory.peak``; page cache included): read on the host through ``/proc/PID/cgroup`` when the
        container is a local process, else inside it with ``cat``; None when neither can be read."""
        pid = self.container_state(container).get("Pid")
        if pid and (self.name == "podman" or not self.settings.remote_docker):
            peak = cgroup_memory_peak(int(pid))
            if peak is not None:
                return peak
        for path in (_V2_PEAK, _V1_PEAK):  # the container's own cgroup namespace shows its cgroup at the root
            done = self._run(["exec", container, "cat", f"/sys/fs/cgroup/{path}"], timeout=30)
            if done.returncode == 0 and done.stdout.strip().isdigit():
                return int(done.stdout.strip())
        return None

    def copy_from_image(self, image: str, paths: Sequence[str], destination: Path) -> list[str]:
        """Copy ``paths`` out of ``image`` (without running it) into ``destination``; the ones that existed."""
        container = (
            self._run_text(["create", image, "true"], what=f"create a container of {image}").strip().splitlines()[-1]
        )
        found = []
        try:
            for path in paths:
                target = destination / path.lstrip("/").split("/")[-1]
                if self._run(["cp", f"{container}:{path}", str(target)]).returncode == 0:
                    found.append(path)
        finally:
            self.remove_container(container)
        return found

    # -- plumbing ---------------------------------------------------------------------------------
    def _env(self, extra: Mapping[str, str]) -> dict[str, str]:
        return self.settings.child_env(extra)

    def _run(
        self,
        args: Sequence[str],
        timeout: float = 600,
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.binary, *args], capture_output=True, text=True, env=self._env({**self.env, **(env or {})}),
                timeout=timeout, input=input, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess([self.binary, *args], 124, "", f"timed out after {timeout:g} s")

    def _run_text(self, args: Sequence[str], *, what: str, env: Mapping[str, str] | None = None) -> str:
        done = self._run(args, env=env)
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise ImageError(
                f"{self.name} could not {what}: {' '.join(message[-3:]) or 'exit ' + str(done.returncode)}"
            )
        return done.stdout

    @contextmanager
    def _stream(self, command: Sequence[str], env: Mapping[str, str]) -> Iterator[Iterator[str]]:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=self._env(env)
        )
        assert process.stdout is not None
        tail: list[str] = []

        def lines() -> Iterator[str]:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                del tail[:-30]
                yield line

        try:
            yield lines()
        finally:
            process.stdout.close()
            code = process.wait()
        if code != 0:
            shown = "\n".join(tail[-15:])
            raise ImageError(f"`{' '.join(command[:3])} …` failed (exit {code}):\n{shown}")


def detect(preferred: str | None = None, settings: Settings | None = None) -> Engine:
    """``preferred`` (docker|podman) or ``settings.engine`` (``SHIPYARD_ENGINE``); else Docker if its daemon
    answers, else Podman. The engine runs with ``settings`` (default: :meth:`Settings.from_env`)."""
    settings = settings or Settings.from_env()
    wanted = (preferred or settings.engine or "").strip().lower() or None
    if wanted not in (None, "docker", "podman"):
        raise EngineNotFound(f"unknown engine {wanted!r}: use docker or podman")
    problems: list[str] = []
    for name in [wanted] if wanted else ["docker", "podman"]:
        assert name is not None
        engine = _docker(problems, settings) if name == "docker" else _podman(problems, settings)
        if engine is not None:
            return engine
    raise EngineNotFound(
        "no container engine is usable ("
        + "; ".join(problems)
        + "). Install Docker (with the buildx plugin) or Podman, e.g. `apt-get install podman`, "
        "or pass --engine."
    )


def _docker(problems: list[str], settings: Settings) -> Engine | None:
    binary = shutil.which("docker", path=settings.environ.get("PATH"))
    if binary is None:
        problems.append("docker: not installed")
        return None
    env = settings.child_env()
    version = subprocess.run(
        [binary, "version", "--format", "{{.Server.Version}}"],
        capture_output=True, text=True, timeout=20, check=False, env=env,
    )  # fmt: skip
    if version.returncode != 0 or not version.stdout.strip():
        problems.append("docker: the client is installed but no daemon answers")
        return None
    buildx = subprocess.run(
        [binary, "buildx", "version"], capture_output=True, text=True, timeout=20, check=False, env=env
    )
    return Engine("docker", binary, "buildx" if buildx.returncode == 0 else "legacy", settings=settings)


def _podman(problems: list[str], settings: Settings) -> Engine | None:
    binary = shutil.which("podman", path=settings.environ.get("PATH"))
    if binary is None:
        problems.append("podman: not installed")
        return None
    return Engine("podman", binary, "podman", settings=settings)


def is_local_registry(ref: str) -> bool:
    """Whether ``ref`` points at a registry on this machine (plain HTTP is allowed there)."""
    host = ref.split("/", 1)[0]
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return "/" in ref and (hostname in ("localhost", "[::1]") or hostname.startswith("127."))


_V1_PEAK = "memory/memory.max_usage_in_bytes"
_V2_PEAK = "memory.peak"  # kernel 5.19 or later


def cgroup_memory_peak(pid: int, *, proc: Path = Path("/proc"), cgroups: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The peak memory (bytes) of the cgroup process ``pid`` is in, read from the host's ``proc`` and ``cgroups``
    roots: the v1 memory controller's line of ``/proc/PID/cgroup`` (``4:memory:/libpod_parent/libpod-ID``) when
    there is one (a hybrid host keeps memory on v1), else the v2 line (``0::/machine.slice/...``); None when the
    file is missing or unreadable."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    entries = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    v1 = [path for _, controllers, path in entries if "memory" in controllers.split(",")]
    v2 = [path for hierarchy, controllers, path in entries if hierarchy == "0" and not controllers]
    if v1:
        where = cgroups / "memory" / v1[0].lstrip("/") / "memory.max_usage_in_bytes"
    elif v2:
        where = cgroups / v2[0].lstrip("/") / _V2_PEAK
    else:
        return None
    try:
        return int(where.read_text().strip())
    except (OSError, ValueError):
        return None


_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _parse_size(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    match = re.match(r"^\s*([\d.]+)\s*([a-zA-Z]*)", str(value))
    if not match:
        return 0
    return int(float(match.group(1)) * _UNITS.get(match.group(2).lower() or "b", 1))
