"""PostgreSQL's binary COPY format, built from numpy columns without a Python object per row.

The refresh writes a whole company's scores at once; COPY is the fastest way in, and building its
rows with numpy (not as Python tuples) keeps a million clients from becoming a million objects.

A row is: int16 field count, then per field an int32 length (−1: NULL) and that many bytes. Every
field is assembled as *pieces* (a uint8 matrix, one row per table row, plus each row's used width
or a mask of the bytes it uses); a chunk of rows is the pieces side by side and the bytes picked
by one boolean mask (see `stream`), a chunk at a time, so the stream can go to the server while
the next chunk is built and memory stays bounded. Types:
- int8, int4: big-endian integers; float8: big-endian IEEE (NaN → NULL);
- numeric with two decimals (NaN → NULL): base-10000 digits with a fixed weight; PostgreSQL
  strips the leading zero digits on receipt;
- text from a small vocabulary (statuses, segments): each word's UTF-8 bytes;
- jsonb from named numeric arrays: version byte 1, then {"name":number,…} with numbers written
  as decimal ASCII by integer arithmetic (NaN → null), built right-aligned in one width per name
  and written without the padding (compact JSON); optionally zero figures left out.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

Array = np.ndarray
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)


class Piece:
    """Bytes of one part of every row: `mat[i, :lens[i]]` for row i, or, with `keep` (a boolean
    matrix shaped as `mat`), the bytes of `mat[i]` where `keep[i]` is true."""

    def __init__(self, mat: Array, lens: Array, keep: Array | None = None) -> None:
        self.mat, self.lens, self.keep = mat, lens, keep

    def mask(self) -> Array | None:
        """Which bytes of `mat` are written (None: all of them)."""
        if self.keep is not None:
            return self.keep
        if (self.lens == self.mat.shape[1]).all():
            return None
        return np.arange(self.mat.shape[1])[None, :] < self.lens[:, None]


def _fixed(values: Array, dtype: str, null: Array | None = None) -> list[Piece]:
    n = len(values)
    size = np.dtype(dtype).itemsize
    mat = np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(n, size)
    lens = np.full(n, size, dtype=np.int64) if null is None else np.where(null, -1, size)
    return [_length(lens), Piece(mat, np.maximum(lens, 0))]


def _length(lens: Array) -> Piece:
    return Piece(lens.astype(">i4").view(np.uint8).reshape(len(lens), 4), np.full(len(lens), 4, dtype=np.int64))


def _const(data: bytes, n: int) -> Piece:
    return Piece(np.broadcast_to(np.frombuffer(data, dtype=np.uint8), (n, len(data))),
                 np.full(n, len(data), dtype=np.int64))


def int8(values: Array) -> list[Piece]:
    return _fixed(np.asarray(values), ">i8")


def int4(values: Array) -> list[Piece]:
    return _fixed(np.asarray(values), ">i4")


def float8(values: Array) -> list[Piece]:
    values = np.asarray(values, dtype=float)
    return _fixed(np.nan_to_num(values), ">f8", null=~np.isfinite(values))


def cents(values: Array) -> Array:
    """Whole cents of each value as numeric2 writes it (NaN, written as NULL, as 0)."""
    return np.rint(np.nan_to_num(np.asarray(values, dtype=float)) * 100).astype(np.int64)


def numeric2(values: Array) -> list[Piece]:
    """numeric with two decimals, |value| < 10^12 (numeric(14, 2))."""
    values = np.asarray(values, dtype=float)
    null = ~np.isfinite(values)
    whole_cents = cents(values)
    whole, frac = np.abs(whole_cents) // 100, np.abs(whole_cents) % 100
    n = len(values)
    words = np.empty((n, 8), dtype=">i2")  # ndigits, weight, sign, dscale, 4 digits
    words[:, 0], words[:, 1], words[:, 3] = 4, 2, 2
    words[:, 2] = np.where(whole_cents < 0, 0x4000, 0)
    words[:, 4], words[:, 5], words[:, 6] = whole // 10**8 % 10**4, whole // 10**4 % 10**4, whole % 10**4
    words[:, 7] = frac * 100
    lens = np.where(null, -1, 16)
    return [_length(lens), Piece(words.view(np.uint8).reshape(n, 16), np.maximum(lens, 0))]


def factorize(values: Array) -> tuple[list[str], Array]:
    """(the distinct words, sorted; each value's index among them) of an array of words from a
    small vocabulary: a set and a dict lookup per value, several times faster than np.unique's
    sort of the objects. Values that are not text count as their text (str)."""
    values = np.asarray(values, dtype=object).reshape(-1)
    distinct = set(values)
    if not all(isinstance(v, str) for v in distinct):
        values = np.array([str(v) for v in values], dtype=object)
        distinct = set(values)
    words = sorted(str(v) for v in distinct)
    index = {w: i for i, w in enumerate(words)}
    return words, np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))


def text(values: Array) -> list[Piece]:
    """Words from a small vocabulary (no NULLs)."""
    vocabulary, codes = factorize(values)
    encoded = [str(v).encode() for v in vocabulary]
    table = np.zeros((len(encoded), max((len(e) for e in encoded), default=1) or 1), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, :len(e)] = np.frombuffer(e, dtype=np.uint8)
    lens = np.array([len(e) for e in encoded], dtype=np.int64)[codes]
    return [_length(lens), Piece(table[codes], lens)]


_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)


def ascii_numbers(values: Array, decimals: int = 2) -> Piece:
    """Each value as JSON number text, rounded to `decimals` (trailing zeros dropped), NaN → null,
    right-aligned in one width for all rows: spaces, an optional minus, the digits, then the point
    and the fraction digits (spaces where the fraction is shorter)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    finite = np.isfinite(values)
    scaled = np.rint(np.abs(np.where(finite, values, 0.0)) * 10**decimals).astype(np.int64)
    whole, frac = np.divmod(scaled, 10**decimals)
    negative = (values < 0) & (scaled > 0)
    digits = np.asarray(1 + np.searchsorted(_POWERS, whole, side="right"), dtype=np.int64)
    trailing_zeros = sum((frac % 10**k == 0).astype(np.int64) for k in range(1, decimals + 1))
    frac_digits = decimals - trailing_zeros  # 0 when there is no fraction
    head = max(int((digits + negative).max(initial=1)), 4 if not finite.all() else 1)  # "null" fits too
    tail = 1 + decimals if (frac_digits > 0).any() else 0
    mat = np.full((n, head + tail), ord(" "), dtype=np.uint8)
    for p in range(int(digits.max(initial=1))):  # p-th digit from the right
        mat[:, head - 1 - p] = np.where(p < digits, 48 + (whole // 10**p) % 10, ord(" "))
    rows = np.flatnonzero(negative)
    mat[rows, head - 1 - digits[rows]] = ord("-")
    if tail:
        mat[:, head] = np.where(frac_digits > 0, ord("."), ord(" "))
        for j in range(decimals):
            mat[:, head + 1 + j] = np.where(j < frac_digits, 48 + (frac // 10 ** (decimals - 1 - j)) % 10, ord(" "))
    if not finite.all():
        mat[~finite, head - 4:head] = np.frombuffer(b"null", dtype=np.uint8)
    return Piece(mat, np.full(n, head + tail, dtype=np.int64))


def jsonb(fields: dict[str, Array], decimals: int = 2, *, omit_zeros: bool = False) -> list[Piece]:
    """{"name":number,…} per row from named arrays (names are trusted identifiers: no spaces).
    The numbers are built right-aligned in one width per name (see ascii_numbers) and the padding
    is then left out of what is written (a `keep` mask), so the server parses compact JSON: its
    parsing was the largest part of the server's work on the refresh's COPY. `omit_zeros`: a name
    whose value rounds to 0 is left out of that row (a reader's default), except the last name,
    which every row keeps (it closes the object, so no row has a stray comma)."""
    n = len(next(iter(fields.values()))) if fields else 0
    blocks: list[Array] = [np.broadcast_to(np.frombuffer(b"\x01{", dtype=np.uint8), (n, 2))]
    items = list(fields.items())
    for i, (name, values) in enumerate(items):
        number = ascii_numbers(values, decimals).mat
        key = np.frombuffer(f'"{name}":'.encode(), dtype=np.uint8)
        if omit_zeros and i < len(items) - 1:
            comma = np.frombuffer(b",", dtype=np.uint8)
            mat = np.concatenate([np.broadcast_to(key, (n, len(key))), number, np.broadcast_to(comma, (n, 1))], axis=1)
            zero = np.rint(np.abs(np.asarray(values, dtype=float)) * 10**decimals) == 0  # NaN stays (null)
            blocks.append(np.where(zero[:, None], np.uint8(ord(" ")), mat))
            continue
        if i and not omit_zeros:
            key = np.frombuffer(b"," + f'"{name}":'.encode(), dtype=np.uint8)
        blocks += [np.broadcast_to(key, (n, len(key))), number]
    blocks.append(np.broadcast_to(np.frombuffer(b"}", dtype=np.uint8), (n, 1)))
    mat = np.concatenate(blocks, axis=1)
    keep = mat != ord(" ")
    lens = keep.sum(axis=1, dtype=np.int64)
    return [_length(lens), Piece(mat, lens, keep)]


CHUNK_ROWS = 16384  # rows per chunk: bounded memory, and the server inserts nearby ids together


def encode(fields: list[list[Piece]], rows: int) -> bytes:
    """One binary COPY stream: header, the rows, trailer (see `chunks`)."""
    return b"".join(chunks(fields, rows))


def chunks(fields: list[list[Piece]], rows: int, size: int = CHUNK_ROWS) -> Iterator[bytes]:
    """The binary COPY stream of these fields in parts (see `stream`)."""
    return stream(lambda part: [[Piece(p.mat[part], p.lens[part], None if p.keep is None else p.keep[part])
                                 for p in field] for field in fields], rows, size)


def stream(fields_of: Callable[[slice], list[list[Piece]]], rows: int, size: int = CHUNK_ROWS) -> Iterator[bytes]:
    """The binary COPY stream in parts: the header, then the rows `size` at a time in their order
    (`fields_of(rows)` builds a chunk's fields, so only a chunk is ever encoded at once), then the
    trailer."""
    yield SIGNATURE
    for lo in range(0, rows, size):
        part = slice(lo, min(lo + size, rows))
        fields = fields_of(part)
        yield _rows([_const(len(fields).to_bytes(2, "big"), part.stop - lo)] + [p for f in fields for p in f])
    yield TRAILER


def _rows(pieces: list[Piece]) -> bytes:
    """The rows' bytes: every piece side by side in one matrix, and the bytes each row writes
    picked out by one boolean mask (row by row, left to right: the rows' concatenation)."""
    mats = [p.mat for p in pieces if p.mat.shape[1]]
    masks = [p.mask() for p in pieces if p.mat.shape[1]]
    if all(m is None for m in masks):
        return np.concatenate(mats, axis=1).tobytes()
    keep = np.concatenate([np.ones(mat.shape, dtype=bool) if m is None else m
                           for mat, m in zip(mats, masks, strict=True)], axis=1)
    return np.concatenate(mats, axis=1)[keep].tobytes()
