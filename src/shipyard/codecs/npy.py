"""``application/x-npy``: a NumPy ``.npy`` array (pickled object arrays are refused)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from shipyard.codecs.media import MediaType
from shipyard.errors import RequestError

__all__ = ["NPYCodec"]


class NPYCodec:
    media_type = "application/x-npy"

    def decode(self, body: bytes, media: MediaType) -> Any:
        try:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise RequestError(f"body is not a valid .npy array: {exc}") from None
        if not isinstance(array, np.ndarray):  # an .npz archive
            raise RequestError("body is an .npz archive; send a single .npy array")
        return array

    def encode(self, predictions: Any, *, envelope: bool = True) -> bytes:
        out = io.BytesIO()
        array = np.asarray(predictions)
        if array.dtype == object:
            array = array.astype(str)
        np.save(out, array, allow_pickle=False)
        return out.getvalue()
