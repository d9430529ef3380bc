"""The handler contract the server drives, whatever the bundle holds.

The server calls, per request, ``prepare`` on the event loop (cheap: decode and validate), then
``predict`` in the compute thread on one or several prepared inputs stacked together, then ``finish``
on the event loop (encode). Handlers that cannot stack inputs (``batchable = False``) get one request
per ``predict`` call.

``load`` and ``predict`` usually run in the worker's model process, ``prepare`` and ``finish`` in the worker
(see :mod:`shipyard.serving.compute`). A handler whose ``prepare`` or ``finish`` depends on what ``load``
found defines ``loaded_state()`` (a picklable summary, returned in the model process after loading) and
``adopt(state)`` (called with it in the worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["Handler", "Prepared", "split", "stack"]


@dataclass(slots=True)
class Prepared:
    """A request ready for the model: its input, its number of rows, and how to answer it."""

    inputs: Any
    rows: int
    answer: Any = None  # the handler's own note on how to encode the answer (e.g. a codec)


class Handler(Protocol):
    batchable: bool
    description: str
    # Whether loading starts no threads, so the supervisor may load it once before forking the workers
    # (SHIPYARD_PRELOAD=auto): thread pools do not survive fork.
    preloadable: bool

    def load(self) -> None: ...

    def prepare(self, body: bytes, content_type: str | None, accept: str | None) -> Prepared: ...

    def predict(self, inputs: Any) -> Any: ...

    def finish(self, predictions: Any, prepared: Prepared) -> tuple[bytes, str]: ...


def stack(parts: list[Any]) -> Any:
    """Concatenate the inputs of several requests along the batch axis."""
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, np.ndarray):
        return np.concatenate(parts, axis=0)
    if type(first).__name__ == "DataFrame":
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    stacked: list[Any] = []
    for part in parts:
        stacked.extend(part)
    return stacked


def split(predictions: Any, sizes: list[int]) -> list[Any]:
    """Cut a batch's predictions back into one piece per request (``sizes`` rows each)."""
    if len(sizes) == 1:
        return [predictions]
    total = sum(sizes)
    length = len(predictions)
    if length != total:
        raise ValueError(f"the model returned {length} predictions for {total} rows")
    take = predictions.iloc if type(predictions).__name__ in ("DataFrame", "Series") else predictions
    pieces = []
    start = 0
    for size in sizes:
        pieces.append(take[start : start + size])
        start += size
    return pieces
