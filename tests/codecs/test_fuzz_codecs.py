"""Every decoder against fuzzed bodies: a body decodes, or is refused with a 4xx ``RequestError``; nothing else.

Bodies are arbitrary bytes, and valid bodies of each type with bytes changed, inserted or cut off. NPY headers
(also the headers of NPZ members) get their own fuzzing: a header is a Python literal that numpy parses with
``tokenize`` and ``ast.literal_eval``, and each of those raised its own exceptions through the codec (a 500).
"""

from __future__ import annotations

import io
import pathlib
import zipfile
from typing import Any

import numpy as np
import orjson
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.codecs import DECODERS, decoder_for, parse_media_type
from shipyard.codecs.npy import NPYCodec
from shipyard.errors import RequestError, ShipyardError


def _npy(array: Any, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    np.save(out, array, **kwargs)
    return out.getvalue()


def _npz(**arrays: Any) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _sparse() -> bytes:
    out = io.BytesIO()
    scipy.sparse.save_npz(out, scipy.sparse.csr_matrix(np.eye(4)))
    return out.getvalue()


VALID: dict[str, list[bytes]] = {
    "application/json": [orjson.dumps({"instances": [[1.0, 2.5], [3.0, 4.0]]}), b'[{"a": 1, "b": "x"}]'],
    "text/csv": [b"1,2.5\n3,4\n", b'"a",1\r\n"b,c",2\r\n'],
    "application/jsonlines": [b"[1, 2]\n[3, 4]\n", b'{"a": 1}\n{"a": 2}\n'],
    "application/x-npy": [_npy(np.zeros((2, 3))), _npy(np.arange(6, dtype=np.int32).reshape(3, 2), allow_pickle=False)],
    "application/x-npz": [_npz(x=np.ones((2, 2))), _sparse()],
}


def test_every_decoder_is_fuzzed() -> None:
    assert set(VALID) == set(DECODERS)


def decodes_or_refuses(content_type: str, body: bytes) -> None:
    decoder, media = decoder_for(content_type)
    try:
        decoder.decode(body, media)
    except ShipyardError as exc:
        assert 400 <= exc.http_status < 500, f"{type(exc).__name__} ({exc.http_status}): {exc}"
    # any other exception fails the test: the server would answer it 500


@st.composite
def mutated(draw: st.DrawFn, content_type: str) -> bytes:
    body = bytearray(draw(st.sampled_from(VALID[content_type])))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(0, len(body) - 1)))
        if kind == "flip" and body:
            body[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and body:
            del body[at : at + draw(st.integers(1, 8))]
        elif kind == "cut":
            del body[at:]
    return bytes(body)


def _npy_with_header(header: str, data: bytes = b"", version: int = 1) -> bytes:
    raw = header.encode("latin-1")
    if version == 1:
        return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + data
    return b"\x93NUMPY\x02\x00" + len(raw).to_bytes(4, "little") + raw + data


_LITERAL_PARTS = [
    "{", "}", "(", ")", "[", "]", "'", '"', ",", ":", " ", "\n", "\\", "#", "0", "1", "-1", "10**9",
    "99999999999999999999", "1e309", "True", "False", "None", "'descr'", "'shape'", "'fortran_order'",
    "'<f8'", "'|O'", "'O'", "'<U5'", "'V8'", "'>i4'", "'<M8[s]'", "'S0'", "('a', '<f8')", "('a', 'O')",
    "('a', '<f8', (99999999, 99999999))", "'''", "lambda", "__import__", "*", "...", "b'x'", "{'a': 1}",
]  # fmt: skip


@st.composite
def npy_headers(draw: st.DrawFn) -> bytes:
    """A .npy body whose header is a fragment soup of the literal numpy parses, or an almost valid header."""
    if draw(st.booleans()):
        header = "".join(draw(st.lists(st.sampled_from(_LITERAL_PARTS), max_size=40)))
    else:
        descr = draw(st.sampled_from([*_LITERAL_PARTS[19:40], "[('a', '<f8'), ('b', 'O')]", "[('a', [('b', 'O')])]"]))
        shape = draw(st.sampled_from(["(2, 3)", "()", "(-1,)", "(10**12, 10**12)", "(2.5,)", "[2, 3]", "(2,", "(0,)"]))
        order = draw(st.sampled_from(["False", "True", "0", "'x'"]))
        header = f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
    header += " " * draw(st.integers(0, 8)) + "\n"
    data = draw(st.sampled_from([b"", bytes(48), bytes(7)]))
    return _npy_with_header(header, data, version=draw(st.sampled_from([1, 1, 2, 3])))


def _zip_of(member: bytes, name: str = "x.npy") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, member)
    return out.getvalue()


