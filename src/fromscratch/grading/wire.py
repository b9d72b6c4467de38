"""What crosses from the sandbox to the judge: plain data, decoded without running code.

The answer's side (:mod:`fromscratch.grading.checker`, inside the sandbox) turns what an
answer returned into JSON: numbers, strings, ``None``, tuples, lists, dictionaries with
string keys and tensors (dtype, shape and the raw bytes, base64). The judge
(:mod:`fromscratch.grading.judge`) rebuilds them with :func:`decode`, which only reads
numbers and bytes (no ``pickle``, no ``eval``, no classes chosen by the data) and raises
:class:`WireError` for anything malformed or over its size limits. Every other object
becomes an :class:`Opaque`: its type name and a short ``repr`` for the feedback, never the
object itself.
"""

from __future__ import annotations

import base64
import math

import torch

MAX_BYTES = 64 << 20  # tensor bytes in one reply
MAX_ITEMS = 100_000  # values in one reply (list entries, dictionary keys, ...)
MAX_DEPTH = 12

_DTYPES = {str(d).replace("torch.", ""): d for d in (
    torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.int16,
    torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128)}


class WireError(ValueError):
    """The answer's side sent something that is not well-formed data."""


class Opaque:
    """An answer's value that is not data (a function, a module, a NumPy array, ...): only
    its type name and a short description reach the judge."""

    def __init__(self, kind: str, text: str):
        self.kind, self.text = kind[:80], text[:200]

    def __repr__(self) -> str:
        return self.text or f"<{self.kind}>"

    def __eq__(self, other) -> bool:
        return False

    __hash__ = object.__hash__


class _Budget:
    def __init__(self):
        self.bytes = 0
        self.items = 0

    def take(self, items: int = 1, nbytes: int = 0) -> None:
        self.items += items
        self.bytes += nbytes
        if self.items > MAX_ITEMS or self.bytes > MAX_BYTES:
            raise WireError(f"more data than a check's call returns (over {MAX_ITEMS} values "
                            f"or {MAX_BYTES >> 20} MB)")


# -- the answer's side ----------------------------------------------------------------------

def encode(value, _budget: _Budget | None = None, _depth: int = 0) -> dict:
    """``value`` as JSON-ready data (see the module docstring); raises WireError when it
    is too large."""
    budget = _budget or _Budget()
    budget.take()
    if _depth > MAX_DEPTH:
        return {"t": "opaque", "type": type(value).__name__, "repr": "(nested too deeply)"}
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, int):
        return {"t": "int", "v": str(int(value))[:5000]}
    if isinstance(value, float):
        return {"t": "float", "v": repr(float(value))}
    if isinstance(value, str):
        return {"t": "str", "v": str(value)[:100_000]}
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value, budget)
    if isinstance(value, (tuple, list)):  # torch.Size is a tuple
        kind = "list" if isinstance(value, list) else "tuple"
        return {"t": kind, "v": [encode(v, budget, _depth + 1) for v in list(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"t": "dict", "v": {str(k): encode(v, budget, _depth + 1)
                                   for k, v in value.items()}}
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ is the answer's
        text = ""
    return {"t": "opaque", "type": type(value).__name__, "repr": text[:200]}


def _encode_tensor(value: torch.Tensor, budget: _Budget) -> dict:
    t = torch.Tensor.detach(value)
    if type(t) is not torch.Tensor:
        t = t.as_subclass(torch.Tensor)
    t = t.cpu().contiguous()
    name = str(t.dtype).replace("torch.", "")
    if name not in _DTYPES:
        t, name = t.float(), "float32"
    budget.take(1, t.numel() * t.element_size())
    raw = t.numpy().tobytes() if t.numel() else b""
    return {"t": "tensor", "dtype": name, "shape": [int(s) for s in t.shape],
            "data": base64.b64encode(raw).decode("ascii"),
            "requires_grad": bool(value.requires_grad)}


# -- the judge's side -----------------------------------------------------------------------

def decode(data, _budget: _Budget | None = None, _depth: int = 0):
    """The value :func:`encode` described; raises :class:`WireError` for anything else."""
    budget = _budget or _Budget()
    budget.take()
    if _depth > MAX_DEPTH + 1 or not isinstance(data, dict):
        raise WireError("malformed value")
    kind, v = data.get("t"), data.get("v")
    if kind == "none":
        return None
    if kind == "bool" and isinstance(v, bool):
        return v
    if kind == "int" and isinstance(v, str) and len(v) <= 5000:
        try:
            return int(v)
        except ValueError:
            raise WireError("malformed integer") from None
    if kind == "float" and isinstance(v, str) and len(v) <= 40:
        try:
            return float(v)
        except ValueError:
            raise WireError("malformed number") from None
    if kind == "str" and isinstance(v, str):
        return v[:100_000]
    if kind in ("list", "tuple") and isinstance(v, list):
        items = [decode(x, budget, _depth + 1) for x in v]
        return items if kind == "list" else tuple(items)
    if kind == "dict" and isinstance(v, dict):
        return {str(k)[:200]: decode(x, budget, _depth + 1) for k, x in v.items()}
    if kind == "tensor":
        return decode_tensor(data, budget)
    if kind == "opaque":
        return Opaque(str(data.get("type", "object")), str(data.get("repr", "")))
    raise WireError(f"malformed value of kind {str(kind)[:20]!r}")


def decode_tensor(data: dict, budget: _Budget | None = None) -> torch.Tensor:
    budget = budget or _Budget()
    dtype = _DTYPES.get(data.get("dtype")) if isinstance(data.get("dtype"), str) else None
    shape = data.get("shape")
    if dtype is None or not isinstance(shape, list) or len(shape) > 16 or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2 ** 31
            for s in shape):
        raise WireError("malformed tensor (dtype or shape)")
    numel = math.prod(shape)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    budget.take(1, nbytes)
    text = data.get("data")
    if not isinstance(text, str) or len(text) > 4 * (nbytes // 3 + 2):
        raise WireError("malformed tensor (data)")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise WireError("malformed tensor (data is not base64)") from None
    if len(raw) != nbytes:
        raise WireError(f"malformed tensor: {len(raw)} bytes for shape {tuple(shape)} "
                        f"of {dtype}")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape).clone()


def tensors_in(value) -> list:
    """The tensors in nested tuples, lists and dictionaries, in a fixed order (the same
    order on both sides of the wire)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []
