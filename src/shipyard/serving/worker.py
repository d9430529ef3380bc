"""One worker process: drop privileges, load the bundle, serve HTTP on the shared socket."""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from shipyard.config import ServerConfig
from shipyard.handler.base import Handler

if TYPE_CHECKING:
    from shipyard.serving.capture import ObjectStore

__all__ = ["EXIT_LOAD_FAILED", "drop_privileges", "preimport", "run_worker"]

EXIT_LOAD_FAILED = 3


def drop_privileges(user: str | None) -> None:
    """Run the rest of this process as ``user`` when started as root (like nginx or gunicorn --user)."""
    if not user or os.geteuid() != 0:
        return
    import pwd

    try:
        entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        raise SystemExit(f"SHIPYARD_RUN_AS={user!r}: no such user") from None
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir
    os.environ["USER"] = entry.pw_name


def _become_worker(config: ServerConfig, parent: int | None, log_fd: int | None) -> None:
    """The process steps before serving: signals, stdout/stderr to the supervisor's pipe, logging, the
    privilege drop, dying with the parent and the OOM score."""
    from shipyard.serving.logs import setup_logging
    from shipyard.serving.process import OOM_SCORE_WORKER, die_with_parent, set_oom_score_adj

    # fork() copied the supervisor's SIGTERM/SIGINT handler, which would run here too (and log a second,
    # misleading "draining" line). uvicorn installs its own while it serves and re-raises the signal when
    # done; ignoring it outside that window lets the worker finish its exit normally.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log_fd is not None:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    setup_logging(config.log_level)
    drop_privileges(config.run_as)
    # After the privilege drop, which clears it: a supervisor killed with SIGKILL takes its workers along, so
    # no orphan keeps serving (and holding the port) behind a restarted server.
    if not die_with_parent(signal.SIGKILL, parent):
        sys.exit(0)
    set_oom_score_adj(OOM_SCORE_WORKER)  # out of memory, the kernel picks a worker (or its model) first


def run_worker(
    config: ServerConfig,
    sock: socket.socket,
    handler: Handler | None,
    loaded: bool,
    warmed: Any = None,
    slot: int = 0,
    available: Any = None,
    parent: int | None = None,
    log_fd: int | None = None,
    store: ObjectStore | None = None,
) -> None:
    """The body of a worker process; never returns. ``handler``: the supervisor's, ``loaded`` if it preloaded it;
    ``slot``: this worker's index in ``available`` (see :class:`~shipyard.serving.app.ServerApp`); ``log_fd``: the
    supervisor's pipe, which becomes this process's stdout and stderr; ``store``: where an s3:// capture goes."""
    from shipyard.serving.logs import flush_logs

    _become_worker(config, parent, log_fd)
    import uvicorn

    from shipyard.serving.app import ServerApp
    from shipyard.serving.protocol import protocol_for, raise_open_files_limit

    exit_code = 0
    server: uvicorn.Server | None = None

    def load_failed(error: BaseException) -> None:
        nonlocal exit_code
        exit_code = EXIT_LOAD_FAILED
        if server is not None:
            server.should_exit = True

    app: Any
    if handler is None:  # a multi-model server: models come with POST /models and the target-model header
        from shipyard.serving.multimodel import MultiModelApp

        app = MultiModelApp(config, slot=slot)
    else:
        app = ServerApp(
            config,
            handler,
            on_load_failed=load_failed,
            warmed=warmed,
            loaded=loaded,
            slot=slot,
            available=available,
            store=store,
        )
    raise_open_files_limit()  # a no-op once the supervisor has; before protocol_for reads the limit
    uv_config = uvicorn.Config(
        app,
        loop=_loop(),
        http=protocol_for(config),  # uvicorn's httptools protocol with Shipyard's limits and JSON errors
        ws="none",  # no WebSockets: an Upgrade header is ignored and the request served as plain HTTP
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,  # nothing here reads the client address; the middleware costs a few µs a request
        timeout_graceful_shutdown=max(1, round(config.graceful_timeout_s)),
        timeout_keep_alive=75,  # longer than the load balancers' idle timeout in front of SageMaker
        backlog=2048,
    )
    server = uvicorn.Server(uv_config)
    server.run(sockets=[sock])
    flush_logs()
    sys.exit(exit_code)


def preimport() -> None:
    """Import what every worker needs, once, before the workers fork (they start serving sooner)."""
    import importlib

    for name in ("uvicorn", "uvicorn.protocols.http.httptools_impl", "uvicorn.lifespan.on", "shipyard.serving.app"):
        importlib.import_module(name)
    if _loop() == "uvloop":
        importlib.import_module("uvicorn.loops.uvloop")


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux
        return "asyncio"
    return "uvloop"
