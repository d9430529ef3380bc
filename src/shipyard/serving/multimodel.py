"""A multi-model endpoint's container: SageMaker's multi-model contract over many bundles.

Selected by ``SAGEMAKER_MULTI_MODEL=true`` (:class:`~shipyard.config.ServerConfig` ``multi_model``). The routes
are the ones SageMaker's multi-model endpoints call (the management API of multi-model-server, which the
SageMaker inference toolkit serves them with)::

    GET    /ping                   200 as soon as a worker listens, with no model loaded
    GET    /models                 {"models": [{"modelName", "modelUrl"}, ...], "nextPageToken"?}: pages
    POST   /models                 {"model_name", "url"}: 200 registered (and loaded in this worker),
                                   404 the url names nothing, 409 the name is taken, 507 the model alone does
                                   not fit the memory budget
    GET    /models/NAME            {"modelName", "modelUrl"}, 404 not registered (not "loaded" for SageMaker)
    DELETE /models/NAME            200 unregistered (unloaded everywhere), 404 unknown
    POST   /models/NAME/invoke     predictions from that model
    POST   /invocations            predictions from the model X-Amzn-SageMaker-Target-Model names: a registered
                                   name, else a file or directory of that name under ``models_dir`` (what the
                                   local target mounts at /opt/ml/models), registered on first use
    GET    /metrics                Prometheus text, with the loads, unloads, hits and misses

An invocation's answer says ``X-Shipyard-Model-Cache: hit`` (its model was loaded in the worker that answered)
or ``miss`` (it was loaded for it).

A model's ``url`` is a bundle directory (any flavor, or a toolkit ``code/inference.py`` directory) or a
``model.tar.gz`` (extracted with the archive checks of :mod:`shipyard.bundle.archive`).

SageMaker sends ``POST /models`` to one worker, yet every worker must serve the model: the registry of names is
a directory of JSON records every worker reads (:class:`Registry`; each record written under a temporary name
and linked into place, so a reader never sees half a record and a second registration of a name fails
atomically). Each worker loads a model the first time it is asked for it (a miss), then answers from memory
(a hit), through the same :class:`~shipyard.handler.Handler` and :class:`~shipyard.serving.batcher.Batcher` a
single-model server uses; the model runs in the worker (no model process per model).

Memory: each worker gets ``budget / workers`` (``SHIPYARD_MODEL_MEMORY_MB``; 0: 70 % of the container's memory
limit, else of the machine's). A model's size is the worker's resident memory grown by its load (at least its
size on disk; the first model of a flavor is loaded once before, so the libraries it imports are not counted);
when the next load would go over the budget the least recently used models are unloaded first, and a model that
alone is over the budget is unloaded again and answered 507.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import tempfile
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from shipyard.config import ServerConfig
from shipyard.errors import (
    InsufficientMemory,
    ModelExists,
    ModelNotFound,
    PayloadTooLarge,
    RequestError,
    ShipyardError,
)
from shipyard.handler import Handler, handler_for, split, stack
from shipyard.serving.batcher import Batcher
from shipyard.serving.compute import InlineCompute
from shipyard.serving.metrics import Metrics, ModelMetrics, render
from shipyard.serving.protocol import error_body

__all__ = ["MAX_NAME", "MultiModelApp", "Record", "Registry", "check_name", "default_budget_bytes", "rss_bytes"]

log = logging.getLogger("shipyard.multimodel")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = b"application/json"
_TARGET = b"x-amzn-sagemaker-target-model"
_CACHE = b"x-shipyard-model-cache"  # an answer's header: hit (the model was loaded in this worker) or miss
_SWEEP_S = 1.0  # how often a worker drops the models unregistered through a sibling
_BUDGET_SHARE = 0.7
MAX_NAME = 1024  # InvokeEndpoint's TargetModel: 1 to 1024 characters


def check_name(name: str) -> None:
    """A model name SageMaker could send: 1 to :data:`MAX_NAME` characters (a :class:`RequestError`, 400)."""
    if not name or len(name) > MAX_NAME:
        raise RequestError(f"a model name is 1 to {MAX_NAME} characters (TargetModel's limit); got {len(name)}")


# -- memory ----------------------------------------------------------------------------------------
def rss_bytes() -> int:
    """This process's resident memory (0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _memory_limit() -> int | None:
    """The container's memory limit (cgroup v2, then v1), else the machine's memory; None if unknown."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # v1 says "no limit" with a huge number, v2 with "max"
            return int(raw)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):  # pragma: no cover
        pass
    return None


def default_budget_bytes(config: ServerConfig) -> int:
    """The loaded models' memory budget of the whole server: the setting, else 70 % of the memory limit."""
    if config.model_memory_mb > 0:
        return int(config.model_memory_mb * 1024 * 1024)
    limit = _memory_limit()
    return int((limit or 4 << 30) * _BUDGET_SHARE)


