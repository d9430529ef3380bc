"""The local target's asynchronous inference: a queue on 127.0.0.1 in front of the container (``app``), run as a
detached process (``process``), reached through :class:`LocalAsyncChannel` (``channel``) with a directory as its
bucket."""

from shipyard.deploy.queue.app import AsyncQueue, QueueConfig
from shipyard.deploy.queue.channel import LocalAsyncChannel, bucket_dir
from shipyard.deploy.queue.process import QueueProcess, is_queue, start_queue, stop_queue
from shipyard.deploy.queue.store import file_uri, path_of

__all__ = [
    "AsyncQueue",
    "LocalAsyncChannel",
    "QueueConfig",
    "QueueProcess",
    "bucket_dir",
    "file_uri",
    "is_queue",
    "path_of",
    "start_queue",
    "stop_queue",
]
