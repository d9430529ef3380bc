"""Problems found in the input: collected and reported, never fatal on their own (the rest is still read)."""

from __future__ import annotations

from collections import Counter

__all__ = ["Problems"]


class Problems:
    """A bounded log of input problems: the first ``limit`` messages of each kind, and a count of all."""

    def __init__(self, limit: int = 10) -> None:
        self.limit = limit
        self.counts: Counter[str] = Counter()
        self.messages: list[str] = []
        self._shown: Counter[str] = Counter()

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        if self._shown[kind] < self.limit:
            self._shown[kind] += 1
            self.messages.append(message)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def summary(self) -> list[str]:
        """The messages kept, then one line per kind whose further messages were left out."""
        lines = list(self.messages)
        for kind, count in self.counts.items():
            if count > self._shown[kind]:
                lines.append(f"… and {count - self._shown[kind]} more problems of kind {kind!r}")
        return lines

    def to_dict(self) -> dict[str, object]:
        return {"counts": dict(self.counts), "messages": self.summary()}
