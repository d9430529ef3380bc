"""``application/x-npz``: what the SDK's SparseMatrixSerializer sends, decoded as the inference toolkit decodes it.

The reference is the real ``sagemaker_inference.decoder.decode`` (``scipy.sparse.load_npz``) on the real bytes
``sagemaker.serializers.SparseMatrixSerializer`` makes; ``numpy.savez`` bodies of one array are read as that array
(the toolkit refuses them). Hostile archives are refused with a 400 before numpy or scipy allocate anything.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import numpy as np
import pytest
import scipy.sparse

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from sagemaker.serializers import SparseMatrixSerializer
from sagemaker_inference import decoder as toolkit_decoder

from shipyard.bundle.schema import Schema
from shipyard.codecs import decoder_for, encoder_for, parse_media_type
from shipyard.codecs.npz import MAX_EXPANDED_BYTES, NPZDecoder
from shipyard.errors import NotAcceptable, RequestError, SchemaMismatch

NPZ = NPZDecoder()
MEDIA = parse_media_type("application/x-npz")
assert MEDIA is not None


def _savez(compressed: bool = False, **arrays: Any) -> bytes:
    out = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(out, **arrays)
    return out.getvalue()


def _matrix(fmt: str) -> Any:
    dense = np.zeros((4, 6))
    dense[0, 1], dense[2, 5], dense[3, 0] = 1.5, -2.0, 7.0
    return scipy.sparse.csr_matrix(dense).asformat(fmt)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia"])
def test_sdk_sparse_bodies_decode_as_the_toolkit_decodes_them(fmt: str) -> None:
    body = SparseMatrixSerializer().serialize(_matrix(fmt))
    ours = NPZ.decode(body, MEDIA)
    theirs = toolkit_decoder.decode(body, "application/x-npz")
    assert type(ours) is type(theirs)
    assert ours.format == theirs.format == fmt
    np.testing.assert_array_equal(ours.toarray(), theirs.toarray())


def test_a_sparse_array_stays_an_array() -> None:
    out = io.BytesIO()
    scipy.sparse.save_npz(out, scipy.sparse.csr_array(_matrix("csr")))
    decoded = NPZ.decode(out.getvalue(), MEDIA)
    assert isinstance(decoded, scipy.sparse.csr_array)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_savez_body_of_one_array_is_that_array(compressed: bool) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    decoded = NPZ.decode(_savez(compressed, x=array), MEDIA)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, array)


def test_several_arrays_are_refused_naming_them() -> None:
    with pytest.raises(RequestError, match=r"holds 2 arrays \(a, b\)"):
        NPZ.decode(_savez(a=np.zeros(2), b=np.ones(2)), MEDIA)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def _pickled() -> bytes:
    out = io.BytesIO()
    np.save(out, np.array([object()], dtype=object), allow_pickle=True)
    return out.getvalue()


def _bad_csr() -> bytes:
    # indices point past the matrix's 3 columns: scipy builds it, and toarray() would write out of bounds
    return _savez(
        indices=np.array([0, 99], dtype=np.int32),
        indptr=np.array([0, 1, 2], dtype=np.int32),
        format=np.array("csr"),
        shape=np.array([2, 3]),
        data=np.array([1.0, 2.0]),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "zip magic", id="empty"),
        pytest.param(b"\x93NUMPY\x01\x00", "zip magic", id="an-npy-body"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 40, "not a valid .npz", id="zip-magic-only"),
        pytest.param(_zip({"notes.txt": b"hello"}), "not a .npy array", id="not-npy-member"),
        pytest.param(_zip({"x.npy": _pickled()}), "object array", id="pickled-objects"),
        pytest.param(_zip({"x.npy": _npy_header((10**12,)) + b"\x00" * 16}), "header says", id="claims-8-TB"),
        pytest.param(_savez(format=np.array("csr"), shape=np.array([2, 2])), "not a valid sparse", id="half-sparse"),
        pytest.param(_bad_csr(), "indices must be <", id="indices-out-of-range"),
    ],
)
def test_bad_archives_are_request_errors(body: bytes, message: str) -> None:
    with pytest.raises(RequestError, match=message) as info:
        NPZ.decode(body, MEDIA)
    assert info.value.http_status == 400


def test_an_archive_that_inflates_past_the_limit_is_refused_before_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.codecs import npz

    monkeypatch.setattr(npz, "MAX_EXPANDED_BYTES", 1 << 20)  # the real limit (256 MiB) would cost the test 256 MB
    bomb = _zip({"x.npy": _npy_header((1 << 18,)) + b"\x00" * (1 << 21)})  # 2 MiB of zeros: a 2 kB body
    assert len(bomb) < 10_000
    with pytest.raises(RequestError, match="inflates to more than 1 MiB"):
        NPZ.decode(bomb, MEDIA)
    assert MAX_EXPANDED_BYTES == 256 * 1024 * 1024


def test_npz_is_read_but_never_written() -> None:
    decoder, media = decoder_for("application/x-npz")
    assert decoder.media_type == "application/x-npz" and media.essence == "application/x-npz"
    assert encoder_for(None, "application/x-npz").media_type == "application/json"  # the toolkit's default accept
    with pytest.raises(NotAcceptable):
        encoder_for("application/x-npz", "application/x-npz")


def test_a_sparse_payload_is_made_dense_for_the_schema() -> None:
    schema = Schema(kind="tensor", dtype="float64", shape=(-1, 6))
    inputs, rows = schema.coerce(NPZ.decode(SparseMatrixSerializer().serialize(_matrix("csr")), MEDIA))
    assert rows == 4 and isinstance(inputs, np.ndarray)
    np.testing.assert_array_equal(inputs, _matrix("csr").toarray())
    with pytest.raises(SchemaMismatch, match="expected 6 features per row, got 2"):
        schema.coerce(scipy.sparse.csr_matrix(np.ones((1, 2))))
    huge = scipy.sparse.coo_matrix(([1.0], ([0], [0])), shape=(10**6, 10**6))
    with pytest.raises(RequestError, match="would take"):
        schema.coerce(huge)
