"""What a :class:`~.model.Stack`'s values refer to: the names in its Refs, GetAtts and Subs (for the writers
that have to order their resources, or check every reference lands)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from shipyard.deploy.export.model import GetAtt, Ref, Resource, Sub

__all__ = ["SUB_NAME", "in_order", "mentions"]

SUB_NAME = re.compile(r"\$\{(?!!)([^}.]+)(?:\.([^}]+))?\}")  # ${Name} or ${Logical.Attr}; ${!literal} is not one


def mentions(value: Any) -> Iterator[tuple[str, str | None]]:
    """``(name, attribute)`` for each reference in ``value``: ``Ref X`` → ``(X, None)``, ``GetAtt X.A`` →
    ``(X, A)``, and each ``${X}`` / ``${X.A}`` of a Sub (pseudo parameters ``AWS::...`` included)."""
    if isinstance(value, Ref):
        yield value.name, None
    elif isinstance(value, GetAtt):
        yield value.logical_id, value.attribute
    elif isinstance(value, Sub):
        for found in SUB_NAME.finditer(value.template):
            yield found.group(1), found.group(2)
    elif isinstance(value, dict):
        for item in value.values():
            yield from mentions(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from mentions(item)


def in_order(resources: list[Resource]) -> list[Resource]:
    """The resources with each one after those it refers to (and depends on), otherwise in the given order."""
    by_id = {r.logical_id: r for r in resources}
    needs = {
        r.logical_id: {name for name, _ in mentions(r.properties) if name in by_id} | set(r.depends_on)
        for r in resources
    }
    placed: list[Resource] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def place(logical_id: str) -> None:
        if logical_id in done or logical_id not in by_id:
            return
        if logical_id in visiting:  # a cycle: CloudFormation refuses it as well; keep the given order
            return
        visiting.add(logical_id)
        for other in sorted(needs[logical_id], key=[r.logical_id for r in resources].index):
            place(other)
        visiting.discard(logical_id)
        done.add(logical_id)
        placed.append(by_id[logical_id])

    for resource in resources:
        place(resource.logical_id)
    return placed
