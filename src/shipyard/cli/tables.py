"""Tables that never cut what a user acts on, in a terminal of any width and in a pipe.

Rich fits a table to the console by shrinking columns and ending cells with "…": a state becomes ``InServi…``,
a URL ``http:/…``, a rate ``1568.…``. Instead, a table here keeps every cell whole and chooses columns: in a
terminal (or with ``COLUMNS`` set) the required ones, then each optional one, most useful first, while the table
still fits; in a pipe or a file, every column at the table's natural width (nothing there wraps it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["available_width", "fitted_table", "natural_width", "print_fitted"]


def available_width(console: Console) -> int | None:
    """The terminal's width; None (no limit) when stdout is a pipe or a file and ``COLUMNS`` is not set."""
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console.width
    return None


def natural_width(console: Console, table: Table) -> int:
    return console.measure(table, options=console.options.update_width(100_000)).maximum


def fitted_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    caption: str | None = None,
    right: Sequence[str] = (),
) -> Table:
    """A table of ``columns`` (a subset of ``header``, in header order) whose cells never wrap or end in "…"."""
    index = {name: i for i, name in enumerate(header)}
    shown = [name for name in header if name in columns]
    cells = [[row[index[name]] if isinstance(row[index[name]], Text) else Text(str(row[index[name]])) for name in shown]
             for row in rows]  # fmt: skip
    table = Table(title=Text(title) if title else None, caption=Text(caption) if caption else None)
    for position, name in enumerate(shown):
        widest = max([len(name), *(len(row[position]) for row in cells)])
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True, min_width=widest)
    for row in cells:
        table.add_row(*row)
    return table


def print_fitted(
    console: Console,
    header: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    title: str | None = None,
    caption: str | None = None,
    right: Sequence[str] = (),
    too_narrow: str = "refuse",
) -> bool:
    """Print the widest table that fits (see the module's docstring).

    When even ``required`` does not fit, ``too_narrow="refuse"`` prints nothing and returns False (the caller
    prints another way); ``"overflow"`` prints the required columns whole anyway, wider than the terminal.
    """
    width = available_width(console)
    if width is None:
        table = fitted_table(header, rows, [*required, *optional], title=title, caption=caption, right=right)
        _print_wide(console, table)
        return True
    shown = list(required)
    narrowest = fitted_table(header, rows, shown, title=title, caption=caption, right=right)
    if natural_width(console, narrowest) > width:
        if too_narrow == "overflow":
            _print_wide(console, narrowest)
            return True
        return False
    for column in optional:  # the most useful first; one that does not fit leaves room for a narrower one
        trial = fitted_table(header, rows, [*shown, column], title=title, caption=caption, right=right)
        if natural_width(console, trial) <= width:
            shown.append(column)
    console.print(fitted_table(header, rows, shown, title=title, caption=caption, right=right))
    return True


def _print_wide(console: Console, table: Table) -> None:
    Console(file=console.file, width=max(console.width, natural_width(console, table))).print(table)
