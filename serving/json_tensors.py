"""Request bodies of TF Serving's REST API parsed at a cost in proportion to their size.

A body comes from the network, so parsing it must never cost more than a small multiple of its
bytes, nor recurse without bound:
- every array of numbers (the bulk of a float request) is parsed in bulk: its structure is checked by
  comparing a normalised copy of its text with the text a rectangular array of its first element's
  shape would have, its numbers by a C parser (pandas'), so a 200 MB body costs seconds and a few
  times its size,
  never Python objects per number; its shape is known before any number is parsed, so a body of the
  wrong shape is refused before that step (`NumericArray`);
- objects, strings and other values are parsed by a small recursive-descent parser whose depth is
  bounded (`MAX_DEPTH`), with at most `MAX_VALUES` values outside numeric arrays;
- `NaN`, `Infinity` and `-Infinity` are read as TF Serving's parser reads them (rapidjson with
  kParseNanAndInfFlag); the servable then refuses non-finite pixels. On output they are written as TF
  Serving's json_tensor.cc writes them (the same bare tokens, which strict JSON parsers refuse).
One module over 300 lines on purpose: the generic parser and the bulk path for numbers share one cost model.
"""
from __future__ import annotations

import io
import json
import math
import re
from typing import Any, Sequence, Tuple

import numpy as np

from serving.errors import invalid

