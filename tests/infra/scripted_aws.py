"""Answer one AWS operation from a script while every other call goes to the moto server.

moto makes endpoints InService at once and does not implement UpdateEndpoint, so the Creating, Failed and
Updating paths cannot be reached through it. This is botocore's Stubber mechanism (a ``before-call``
handler that returns the response) applied to exactly one operation of one client; tests that use it say so.
Calls from several threads at once are answered each with its own parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse

Answer = dict[str, Any] | tuple[str, str, int] | Callable[[dict[str, Any]], Any]

__all__ = ["answer", "error"]


def error(code: str, message: str, status: int = 400) -> tuple[str, str, int]:
    return (code, message, status)


def answer(client: Any, operation: str, *script: Answer) -> list[dict[str, Any]]:
    """Answer ``operation`` with ``script`` in order (the last entry repeats); the calls' parameters.

    An entry is a parsed response (dict), an :func:`error`, or a function of the call's parameters
    returning either (so a script can follow what the code under test sent).
    """
    calls: list[dict[str, Any]] = []
    queue = list(script)
    lock = threading.Lock()
    service = client.meta.service_model.service_id.hyphenize()

    def capture(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["scripted_params"] = dict(params)  # the API parameters, before they are serialised
        with lock:
            calls.append(context["scripted_params"])

    def respond(context: dict[str, Any], **_: Any) -> Any:
        with lock:
            item = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(item):
            item = item(context["scripted_params"])
        if isinstance(item, tuple):
            code, message, status = item
            parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
            return AWSResponse("https://scripted", status, {}, None), parsed
        return AWSResponse("https://scripted", 200, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 200}, **item}

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", capture)
    client.meta.events.register(f"before-call.{service}.{operation}", respond)
    return calls
