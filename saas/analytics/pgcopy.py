"""PostgreSQL's binary COPY format, built from numpy columns without a Python object per row.

The refresh writes a whole company's scores at once; COPY is the fastest way in, and building its
rows with numpy (not as Python tuples) keeps a million clients from becoming a million objects.

A row is: int16 field count, then per field an int32 length (−1: NULL) and that many bytes. Every
field is assembled as *pieces* (a uint8 matrix, one row per table row, plus each row's used width);
rows of one layout are joined as one matrix (see `encode`). Types:
- int8, int4: big-endian integers; float8: big-endian IEEE (NaN → NULL);
- numeric with two decimals (NaN → NULL): base-10000 digits with a fixed weight; PostgreSQL
  strips the leading zero digits on receipt;
- text from a small vocabulary (statuses, segments): each word's UTF-8 bytes;
- jsonb from named numeric arrays: version byte 1, then {"name": number, …} with numbers written
  as decimal ASCII by integer arithmetic (NaN → null).
"""
from __future__ import annotations

import itertools

import numpy as np

Array = np.ndarray
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)


class Piece:
    """Bytes of one part of every row: `mat[i, :lens[i]]` for row i."""

    def __init__(self, mat: Array, lens: Array) -> None:
        self.mat, self.lens = mat, lens


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


def numeric2(values: Array) -> list[Piece]:
    """numeric with two decimals, |value| < 10^12 (numeric(14, 2))."""
    values = np.asarray(values, dtype=float)
    null = ~np.isfinite(values)
    cents = np.rint(np.nan_to_num(values) * 100).astype(np.int64)
    whole, frac = np.abs(cents) // 100, np.abs(cents) % 100
    n = len(values)
    words = np.empty((n, 8), dtype=">i2")  # ndigits, weight, sign, dscale, 4 digits
    words[:, 0], words[:, 1], words[:, 3] = 4, 2, 2
    words[:, 2] = np.where(cents < 0, 0x4000, 0)
    words[:, 4], words[:, 5], words[:, 6] = whole // 10**8 % 10**4, whole // 10**4 % 10**4, whole % 10**4
    words[:, 7] = frac * 100
    lens = np.where(null, -1, 16)
    return [_length(lens), Piece(words.view(np.uint8).reshape(n, 16), np.maximum(lens, 0))]


def text(values: Array) -> list[Piece]:
    """Words from a small vocabulary (no NULLs)."""
    vocabulary, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    encoded = [str(v).encode() for v in vocabulary]
    table = np.zeros((len(encoded), max((len(e) for e in encoded), default=1) or 1), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, :len(e)] = np.frombuffer(e, dtype=np.uint8)
    lens = np.array([len(e) for e in encoded], dtype=np.int64)[codes]
    return [_length(lens), Piece(table[codes], lens)]


def ascii_numbers(values: Array, decimals: int = 2) -> Piece:
    """Each value as JSON number text, rounded to `decimals` (trailing zeros dropped); NaN → null."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    finite = np.isfinite(values)
    scaled = np.rint(np.abs(np.where(finite, values, 0.0)) * 10**decimals).astype(np.int64)
    whole, frac = scaled // 10**decimals, scaled % 10**decimals
    negative = (values < 0) & (scaled > 0)
    digits = 1 + sum((whole >= 10**k).astype(np.int64) for k in range(1, 19))
    trailing_zeros = sum((frac % 10**k == 0).astype(np.int64) for k in range(1, decimals + 1))
    frac_digits = decimals - trailing_zeros  # 0 when there is no fraction
    width = 1 + 19 + 1 + decimals
    mat = np.zeros((n, max(width, 4)), dtype=np.uint8)
    rows = np.arange(n)
    sign = negative.astype(np.int64)
    mat[negative, 0] = ord("-")
    for i in range(19):
        active = i < digits
        power = np.maximum(digits - 1 - i, 0)
        mat[rows[active], (sign + i)[active]] = 48 + (whole[active] // 10 ** power[active]) % 10
    point = sign + digits
    has_frac = frac_digits > 0
    mat[rows[has_frac], point[has_frac]] = ord(".")
    for j in range(decimals):
        active = j < frac_digits
        mat[rows[active], (point + 1 + j)[active]] = 48 + (frac[active] // 10 ** (decimals - 1 - j)) % 10
    lens = sign + digits + np.where(has_frac, 1 + frac_digits, 0)
    if (~finite).any():
        mat[~finite, :4] = np.frombuffer(b"null", dtype=np.uint8)
        lens = np.where(finite, lens, 4)
    return Piece(mat, lens)


def _padded(piece: Piece) -> Piece:
    """The same text, padded with spaces to the widest row: one width for every row."""
    width = int(piece.lens.max()) if len(piece.lens) else 0
    mat = piece.mat[:, :width].copy()
    mat[np.arange(width)[None, :] >= piece.lens[:, None]] = ord(" ")
    return Piece(mat, np.full(len(piece.lens), width, dtype=np.int64))


def jsonb(fields: dict[str, Array], decimals: int = 2) -> list[Piece]:
    """{"name": number, …} per row from named arrays (names are trusted identifiers). Numbers are
    padded with spaces (allowed in JSON, dropped by jsonb) so the field has one width for all rows."""
    n = len(next(iter(fields.values()))) if fields else 0
    pieces: list[Piece] = [_const(b"\x01{", n)]
    for i, (name, values) in enumerate(fields.items()):
        pieces.append(_const((", " if i else "").encode() + f'"{name}": '.encode(), n))
        pieces.append(_padded(ascii_numbers(values, decimals)))
    pieces.append(_const(b"}", n))
    return [_length(sum(p.lens for p in pieces))] + pieces


def encode(fields: list[list[Piece]], rows: int) -> bytes:
    """One binary COPY stream: header, the rows, trailer.

    COPY does not care about row order, so rows are grouped by layout (the widths of their
    pieces: which fields are NULL, which word a text field holds); within a group every row has
    the same layout and the group's bytes are one matrix, joined column block by column block."""
    pieces = [_const(len(fields).to_bytes(2, "big"), rows)] + [p for field in fields for p in field]
    varying = [p for p in pieces if p.mat.shape[1] and not (p.lens == p.lens[0]).all()] if rows else []
    if len(varying) <= 7:  # widths are below 257: seven of them make one 64-bit key
        key = np.zeros(rows, dtype=np.int64)
        for p in varying:
            key = key * 257 + p.lens
        _layouts, group = np.unique(key, return_inverse=True)
    else:
        _layouts, group = np.unique(np.stack([p.lens for p in varying], axis=1), axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0, True])
    out = [SIGNATURE]
    for lo, hi in itertools.pairwise(bounds):
        idx = order[lo:hi]
        first = idx[0]
        block = np.concatenate([p.mat[idx, :p.lens[first]] for p in pieces if p.lens[first]], axis=1)
        out.append(np.ascontiguousarray(block).tobytes())
    out.append(TRAILER)
    return b"".join(out)
