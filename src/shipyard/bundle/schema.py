"""Input schemas: inferred from an example at save time, enforced on every request before the model runs.

A schema is either a *tensor* (one dtype, a shape whose first dimension is the batch, optional feature
names so records can be sent) or *columns* (a named, typed table, for models fitted on a DataFrame).
``coerce`` turns a decoded payload into the model's input and raises :class:`SchemaMismatch` naming what
is wrong: a feature count, a dtype, a missing field, a value that is not finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shipyard.codecs.csv import CSVRows
from shipyard.codecs.npz import densify, is_sparse
from shipyard.errors import SchemaMismatch

__all__ = ["Schema", "dtype_family"]

Kind = Literal["tensor", "columns", "any"]
_FAMILY_KINDS = {"float": "iuf", "int": "iu", "bool": "b", "string": "UO"}
_FAMILY_NAMES = {"float": "numbers", "int": "integers", "bool": "booleans", "string": "strings"}


def dtype_family(dtype: str) -> str:
    if dtype.startswith("float"):
        return "float"
    if dtype.startswith(("int", "uint")):
        return "int"
    if dtype == "bool":
        return "bool"
    return "string"


@dataclass(frozen=True, slots=True)
class Schema:
    kind: Kind = "any"
    dtype: str = "float64"
    shape: tuple[int, ...] = (-1,)
    names: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    allow_nan: bool = False
    _family: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_family", dtype_family(self.dtype))

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def infer(cls, example: Any, names: tuple[str, ...] = ()) -> Schema:
        """The schema of ``example`` (a numpy array, DataFrame, list of rows or records, or texts)."""
        if example is None:
            return cls()
        if _is_dataframe(example):
            dtypes = tuple(_dtype_name(example[c].to_numpy()) for c in example.columns)
            return cls(
                kind="columns",
                names=tuple(map(str, example.columns)),
                dtypes=dtypes,
                allow_nan=bool(example.isna().to_numpy().any()),
            )
        if isinstance(example, str):
            example = [example]
        if isinstance(example, list | tuple) and example and isinstance(example[0], dict):
            import pandas as pd

            return cls.infer(pd.DataFrame(list(example)))
        array = np.asarray(example)
        if array.ndim == 0:
            array = array.reshape(1)
        dtype = _dtype_name(array)
        allow_nan = bool(array.dtype.kind == "f" and np.isnan(array).any())
        if names and (array.ndim != 2 or len(names) != array.shape[1]):
            names = ()
        return cls(kind="tensor", dtype=dtype, shape=(-1, *array.shape[1:]), names=tuple(names), allow_nan=allow_nan)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "tensor":
            out |= {"dtype": self.dtype, "shape": list(self.shape)}
        if self.names:
            out["names"] = list(self.names)
        if self.kind == "columns":
            out["dtypes"] = list(self.dtypes)
        out["allow_nan"] = self.allow_nan
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Schema:
        if not data:
            return cls()
        return cls(
            kind=data.get("kind", "any"),
            dtype=data.get("dtype", "float64"),
            shape=tuple(data.get("shape", (-1,))),
            names=tuple(data.get("names", ())),
            dtypes=tuple(data.get("dtypes", ())),
            allow_nan=bool(data.get("allow_nan", False)),
        )

    def describe(self) -> str:
        if self.kind == "tensor":
            dims = " × ".join("N" if d == -1 else str(d) for d in self.shape)
            named = f", features {', '.join(self.names[:6])}{'…' if len(self.names) > 6 else ''}" if self.names else ""
            return f"{self.dtype}[{dims}]{named}"
        if self.kind == "columns":
            return "table: " + ", ".join(f"{n}:{t}" for n, t in zip(self.names, self.dtypes, strict=True))
        return "any (no example was given)"

    # -- enforcement -----------------------------------------------------------------------------
    def coerce(self, payload: Any) -> tuple[Any, int]:
        """The model input for ``payload`` and its number of rows; :class:`SchemaMismatch` if it does not fit."""
        if is_sparse(payload):  # an NPZ body: the schema is dense (one dtype and shape), and so is stacking
            payload = densify(payload)
        if self.kind == "columns":
            return self._coerce_columns(payload)
        if self.kind == "tensor":
            return self._coerce_tensor(payload)
        return _coerce_any(payload)

    def _coerce_tensor(self, payload: Any) -> tuple[np.ndarray, int]:
        one_dim = len(self.shape) == 1
        if isinstance(payload, CSVRows):
            rows: Any = payload
            if self.names and rows and tuple(c.strip() for c in rows[0]) == self.names:
                rows = rows[1:]
            if not rows:
                raise SchemaMismatch("no rows after the CSV header")
            if one_dim:
                if any(len(r) != 1 for r in rows):
                    raise SchemaMismatch("expected one value per CSV line")
                rows = [r[0] for r in rows]
            else:
                _check_csv_widths(rows, self.shape[1] if len(self.shape) == 2 and self.shape[1] != -1 else None)
            array = self._from_text(rows)
        elif isinstance(payload, np.ndarray):
            array = payload
            if array.ndim == len(self.shape) - 1:
                array = array[np.newaxis, ...]
        else:
            if isinstance(payload, dict):
                payload = [payload]
            elif not isinstance(payload, list):
                if not one_dim:
                    raise SchemaMismatch(_shape_hint(self))
                payload = [payload]
            if not payload:
                raise SchemaMismatch("the request holds no rows")
            if isinstance(payload[0], dict):
                payload = self._records_to_rows(payload)
            elif not one_dim and not isinstance(payload[0], list):
                payload = [payload]  # a single row sent bare: [1.0, 2.0, ...]
            array = _as_array(payload)
        self._check_array(array)
        return array, len(array)

    def _from_text(self, rows: Any) -> np.ndarray:
        if self._family == "string":
            return np.asarray(rows, dtype=object)
        try:
            return np.asarray(rows, dtype=np.float64 if self._family == "float" else self.dtype)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SchemaMismatch(f"CSV cells must be {_FAMILY_NAMES[self._family]}: {exc}") from None

    def _records_to_rows(self, records: list[Any]) -> list[Any]:
        if not self.names:
            raise SchemaMismatch("this model takes arrays, not records: it has no feature names; " + _shape_hint(self))
        rows = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise SchemaMismatch(f"row {index} is not a record like the others")
            try:
                rows.append([record[name] for name in self.names])
            except KeyError as exc:
                raise SchemaMismatch(f"record {index} is missing field {exc.args[0]!r}") from None
        return rows

    def _check_array(self, array: np.ndarray) -> None:
        if array.ndim != len(self.shape):
            raise SchemaMismatch(f"expected {len(self.shape)}-D input ({_shape_hint(self)}), got {array.ndim}-D")
        if array.shape[0] == 0:
            raise SchemaMismatch("the request holds no rows")
        if array.shape[1:] != self.shape[1:]:  # checked on every request: the exact match is the fast path
            for axis, (want, got) in enumerate(zip(self.shape[1:], array.shape[1:], strict=True), start=1):
                if want != -1 and want != got:
                    what = "features per row" if axis == 1 else f"values on axis {axis}"
                    raise SchemaMismatch(f"expected {want} {what}, got {got}")
        kinds = _FAMILY_KINDS[self._family]
        if array.dtype.kind not in kinds:
            got = "strings" if array.dtype.kind in "USO" else str(array.dtype)
            raise SchemaMismatch(f"expected {_FAMILY_NAMES[self._family]} ({self.dtype}), got {got}")
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not np.logical_and.reduce(finite, axis=None):  # ndarray.all() costs 3 µs more per request
                bad = ~finite if not self.allow_nan else np.isinf(array)
                if bad.any():
                    where = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise SchemaMismatch(f"value at {list(where)} is not a finite number")

    def _coerce_columns(self, payload: Any) -> tuple[Any, int]:
        import pandas as pd

        if isinstance(payload, dict):
            payload = [payload]
        if isinstance(payload, CSVRows):
            rows = payload[1:] if payload and tuple(c.strip() for c in payload[0]) == self.names else payload
            payload = list(rows)
        if isinstance(payload, np.ndarray):
            payload = payload.tolist() if payload.ndim == 2 else payload
        if not isinstance(payload, list) or not payload:
            raise SchemaMismatch("expected rows or records of " + ", ".join(self.names))
        if isinstance(payload[0], dict):
            missing = [n for n in self.names if any(n not in r for r in payload if isinstance(r, dict))]
            if missing:
                raise SchemaMismatch(f"missing field {missing[0]!r} (the model takes {', '.join(self.names)})")
            if not all(isinstance(r, dict) for r in payload):
                raise SchemaMismatch("mixed records and arrays in one request")
            frame = pd.DataFrame.from_records(payload, columns=list(self.names))
        else:
            if not isinstance(payload[0], list):
                payload = [payload]
            widths = {len(r) if isinstance(r, list) else -1 for r in payload}
            if widths != {len(self.names)}:
                raise SchemaMismatch(f"expected {len(self.names)} values per row ({', '.join(self.names)})")
            frame = pd.DataFrame(payload, columns=list(self.names))
        for name, dtype in zip(self.names, self.dtypes, strict=True):
            frame[name] = _cast_column(frame[name], name, dtype, self.allow_nan)
        return frame, len(frame)


def _cast_column(column: Any, name: str, dtype: str, allow_nan: bool) -> Any:
    import pandas as pd

    family = dtype_family(dtype)
    if family == "string":
        if not all(isinstance(v, str) or v is None for v in column):
            raise SchemaMismatch(f"field {name!r} must be a string")
        return column.astype(object)
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bad.any():
        raise SchemaMismatch(f"field {name!r} must be {_FAMILY_NAMES[family]}, got {column[bad].iloc[0]!r}")
    values = converted.to_numpy()
    if values.dtype.kind == "f" and np.isinf(values).any():
        raise SchemaMismatch(f"field {name!r} holds a value that is not a finite number")
    if converted.isna().any():
        if not allow_nan:
            raise SchemaMismatch(f"field {name!r} is missing a value (null)")
        return converted.astype("float64")
    if family == "int" and values.dtype.kind == "f":
        if not np.equal(np.mod(values, 1), 0).all():
            raise SchemaMismatch(f"field {name!r} must be integers")
        limits = np.iinfo(dtype)
        if ((values < limits.min) | (values > limits.max)).any():  # astype would wrap around silently
            raise SchemaMismatch(f"field {name!r} holds a value out of range for {dtype}")
    try:
        return converted.astype(dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SchemaMismatch(f"field {name!r} cannot be {dtype}: {exc}") from None


def _coerce_any(payload: Any) -> tuple[Any, int]:
    if isinstance(payload, CSVRows):
        payload = list(payload)
    if isinstance(payload, np.ndarray):
        return payload, len(payload) if payload.ndim else 1
    if not isinstance(payload, list):
        payload = [payload]
    if not payload:
        raise SchemaMismatch("the request holds no rows")
    try:
        array = np.asarray(payload)
    except (ValueError, TypeError):
        return payload, len(payload)
    if array.dtype == object:
        return payload, len(payload)
    return array, len(array)


def _as_array(rows: list[Any]) -> np.ndarray:
    try:
        array = np.asarray(rows)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise SchemaMismatch(f"rows are not a regular array: {_short(exc)}") from None
    if array.dtype == object:
        if all(isinstance(r, str) for r in rows):
            return array
        for index in np.ndindex(array.shape):
            if array[index] is None:
                raise SchemaMismatch(f"value at {list(index)} is missing (null)")
        raise SchemaMismatch("rows have different lengths or mix types")
    return array


def _check_csv_widths(rows: list[list[str]], width: int | None) -> None:
    expected = width if width is not None else len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != expected:
            raise SchemaMismatch(f"CSV row {number} has {len(row)} values, expected {expected}")


def _shape_hint(schema: Schema) -> str:
    if len(schema.shape) == 1:
        return "send a list of values, one per row"
    width = schema.shape[1] if len(schema.shape) > 1 else "?"
    return f'send a list of rows, each of {width} values, e.g. {{"instances": [[...], [...]]}}'


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def _dtype_name(array: np.ndarray) -> str:
    if array.dtype.kind in "USO":
        return "string"
    return str(array.dtype)


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")
