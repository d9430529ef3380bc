"""``application/x-npz``: a NumPy ``.npz`` archive (decoded only; answers are never NPZ).

Two kinds of body arrive under this type:

* ``scipy.sparse.save_npz`` output, which is what the SageMaker SDK's ``SparseMatrixSerializer`` sends. It is
  decoded as the inference toolkit's default decoder decodes it, with ``scipy.sparse.load_npz``: a scipy sparse
  matrix (or sparse array, when one was saved), of the format that was sent.
* ``numpy.savez`` / ``numpy.savez_compressed`` output holding exactly one array: that array. (The toolkit's
  decoder refuses these; several arrays are refused here too, naming them, since nothing says which is the input.)

A zip archive is a small body that can inflate to anything, so before numpy reads a byte every member's
``.npy`` header is checked against the member's size, the members together may inflate to at most
:data:`MAX_EXPANDED_BYTES`, pickled object arrays are refused, and a sparse matrix's indices are checked
against its shape (scipy trusts them, and ``toarray()`` on an out-of-range index crashes the process).

No encoder: the toolkit writes no NPZ either, and no SDK deserializer asks for it. A request in NPZ without
an ``Accept`` is answered in JSON (``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` still applies).
"""

from __future__ import annotations

import io
import math
import zipfile
from typing import Any

import numpy as np

from shipyard.codecs.media import MediaType
from shipyard.codecs.npy import check_header, reason
from shipyard.errors import RequestError, UnsupportedMediaType

__all__ = ["MAX_EXPANDED_BYTES", "NPZDecoder", "densify", "is_sparse"]

MAX_EXPANDED_BYTES = 256 * 1024 * 1024  # what one archive, or one sparse matrix made dense, may take in memory
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty archive
_SPARSE_MARKER = "format.npy"  # save_npz always writes the matrix's format ("csr", "coo", ...) under this name


class NPZDecoder:
    media_type = "application/x-npz"

    def decode(self, body: bytes, media: MediaType) -> Any:
        if not body.startswith(_ZIP_MAGIC):
            raise RequestError("body is not a .npz archive (it does not start with the zip magic bytes)")
        members = _checked_members(body)
        if _SPARSE_MARKER in members:
            return _sparse(body)
        if len(members) != 1:
            names = ", ".join(name.removesuffix(".npy") for name in members) or "none"
            raise RequestError(
                f"the .npz archive holds {len(members)} arrays ({names}); send one array "
                "(numpy.savez(buffer, x)) or a sparse matrix (scipy.sparse.save_npz)"
            )
        try:
            with np.load(io.BytesIO(body), allow_pickle=False) as archive:
                return archive[archive.files[0]]
        except Exception as exc:  # whatever numpy or zipfile raise for an archive they cannot read
            raise RequestError(f"body is not a valid .npz archive: {reason(exc)}") from None


def _checked_members(body: bytes) -> list[str]:
    """The archive's member names, once every member is known to be a plain ``.npy`` array of its stated size."""
    names: list[str] = []
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise RequestError(f"the .npz archive holds {info.filename!r}, which is not a .npy array")
                total += info.file_size
                if total > MAX_EXPANDED_BYTES:
                    raise RequestError(
                        f"the .npz archive inflates to more than {MAX_EXPANDED_BYTES // (1024 * 1024)} MiB"
                    )
                with archive.open(info) as member:
                    _check_header(member, info.file_size, info.filename)
                names.append(info.filename)
    except RequestError:
        raise
    except Exception as exc:  # zipfile, zlib, bz2 and lzma each raise their own (a corrupt or encrypted member)
        raise RequestError(f"body is not a valid .npz archive: {reason(exc)}") from None
    return names


def _check_header(member: Any, size: int, name: str) -> None:
    try:
        check_header(member, size)
    except ValueError as exc:
        raise RequestError(f"{name} in the .npz archive is not a valid .npy array: {exc}") from None


def _sparse(body: bytes) -> Any:
    try:
        import scipy.sparse
    except ImportError:  # the image has no scipy: this server cannot read sparse bodies at all
        raise UnsupportedMediaType("sparse .npz bodies need scipy, which this server does not have") from None
    try:
        matrix = scipy.sparse.load_npz(io.BytesIO(body))
        check = getattr(matrix, "check_format", None)  # csr, csc, bsr; coo checks its indices when built
        if check is not None:
            check(full_check=True)
    except Exception as exc:  # whatever scipy, numpy or zipfile raise for a matrix they cannot read
        raise RequestError(f"body is not a valid sparse matrix (.npz): {reason(exc)}") from None
    return matrix


def is_sparse(value: Any) -> bool:
    """A scipy sparse matrix or array (recognised by its module, so scipy is never imported for others)."""
    return type(value).__module__.startswith("scipy.sparse") and hasattr(value, "toarray")


def densify(matrix: Any) -> np.ndarray:
    """A sparse matrix as a dense array, refused (400) when that would take more than MAX_EXPANDED_BYTES."""
    size = math.prod(int(d) for d in matrix.shape) * np.dtype(matrix.dtype).itemsize
    if size > MAX_EXPANDED_BYTES:
        shape = " × ".join(str(int(d)) for d in matrix.shape)
        raise RequestError(
            f"the sparse matrix ({shape}) would take {size / 2**20:.0f} MiB dense; "
            f"at most {MAX_EXPANDED_BYTES // 2**20} MiB is accepted"
        )
    return np.asarray(matrix.toarray())
