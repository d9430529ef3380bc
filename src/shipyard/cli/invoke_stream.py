"""``shipyard invoke NAME --stream``: a streamed answer written out chunk by chunk as it arrives.

Chunks go to stdout (or ``--output FILE``) as they come, flushed each time. ``--json``: stdout holds one
document at the end instead (``shipyard.invoke-stream/1``: chunks, bytes, time to first byte and to the end;
docs/schemas/invoke-stream.v1.json), the chunks going to ``--output`` when it is given. An error mid-stream
(the server's ``ModelStreamError`` record, SageMaker's event) exits 4 after the chunks before it were written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from shipyard.cli.output import print_json
from shipyard.errors import InvokeError

if TYPE_CHECKING:
    from shipyard.deploy.endpoint import Destination

__all__ = ["run_stream"]


def run_stream(
    where: Destination,
    body: bytes,
    *,
    content_type: str,
    accept: str | None,
    timeout_s: float,
    output: Path | None,
    summary: bool,
) -> None:
    chunks = where.stream(body, content_type=content_type, accept=accept, timeout_s=timeout_s)
    sink: BinaryIO | None = None
    if output is not None:
        sink = output.open("wb")
    elif not summary:
        sink = sys.stdout.buffer
    error: InvokeError | None = None
    try:
        for chunk in chunks:
            if sink is not None:
                sink.write(chunk)
                sink.flush()
    except InvokeError as exc:
        error = exc
    finally:
        if output is not None and sink is not None:
            sink.close()
    if summary:
        document = {
            "target": where.name or where.url,
            "content_type": chunks.content_type or None,
            **chunks.summary(),
            "output": str(output) if output is not None else None,
            "error": str(error) if error is not None else None,
        }
        print_json("invoke-stream", document)
    if error is not None:
        raise error
