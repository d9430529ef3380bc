"""Media types: parsing ``Content-Type``, negotiating ``Accept``, and the type a file's suffix stands for.

Both headers repeat on almost every request, so parsing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["MediaType", "canonical", "content_type_for", "parse_accept", "parse_media_type"]

# Spellings users send for the same formats, mapped to the one each codec is registered under.
_ALIASES = {
    "application/json": "application/json",
    "text/json": "application/json",
    "text/csv": "text/csv",
    "application/csv": "text/csv",
    "application/x-npy": "application/x-npy",
    "application/npy": "application/x-npy",
    "application/x-npz": "application/x-npz",
    "application/npz": "application/x-npz",
    "application/jsonlines": "application/jsonlines",
    "application/jsonl": "application/jsonlines",
    "application/x-jsonlines": "application/jsonlines",
    "application/json-lines": "application/jsonlines",
    "application/x-ndjson": "application/jsonlines",
    "application/ndjson": "application/jsonlines",
}


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed media type: ``essence`` is ``type/subtype`` in lower case; ``params`` its parameters."""

    essence: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def charset(self) -> str:
        for key, value in self.params:
            if key == "charset":
                return value
        return "utf-8"


def canonical(essence: str) -> str:
    """The registered spelling of a media type (``application/jsonl`` → ``application/jsonlines``)."""
    return _ALIASES.get(essence, essence)


@lru_cache(maxsize=256)
def parse_media_type(header: str | None) -> MediaType | None:
    """Parse a ``Content-Type`` header; ``None`` when it is missing or empty."""
    if not header:
        return None
    essence, _, rest = header.partition(";")
    essence = essence.strip().lower()
    if not essence:
        return None
    params: list[tuple[str, str]] = []
    for part in rest.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            params.append((key.strip().lower(), value.strip().strip('"').lower()))
    return MediaType(canonical(essence), tuple(params))


@lru_cache(maxsize=256)
def parse_accept(header: str | None) -> tuple[str, ...]:
    """Media ranges of an ``Accept`` header, best first (by q, then by order); q=0 ranges dropped."""
    if not header:
        return ("*/*",)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        essence, _, rest = part.partition(";")
        essence = essence.strip().lower()
        if not essence:
            continue
        q = 1.0
        for param in rest.split(";"):
            key, sep, value = param.partition("=")
            if sep and key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, index, canonical(essence)))
    ranked.sort()
    return tuple(essence for _, _, essence in ranked)


# The type a request file is sent as, by its suffix (`shipyard invoke`, `shipyard bench`, `shipyard verify`).
_BY_SUFFIX = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".npy": "application/x-npy",
    ".jsonl": "application/jsonlines",
    ".jsonlines": "application/jsonlines",
    ".ndjson": "application/jsonlines",
}


def content_type_for(path: str | Path | None, default: str = "application/json") -> str:
    """The media type a file is sent as, by its suffix; ``default`` for standard input (``-``), no file or an
    unknown suffix."""
    if path is None or str(path) == "-":
        return default
    return _BY_SUFFIX.get(Path(path).suffix.lower(), default)