# Deeper than any tensor a signature takes (rank + the JSON object around it): refused, never recursed.
MAX_DEPTH = 32
# Values outside numeric arrays (strings, objects, ...): far more than any batch of images.
MAX_VALUES = 1_000_000

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_CONSTANTS = (("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf), ("true", True),
              ("false", False), ("null", None))
_COMMAS_TO_LINES = bytes.maketrans(b",", b"\n")
_CHUNK = 1 << 23
_NOT_WS = np.ones(256, bool)
_NOT_WS[[32, 9, 10, 13]] = False
_STRUCTURAL = np.zeros(256, bool)
_STRUCTURAL[[91, 93, 44]] = True  # [ ] ,
_BRACKET = np.zeros(256, bool)
_BRACKET[[91, 93]] = True
_NUMBER_CHAR = _NOT_WS & ~_STRUCTURAL
_NUMERIC = np.zeros(256, bool)
_NUMERIC[np.frombuffer(b"[], \t\n\r0123456789eE+-.NaIinfty", np.uint8)] = True
_FIRST_WINDOW = 4096  # an array's extent is read in chunks growing from this size up to _CHUNK


class NumericArray:
    """A JSON array of numbers, rectangular (checked), its values not parsed until `to_numpy`."""

    def __init__(self, text: bytes, shape: Tuple[int, ...]):
        self.text, self.shape = text, tuple(shape)

    def to_numpy(self, dtype, name: str = "") -> np.ndarray:
        import pandas as pd  # its C number parser: about twice numpy's speed on text

        dtype = np.dtype(dtype)
        count = int(np.prod(self.shape, dtype=np.int64))
        if count == 0:
            return np.zeros(self.shape, dtype)
        integers = dtype.kind in "iu"
        lines = bytes(self.text).translate(_COMMAS_TO_LINES, b"[] \t\r\n")  # one number per line
        try:
            values = pd.read_csv(io.BytesIO(lines), header=None, engine="c",
                                 dtype=np.int64 if integers else np.float64).to_numpy().reshape(-1)
        except (ValueError, OverflowError) as e:
            values = e
        if isinstance(values, Exception) or values.size != count:
            kind = "integers" if integers else "numbers"
            raise invalid(f"input {name!r}: the array holds values that are not {kind} ({values})") from None
        return values.reshape(self.shape).astype(dtype, copy=False)


def loads(body) -> Any:
    """Parse a request body (bytes or str): JSON values, with `NumericArray` for arrays of numbers."""
    raw = bytes(body) if isinstance(body, memoryview) else body
    if isinstance(raw, str):
        return _Parser(raw, None).document()
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid(f"the request body is not valid JSON: not UTF-8 ({e})") from None
    return _Parser(s, raw).document()


class _Parser:
    def __init__(self, s: str, raw):
        self.s, self.pos, self.depth, self.values = s, 0, 0, 0
        # ASCII (the usual case): character offsets are byte offsets, and arrays are views of the body.
        self.encoded = memoryview(raw if raw is not None else s.encode()) if s.isascii() else None

    def fail(self, what: str):
        raise invalid(f"the request body is not valid JSON: {what} at character {self.pos}")

    def ws(self) -> None:
        self.pos = _WS.match(self.s, self.pos).end()

    def document(self):
        self.ws()
        if self.pos == len(self.s):
            self.fail("empty document")
        v = self.value()
        self.ws()
        if self.pos != len(self.s):
            self.fail("extra data after the document")
        return v

    def value(self):
        self.values += 1
        if self.values > MAX_VALUES:
            raise invalid(f"the request body has more than {MAX_VALUES} values outside arrays of numbers")
        s, i = self.s, self.pos
        c = s[i] if i < len(s) else ""
        if c == "{":
            return self.container(self.object)
        if c == "[":
            fast = self.numeric_array()
            return fast if fast is not None else self.container(self.array)
        if c == '"':
            try:
                v, self.pos = json.decoder.scanstring(s, i + 1, True)
            except json.JSONDecodeError as e:
                raise invalid(f"the request body is not valid JSON: {e.msg} at character {e.pos}") from None
            return v
        m = _NUMBER.match(s, i)
        if m and m.end() > i:
            self.pos = m.end()
            text = m.group()
            return float(text) if any(ch in text for ch in ".eE") else int(text)
        for word, v in _CONSTANTS:
            if s.startswith(word, i):
                self.pos = i + len(word)
                return v
        self.fail("expecting a value")

    def container(self, parse):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid(f"the request body nests deeper than {MAX_DEPTH} levels")
        v = parse()
        self.depth -= 1
        return v

    def members(self, close: str, member) -> None:
        """`member()` for each ','-separated member up to `close` (the opening character is at `pos`)."""
        self.pos += 1
        self.ws()
        if self.s.startswith(close, self.pos):
            self.pos += 1
            return
        while True:
            self.ws()
            member()
            self.ws()
            if self.s.startswith(",", self.pos):
                self.pos += 1
            elif self.s.startswith(close, self.pos):
                self.pos += 1
                return
            else:
                self.fail(f"expecting ',' or '{close}'")

    def object(self) -> dict:
        out = {}

        def member():
            if not self.s.startswith('"', self.pos):
                self.fail("expecting a property name in double quotes")
            key = self.value()
            self.ws()
            if not self.s.startswith(":", self.pos):
                self.fail("expecting ':'")
            self.pos += 1
            self.ws()
            out[key] = self.value()

        self.members("}", member)
        return out

    def array(self) -> list:
        out = []
        self.members("]", lambda: out.append(self.value()))
        return out

    def numeric_array(self) -> NumericArray | None:
        """The array at `pos` if it holds only numbers (at any depth), else None (parsed generically)."""
        if self.encoded is None:
            return None  # a body with non-ASCII text: parsed generically (bounded by MAX_VALUES)
        start = self.pos
        closed = _numeric_extent(self.encoded[start:])
        if closed is None:
            return None  # something else than numbers inside, or unterminated: the generic parser says
        closed += start
        text = self.encoded[start:closed]
        t = _structure(text)
        rank = len(t) - len(t.lstrip(b"["))
        if self.depth + rank > MAX_DEPTH:
            raise invalid(f"the request body nests deeper than {MAX_DEPTH} levels")
        shape, canonical = _first_element_shape(t, rank)
        if canonical != t:
            raise invalid("an array in the request is ragged or malformed: the lists at one level must all have "
                          "the same length, with numbers only at the innermost level")
        self.pos = closed
        return NumericArray(text, shape)


def _numeric_extent(text) -> int | None:
    """The length of the array of numbers that `text` starts with ('['), or None when something else
    comes before its closing bracket. Read in growing chunks, the depth carried over: the cost is in
    proportion to the array, the temporaries to a chunk."""
    at, depth, size = 0, 0, _FIRST_WINDOW
    while at < len(text):
        chunk = np.frombuffer(text, np.uint8, count=min(size, len(text) - at), offset=at)
        numeric = _NUMERIC[chunk]
        limit = len(chunk) if numeric.all() else int(np.argmin(numeric))
        where = np.flatnonzero(_BRACKET[chunk[:limit]])
        depths = depth + np.cumsum(np.where(chunk[where] == 91, 1, -1).astype(np.int32))
        zero = np.flatnonzero(depths == 0)
        if zero.size:
            return at + int(where[zero[0]]) + 1
        if limit < len(chunk):
            return None
        depth = int(depths[-1]) if depths.size else depth
        at, size = at + len(chunk), min(size * 4, _CHUNK)
    return None


def _structure(text) -> bytes:
    """The array's text without whitespace and with one 'x' per number: b"[[x,x],[x,x]]" (in chunks:
    the temporaries stay small whatever the array's size)."""
    out, prev_structural, prev_raw_number, prev_number = [], True, False, False
    for at in range(0, len(text), _CHUNK):
        raw = np.frombuffer(text, np.uint8, count=min(_CHUNK, len(text) - at), offset=at)
        raw_number = _NUMBER_CHAR[raw]
        b = raw[_NOT_WS[raw]]
        structural = _STRUCTURAL[b]
        number = ~structural
        # Two number characters side by side once whitespace is dropped, but not before: "1 2".
        if (np.count_nonzero(number[1:] & number[:-1]) + (prev_number and bool(number[:1].any()))
                != np.count_nonzero(raw_number[1:] & raw_number[:-1]) + (prev_raw_number and bool(raw_number[0]))):
            raise invalid("an array in the request has whitespace inside a number")
        keep = number.copy()
        keep[1:] &= structural[:-1]  # the first character of each number
        if b.size:
            keep[0] &= prev_structural
            prev_structural, prev_number = bool(structural[-1]), bool(number[-1])
        prev_raw_number = bool(raw_number[-1])
        out.append(np.where(structural, b, np.uint8(120))[keep | structural].tobytes())
    return b"".join(out)


def _first_element_shape(t: bytes, rank: int) -> Tuple[Tuple[int, ...], bytes]:
    """(shape, canonical text) of the array whose normalised text `t` ('[', ']', ',' and one 'x' per
    number) starts it: each dimension is the length of the first list at its level. The array is
    rectangular exactly when `t` equals the canonical text."""
    first_inner = t[rank - 1: t.index(b"]") + 1]
    shape = [0] * rank
    shape[-1] = 0 if first_inner == b"[]" else first_inner.count(b",") + 1
    child = b"[" + b",".join([b"x"] * shape[-1]) + b"]"
    for level in range(rank - 2, -1, -1):
        shape[level] = len(t) // (len(child) + 1) if level == 0 else _count_children(t, level, child)
        child = b"[" + b",".join([child] * shape[level]) + b"]"
    return tuple(shape), child


def _count_children(t: bytes, level: int, child: bytes) -> int:
    """How many copies of `child`, comma-separated, open the first list at `level` (which starts at t[level])."""
    if t.startswith(b"]", level + 1):
        return 0
    step = len(child) + 1
    if len(child) < 4096:  # a literal repeated: matched by the regex engine, not a Python loop
        m = re.compile(b"(?:" + re.escape(child) + b",)*").match(t, level + 1)
        n = (m.end() - level - 1) // step
        return n + 1 if t.startswith(child, m.end()) else max(n, 1)
    n, p = 1, level + 1 + len(child)
    while t.startswith(b"," + child, p):
        n, p = n + 1, p + step
    return n


# -- values to tensors ------------------------------------------------------------------------------

def shape_of(value) -> Tuple[int, ...] | None:
    """The shape of a parsed value when it is a NumericArray (known before its numbers are parsed)."""
    return value.shape if isinstance(value, NumericArray) else None


def compatible(shape: Sequence[int], spec_shape) -> bool:
    dims = spec_shape.as_list() if hasattr(spec_shape, "as_list") else spec_shape
    if dims is None:
        return True
    return len(dims) == len(shape) and all(d is None or d == n for d, n in zip(dims, shape, strict=True))


def materialize(value, dtype, name: str):
    """NumericArray leaves -> numpy arrays of `dtype`; lists of equal-shaped arrays are stacked."""
    if isinstance(value, NumericArray):
        return value.to_numpy(dtype, name)
    if isinstance(value, list) and value and all(isinstance(v, NumericArray) for v in value):
        first = value[0].shape
        for i, v in enumerate(value):
            if v.shape != first:
                raise invalid(f"input {name!r}: expecting shape {list(first)} but got {list(v.shape)} "
                              f"(instance {i})")
        return np.stack([v.to_numpy(dtype, name) for v in value])
    if isinstance(value, list):
        return [materialize(v, dtype, name) if isinstance(v, (list, NumericArray)) else v for v in value]
    return value


def dumps(payload) -> bytes:
    """JSON of a response; non-finite floats as TF Serving writes them (NaN, Infinity, -Infinity)."""
    return json.dumps(payload, allow_nan=True).encode()
