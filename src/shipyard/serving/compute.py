"""Where model calls run: in a thread of the worker, or in a child process of it.

The batcher hands a batch (the prepared inputs of one or more requests) to a :class:`Compute` and gets one
``(ok, value)`` outcome per request back. Two kinds:

:class:`InlineCompute`
    calls the handler in the calling thread. What :class:`ModelProcess` runs in its child, and the whole
    story when ``SHIPYARD_MODEL_PROCESS=0``.
:class:`ModelProcess` (the default)
    runs the handler in a child process of the worker, so that whatever kills the model (a segfault in
    native code, ``os._exit``, the OOM killer, a call that never returns) cannot take the worker's
    connections with it. The guarantee, request by request:

    * a request waiting in the worker's queue when the model process dies is not lost: it goes to the
      replacement, as if nothing happened;
    * a request that was in a batch when the model process died is retried alone in the replacement
      (one poison input fails only itself); a request that kills the model process alone is answered
      ``500 ModelCrashed`` saying how it died ("out of memory", "crashed (SIGSEGV)");
    * a call that overruns ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (its requests got 504) by more than
      ``SHIPYARD_OVERRUN_GRACE`` seconds has its process killed and replaced; until then the worker takes
      no new model calls and counts as unavailable (``/ping`` answers 503 when no worker is available);
    * the HTTP side never restarts for any of this: keep-alive connections, ``/ping`` and ``/metrics``
      keep answering throughout.

Streams (a handler whose ``predict_stream`` yields chunks, see :mod:`shipyard.serving.streaming`) go through
:meth:`InlineCompute.stream` / :meth:`ModelProcess.stream`: one request alone, each chunk handed to ``emit`` as
soon as the model yields it (over the socket pair as a message of its own, never collected), until the model
is done, fails, or ``stop`` is set (the client went away, the server gave up waiting): then the generator is
closed. In the model process each chunk must come within ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` of the one before
(the first of the request), or the call counts as overrun like any other.

    The child is forked from the worker, so a model the supervisor preloaded is already in memory and a
    replacement is ready in milliseconds; otherwise the child loads the model itself. Inputs and answers
    cross a socket pair as pickles (protocol 5): a few tens of microseconds per batch, not per request.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

from shipyard.errors import InferenceTimeout, ModelCrashed, ModelError, ShipyardError
from shipyard.serving.logs import JSONFormatter, pass_lines
from shipyard.serving.process import (
    OOM_SCORE_MODEL,
    Backoff,
    die_with_parent,
    exit_reason,
    oom_kills,
    set_oom_score_adj,
)

__all__ = ["Compute", "Fault", "InlineCompute", "ModelProcess", "Outcome"]

log = logging.getLogger("shipyard.model")

Outcome = tuple[bool, Any]  # (True, predictions) or (False, the request's exception)

_PICKLE = pickle.HIGHEST_PROTOCOL
_STOP_CHECK_S = 0.05  # how often a stream's wait for its next chunk looks whether it should stop
_STOP = pickle.dumps(("stop", None, []), _PICKLE)  # the worker to the model process: close the stream's generator


@dataclass(frozen=True, slots=True)
class Fault:
    """A request's input that makes the model process misbehave on purpose (``SHIPYARD_FAULT_INJECTION``):
    ``oom`` allocates until the OOM killer comes. What ``shipyard verify`` uses to check the server survives."""

    kind: str


class Compute(Protocol):
    """What the batcher's model thread drives: ``start`` once, ``run`` per batch, ``check`` when idle."""

    def start(self) -> None: ...

    def run(self, parts: list[Any], rows: list[int]) -> list[Outcome]: ...

    def check(self) -> None: ...

    def close(self) -> None: ...

    def stream(self, inputs: Any, emit: Callable[[Any], None], stop: threading.Event) -> Outcome: ...


