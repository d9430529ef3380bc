"""``--output table|json``: the one switch between the human view and a document for scripts.

With ``json`` a command writes exactly one JSON document to stdout and nothing else there (progress,
warnings and logs go to stderr), so ``shipyard status --output json | jq`` always parses. Every document
carries ``"schema": "shipyard.COMMAND/1"``, which names its JSON Schema in ``docs/schemas/`` (see
docs/cli-json.md); keys are only ever added within one schema version, never renamed or removed.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Any

import orjson
import typer

__all__ = ["OUTPUT_OPTION", "Output", "print_json", "schema_id"]


class Output(StrEnum):
    table = "table"
    json = "json"


OUTPUT_OPTION = typer.Option(
    Output.table, "--output", help="table for people, json for scripts (one document on stdout; docs/cli-json.md)."
)


def schema_id(command: str, version: int = 1) -> str:
    """``shipyard.status/1``: the value of a document's ``schema`` key (docs/schemas/status.v1.json)."""
    return f"shipyard.{command}/{version}"


def print_json(command: str, document: dict[str, Any]) -> None:
    """Write ``document`` (with its ``schema`` key first) to stdout as one JSON document."""
    body = {"schema": schema_id(command), **document}
    sys.stdout.buffer.write(orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    sys.stdout.flush()
