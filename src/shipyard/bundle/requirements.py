"""Pin requirements from the running environment, so the image gets what the notebook had."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import metadata

__all__ = ["pin"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def pin(requirements: Iterable[str]) -> list[str]:
    """``name`` → ``name==installed-version``; specifiers given by the user are kept as written.

    Names that are not installed here are kept unpinned (the image build will resolve them).
    Duplicates collapse to their first spelling; the result is sorted for stable diffs.
    """
    pinned: dict[str, str] = {}
    for requirement in requirements:
        requirement = requirement.strip()
        match = _NAME.match(requirement)
        if not match:
            continue
        name = match.group(0)
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in pinned:
            continue
        if requirement != name:
            pinned[key] = requirement
            continue
        try:
            pinned[key] = f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            pinned[key] = name
    return [pinned[key] for key in sorted(pinned)]
