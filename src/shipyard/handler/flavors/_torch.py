"""What the PyTorch-based flavors share: thread sizing, and recognising torch objects without importing torch.

A worker gets its share of the cores (``usable cores ÷ workers``, or ``SHIPYARD_MODEL_THREADS``) for torch's
intra-op pool and a single inter-op thread: compute-bound models on a CPU gain nothing from more threads
than cores, and N workers × all-cores threads each is the classic oversubscription that makes every
request slower.
"""

from __future__ import annotations

import contextlib
from typing import Any

from shipyard.config import ServerConfig, usable_cores

__all__ = ["configure_threads", "is_instance_of", "threads_for"]


def threads_for(config: ServerConfig) -> int:
    """Intra-op threads for one worker: ``config.model_threads``, else usable cores ÷ workers (at least 1)."""
    if config.model_threads > 0:
        return config.model_threads
    return max(1, usable_cores() // max(1, config.workers))


def configure_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    # set_num_interop_threads may be called once per process, before any inter-op work; a second call
    # (a model reloaded in the same process) raises, and the first setting still holds.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def is_instance_of(obj: Any, module_prefix: str, class_name: str) -> bool:
    """``isinstance`` by name, so detecting a flavor never imports torch (seconds) for other models."""
    return any(
        klass.__name__ == class_name and klass.__module__.startswith(module_prefix) for klass in type(obj).__mro__
    )
