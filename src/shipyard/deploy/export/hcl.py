"""A small HCL writer: attributes, nested blocks, expressions and strings (``${`` escaped), for the Terraform
export, laid out the way ``terraform fmt`` lays them (two-space indents, ``=`` aligned in a run of attributes)."""

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
        keys = {k: _key(str(k)) for k in item}
        width = max(len(key) for key in keys.values())
        lines = [f"{pad}{keys[k].ljust(width)} = {value(v, depth + 1)}\n" for k, v in item.items()]
        return "{\n" + "".join(lines) + _INDENT * depth + "}"
    raise TypeError(f"no HCL form for {item!r}")


def _key(name: str) -> str:
    return name if _IDENT.match(name) and name not in ("true", "false", "null") else json.dumps(name)


def render(block: Block, depth: int = 0) -> str:
    """The block, its ``=`` aligned over each run of one-line attributes (as ``terraform fmt`` lays them)."""
    pad = _INDENT * depth
    head = " ".join([block.type, *(json.dumps(label) for label in block.labels)])
    if not block.body:
        return f"{pad}{head} {{}}"
    lines = [f"{pad}{head} {{"]
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(name) for name, _ in run), default=0)
        lines.extend(f"{pad}{_INDENT}{name.ljust(width)} = {text}" for name, text in run)
        run.clear()

    for entry in block.body:
        if isinstance(entry, Block):
            flush()
            lines.append(render(entry, depth + 1))
            continue
        name, item = entry
        text = value(item, depth + 1)
        if "\n" in text:
            run.append((name, text))
            flush()
        else:
            run.append((name, text))
    flush()
    lines.append(f"{pad}}}")
    return "\n".join(lines)
