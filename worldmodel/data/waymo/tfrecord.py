"""TFRecord framing without TensorFlow: read, seek and write records with their masked CRC-32C checks.

Each record is `u64 length (little-endian) | u32 masked_crc32c(length bytes) | data |
u32 masked_crc32c(data)`. A record that is cut short or whose checksum does not match raises
`CorruptFileError` naming the file and the byte offset where that record starts.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from worldmodel.data.errors import CorruptFileError

try:  # the C implementation checks ~1 GB/s; the pure-Python table below a few MB/s
    import google_crc32c as _google_crc32c
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    _google_crc32c = None

_HEADER = struct.Struct("<QI")  # length, masked crc of the length bytes
_FOOTER = struct.Struct("<I")  # masked crc of the data
_MASK_DELTA = 0xA282EAD8
_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


# ----------------------------------------------------------------------------
# CRC-32C
# ----------------------------------------------------------------------------

def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c_python(data: bytes) -> int:
    """CRC-32C of `data` in pure Python (the reference the fast path is tested against)."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes) -> int:
    """CRC-32C of `data`: google-crc32c's C code when installed, else `crc32c_python`."""
    if _google_crc32c is not None:
        return int(_google_crc32c.value(bytes(data)))
    return crc32c_python(data)


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C rotated right by 15 bits plus a constant, modulo 2**32."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------

def _read_one(handle: BinaryIO, path: str | Path, offset: int, verify: bool) -> tuple[bytes, int] | None:
    """The record at `offset` (the handle is positioned there) and the offset after it; None at a clean EOF."""
    header = handle.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise CorruptFileError(path, f"truncated record header ({len(header)} of {_HEADER.size} bytes)", offset)
    length, length_crc = _HEADER.unpack(header)
    if verify and masked_crc32c(header[:8]) != length_crc:
        raise CorruptFileError(path, "record length checksum mismatch (damaged or not a TFRecord file)", offset)
    data = handle.read(length)
    if len(data) < length:
        raise CorruptFileError(path, f"truncated record (expected {length} data bytes, file has {len(data)})", offset)
    footer = handle.read(_FOOTER.size)
    if len(footer) < _FOOTER.size:
        raise CorruptFileError(path, "truncated record (data checksum missing)", offset)
    if verify and masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
        raise CorruptFileError(path, "record data checksum mismatch (damaged file)", offset)
    return data, offset + _HEADER.size + length + _FOOTER.size


def iter_records(path: str | Path, verify: bool = True) -> Iterator[tuple[int, bytes]]:
    """(byte offset, data) of every record in file order; damage raises CorruptFileError at its record."""
    with open(path, "rb") as handle:
        offset = 0
        while True:
            item = _read_one(handle, path, offset, verify)
            if item is None:
                return
            data, next_offset = item
            yield offset, data
            offset = next_offset


def read_record(handle: BinaryIO, offset: int, path: str | Path, verify: bool = True) -> bytes:
    """The one record starting at `offset` of an open file (seeks there first)."""
    handle.seek(offset)
    item = _read_one(handle, path, offset, verify)
    if item is None:
        raise CorruptFileError(path, "no record at this offset (file ends here)", offset)
    return item[0]


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------

def encode_record(data: bytes) -> bytes:
    """One framed record."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + _FOOTER.pack(masked_crc32c(data))


def write_records(path: str | Path, records: Iterable[bytes]) -> list[int]:
    """Write `records` as a TFRecord file; returns the byte offset of each record."""
    offsets, offset = [], 0
    with open(path, "wb") as handle:
        for data in records:
            framed = encode_record(data)
            handle.write(framed)
            offsets.append(offset)
            offset += len(framed)
    return offsets
