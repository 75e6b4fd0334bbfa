"""Avro object container files at the block level: read the header and the raw data blocks, write a container
from copied blocks.

A container is ``magic, metadata map, sync marker`` followed by blocks of ``record count, byte size, data, sync
marker`` (Avro 1.11 spec, "Object Container Files"). Blocks are self-contained: the data is the codec-compressed
concatenation of the block's records, and nothing in it refers to the file's sync marker. Containers with the same
schema and codec can therefore be merged by copying data blocks verbatim, each followed by the *new* file's sync
marker, with no decompression, decoding or re-encoding.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import fastavro

# The Lambda's own varint writer, re-exported as the block-level encoder of this module.
from archiver.encoding import SYNC_SIZE, decode_long
from archiver.encoding import encode_long as encode_long

MAGIC = b"Obj\x01"
CODEC_KEY = "avro.codec"
SCHEMA_KEY = "avro.schema"


class AvroContainerError(ValueError):
    """The bytes are not a well-formed Avro object container file."""


@dataclass(frozen=True, slots=True)
class Block:
    """One data block exactly as stored: its record count and its (codec-compressed) data bytes."""

    count: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Container:
    """A parsed container: header metadata in file order, the sync marker, and the raw blocks."""

    metadata: tuple[tuple[str, bytes], ...]
    sync: bytes
    blocks: tuple[Block, ...]

    @property
    def codec(self) -> str:
        return dict(self.metadata).get(CODEC_KEY, b"null").decode("utf-8")

    @property
    def schema(self) -> bytes:
        return dict(self.metadata).get(SCHEMA_KEY, b"")

    @property
    def record_count(self) -> int:
        return sum(block.count for block in self.blocks)


def read_header(data: bytes) -> tuple[tuple[tuple[str, bytes], ...], bytes, int]:
    """The header metadata (in file order), the sync marker, and where the first block starts."""
    reader = _Reader(data)
    metadata, sync = _header(reader)
    return metadata, sync, reader.position


def read_container(data: bytes) -> Container:
    """Parse ``data`` into header and raw blocks, checking every sync marker. Raises ``AvroContainerError``."""
    reader = _Reader(data)
    metadata, sync = _header(reader)
    blocks: list[Block] = []
    while not reader.at_end():
        count = reader.long()
        size = reader.long()
        if count < 0 or size < 0:
            raise AvroContainerError(f"negative block count or size at byte {reader.position}")
        block_data = reader.take(size)
        if reader.take(SYNC_SIZE) != sync:
            raise AvroContainerError(f"sync marker mismatch after the block ending at byte {reader.position}")
        blocks.append(Block(count=count, data=block_data))
    return Container(metadata=metadata, sync=sync, blocks=tuple(blocks))


def _header(reader: _Reader) -> tuple[tuple[tuple[str, bytes], ...], bytes]:
    if reader.take(4) != MAGIC:
        raise AvroContainerError("not an Avro object container file (bad magic)")
    metadata: list[tuple[str, bytes]] = []
    while True:
        count = reader.long()
        if count == 0:
            break
        if count < 0:  # a negative count is followed by the block's byte size, which we do not need
            count = -count
            reader.long()
        for _ in range(count):
            name = reader.bytes_().decode("utf-8")
            metadata.append((name, reader.bytes_()))
    return tuple(metadata), reader.take(SYNC_SIZE)


def write_container(metadata: Sequence[tuple[str, bytes]], sync: bytes, blocks: Iterable[Block]) -> bytes:
    """A container with ``metadata`` (in this order, one map block like fastavro writes) and copied ``blocks``."""
    if len(sync) != SYNC_SIZE:
        raise ValueError(f"a sync marker is {SYNC_SIZE} bytes, got {len(sync)}")
    out = io.BytesIO()
    out.write(MAGIC)
    if metadata:
        out.write(encode_long(len(metadata)))
        for name, value in metadata:
            out.write(_encode_bytes(name.encode("utf-8")))
            out.write(_encode_bytes(value))
    out.write(encode_long(0))
    out.write(sync)
    for block in blocks:
        out.write(encode_long(block.count))
        out.write(encode_long(len(block.data)))
        out.write(block.data)
        out.write(sync)  # the new file's marker: readers check each block against the header's
    return out.getvalue()


def read_records(data: bytes) -> Iterator[dict[str, Any]]:
    """Decode every record of a container (fastavro does the decoding and the codec)."""
    for record in fastavro.reader(io.BytesIO(data)):
        yield cast("dict[str, Any]", record)


def _encode_bytes(value: bytes) -> bytes:
    return encode_long(len(value)) + value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.position = 0

    def at_end(self) -> bool:
        return self.position >= len(self._data)

    def take(self, size: int) -> bytes:
        end = self.position + size
        if end > len(self._data):
            raise AvroContainerError(f"truncated container: wanted {size} bytes at byte {self.position}")
        chunk = bytes(self._data[self.position : end])
        self.position = end
        return chunk

    def long(self) -> int:
        try:
            value, self.position = decode_long(self._data, self.position)
        except ValueError as error:
            raise AvroContainerError(f"container {error}") from error
        return value

    def bytes_(self) -> bytes:
        size = self.long()
        if size < 0:
            raise AvroContainerError(f"negative length at byte {self.position}")
        return self.take(size)