class InlineCompute:
    """The handler called in this thread; a batch that raises is retried request by request."""

    def __init__(
        self,
        predict: Callable[[Any], Any],
        stack: Callable[[list[Any]], Any],
        split: Callable[[Any, list[int]], Any],
        load: Callable[[], None] | None = None,
        stream: Callable[[Any], Iterator[Any]] | None = None,
    ) -> None:
        self._predict = predict
        self._stack = stack
        self._split = split
        self._load = load
        self._stream = stream

    def start(self) -> None:
        if self._load is not None:
            self._load()

    def check(self) -> None:
        pass

    def run(self, parts: list[Any], rows: list[int]) -> list[Outcome]:
        if len(parts) == 1:
            return [self.call(parts[0])]
        try:
            stacked = self._stack(parts)
        except Exception as exc:
            log.info("a batch of %d requests failed (%s); retrying each alone", len(parts), exc)
            return [self.call(part) for part in parts]
        return self.batch(stacked, rows, parts)[1]

    def batch(self, inputs: Any, rows: list[int], parts: list[Any] | None = None) -> tuple[Any, list[Outcome]]:
        """Stacked inputs of ``len(rows)`` requests through the model at once: ``(predictions, outcomes)``, one
        outcome per request. If that call fails, or does not give one prediction per row, each request goes
        alone (its ``parts`` entry, or its rows cut from ``inputs``) and ``predictions`` is None."""
        if len(rows) == 1:
            return None, [self.call(inputs)]
        try:
            predictions = self._predict(inputs)
            return predictions, [(True, piece) for piece in self._split(predictions, rows)]
        except Exception as exc:
            log.info("a batch of %d requests failed (%s); retrying each alone", len(rows), exc)
            alone = parts if parts is not None else self._split(inputs, rows)
            return None, [self.call(part) for part in alone]

    def call(self, inputs: Any) -> Outcome:
        """One request's inputs through the model: its predictions, or its own error."""
        try:
            return True, self._predict(inputs)
        except ShipyardError as exc:
            return False, exc
        except Exception as exc:
            error = ModelError(f"the model raised {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return False, error

    def stream(self, inputs: Any, emit: Callable[[Any], None], stop: threading.Event) -> Outcome:
        """One request's chunks through ``emit`` as the model yields them: ``(True, None)`` at the end (or when
        ``stop`` was set: the generator is closed), ``(False, error)`` if it raised."""
        if self._stream is None:
            return False, ModelError("this handler does not stream")
        chunks = self._stream(inputs)
        try:
            for chunk in chunks:
                emit(chunk)
                if stop.is_set():
                    break
            return True, None
        except ShipyardError as exc:
            return False, exc
        except Exception as exc:
            error = ModelError(f"the model raised {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return False, error
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def close(self) -> None:
        pass


class _Died(Exception):
    def __init__(self, reason: str, words: str) -> None:
        super().__init__(words)
        self.reason = reason
        self.words = words


class _Overran(Exception):
    pass


class ModelProcess:
    """The model in a child process of this worker (see the module's docstring for the guarantee).

    Driven from one thread, the batcher's model thread, which must be the one that calls :meth:`start`
    (the child dies with the thread that forked it). :meth:`run` sends the child a batch and waits for
    its answers. ``on_state(available, why)`` is called on every change of whether this worker can take
    model calls; ``on_restart(reason)`` on every replacement (``crashed``, ``out_of_memory``, ``killed``,
    ``exited``, ``overran``).
    """

    def __init__(
        self,
        handler: Any,
        stack: Callable[[list[Any]], Any],
        split: Callable[[Any, list[int]], Any],
        *,
        loaded: bool,
        name: str,
        timeout_s: float,
        grace_s: float,
        output: Callable[[bytes], object] | None = None,
        on_state: Callable[[bool, str], None] | None = None,
        on_restart: Callable[[str], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._handler = handler
        self._stack = stack
        self._split = split
        self._loaded = loaded
        self.name = name
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self._output = output
        self._on_state = on_state or (lambda available, why: None)
        self._on_restart = on_restart or (lambda reason: None)
        self._backoff = backoff or Backoff()
        self.pid: int | None = None
        self._conn: Connection | None = None
        self._status: int | None = None  # the child's wait status, once reaped by a liveness check
        self._oom_at_start: int | None = None
        self._relay: threading.Thread | None = None
        self.load_seconds = 0.0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Fork the child and wait until it has the model; raises its load error (a ShipyardError)."""
        started = time.perf_counter()
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_read, out_write = os.pipe()
        oom_before = oom_kills()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            parent_end.close()
            os.close(out_read)
            _child_main(self._handler, self._loaded, self._stack, self._split, child_end, out_write, os.getppid())
        child_end.close()
        os.close(out_write)
        self.pid, self._status, self._oom_at_start = pid, None, oom_before
        self._conn = Connection(parent_end.detach())
        self._relay = threading.Thread(
            target=self._relay_output, args=(out_read,), name="shipyard-model-out", daemon=True
        )
        self._relay.start()
        try:
            kind, value = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            _, words = self._reap()
            raise ModelCrashed(f"the model process {words} while loading the model") from None
        if kind != "ready":
            self._reap(kill=True)
            raise value
        adopt = getattr(self._handler, "adopt", None)
        if adopt is not None and value is not None:  # what loading taught the child that prepare/finish need here
            adopt(value)
        self.load_seconds = time.perf_counter() - started
        self._on_state(True, "ready")

    def close(self) -> None:
        """Stop the child (callers close between batches, so it is idle)."""
        self._closed = True
        if self.pid is not None:
            self._reap(kill=True)

    # -- calls -----------------------------------------------------------------------------------
    def run(self, parts: list[Any], rows: list[int]) -> list[Outcome]:
        if self.pid is None or not self._alive():
            self._replace("gone")
        try:
            return self._exchange(parts, rows)
        except _Died as death:
            self._log_death(death, len(parts))
            self._replace(death.reason)
            if len(parts) == 1:
                return [(False, _crashed(death))]
            # one of them killed it: each alone in the replacement, so only that one fails
            return [self._alone(part, count) for part, count in zip(parts, rows, strict=True)]
        except _Overran:
            self._overran(len(parts))
            return [(False, _overran())] * len(parts)

    def check(self) -> None:
        """Replace the child if it died while idle (the model thread calls this between batches)."""
        if self.pid is not None and not self._closed and not self._alive():
            self._log_death(_Died(*self._reap()), 0)
            self._replace("died")

    def _alone(self, part: Any, rows: int) -> Outcome:
        return self._one(lambda: self._exchange([part], [rows])[0])

    def stream(self, inputs: Any, emit: Callable[[Any], None], stop: threading.Event) -> Outcome:
        """One request's chunks from the model process, each passed to ``emit`` as it arrives (see the module's
        docstring); a death or an overrun mid-stream ends it with that error, and the process is replaced."""
        if self.pid is None or not self._alive():
            self._replace("gone")
        return self._one(lambda: self._stream_exchange(inputs, emit, stop))

    def _one(self, call: Callable[[], Outcome]) -> Outcome:
        """One request's exchange with the child: its death or overrun is that request's error, and the child
        is replaced."""
        try:
            return call()
        except _Died as death:
            self._log_death(death, 1)
            self._replace(death.reason)
            return False, _crashed(death)
        except _Overran:
            self._overran(1)
            return False, _overran()

    def _stream_exchange(self, inputs: Any, emit: Callable[[Any], None], stop: threading.Event) -> Outcome:
        conn = self._conn
        assert conn is not None
        try:
            message = pickle.dumps(("stream", inputs, [1]), _PICKLE)
        except Exception as exc:
            return False, ModelError(f"the input cannot be sent to the model process: {exc}")
        try:
            conn.send_bytes(message)
        except OSError:
            raise _Died(*self._reap()) from None
        stopping = False
        while True:
            waited = 0.0
            while not conn.poll(min(_STOP_CHECK_S, self.timeout_s)):  # the gap before each chunk is timed
                waited += _STOP_CHECK_S
                if stop.is_set() and not stopping:
                    stopping = self._send_stop(conn)
                if waited >= self.timeout_s:
                    self._on_state(False, "overran")
                    if not conn.poll(self.grace_s):
                        raise _Overran
                    self._on_state(True, "ready")
                    break
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                raise _Died(*self._reap()) from None
            kind, value = pickle.loads(data)
            if kind == "chunk":
                if not stopping:
                    emit(value)
                    if stop.is_set():
                        stopping = self._send_stop(conn)
            elif kind == "end":
                return True, None
            else:  # "error": the model's own, made portable
                return False, value

    def _send_stop(self, conn: Connection) -> bool:
        try:
            conn.send_bytes(_STOP)
        except OSError:
            raise _Died(*self._reap()) from None
        return True

    def _exchange(self, parts: list[Any], rows: list[int]) -> list[Outcome]:
        conn = self._conn
        assert conn is not None
        try:
            message = pickle.dumps(self._request(parts, rows), _PICKLE)
        except Exception as exc:  # the inputs do not pickle (a handler's input_fn is the user's)
            return [(False, ModelError(f"the input cannot be sent to the model process: {exc}"))] * len(parts)
        try:
            conn.send_bytes(message)
        except OSError:
            raise _Died(*self._reap()) from None
        if not conn.poll(self.timeout_s):
            self._on_state(False, "overran")  # no new call here until it answers or is replaced
            if not conn.poll(self.grace_s):
                raise _Overran
            self._on_state(True, "ready")
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            raise _Died(*self._reap()) from None
        kind, value = pickle.loads(data)
        if kind == "whole":  # the batch's predictions, checked there to hold one per row: cut here (views)
            return [(True, piece) for piece in self._split(value, rows)]
        outcomes: list[Outcome] = value
        return outcomes

    def _request(self, parts: list[Any], rows: list[int]) -> tuple[str, Any, list[int]]:
        """One stacked input crosses far cheaper than many small ones (a pickle per array): stacked here."""
        if len(parts) == 1:
            return "stacked", parts[0], rows
        try:
            return "stacked", self._stack(parts), rows
        except Exception:  # inputs that do not stack: each goes alone, as InlineCompute would retry them
            return "parts", parts, rows

    def _overran(self, requests: int) -> None:
        log.error(
            "%s: a model call overran its time limit by %g s; replacing the model process",
            self.name,
            self.grace_s,
            extra={"fields": {"pid": self.pid, "timeout_s": self.timeout_s, "requests": requests}},
        )
        self._reap(kill=True)
        self._replace("overran")

    # -- the child -------------------------------------------------------------------------------
    def _alive(self) -> bool:
        assert self.pid is not None
        try:
            done, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        if done:
            self._status = status
            return False
        return True

    def _reap(self, kill: bool = False) -> tuple[str, str]:
        """Wait for the child (SIGKILL it first if ``kill``) and close its pipe; says how it ended."""
        pid, conn, status = self.pid, self._conn, self._status
        self.pid, self._conn, self._status = None, None, None
        if conn is not None:
            conn.close()
        if pid is not None and status is None:
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = None
        if self._relay is not None:
            self._relay.join(2.0)  # its last lines (a traceback, a fatal error) come out before ours
            self._relay = None
        if status is None:
            return "exited", "ended"
        return exit_reason(status, self._oom_at_start, oom_kills())

    def _replace(self, reason: str) -> None:
        if self._closed:
            raise ModelCrashed("the server is stopping")
        if self.pid is not None:
            self._reap(kill=True)
        self._on_state(False, reason)
        self._on_restart(reason)
        for attempt in range(3):
            delay = self._backoff.died()
            if delay:
                log.warning("%s: restarting the model process in %.2f s", self.name, delay)
                time.sleep(delay)
            try:
                self.start()
                break
            except ModelCrashed as exc:  # killed while loading (out of memory?): try again, a few times
                if attempt == 2:
                    self._on_state(False, "failed")
                    raise
                log.error("%s: %s; retrying", self.name, exc)
            except BaseException:
                self._on_state(False, "failed")
                raise
        log.info(
            "%s: model process replaced",
            self.name,
            extra={"fields": {"pid": self.pid, "reason": reason, "load_seconds": round(self.load_seconds, 3)}},
        )

    def _log_death(self, death: _Died, requests: int) -> None:
        log.error(
            "%s killed: %s" if death.reason == "out_of_memory" else "%s: the model process %s",
            self.name,
            death.words,
            extra={"fields": {"process": "model", "reason": death.reason, "requests_in_flight": requests}},
        )

    def _relay_output(self, fd: int) -> None:
        """The child's stdout and stderr, whole lines at a time, into this process's log output."""
        write = self._output or _discard
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending = pass_lines(pending, chunk, write)
            if pending:
                write(pending + b"\n")


def _discard(data: bytes) -> None:
    pass


def _crashed(death: _Died) -> ModelCrashed:
    return ModelCrashed(f"the model process {death.words} while computing this request; it was replaced")


def _overran() -> InferenceTimeout:
    return InferenceTimeout("the model call overran its time limit; its process was replaced")


# -- in the child ----------------------------------------------------------------------------------
def _child_main(
    handler: Any,
    loaded: bool,
    stack: Callable[[list[Any]], Any],
    split: Callable[[Any, list[int]], Any],
    sock: socket.socket,
    out_fd: int,
    parent: int,
) -> None:
    code = 0
    try:
        conn = _child_setup(sock, out_fd, parent)
        _child_serve(handler, loaded, stack, split, conn)
    except BaseException:  # the last word of a dying process
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _child_setup(sock: socket.socket, out_fd: int, parent: int) -> Connection:
    gc.freeze()  # the worker's objects stay as they are here: no finalizer closes a descriptor number reused later
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the worker stops this process; a Ctrl-C is the worker's
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not die_with_parent(signal.SIGKILL, parent):
        os._exit(0)
    set_oom_score_adj(OOM_SCORE_MODEL)
    # stdout and stderr go to the worker, which writes them out whole lines at a time
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    fd = sock.detach()
    # Every other descriptor is the worker's: its listening socket, its clients' connections (a connection
    # the worker closes must really close), its log pipe. None of them is this process's business.
    keep = os.dup2(fd, 3) if fd != 3 else 3
    if fd != 3:
        os.close(fd)
    os.closerange(4, _max_fd())
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    _child_logging()
    return Connection(keep)


def _child_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]


def _child_serve(
    handler: Any,
    loaded: bool,
    stack: Callable[[list[Any]], Any],
    split: Callable[[Any, list[int]], Any],
    conn: Connection,
) -> None:
    if not loaded:
        try:
            handler.load()
        except BaseException as exc:  # reported to the worker, which stops with exit code 3
            log.error("loading the model failed: %s", exc, exc_info=exc)
            conn.send_bytes(pickle.dumps(("failed", _portable(exc)), _PICKLE))
            return
    state = getattr(handler, "loaded_state", None)
    conn.send_bytes(pickle.dumps(("ready", state() if state is not None else None), _PICKLE))
    compute = InlineCompute(handler.predict, stack, split, stream=getattr(handler, "predict_stream", None))
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        kind, inputs, rows = pickle.loads(data)
        if kind == "stop":  # for a stream that had ended already
            continue
        if kind == "stream":
            _child_stream(compute, inputs, conn)
            continue
        if isinstance(inputs, Fault):
            _inject(inputs)
        answer = _answer(compute, kind, inputs, rows)
        try:
            message = pickle.dumps(answer, _PICKLE)
        except Exception:  # a prediction that does not pickle fails its own request only
            outcomes = answer[1] if answer[0] == "each" else [(True, p) for p in split(answer[1], rows)]
            message = pickle.dumps(("each", [_checked(outcome) for outcome in outcomes]), _PICKLE)
        conn.send_bytes(message)


def _child_stream(compute: InlineCompute, inputs: Any, conn: Connection) -> None:
    """A stream's chunks to the worker one message each, as the generator yields them; a stop from the worker
    (looked for after each chunk) closes the generator. Ends with ``("end", None)`` or ``("error", exc)``."""
    stop = threading.Event()

    def emit(chunk: Any) -> None:
        try:
            message = pickle.dumps(("chunk", chunk), _PICKLE)
        except Exception as exc:
            raise ModelError(f"a chunk of the answer cannot be sent back from the model process: {exc}") from None
        conn.send_bytes(message)
        while conn.poll(0):  # the worker's stop, sent when its client went away or it gave up waiting
            if pickle.loads(conn.recv_bytes())[0] == "stop":
                stop.set()

    ok, value = compute.stream(inputs, emit, stop)
    conn.send_bytes(pickle.dumps(("end", None) if ok else ("error", _portable(value)), _PICKLE))


def _answer(compute: InlineCompute, kind: str, inputs: Any, rows: list[int]) -> tuple[str, Any]:
    """``("whole", predictions)`` for a stacked batch that went through at once (the worker cuts it), else
    ``("each", outcomes)``, one per request, errors made portable."""
    if kind == "stacked":
        predictions, outcomes = compute.batch(inputs, rows)
        if predictions is not None:
            return "whole", predictions
    else:
        outcomes = compute.run(inputs, rows)
    return "each", [outcome if outcome[0] else (False, _portable(outcome[1])) for outcome in outcomes]


def _inject(fault: Fault) -> None:
    if fault.kind == "oom":
        hoard = []
        while True:
            hoard.append(b"x" * (16 << 20))  # written, so resident: the cgroup's limit comes quickly


def _checked(outcome: Outcome) -> Outcome:
    try:
        pickle.dumps(outcome[1], _PICKLE)
    except Exception as exc:
        return False, ModelError(f"the answer cannot be sent back from the model process: {exc}")
    return outcome


def _portable(exc: BaseException) -> BaseException:
    """The error as one that pickles, carrying the traceback of its cause (tracebacks do not cross processes)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = "".join(traceback.format_exception(cause))
    error: BaseException
    try:
        error = pickle.loads(pickle.dumps(exc, _PICKLE))
    except Exception:
        error = ModelError(f"{type(exc).__name__}: {exc}")
    error.remote_traceback = text  # type: ignore[attr-defined]
    return error


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):  # pragma: no cover
        return 65536
