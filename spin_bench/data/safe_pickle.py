"""A restricted unpickler for data pickles from the internet.

``pickle.load`` runs whatever callable a pickle names, and even numpy's own rebuild functions
are not a safe boundary: ``numpy.dtype`` with a crafted state (an object field at an offset
outside the item) makes numpy read and write memory it does not own. So nothing in a pickle
reaches numpy's reconstruction code. :class:`RestrictedUnpickler` resolves the globals that
numpy arrays, scalars and dtypes are pickled with (numpy 1.x and 2.x, protocols 0-5) to
stand-ins of its own, which collect plain data (a dtype *name* from a short allow-list of
plain numeric and bool kinds, a byte order, a shape of ints, the raw bytes) and rebuild the
array themselves with ``np.frombuffer`` once the shape and byte length have been checked
against the dtype. Object, structured, string and sub-array dtypes, unknown dtype state and
any other global are refused with :class:`UnsafePickleError` before anything is built; lists,
tuples, dicts, strings, bytes, numbers, booleans and None need no global at all.
"""
from __future__ import annotations

import functools
import io
import pickle
from typing import IO, Any, Callable, Dict, Tuple

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list, or numpy data this reader does not
    rebuild (nothing was executed)."""


# Plain dtypes a data pickle may hold: bool, signed and unsigned ints, floats (numpy's names).
ALLOWED_DTYPES = ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
_ALIASES = {"bool": "b1", "int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8", "uint8": "u1",
            "uint16": "u2", "uint32": "u4", "uint64": "u8", "float16": "f2", "float32": "f4",
            "float64": "f8", "?": "b1"}
MAX_NDIM = 32


def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(f"refusing {what}: this pickle may only hold numpy arrays and scalars of "
                             f"plain numeric or bool dtypes, lists, tuples and numbers (nothing was executed)")


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    """Protocols 0-2 spell bytes as ``_codecs.encode(str, 'latin1')``; allow only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(
            f"refusing _codecs.encode({type(text).__name__}, {encoding!r}): only the latin1 "
            f"encoding of a str (how old protocols spell bytes) is allowed")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """Protocols 0-2 spell ``b''`` as ``__builtin__.bytes()``; allow only that."""
    if args:
        raise _refuse("bytes(...) with arguments")
    return b""


class _Dtype:
    """Stand-in for ``numpy.dtype(name, align, copy)`` and its pickled state; :meth:`real` is a
    numpy dtype built from a validated name and byte order only."""

    def __init__(self, name: Any, align: Any = False, copy: Any = True):
        if not isinstance(name, str):
            raise _refuse(f"a dtype named by {type(name).__name__}")
        code = _ALIASES.get(name, name)
        if code not in ALLOWED_DTYPES:
            raise _refuse(f"dtype {name[:20]!r}")
        self.code, self.order = code, "|" if code in ("b1", "i1", "u1") else "="

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags): only plain
        # dtypes, i.e. no subarray, names or fields and no explicit size or alignment
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise _refuse("a dtype with an unknown state")
        order, subarray, names, fields, elsize, alignment, flags = state[1:8]
        if order not in ("<", ">", "|", "=") or subarray is not None or names is not None or fields is not None:
            raise _refuse("a structured or sub-array dtype")
        if elsize not in (-1, int(self.code[1:])) or alignment not in (-1, int(self.code[1:])) or flags != 0:
            raise _refuse("a dtype with a crafted size, alignment or flags")
        if len(state) == 9 and state[8] is not None:
            raise _refuse("a dtype with metadata")
        self.order = order

    def real(self) -> np.dtype:
        return np.dtype(("|" if self.order == "|" else self.order) + self.code)


class _Array(np.ndarray):
    """What ``_reconstruct(ndarray, (0,), b'b')`` makes here: an empty array whose
    ``__setstate__`` checks the pickled (shape, dtype, raw bytes) and hands numpy only a state
    it built itself (a plain dtype from the allow-list, the exact byte length)."""

    def __new__(cls, klass: Any = None, shape: Any = (0,), code: Any = b"b") -> "_Array":
        if klass is not _NDARRAY:
            raise _refuse(f"_reconstruct of {type(klass).__name__}")
        return np.ndarray.__new__(cls, (0,), np.uint8)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _refuse("an array with an unknown state")
        if len(state) == 5:
            if state[0] != 1:
                raise _refuse("an array with an unknown state version")
            state = state[1:]
        shape, dtype, fortran, raw = state
        arr = _build(shape, dtype, fortran, raw)
        np.ndarray.__setstate__(self, (arr.shape, arr.dtype, False, arr.tobytes(order="C")))

    def __reduce__(self):  # pickled again (or copied) as a plain array
        return np.asarray(self).copy().__reduce__()


class _NdarrayClass:
    """The stand-in for the name ``numpy.ndarray`` (only ever an argument of _reconstruct)."""


_NDARRAY = _NdarrayClass()


def _build(shape: Any, dtype: Any, fortran: Any, raw: Any) -> np.ndarray:
    """An array of `dtype` (a checked stand-in) and `shape` from exactly its bytes: a copy."""
    if not isinstance(dtype, _Dtype):
        raise _refuse(f"an array whose dtype is {type(dtype).__name__}")
    if not isinstance(shape, tuple) or len(shape) > MAX_NDIM or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise _refuse(f"an array with shape {str(shape)[:40]}")
    if not isinstance(fortran, bool):
        raise _refuse("an array with an unknown memory order")
    if isinstance(raw, str):  # protocols 0-1 store the bytes as a latin-1 str
        raw = raw.encode("latin1")
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw.raw())
    if not isinstance(raw, (bytes, bytearray)):
        raise _refuse(f"array data given as {type(raw).__name__} (an object array?)")
    real = dtype.real()
    count = 1
    for n in shape:
        count *= n
    if count * real.itemsize != len(raw):
        raise _refuse(f"an array of shape {shape} and dtype {real} with {len(raw)} bytes of data "
                      f"(expected {count * real.itemsize})")
    arr = np.frombuffer(bytes(raw), dtype=real, count=count).reshape(shape, order="F" if fortran else "C")
    return arr.astype(real.newbyteorder("="), copy=True)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Stand-in for ``numpy._core.numeric._frombuffer`` (protocol 5)."""
    if order not in ("C", "F"):
        raise _refuse("an array with an unknown memory order")
    return _build(shape, dtype, order == "F", buf)


def _scalar(dtype: Any, raw: Any = None) -> Any:
    """Stand-in for ``numpy._core.multiarray.scalar(dtype, bytes)``: a numpy scalar."""
    if raw is None:
        raise _refuse("a scalar without data")
    return _build((), dtype, False, raw)[()]


@functools.lru_cache(maxsize=1)
def allowed_globals() -> Dict[Tuple[str, str], Callable[..., Any]]:
    """(module, name) -> its stand-in. Nothing is imported by name, and no numpy function is."""
    allowed: Dict[Tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _Dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _Array
        allowed[(mod, "scalar")] = _scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = _frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that admits only plain numpy arrays/scalars and plain containers."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        obj = allowed_globals().get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"refusing to load global '{module}.{name}': this pickle may only hold numpy "
                f"arrays, numpy scalars, lists, tuples and numbers (nothing was executed)")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a persistent id: not allowed in data pickles")



def restricted_load(fileobj: IO[bytes]) -> Any:
    """Unpickle from a binary file object with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(fileobj).load()


def restricted_loads(data: bytes) -> Any:
    """Unpickle bytes with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()
