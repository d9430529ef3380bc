"""A small HCL writer: attributes, nested blocks, expressions and strings (``${`` escaped), for the Terraform
export. It writes what ``terraform fmt`` would keep, except the alignment of ``=`` (fmt adds it)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Block", "Call", "Expr", "render", "string", "value"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a key with a dash is quoted: never read as a subtraction
_INDENT = "  "


@dataclass(frozen=True)
class Expr:
    """An HCL expression written as it is: ``aws_iam_role.role.arn``, ``var.region``, ``jsonencode({...})``."""

    text: str


@dataclass(frozen=True)
class Call:
    """A function of one value, laid out where it stands: ``jsonencode({...})``."""

    function: str
    argument: Any


@dataclass
class Block:
    """``type "label" ... { body }``; the body holds ``(name, value)`` attributes and nested blocks in order."""

    type: str
    labels: tuple[str, ...] = ()
    body: list[tuple[str, Any] | Block] = field(default_factory=list)

    def set(self, name: str, item: Any) -> None:
        self.body.append((name, item))

    def add(self, block: Block) -> None:
        self.body.append(block)


def string(text: str) -> str:
    """A quoted HCL string holding ``text`` literally (``${`` and ``%{`` escaped)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted.replace("${", "$${").replace("%{", "%%{")


def value(item: Any, depth: int = 0) -> str:
    """``item`` as an HCL value: Expr as written, strings quoted, lists and maps (keys quoted unless names)."""
    if isinstance(item, Expr):
        return item.text
    if isinstance(item, Call):
        return f"{item.function}({value(item.argument, depth)})"
    if isinstance(item, bool):
        return "true" if item else "false"
    if item is None:
        return "null"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, list | tuple):
        parts = [value(x, depth + 1) for x in item]
        flat = "[" + ", ".join(parts) + "]"
        if len(flat) + 2 * depth < 100 and "\n" not in flat:
            return flat
        pad = _INDENT * (depth + 1)
        return "[\n" + "".join(f"{pad}{p},\n" for p in parts) + _INDENT * depth + "]"
    if isinstance(item, dict):
        if not item:
            return "{}"
        pad = _INDENT * (depth + 1)
        lines = [f"{pad}{_key(str(k))} = {value(v, depth + 1)}\n" for k, v in item.items()]
        return "{\n" + "".join(lines) + _INDENT * depth + "}"
    raise TypeError(f"no HCL form for {item!r}")


def _key(name: str) -> str:
    return name if _IDENT.match(name) and name not in ("true", "false", "null") else json.dumps(name)


def render(block: Block, depth: int = 0) -> str:
    pad = _INDENT * depth
    head = " ".join([block.type, *(json.dumps(label) for label in block.labels)])
    lines = [f"{pad}{head} {{"]
    for entry in block.body:
        if isinstance(entry, Block):
            lines.append(render(entry, depth + 1))
        else:
            name, item = entry
            lines.append(f"{pad}{_INDENT}{name} = {value(item, depth + 1)}")
    lines.append(f"{pad}}}")
    return "\n".join(lines)
