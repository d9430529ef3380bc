"""The server's main process: owns the socket, forks the workers, replaces the ones that die, drains.

* The listening socket is bound once here and shared by every worker (the kernel spreads connections).
* A worker that dies (a segfault in native code, an OOM kill, ``kill -9``) is replaced, at once the first
  few times and then after a short delay (:class:`~shipyard.serving.process.Backoff`: capped at 1 s and
  forgotten after 10 s of health); one that cannot load the model stops the whole server with exit code 3
  instead of looping. The model itself runs in a child of each worker (:mod:`shipyard.serving.compute`),
  so a crash in the model replaces only that child and the worker keeps its connections.
* The supervisor keeps the kernel's default ``oom_score_adj``; workers and model processes raise theirs,
  so under a memory limit the OOM killer takes one of them, never the process that replaces them.
* SIGTERM (what ``docker stop`` and SageMaker send) closes the socket, asks each worker to finish its
  in-flight requests, and exits within ``SHIPYARD_GRACEFUL_TIMEOUT`` seconds.
* Started as root with ``SHIPYARD_RUN_AS``, it drops to that user right after binding the port, before any
  model code runs; the workers it forks inherit the user.
* Preloading (``SHIPYARD_PRELOAD``, like gunicorn's ``--preload``): the model is loaded here, once, and the
  workers are forked with it in memory, ready at once. The imports and the load are paid once instead of
  once per worker, a replaced worker is ready instantly, and the workers share the model's pages. ``auto``
  preloads the flavors whose loading starts no threads (scikit-learn, Python callables); thread pools
  (onnxruntime, torch's OpenMP) do not survive ``fork``, so those flavors load in each worker.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from shipyard.bundle import Bundle
from shipyard.config import ServerConfig
from shipyard.handler import Handler, handler_for
from shipyard.serving.capture import ObjectStore
from shipyard.serving.logs import Relay, flush_logs, output
from shipyard.serving.process import Backoff, exit_reason, oom_kills
from shipyard.serving.protocol import raise_open_files_limit
from shipyard.serving.worker import EXIT_LOAD_FAILED, drop_privileges, preimport, run_worker

__all__ = ["Supervisor", "bind"]

log = logging.getLogger("shipyard.supervisor")

_POLL_S = 0.1


def bind(host: str, port: int) -> socket.socket:
    """A bound, not yet listening, socket: ``listen()`` comes when a worker is about to answer."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, config: ServerConfig, bundle: Bundle | None, *, store: ObjectStore | None = None) -> None:
        self.config = config
        self._store = store  # where an s3:// capture goes: handed to every worker
        self._bundle = bundle
        self.workers: dict[int, BaseProcess] = {}
        self._relay: Relay | None = None  # the workers' stdout and stderr, passed on whole lines at a time
        self._stopping = False
        self._backoff = Backoff()
        self._oom_at_spawn: dict[int, int | None] = {}
        self._handler: Handler | None = None  # made here once, inherited by every worker (loaded if preloaded)
        self._preloaded = False
        self._preloading = False

    def run(self) -> int:
        multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        owned_dir = None
        owned_registry = None
        if self.config.multi_model and self.config.model_registry is None:  # the workers' shared list of models
            owned_registry = tempfile.TemporaryDirectory(prefix="shipyard-models-")
            _hand_over(owned_registry.name, self.config.run_as)
            self.config = self.config.with_(model_registry=owned_registry.name)
        if not multiproc_dir:
            owned_dir = tempfile.TemporaryDirectory(prefix="shipyard-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = owned_dir.name
            _hand_over(owned_dir.name, self.config.run_as)
        # Bound now (a port in use fails at once, and a low port needs root), listening only once there is a
        # worker to answer: while a model preloads, connections are refused rather than left hanging.
        raise_open_files_limit()  # every idle keep-alive connection is a descriptor; the workers inherit the limit
        sock = bind(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self._relay = Relay()
        output().on_drop = _count_dropped
        context = multiprocessing.get_context("fork")
        self._warmed = context.Value("i", 0)
        self._available = context.Array("b", self.config.workers)  # which workers can take model calls now
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            drop_privileges(self.config.run_as)  # the port is bound and the metrics directory handed over
            preimport()
            if self._bundle is not None:  # None: a multi-model server, its models registered later
                try:
                    self._handler = handler_for(self._bundle, self.config)
                except Exception as exc:  # what a worker would do with it: exit 3, not a restart loop
                    log.error("cannot open the bundle: %s", exc, exc_info=exc)
                    return EXIT_LOAD_FAILED
                preload = self.config.preload
                if (preload == "on" or (preload == "auto" and self._handler.preloadable)) and not self._preload():
                    return EXIT_LOAD_FAILED
            sock.listen(2048)
            log.info(
                "listening",
                extra={
                    "fields": {
                        "host": self.config.host,
                        "port": self.port,
                        "workers": self.config.workers,
                        "model_dir": self.config.model_dir,
                        "preloaded": self._preloaded,
                        "multi_model": self.config.multi_model,
                    }
                },
            )
            for slot in range(self.config.workers):
                self._spawn(context, slot, sock)
            code = self._watch(context, sock)
        finally:
            sock.close()
            self._stop_workers()
            self._relay.close()
            flush_logs()
            if owned_registry is not None:
                owned_registry.cleanup()
            if owned_dir is not None:
                owned_dir.cleanup()
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return code

    def _spawn(self, context: multiprocessing.context.ForkContext, slot: int, sock: socket.socket) -> None:
        assert self._relay is not None
        _, log_fd = self._relay.pipe()
        process = context.Process(
            target=run_worker,
            args=(self.config, sock, self._handler, self._preloaded, self._warmed, slot, self._available, os.getpid()),
            kwargs={"log_fd": log_fd, "store": self._store},
            name=f"shipyard-worker-{slot}",
            daemon=False,
        )
        self._oom_at_spawn[slot] = oom_kills()
        try:
            process.start()
        finally:
            os.close(log_fd)  # the worker has it
        self.workers[slot] = process

    def _preload(self) -> bool:
        handler = self._handler
        assert handler is not None
        started = time.perf_counter()
        self._preloading = True
        log.info("loading the model before forking the workers", extra={"fields": {"model_dir": self.config.model_dir}})
        try:
            handler.load()
        except Exception as exc:
            log.error("loading the model failed: %s", exc, exc_info=exc)
            return False
        finally:
            self._preloading = False
        # Objects that live as long as the process: out of the collector's sight, so its passes never
        # write to (and so copy) the pages the workers share with this process.
        gc.freeze()
        self._preloaded = True
        log.info(
            "model loaded before forking the workers",
            extra={"fields": {"model": handler.description, "load_seconds": round(time.perf_counter() - started, 3)}},
        )
        return True

    def _watch(self, context: multiprocessing.context.ForkContext, sock: socket.socket) -> int:
        while not self._stopping:
            time.sleep(_POLL_S)
            for slot, process in list(self.workers.items()):
                if process.is_alive() or self._stopping:
                    continue
                code = process.exitcode
                _mark_dead(process.pid)
                self._available.get_obj()[slot] = 0
                if code == EXIT_LOAD_FAILED:
                    log.error("a worker could not load the model; stopping (see the error above)")
                    return EXIT_LOAD_FAILED
                reason, words = exit_reason(_wait_status(code), self._oom_at_spawn.get(slot), oom_kills())
                delay = self._backoff.died()
                log.error(
                    f"worker {slot} killed: out of memory"
                    if reason == "out_of_memory"
                    else "worker died; replacing it",
                    extra={
                        "fields": {
                            "slot": slot,
                            "pid": process.pid,
                            "exit": code,
                            "reason": reason,
                            "how": words,
                            "restart_in_s": delay,
                        }
                    },
                )
                if delay:
                    time.sleep(delay)
                if not self._stopping:
                    self._spawn(context, slot, sock)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._preloading:  # nothing is served yet: stop now rather than after a load that may take minutes
            log.info("signal %s while loading the model: exiting", signal.Signals(signum).name)
            raise SystemExit(0)
        if not self._stopping:
            log.info("signal %s: draining", signal.Signals(signum).name)
        self._stopping = True

    def _stop_workers(self) -> None:
        alive = [p for p in self.workers.values() if p.is_alive()]
        for process in alive:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + self.config.graceful_timeout_s + 5
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in alive:
            if process.is_alive():
                log.warning("worker %s did not stop in time; killing it", process.pid)
                _signal(process, signal.SIGKILL)
                process.join(5)


_dropped_counter: object = None


def _count_dropped(lines: int) -> None:
    """Lines the supervisor dropped because stdout was stuck, counted where every worker's /metrics sees them."""
    global _dropped_counter
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return
    if _dropped_counter is None:
        from prometheus_client import Counter

        _dropped_counter = Counter("shipyard_log_lines_dropped", "Log lines dropped because stdout was not being read")
    _dropped_counter.inc(lines)  # type: ignore[attr-defined]


def _wait_status(exitcode: int | None) -> int:
    """multiprocessing's exit code (negative: the signal) back as a wait status, for exit_reason."""
    if exitcode is None:
        return 0
    return -exitcode & 0x7F if exitcode < 0 else (exitcode & 0xFF) << 8


def _hand_over(directory: str, user: str | None) -> None:
    """Give the metrics directory to the user the workers drop to (SHIPYARD_RUN_AS): they write their files there."""
    if not user or os.geteuid() != 0:
        return
    import pwd

    try:
        entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        return  # the worker stops with "no such user" itself
    os.chown(directory, entry.pw_uid, entry.pw_gid)


def _signal(process: BaseProcess, signum: int) -> None:
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signum)


def _mark_dead(pid: int | None) -> None:
    if pid is None or "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
