"""Feed chunks of rows to one profile per feature, split by time window when the rows carry times."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from shipyard.config import usable_cores
from shipyard.monitor.profile import NumericProfile, StringProfile, all_numbers, to_float
from shipyard.monitor.sources import Chunk

__all__ = ["Profiler", "kind_of"]

Profile = NumericProfile | StringProfile
_CORES = usable_cores()
_POOL = ThreadPoolExecutor(_CORES, thread_name_prefix="shipyard-profile") if _CORES > 1 else None


def _feed(profile: Profile, column: pa.ChunkedArray, window: int | None) -> None:
    if isinstance(profile, NumericProfile):
        values, text, fractional = to_float(column)
        profile.add(values, text, window, fractional)
    else:
        profile.add(column, window)


def kind_of(column: pa.ChunkedArray) -> str | None:
    """``numeric``, ``string``, or ``None`` when the column holds only nulls so far.

    Text in which every value is a number (a string column of ``"0.25"``, ``"3"``) is numeric, as Model
    Monitor types values by how they are written; text that turns up later makes a baseline read the column
    again as a string one (see :func:`shipyard.monitor.baseline.make_baseline`).
    """
    data_type = column.type
    if pa.types.is_null(data_type) or column.null_count == len(column):
        return None
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "numeric"
    if (pa.types.is_string(data_type) or pa.types.is_large_string(data_type)) and all_numbers(column):
        return "numeric"
    return "string"


class Profiler:
    """Profiles for the features of a data set, built chunk by chunk.

    ``kinds`` fixes the features (a drift check: the baseline's features, columns beyond them are counted
    as extra); without it every column becomes a feature, its kind inferred from its Arrow type unless
    ``forced`` names it (a baseline's second pass makes a column with text in it a ``string`` one).
    ``edges`` gives numeric features the baseline's bin edges; ``window_s`` splits rows by time.

    A chunk's rows may come with only some of their columns (:attr:`Chunk.columns` names them all, a
    :attr:`Chunk.continuation` brings more columns of rows already counted): a column the rows have is
    counted where it comes, and only a column they lack is missing from them.
    """

    def __init__(
        self,
        kinds: Mapping[str, str] | None = None,
        *,
        edges: Mapping[str, np.ndarray] | None = None,
        keep_small: int = 0,
        window_s: float | None = None,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        forced: Mapping[str, str] | None = None,
    ) -> None:
        self.fixed = kinds is not None
        self.forced = dict(forced or {})
        self.edges = dict(edges or {})
        self.keep_small = keep_small
        self.window_s = window_s
        self.include = None if include is None else list(include)
        self.exclude = set(exclude)
        self.rows = 0
        self.profiles: dict[str, Profile] = {}
        self.seen: dict[str, None] = {}  # every feature column, in the order the source first had it
        self.present: dict[str, int] = {}  # rows of chunks in which the column existed
        self.extra: dict[str, int] = {}
        self.window_rows: dict[int, int] = {}
        self._pending_missing: dict[str, int] = {}
        if kinds is not None:
            for name, kind in kinds.items():
                self.profiles[name] = self._new(name, kind)
                self.present[name] = 0

    def _new(self, name: str, kind: str) -> Profile:
        if kind in ("numeric", "integer"):
            # "integer": a check whose constraints expect Integral counts the values that are not whole
            track = kind == "integer"
            return NumericProfile(self.edges.get(name), keep_small=self.keep_small, track_integers=track)
        return StringProfile()

    @property
    def order(self) -> list[str]:
        names = list(self.profiles)
        if self.include is not None:
            return [n for n in self.include if n in self.profiles]
        return names

    def add(self, chunk: Chunk) -> None:
        table = chunk.table
        if not table.num_rows:
            return
        if self.window_s and chunk.times is not None:
            slots = np.floor(chunk.times / self.window_s)
            slots[np.isnan(slots)] = -1
            slots = slots.astype(np.int64)
            first = slots[0]
            if (slots == first).all():
                self._add(table, int(first), chunk.continuation, chunk.columns)
            else:
                for slot in np.unique(slots):
                    self._add(table.filter(pa.array(slots == slot)), int(slot), chunk.continuation, chunk.columns)
        else:
            self._add(table, None, chunk.continuation, chunk.columns)

    def _add(self, table: pa.Table, window: int | None, continuation: bool, columns: frozenset[str] | None) -> None:
        n = table.num_rows
        # the rows' columns: those of this chunk, and those the source delivers in chunks of their own
        held = frozenset(table.column_names) if columns is None else columns | frozenset(table.column_names)
        if continuation:  # more columns of rows already counted: no new rows, absent columns are elsewhere
            before = 0
        else:
            before = self.rows
            self.rows += n
            if window is not None:
                self.window_rows[window] = self.window_rows.get(window, 0) + n
        work: list[tuple[Profile, pa.ChunkedArray]] = []
        for name in table.column_names:
            if name in self.exclude or (self.include is not None and name not in self.include):
                continue
            column = table.column(name)
            profile = self.profiles.get(name)
            if profile is None:
                self.seen.setdefault(name)
                if self.fixed:
                    self.extra[name] = self.extra.get(name, 0) + n
                    continue
                kind = self.forced.get(name) or kind_of(column)
                if kind is None:
                    self._pending_missing[name] = self._pending_missing.get(name, before) + n
                    continue
                profile = self.profiles[name] = self._new(name, kind)
                profile.missing += self._pending_missing.pop(name, before)
                self.present[name] = 0
            self.present[name] += n
            work.append((profile, column))
        # numpy's sort and Arrow's kernels release the GIL: columns are profiled on every core
        if len(work) > 1 and _POOL is not None:
            list(_POOL.map(lambda item: _feed(item[0], item[1], window), work))
        else:
            for profile, column in work:
                _feed(profile, column, window)
        if continuation:
            return
        for name, profile in self.profiles.items():
            if name not in held:
                profile.missing += n
        for name in list(self._pending_missing):
            if name not in held:
                self._pending_missing[name] += n

    def unknown(self) -> dict[str, int]:
        """Columns that held nothing but nulls: name → rows."""
        return {name: missing for name, missing in self._pending_missing.items() if name not in self.profiles}
