"""Envelope records -> Avro object container bytes; the codecs, the container's header and its varints.

The schema is parsed once per container. The sync marker, normally random, is derived from the object key, and
no metadata varies between runs, so encoding the same records under the same key gives byte-identical objects.

The records are encoded by a writer specialised to the fixed envelope schema rather than by ``fastavro.writer``:
it does no per-field schema dispatch or union resolution (the decoder has already checked every type), and so
encodes full batches 2.4 to 3.1 times as fast before compression (1.2 to 2.6 times with zstandard, whose own time
it cannot change; bench/, docs/benchmarks.md). Its output is byte for byte what ``fastavro.writer`` writes for the
same records, codec, sync marker and sync interval: the header is fastavro's own and block boundaries follow the
same rule. ``fastavro_encode_records`` keeps the general path, and every ``make bench`` run compares the two.
Raw topics' records usually skip envelopes altogether (``archiver.fused`` writes the same bytes from the event);
this writer serves the records that take the general route, objects written anew for a retried batch, compaction
and the tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zlib
from collections.abc import Buffer, Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import cramjam
import fastavro

from archiver.decoding import Envelope

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

SCHEMA_RESOURCE = "envelope.avsc"
# The instants Avro's timestamp-millis readers can represent: years 1 to 9999 UTC (Python's datetime range, which
# fastavro and Apache avro both convert to by default). Envelope schema v2 writes a delivered timestamp outside it to
# ``timestamp_raw`` and leaves ``timestamp`` null, so every reader can read every record (docs/schema.md).
TIMESTAMP_MILLIS_MIN = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
TIMESTAMP_MILLIS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# Bytes per Avro block before compression. Larger blocks compress better, up to a point: with 1 KB JSON values,
# zstandard stores 0.241 of the payload with 64 KiB blocks, 0.235 with 256 KiB, 0.234 with 1 MiB and 4 MiB, at the
# same speed (docs/benchmarks.md). A batch is at most 6 MB, so 1 MiB takes all of the gain while bounding the
# memory a reader needs per block.
SYNC_INTERVAL = 1 << 20
SYNC_SIZE = 16
# One block's bytes (a bytes or bytearray) -> what the container stores for it.
Compressor = Callable[[Buffer], bytes]


def load_envelope_schema() -> dict[str, Any]:
    """The envelope schema as shipped in ``archiver/schemas/envelope.avsc``."""
    text = resources.files("archiver.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


ENVELOPE_SCHEMA = fastavro.parse_schema(load_envelope_schema())


def sync_marker_for(key: str) -> bytes:
    """A 16-byte sync marker that depends only on the object key."""
    return hashlib.sha256(key.encode("utf-8")).digest()[:SYNC_SIZE]


def encode_records(records: Sequence[Envelope], *, codec: str, key: str) -> bytes:
    """One Avro object container file holding ``records`` in order."""
    return container(compressed_blocks(records, block_compressor(codec)), codec=codec, key=key)


def container(blocks: Iterable[tuple[int, bytes]], *, codec: str, key: str) -> bytes:
    """The object container file of already compressed ``(record count, block)`` pairs: fastavro's header, then
    each block between sync markers derived from ``key``."""
    sync = sync_marker_for(key)
    out = [_header_without_sync(codec), sync]
    for count, data in blocks:
        out += (encode_long(count), encode_long(len(data)), data, sync)
    return b"".join(out)


def fastavro_encode_records(records: Sequence[Envelope], *, codec: str, key: str) -> bytes:
    """The same file written by the general ``fastavro.writer``: the reference the specialised writer must match."""
    return encode_with_schema(
        ENVELOPE_SCHEMA, (with_timestamp_fields(record) for record in records), codec=codec, key=key
    )


def with_timestamp_fields(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    """``envelope`` (whose ``timestamp`` is the delivered int) as the v2 schema's ``timestamp`` + ``timestamp_raw``.

    An in-range record is returned as it is: fastavro writes the absent ``timestamp_raw`` as its default, null.
    """
    timestamp = envelope["timestamp"]
    if TIMESTAMP_MILLIS_MIN <= timestamp <= TIMESTAMP_MILLIS_MAX:
        return envelope
    return {**envelope, "timestamp": None, "timestamp_raw": timestamp}


def encode_with_schema(schema: Any, records: Iterable[Mapping[str, Any]], *, codec: str, key: str) -> bytes:
    """One Avro container file of ``records`` in any ``schema``, written by ``fastavro.writer`` and deterministic
    like ``encode_records``: the sync marker comes from ``key`` and blocks end at ``SYNC_INTERVAL``."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, records, codec=codec, sync_marker=sync_marker_for(key), sync_interval=SYNC_INTERVAL)
    return canonical_header(buffer.getvalue())


