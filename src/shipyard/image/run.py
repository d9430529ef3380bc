"""One serving container: run an image, reach its port 8080 from 127.0.0.1, wait for ``GET /ping``, stop it.

``shipyard verify`` and the ``local`` deploy target both run an image the way SageMaker hosts it; this is the
one place that does. A :class:`ContainerRun` starts ``IMAGE serve`` with its mounts, environment and labels,
picks a free port when none is given, and either publishes it on 127.0.0.1 or, isolated (``--network none``:
SageMaker's network isolation), binds it here and forwards it into the container's namespace
(:mod:`shipyard.image.forward`). :func:`wait_for_ping` is the one ``/ping`` poller.

    >>> with ContainerRun(engine, "digits:1", name="try-digits") as run:   # doctest: +SKIP
    ...     run.start()
    ...     run.wait_ready(60).ready
    True
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from shipyard.errors import ImageError
from shipyard.image.engine import Engine

__all__ = ["ContainerRun", "Ping", "can_isolate", "free_port", "wait_for_ping"]

SERVING_PORT = 8080  # the port of the SageMaker contract, inside the container


@dataclass(frozen=True)
class Ping:
    """How waiting for ``/ping`` ended: ``seconds`` to the first 200 (None: never), the last answer otherwise."""

    seconds: float | None
    last: str = "no answer"
    exited: bool = False  # the container stopped while it was waited for

    @property
    def ready(self) -> bool:
        return self.seconds is not None


def wait_for_ping(
    url: str | httpx.URL,
    timeout: float,
    *,
    started: float | None = None,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
    alive_every: float = 0.0,
    on_wait: Callable[[float], None] | None = None,
) -> Ping:
    """Poll ``url`` (a ``/ping`` address) until it answers 200 or ``timeout`` seconds have passed since ``started``
    (:func:`time.monotonic`; default now). ``alive`` is asked at most every ``alive_every`` seconds: False ends
    the wait (a stopped container never answers). ``on_wait(elapsed)`` after each try that was not a 200."""
    started = time.monotonic() if started is None else started
    last, checked = "no answer", float("-inf")
    with httpx.Client(timeout=2.0) as client:
        while (elapsed := time.monotonic() - started) <= timeout:
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return Ping(time.monotonic() - started)
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            if alive is not None and time.monotonic() - checked >= alive_every:
                checked = time.monotonic()
                if not alive():
                    return Ping(None, last, exited=True)
            if on_wait is not None:
                on_wait(elapsed)
            time.sleep(interval)
    return Ping(None, last)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def can_isolate(engine: Engine) -> bool:
    """Whether a container of ``engine`` can run with no network and still be reached: its network namespace is
    on this machine (Podman, or Docker with a local daemon, on Linux) and this process may enter it (root)."""
    return (
        sys.platform.startswith("linux")
        and os.geteuid() == 0
        and shutil.which("nsenter") is not None
        and (engine.name == "podman" or not engine.settings.remote_docker)
    )


@dataclass
class ContainerRun:
    """``IMAGE serve`` in a container named ``name``, its port 8080 reached on ``127.0.0.1:port``.

    ``mounts``: host directory → path in the container (read-only). ``env``: variables set with their values on
    the command line; ``secret_env``: variables whose values go through the engine's own environment (``-e VAR``
    names them only, so no value appears on a command line). ``isolate``: ``--network none`` and a forwarder
    (see :func:`can_isolate`); else the port is published. As a context manager it removes the container (and
    stops the forwarder) on exit; without one, the container outlives this object (the local target's)."""

    engine: Engine
    image: str
    name: str
    port: int | None = None
    args: Sequence[str] = ("serve",)
    mounts: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    memory: str | None = None
    memory_swap: str | None = None  # memory + swap; the same as ``memory``: no swap (as SageMaker Serverless)
    isolate: bool = False
    container: str | None = None  # the engine's id once started (or the name of one started before)
    _listener: socket.socket | None = field(default=None, init=False, repr=False)
    _forwarder: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @classmethod
    def attach(cls, engine: Engine, container: str, port: int) -> ContainerRun:
        """A container started before (by name or id) that publishes ``port``: to wait for, stop, or read."""
        return cls(engine, image="", name=container, port=port, container=container)

    @property
    def url(self) -> str:
        if self.port is None:
            raise ImageError(f"the container {self.name} has no port before it is started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def network(self) -> str:
        """What the container's network is, in words (``shipyard verify`` reports it)."""
        if self.isolate:
            return "none (only the serving port, forwarded from 127.0.0.1)"
        return "bridge with 127.0.0.1 published (this engine cannot isolate: outbound not blocked)"

    # -- running --------------------------------------------------------------------------------------------
    def start(self) -> str:
        """Run the container, detached; its id. An ImageError when the engine cannot (nothing is left behind) or
        when a container of that name exists already (it is someone else's: it is left alone)."""
        if self.engine.container_state(self.name):
            raise ImageError(f"a container named {self.name} already exists")
        options = self._options()
        try:
            self.container = self.engine.run_detached(self.image, self.args, options, env=self.secret_env)
        except ImageError:
            self.engine.remove_container(self.name)  # created, never started
            self.close()
            raise
        if self._listener is not None:
            self._forwarder = self._forward(self.container, self._listener)
        return self.container

    def restart(self) -> bool:
        """Start the (stopped) container again; whether the engine did."""
        return self.engine.start_container(self.container or self.name)

    def wait_ready(
        self,
        timeout: float,
        *,
        started: float | None = None,
        interval: float = 0.05,
        alive_every: float = 0.0,
        on_wait: Callable[[float], None] | None = None,
    ) -> Ping:
        """Wait for ``/ping`` to answer 200 (see :func:`wait_for_ping`); ends early when the container stops."""

        def alive() -> bool:
            state = self.state()
            return not state or bool(state.get("Running", False))

        return wait_for_ping(
            f"{self.url}/ping",
            timeout,
            started=started,
            interval=interval,
            alive=alive,
            alive_every=alive_every,
            on_wait=on_wait,
        )

    def state(self) -> dict[str, Any]:
        """The engine's ``State`` of the container (``Running``, ``ExitCode``, ``Pid``...); {} when it is gone."""
        return self.engine.container_state(self.container or self.name)

    def logs(self, tail: int = 40) -> str:
        """The last ``tail`` lines of the container's output."""
        return self.engine.logs(self.container or self.name, tail=tail)

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        self.engine.stop(self.container or self.name, grace)

    def remove(self) -> None:
        """Remove the container (stopping it first), and the forwarder."""
        self.close()
        if self.container is not None:
            self.engine.remove_container(self.container)

    def close(self) -> None:
        """Stop the forwarder and close the listening socket (the container is left as it is)."""
        if self._forwarder is not None:
            self._forwarder.kill()
            self._forwarder.wait()
            self._forwarder = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> ContainerRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.remove()

    # -- plumbing -------------------------------------------------------------------------------------------
    def _options(self) -> list[str]:
        options = ["--name", self.name]
        if self.memory:
            options += ["--memory", self.memory]
        if self.memory_swap:
            options += ["--memory-swap", self.memory_swap]
        for key, value in self.labels.items():
            options += ["--label", f"{key}={value}"]
        for source, target in self.mounts.items():
            options += ["--volume", f"{source}:{target}:ro"]
        for key, value in self.env.items():
            options += ["--env", f"{key}={value}"]
        options += [arg for key in self.secret_env for arg in ("--env", key)]
        if self.isolate:
            self._listener = socket.socket()
            self._listener.bind(("127.0.0.1", self.port or 0))
            self._listener.listen(64)
            self.port = int(self._listener.getsockname()[1])
            return [*options, "--network", "none"]
        self.port = self.port or free_port()
        return [*options, "--publish", f"127.0.0.1:{self.port}:{SERVING_PORT}"]

    def _forward(self, container: str, listener: socket.socket) -> subprocess.Popen[bytes] | None:
        pid = self.engine.container_state(container).get("Pid")
        if not pid:
            return None  # it exited at once; waiting for /ping reports it
        return subprocess.Popen(
            [
                "nsenter",
                f"--net=/proc/{pid}/ns/net",
                sys.executable,
                "-m",
                "shipyard.image.forward",
                str(listener.fileno()),
                str(SERVING_PORT),
            ],
            pass_fds=(listener.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
