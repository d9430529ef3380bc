"""``application/x-npy``: a NumPy ``.npy`` array (pickled object arrays are refused)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from shipyard.codecs.media import MediaType
from shipyard.errors import RequestError

__all__ = ["NPYCodec"]

_MAGIC = b"\x93NUMPY"


class NPYCodec:
    media_type = "application/x-npy"

    def decode(self, body: bytes, media: MediaType) -> Any:
        # Check the header before numpy reads the data: np.load would otherwise take a zip (.npz) or a
        # pickle for an array, and allocates whatever shape the header claims before reading the bytes.
        if not body.startswith(_MAGIC):
            raise RequestError("body is not a .npy array (it does not start with the .npy magic bytes)")
        try:
            check_header(io.BytesIO(body), len(body))
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except Exception as exc:  # whatever numpy raises for a body it cannot read, the body is at fault
            raise RequestError(f"body is not a valid .npy array: {reason(exc)}") from None
        return array

    def encode(self, predictions: Any, *, envelope: bool = True) -> bytes:
        out = io.BytesIO()
        array = np.asarray(predictions)
        if array.dtype == object:
            array = array.astype(str)
        np.save(out, array, allow_pickle=False)
        return out.getvalue()


def check_header(stream: Any, size: int) -> None:
    """Read a .npy header from ``stream`` (``size`` bytes in all) and check it before any data is read.

    Raises ValueError for a header that cannot be read, an unknown format version, an object array (it would
    need pickle) or a data length that is not what the header's shape and dtype say (np.load allocates what
    the header claims). A header is a Python literal that numpy reads with ``tokenize`` and ``ast``: whatever
    they raise on a malformed one (``tokenize.TokenError``, ``SyntaxError``, ``TypeError``, ``MemoryError``,
    ``RecursionError``, ``OverflowError``...) comes out as that ValueError too.
    """
    try:
        _check_header(stream, size)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"its header cannot be read: {reason(exc)}") from None


def reason(exc: BaseException) -> str:
    """``exc`` for a client: its text, after its type's name unless it is one of the usual I/O and value errors."""
    text = str(exc)
    if text and isinstance(exc, ValueError | OSError | EOFError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_header(stream: Any, size: int) -> None:
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = npy_format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"format version {version} is not supported; np.save writes 1.0")
    if dtype.hasobject:
        raise ValueError("it is an object array, which would need pickle (refused)")
    expected, stored = math.prod(shape) * dtype.itemsize, size - stream.tell()
    if stored != expected:
        raise ValueError(f"the header says {expected} bytes of data, it holds {stored}")