# -- the registry all workers share ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Record:
    name: str
    url: str

    def as_json(self) -> dict[str, str]:
        return {"modelName": self.name, "modelUrl": self.url}


class Registry:
    """The registered models: one JSON record per name in ``directory``, shared by every worker."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._names: dict[str, str] = {}  # a record's file name -> the model name inside it

    def _path(self, name: str) -> Path:
        # Any name, even "a/b.tar.gz" or 1024 characters, as a file name of 64 + 5 bytes (a hex name would
        # overflow the 255 bytes of a file name past ~125); the name itself is inside the record.
        return self.directory / (hashlib.sha256(name.encode()).hexdigest() + ".json")

    def add(self, record: Record) -> None:
        """Register ``record``; :class:`ModelExists` if its name is taken (atomic: a link never replaces)."""
        check_name(record.name)
        data = orjson.dumps({"model_name": record.name, "url": record.url})
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".new-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.link(tmp, self._path(record.name))
        except FileExistsError:
            raise ModelExists(f'model "{record.name}" is already registered') from None
        finally:
            os.unlink(tmp)

    def get(self, name: str) -> Record | None:
        if len(name) > MAX_NAME:
            return None
        record = self._read(self._path(name))
        return record if record is not None and record.name == name else None

    @staticmethod
    def _read(path: Path) -> Record | None:
        try:
            data = orjson.loads(path.read_bytes())
            return Record(str(data["model_name"]), str(data["url"]))
        except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError):
            return None

    def remove(self, name: str) -> bool:
        if len(name) > MAX_NAME:
            return False
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def _all(self) -> list[Record]:
        found = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                record = self._read(Path(entry.path))
                if record is not None:
                    found.append(record)
        return found

    def names(self) -> set[str]:
        """The registered names (every worker's sweep, each second): a record read once per file name, which
        stands for one name (its hash) whatever the url registered under it."""
        found = set()
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                name = self._names.get(entry.name)
                if name is None:
                    record = self._read(Path(entry.path))
                    if record is None:
                        continue
                    name = self._names[entry.name] = record.name
                found.add(name)
        return found

    def records(self) -> list[Record]:
        return sorted(self._all(), key=lambda r: r.name)


def _page(records: list[Record], query: bytes) -> dict[str, Any]:
    """The List Model API's page: SageMaker may page with ``next_page_token`` (and the toolkit's server takes
    ``limit``, 1 to 1,000, 100 by default); a ``nextPageToken`` in the answer says more models follow."""
    params = urllib.parse.parse_qs(query.decode("latin-1"))
    try:
        limit = int(params.get("limit", ["100"])[0])
        start = int(params.get("next_page_token", ["0"])[0] or 0)
    except ValueError:
        raise RequestError("limit and next_page_token are whole numbers") from None
    if not 1 <= limit <= 1000 or start < 0:
        raise RequestError("limit is 1 to 1000 and next_page_token a token this server gave")
    page: dict[str, Any] = {"models": [r.as_json() for r in records[start : start + limit]]}
    if start + limit < len(records):
        page["nextPageToken"] = str(start + limit)
    return page


# -- one worker's loaded models --------------------------------------------------------------------
@dataclass(eq=False)
class _Model:
    name: str
    url: str
    handler: Handler
    batcher: Batcher
    size: int
    scratch: tempfile.TemporaryDirectory[str] | None
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)


class MultiModelApp:
    """The ASGI app of one worker of a multi-model server."""

    def __init__(self, config: ServerConfig, *, slot: int = 0, metrics: Metrics | None = None) -> None:
        self.config = config
        self.slot = slot
        self.metrics = metrics or Metrics()
        self.model_metrics = ModelMetrics()
        if config.model_registry is None:
            raise ValueError("a multi-model server needs config.model_registry (the supervisor sets it)")
        self.registry = Registry(config.model_registry)
        self.budget = max(1, default_budget_bytes(config) // max(1, config.workers))  # this worker's share
        self.model_metrics.budget.set(self.budget)
        self._handler_config = config.with_(model_process=False, preload="off")
        self.models: OrderedDict[str, _Model] = OrderedDict()  # least recently used first
        self.used = 0
        self._warm: set[str] = set()  # the flavors whose libraries this worker has imported
        self._sizes: dict[str, int] = {}  # each model's size when last loaded here (the next load's estimate)
        self._load_lock: asyncio.Lock | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # -- ASGI --------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        route = "other"
        try:
            if path == "/ping":
                route = "ping"
                status, body = 200, b'{"status": "Healthy"}'
            elif path == "/invocations":
                route = "invocations"
                status, body, content, cache = await self._invoke(scope, receive, self._target(scope))
                await _answer(send, status, body, content, cache)
                self.metrics.observe(route, status, time.perf_counter() - started)
                return
            elif path == "/metrics":
                route = "metrics"
                self.metrics.flush()
                await _answer(send, 200, render(), b"text/plain; version=0.0.4; charset=utf-8")
                return
            elif path in ("/models", "/models/"):
                route = "models"
                status, body = await self._models(method, receive, scope.get("query_string", b""))
            elif path.startswith("/models/"):
                name = path[len("/models/") :]
                if method == "POST" and name.endswith("/invoke"):
                    route = "invoke"
                    status, body, content, cache = await self._invoke(scope, receive, name[: -len("/invoke")])
                    await _answer(send, status, body, content, cache)
                    self.metrics.observe(route, status, time.perf_counter() - started)
                    return
                route = "model"
                status, body = await self._model(method, name)
            else:
                status, body = 404, error_body("NotFound", f"no route {path}")
        except ShipyardError as exc:
            status, body = exc.http_status, error_body(exc.code, str(exc))
        await _answer(send, status, body, _JSON)
        self.metrics.observe(route, status, time.perf_counter() - started)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._load_lock = asyncio.Lock()
                self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._sweeper is not None:
                    self._sweeper.cancel()
                for name in list(self.models):
                    await self._unload(name, "shutdown")
                self.metrics.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- management API ----------------------------------------------------------------------------
    async def _models(self, method: str, receive: Receive, query: bytes) -> tuple[int, bytes]:
        if method in ("GET", "HEAD"):
            return 200, orjson.dumps(_page(self.registry.records(), query))
        if method != "POST":
            return 405, error_body("MethodNotAllowed", "/models takes GET or POST")
        raw = await _read_body(receive, 1 << 20)
        try:
            request = orjson.loads(raw)
            name, url = request["model_name"], request["url"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise RequestError('POST /models takes {"model_name": NAME, "url": PATH}') from None
        if not isinstance(name, str) or not name or not isinstance(url, str) or not url:
            raise RequestError("model_name and url must be non-empty strings")
        await self.register(name, url)
        return 200, orjson.dumps({"status": f'Model "{name}" registered'})

    async def register(self, name: str, url: str, *, invoked: bool = False) -> _Model:
        """Register ``name`` for every worker and load it here (``invoked``: for an invocation, a miss); a model
        that cannot load is unregistered."""
        check_name(name)
        if not Path(url).exists():
            raise ModelNotFound(f"{url} does not exist (the url of a model is a bundle directory or a model.tar.gz)")
        self.registry.add(Record(name, url))
        try:
            return await self._get(name, first=not invoked)
        except BaseException:
            self.registry.remove(name)
            raise

    async def _model(self, method: str, name: str) -> tuple[int, bytes]:
        check_name(name)
        record = self.registry.get(name)
        if record is None:
            raise ModelNotFound(f'no model "{name}" is loaded (registered)')
        if method in ("GET", "HEAD"):
            # The contract's Get Model API: {"modelName", "modelUrl"}, and 404 "if model_name is not loaded".
            # "Loaded" is SageMaker's word for what POST /models (its Load Model API) did: registered, here for
            # every worker. A worker that has not yet loaded a registered model into its own memory (it does
            # on first use) still answers 200, or SageMaker would take a model it loaded for gone and load it again
            # (409). The worker's own state is in the X-Shipyard-Model-Cache answer header of an invocation.
            return 200, orjson.dumps(record.as_json())
        if method == "DELETE":
            self.registry.remove(name)
            await self._unload(name, "deleted")
            return 200, orjson.dumps({"status": f'Model "{name}" unregistered'})
        return 405, error_body("MethodNotAllowed", "/models/NAME takes GET or DELETE")

    # -- invocations -------------------------------------------------------------------------------
    def _target(self, scope: Scope) -> str:
        for key, value in scope["headers"]:
            if key == _TARGET:
                return str(value.decode("utf-8", "replace"))
        raise RequestError("a multi-model endpoint needs X-Amzn-SageMaker-Target-Model (InvokeEndpoint TargetModel)")

    async def _invoke(self, scope: Scope, receive: Receive, name: str) -> tuple[int, bytes, bytes, bytes | None]:
        content_type = accept = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"accept":
                accept = value.decode("latin-1")
        try:
            if scope["method"] != "POST":
                return 405, error_body("MethodNotAllowed", f"{scope['path']} takes POST"), _JSON, None
            body = await _read_body(receive, self.config.max_payload_bytes)
            check_name(name)
            model = None
            hit = name in self.models
            if self.registry.get(name) is None and scope["path"] == "/invocations":
                model = await self._register_from_models_dir(name)
            if model is None:
                model = await self._get(name)
            model.in_flight += 1
            try:
                prepared = model.handler.prepare(body, content_type, accept)
                future = model.batcher.submit(prepared.inputs, prepared.rows)
                predictions = await asyncio.wait_for(future, self.config.timeout_s)
                answer, media_type = model.handler.finish(predictions, prepared)
            finally:
                model.in_flight -= 1
                model.last_used = time.monotonic()
            return 200, answer, media_type.encode("latin-1"), b"hit" if hit else b"miss"
        except ShipyardError as exc:
            if exc.http_status >= 500:
                log.error("invocation of %s failed: %s", name, exc)
            return exc.http_status, error_body(exc.code, str(exc)), _JSON, None
        except TimeoutError:
            return 504, error_body("Timeout", f"no answer within {self.config.timeout_s:g} s"), _JSON, None
        except Exception as exc:  # a bug in a handler or a codec: 500, and the server keeps serving
            log.error("invocation of %s failed: %s", name, exc, exc_info=exc)
            return 500, error_body("InternalError", f"{type(exc).__name__}: {exc}"), _JSON, None

    async def _register_from_models_dir(self, name: str) -> _Model | None:
        """The local side of SageMaker's: a target model is a file or directory under ``models_dir``, registered
        (and loaded) on first use; one that cannot load is left unregistered, as after a failed POST /models."""
        root = Path(self.config.models_dir).resolve()
        try:
            path = (root / name).resolve()
            found = root in path.parents and path.exists()
        except OSError:  # a part of the name over the file system's 255 bytes: nothing of that name is there
            found = False
        if not found:
            raise ModelNotFound(f'no model "{name}" is registered or under {self.config.models_dir}')
        try:
            return await self.register(name, str(path), invoked=True)
        except ModelExists:  # a sibling worker registered it first
            return None

    # -- loading and unloading ---------------------------------------------------------------------
    async def _get(self, name: str, first: bool = False) -> _Model:
        """The loaded model ``name`` (a hit), loading it first (a miss; ``first``: a registration's load, which
        is neither)."""
        record = self.registry.get(name)
        if record is None:
            raise ModelNotFound(f'no model "{name}" is registered')
        model = self.models.get(name)
        if model is not None and model.url == record.url:
            self.models.move_to_end(name)
            self.model_metrics.hits.inc()
            return model
        assert self._load_lock is not None
        async with self._load_lock:  # one load at a time, so each one's memory growth is its own
            model = self.models.get(name)
            if model is not None and model.url == record.url:  # loaded while this request waited
                self.models.move_to_end(name)
                self.model_metrics.hits.inc()
                return model
            if not first:
                self.model_metrics.misses.inc()
            if model is not None:
                await self._unload(name, "replaced")
            await self._make_room(self._sizes.get(name, 0), keep=name)
            model = await asyncio.to_thread(self._load, record)
            if model.size > self.budget:
                await self._drop(model)
                self.model_metrics.load_failures.labels("no_memory").inc()
                raise InsufficientMemory(
                    f'model "{name}" takes {model.size / 2**20:.1f} MB; the budget of a worker is '
                    f"{self.budget / 2**20:.1f} MB (SHIPYARD_MODEL_MEMORY_MB ÷ workers)"
                )
            await self._make_room(model.size, keep=name)
            self.models[name] = model
            self.used += model.size
            self._sizes[name] = model.size
            self._gauges()
            return model

    def _load(self, record: Record) -> _Model:
        """Open and load ``record``'s bundle (in a thread): the model and the memory its load took."""
        from shipyard.bundle import Bundle
        from shipyard.bundle.archive import extract_archive, is_archive

        started = time.perf_counter()
        scratch: tempfile.TemporaryDirectory[str] | None = None
        try:
            path = Path(record.url)
            if is_archive(path):
                scratch = tempfile.TemporaryDirectory(prefix="shipyard-model-")
                extract_archive(path, scratch.name)
                path = Path(scratch.name)
            bundle = Bundle.open(path, self.config.program)
            if bundle.flavor not in self._warm:
                # The first model of a flavor imports its libraries (scikit-learn: tens of MB), which stay for
                # every later model: loaded once and dropped first, so its size is the model's own.
                handler_for(bundle, self._handler_config).load()
                gc.collect()
                self._warm.add(bundle.flavor)
            before = rss_bytes()
            handler = handler_for(bundle, self._handler_config)
            handler.load()
        except BaseException:
            self.model_metrics.load_failures.labels("error").inc()
            if scratch is not None:
                scratch.cleanup()
            raise
        size = max(rss_bytes() - before, bundle.size_bytes())
        batcher = Batcher(
            handler.predict,
            stack,
            split,
            max_rows=self.config.max_batch_size,
            max_requests=None if handler.batchable else 1,
            max_delay=self.config.max_batch_delay_ms / 1000.0,
            max_queue=self.config.max_queue,
            compute=InlineCompute(handler.predict, stack, split),
            idle_check_s=5.0,
        )
        seconds = time.perf_counter() - started
        self.model_metrics.loads.inc()
        self.model_metrics.load_seconds.observe(seconds)
        log.info(
            "model loaded",
            extra={
                "fields": {
                    "model": record.name,
                    "worker": self.slot,
                    "bytes": size,
                    "load_seconds": round(seconds, 3),
                }
            },
        )
        return _Model(record.name, record.url, handler, batcher, size, scratch)

    async def _make_room(self, size: int, keep: str) -> None:
        """Unload the least recently used models (not ``keep``, none with a request in flight) until ``size``
        more bytes fit the budget."""
        for name in list(self.models):
            if self.used + size <= self.budget:
                return
            model = self.models[name]
            if name == keep or model.in_flight:
                continue
            await self._unload(name, "evicted")

    async def _unload(self, name: str, reason: str) -> None:
        model = self.models.pop(name, None)
        if model is None:
            return
        self.used -= model.size
        await self._drop(model)
        self.model_metrics.unloads.labels(reason).inc()
        self._gauges()
        log.info("model unloaded", extra={"fields": {"model": name, "worker": self.slot, "reason": reason}})

    async def _drop(self, model: _Model) -> None:
        await model.batcher.close()
        if model.scratch is not None:
            model.scratch.cleanup()
        gc.collect()

    def _gauges(self) -> None:
        self.model_metrics.loaded.set(len(self.models))
        self.model_metrics.memory.set(self.used)

    async def _sweep(self) -> None:
        """Unload the models a sibling worker unregistered (DELETE /models/NAME reaches one worker)."""
        while True:
            await asyncio.sleep(_SWEEP_S)
            try:
                registered = self.registry.names()
            except OSError:
                continue
            for name in [n for n in self.models if n not in registered]:
                if not self.models[name].in_flight:
                    await self._unload(name, "deleted")


async def _answer(send: Send, status: int, body: bytes, content_type: bytes, cache: bytes | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if cache is not None:
        headers.append((_CACHE, cache))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit / 1048576:.2f} MB (SAGEMAKER_MAX_PAYLOAD_IN_MB)")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