FUZZ = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("content_type", sorted(VALID))
@FUZZ
@given(data=st.data())
def test_random_bytes_decode_or_are_refused(content_type: str, data: st.DataObject) -> None:
    decodes_or_refuses(content_type, data.draw(st.binary(max_size=600)))


@pytest.mark.parametrize("content_type", sorted(VALID))
@FUZZ
@given(data=st.data())
def test_mutated_valid_bodies_decode_or_are_refused(content_type: str, data: st.DataObject) -> None:
    decodes_or_refuses(content_type, data.draw(mutated(content_type)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy's, for the old dtype aliases some headers use
@FUZZ
@given(body=npy_headers())
def test_fuzzed_npy_headers_are_refused_not_crashed(body: bytes) -> None:
    decodes_or_refuses("application/x-npy", body)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@FUZZ
@given(body=npy_headers())
def test_fuzzed_npy_headers_inside_an_npz_are_refused_not_crashed(body: bytes) -> None:
    decodes_or_refuses("application/x-npz", _zip_of(body))


# -- the cases the fuzzing found, by name -----------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,",  # tokenize.TokenError: EOF in multi-line
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }'",  # unterminated string
        "{'descr': '<f8' 'fortran_order': False, 'shape': (2, 3), }",  # SyntaxError
        "{'descr': [('a', '<f8', (99999999, 99999999))], 'fortran_order': False, 'shape': (1,), }",  # too big
        "{'descr': '<f8', 'fortran_order': False, 'shape': (10**400,), }",  # not a literal
        "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }",  # overflows intp
        "{'descr': 7, 'fortran_order': False, 'shape': (1,), }",  # TypeError
        "{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 200 + ")" * 200 + ", }",  # deep nesting
        "[" * 5000,  # deeper than the parser's stack
    ],
)
def test_malformed_npy_headers_are_400(header: str) -> None:
    for body in (_npy_with_header(header + "\n", bytes(16)), _zip_of(_npy_with_header(header + "\n", bytes(16)))):
        content_type = "application/x-npz" if body.startswith(b"PK") else "application/x-npy"
        decoder, media = decoder_for(content_type)
        with pytest.raises(RequestError):
            decoder.decode(body, media)


class _Touch:
    """Unpickling this would create a file: the proof that a body's pickle was never loaded."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (pathlib.Path.touch, (self.path,))


@pytest.mark.parametrize("wrap", ["npy", "npz"])
def test_pickled_object_arrays_are_refused_and_never_unpickled(tmp_path: pathlib.Path, wrap: str) -> None:
    marker = tmp_path / "unpickled"
    array = np.empty(2, dtype=object)
    array[0], array[1] = _Touch(marker), 1
    body = _npy(array, allow_pickle=True)
    if wrap == "npz":
        body = _zip_of(body)
    decoder, media = decoder_for("application/x-npz" if wrap == "npz" else "application/x-npy")
    with pytest.raises(RequestError, match="object array"):
        decoder.decode(body, media)
    assert not marker.exists()


@pytest.mark.parametrize(
    "dtype", [np.dtype(object), np.dtype([("a", "<f8"), ("b", "O")]), np.dtype([("a", [("b", "O")])])]
)
def test_object_dtypes_are_refused_even_nested(dtype: np.dtype[Any]) -> None:
    header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (1,)})
    body = _npy_with_header(header + "\n", bytes(dtype.itemsize))
    with pytest.raises(RequestError, match="object array"):
        NPYCodec().decode(body, parse_media_type("application/x-npy"))  # type: ignore[arg-type]


def test_numpy_is_never_asked_to_allow_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoders call np.load with allow_pickle=False, whatever numpy's default is."""
    calls: list[Any] = []
    real = np.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("allow_pickle"))
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    for content_type in ("application/x-npy", "application/x-npz"):
        decoder, media = decoder_for(content_type)
        decoder.decode(VALID[content_type][0], media)
    assert calls == [False, False]
