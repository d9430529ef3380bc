"""Loading a cloudpickle without touching the live classes of the process that loads it.

cloudpickle tracks every class it pickled by value. Loaded again in the same process (``shipyard.save`` loads the
bundle it wrote to check it; tests and notebooks load bundles in-process), the pickle does not make a new class:
it takes the tracked original and overwrites its methods with the unpickled copies, whose code says
``<dynamic-code>`` instead of the file it came from. The user's class in the notebook is then silently changed:
``inspect.getsource`` and ``torch.jit.script`` fail on it, tracebacks lose their lines. Loading with an empty
tracker makes fresh classes instead, as a server process gets: the original is left as it was.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

__all__ = ["load_pickle"]

_LOCK = threading.Lock()


def load_pickle(path: Path) -> Any:
    import cloudpickle
    import cloudpickle.cloudpickle as internals

    with path.open("rb") as data:
        tracker = getattr(internals, "_DYNAMIC_CLASS_TRACKER_BY_ID", None)
        if not isinstance(tracker, weakref.WeakValueDictionary):  # another cloudpickle: load as it does
            return cloudpickle.load(data)
        with _LOCK:
            internals._DYNAMIC_CLASS_TRACKER_BY_ID = weakref.WeakValueDictionary()
            try:
                return cloudpickle.load(data)
            finally:
                internals._DYNAMIC_CLASS_TRACKER_BY_ID = tracker