def block_compressor(codec: str) -> Compressor:
    """The function that turns one block's bytes into what the container stores for ``codec``."""
    compress = _COMPRESSORS.get(codec)
    if compress is None:
        raise ValueError(f"unrecognized codec: {codec}")
    return compress


@cache
def _header_without_sync(codec: str) -> bytes:
    """fastavro's own container header (magic, schema, codec) for ``codec``, less its trailing sync marker."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, ENVELOPE_SCHEMA, [], codec=codec, sync_marker=bytes(SYNC_SIZE))
    return canonical_header(buffer.getvalue())[:-SYNC_SIZE]


def canonical_header(container: bytes) -> bytes:
    """``container`` (as ``fastavro.writer`` wrote it) with the header's schema JSON written with sorted keys.

    ``fastavro.parse_schema`` adds a field's optional properties (``doc``, ``default``, ...) in the iteration order
    of a set, which changes from process to process with Python's hash seed. Without this, the same records under the
    same key would be different bytes in another Lambda container, and compaction could not copy the blocks of
    objects written by different containers (their headers would differ).
    """
    position = len(_MAGIC)
    count, position = decode_long(container, position)
    entries = []
    for _ in range(count):  # fastavro writes the metadata as one map block with a positive count
        name_length, position = decode_long(container, position)
        name = container[position : position + name_length]
        position += name_length
        value_length, position = decode_long(container, position)
        value = container[position : position + value_length]
        position += value_length
        if name == b"avro.schema":
            value = json.dumps(json.loads(value), sort_keys=True).encode("utf-8")
        entries.append(encode_long(len(name)) + name + encode_long(len(value)) + value)
    end, position = decode_long(container, position)
    if container[: len(_MAGIC)] != _MAGIC or count < 1 or end != 0:
        raise ValueError("not a container header as fastavro writes it")
    return b"".join([_MAGIC, encode_long(count), *entries, encode_long(0), container[position:]])


_MAGIC = b"Obj\x01"


def compressed_blocks(records: Sequence[Envelope], compress: Compressor) -> Iterator[tuple[int, bytes]]:
    """(record count, compressed block) per block of ``records``, each compressed as soon as it is complete."""
    return ((count, compress(block)) for count, block in _blocks(records))


def _blocks(records: Sequence[Envelope]) -> Iterator[tuple[int, bytes]]:
    """(record count, uncompressed bytes) per block; a block ends with the record that takes it to SYNC_INTERVAL.

    A generator, so that each block is compressed and dropped before the next is built: at most one uncompressed
    block is alive at a time.
    """
    encode = record_encoder()
    pending: list[bytes] = []
    size = 0
    for record in records:
        encoded = encode(record)
        pending.append(encoded)
        size += len(encoded)
        if size >= SYNC_INTERVAL:
            yield len(pending), b"".join(pending)
            pending, size = [], 0
    if pending:
        yield len(pending), b"".join(pending)


def record_encoder() -> Callable[[Envelope], bytes]:
    """A function from one envelope record to its Avro bytes, with its own memo of encoded strings."""
    texts: dict[str, bytes] = {}  # topics, timestamp types and header names: a few distinct values per batch
    long = _long_encoder()

    def encode(record: Envelope) -> bytes:
        topic, timestamp_type = record["topic"], record["timestamp_type"]
        key, value, headers = record["key"], record["value"], record["headers"]
        timestamp = record["timestamp"]
        # timestamp: ["null", timestamp-millis], then timestamp_raw: ["null", "long"]; one of the two is null.
        before, after = _IN_RANGE if TIMESTAMP_MILLIS_MIN <= timestamp <= TIMESTAMP_MILLIS_MAX else _OUT_OF_RANGE
        parts = [
            texts.get(topic) or _text(texts, topic),
            long(record["partition"]),
            long(record["offset"]),
            before,
            long(timestamp),
            after,
            texts.get(timestamp_type) or _text(texts, timestamp_type),
        ]
        if key is None:
            parts.append(b"\x00")  # union branch 0: null
        else:
            parts += (b"\x02", long(len(key)), key)  # union branch 1: bytes
        if value is None:
            parts.append(b"\x00")
        else:
            parts += (b"\x02", long(len(value)), value)
        if headers:
            parts.append(long(len(headers)))  # one array block holding every header, as fastavro writes it
            for header in headers:
                name, header_value = header["key"], header["value"]
                parts.append(texts.get(name) or _text(texts, name))
                if header_value is None:
                    parts.append(b"\x00")
                else:
                    parts += (b"\x02", long(len(header_value)), header_value)
        parts.append(b"\x00")  # end of the headers array
        return b"".join(parts)

    return encode


# The union bytes around a timestamp: (before, after) it. In range: timestamp is branch 1, timestamp_raw null (0).
# Outside: timestamp null (0), timestamp_raw branch 1, holding the value.
_IN_RANGE = (b"\x02", b"\x00")
_OUT_OF_RANGE = (b"\x00\x02", b"")


def _text(texts: dict[str, bytes], text: str) -> bytes:
    """An Avro string (length + UTF-8), remembered in ``texts``."""
    raw = text.encode("utf-8")
    encoded = texts[text] = encode_long(len(raw)) + raw
    return encoded


def encode_long(n: int) -> bytes:
    """Avro's encoding of a long: zig-zag, then 7 bits per byte, least significant first."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def decode_long(data: bytes | memoryview, position: int) -> tuple[int, int]:
    """The Avro long at ``data[position:]`` and the position after it; ``ValueError`` if it is cut off or longer
    than the 10 bytes a 64-bit number takes."""
    result = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated inside a varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


