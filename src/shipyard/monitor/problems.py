"""Problems found in the input: collected and reported, never fatal on their own (the rest is still read).

:class:`ArgumentError` is the one that is fatal: a value given to a monitor function cannot be used. It
names the function's parameter; the CLI names the option that sets it instead (``since`` → ``--since``).
"""

from __future__ import annotations

from collections import Counter

from shipyard.errors import MonitorError

__all__ = ["ArgumentError", "Problems"]


class ArgumentError(MonitorError):
    """``argument`` (a parameter of the monitor's functions) has a value that cannot work: ``problem`` says why.

    ``value`` is the value as the message shows it (``None``: the message is about the argument as a whole).
    """

    def __init__(self, argument: str, value: str | None, problem: str) -> None:
        super().__init__(self.wording(argument, value, problem))
        self.argument = argument
        self.value = value
        self.problem = problem

    @staticmethod
    def wording(name: str, value: str | None, problem: str) -> str:
        """``name value: problem`` (the CLI words it with its option's name in place of the argument's)."""
        return f"{name} {value}: {problem}" if value is not None else f"{name}: {problem}"


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