@cache
def varint_tables() -> tuple[list[bytes], list[bytes]]:
    """Varints of every 14-bit value, as the last bytes of a number and as continued bytes (built on first use)."""
    last = [bytes((z,)) if z < 0x80 else bytes(((z & 0x7F) | 0x80, z >> 7)) for z in range(0x4000)]
    continued = [bytes(((z & 0x7F) | 0x80, (z >> 7) | 0x80)) for z in range(0x4000)]
    return last, continued


def _long_encoder() -> Callable[[int], bytes]:
    """A fast ``encode_long``: 14 bits per table lookup instead of a loop per 7 bits.

    A record needs about seven varints (partition, offset, timestamp, lengths); offsets and millisecond timestamps
    take 3 to 6 bytes. The tables (32,768 short bytes, 1.4 MB; archiver/fused.py reads them too) are built once per
    container at its first batch rather than at import, so that they stay out of the cold start.
    """
    last, continued = varint_tables()

    def long(n: int) -> bytes:
        z = (n << 1) ^ (n >> 63)
        if z < 0x4000:
            return last[z]
        if z < 0x10000000:
            return continued[z & 0x3FFF] + last[z >> 14]
        if z < 0x40000000000:
            return continued[z & 0x3FFF] + continued[(z >> 14) & 0x3FFF] + last[z >> 28]
        return encode_long(n)

    return long


def _snappy(block: Buffer) -> bytes:
    # Avro's snappy blocks carry the big-endian CRC-32 of the uncompressed data after the compressed bytes.
    return bytes(cramjam.snappy.compress_raw(block)) + (zlib.crc32(block) & 0xFFFFFFFF).to_bytes(4, "big")


def _zstandard() -> Compressor:
    """zstandard as fastavro writes it, ``zstd.compress(block)``, without a new compression context per block.

    One compressor finishing a frame per call writes the same bytes as ``zstd.compress`` (content size included:
    tests/unit/test_fused.py) and saves the 18 us of building a context (bench: 24 us against 6 us for a 1 KB
    block), which adds up when a batch fans out to hundreds of small objects. Calls from several threads take the
    compressor's own lock in turn.
    """
    compressor = zstd.ZstdCompressor()
    return lambda block: compressor.compress(block, mode=zstd.ZstdCompressor.FLUSH_FRAME)


_COMPRESSORS: dict[str, Compressor] = {
    "null": bytes,
    # As fastavro writes it: zlib's stream less its 2-byte header and the last byte of its checksum. Readers inflate
    # raw deflate, which ends before the leftover checksum bytes.
    "deflate": lambda block: zlib.compress(block)[2:-1],
    "snappy": _snappy,
    "zstandard": _zstandard(),
}
