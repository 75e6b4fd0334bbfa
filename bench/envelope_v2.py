"""The cost of envelope schema v2 (docs/schema.md) against v1: object bytes and encode time on full batches.

    python -m bench.envelope_v2 [--rounds 9]

v1 is rebuilt here exactly as it shipped: its schema (``timestamp`` a plain ``timestamp-millis`` long, no
``timestamp_raw``) and the specialised writer's record loop as it was, which wrote the timestamp as a bare long.
Both sides write complete containers (fastavro's header for their schema, blocks, codec) and each is checked to be
byte-identical to ``fastavro.writer`` for its schema before it is timed. Timings are CPU time, interleaved
(bench/timing.py), so the ratios come from the same rounds of one process.
"""

from __future__ import annotations

import argparse
import copy
import io
from collections.abc import Iterator, Sequence
from typing import Any

import fastavro

from archiver import encoding
from archiver.decoding import Envelope
from bench import data, variants
from bench.timing import interleaved

SIZES = (100, 1_000, 10_000)
CODECS = ("null", "zstandard")


def v1_schema() -> dict[str, Any]:
    """envelope.avsc as it was before v2."""
    schema = copy.deepcopy(encoding.load_envelope_schema())
    schema["fields"] = [field for field in schema["fields"] if field["name"] != "timestamp_raw"]
    for field in schema["fields"]:
        if field["name"] == "timestamp":
            field["type"] = {"type": "long", "logicalType": "timestamp-millis"}
            field["doc"] = "Record timestamp, milliseconds since the Unix epoch (UTC)."
    return schema


V1 = fastavro.parse_schema(v1_schema())


def encode_v1(records: Sequence[Envelope], *, codec: str, key: str) -> bytes:
    """The v1 writer: encoding.encode_records as it was, with the v1 header."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, V1, [], codec=codec, sync_marker=bytes(encoding.SYNC_SIZE))
    compress = encoding.block_compressor(codec)
    sync = encoding.sync_marker_for(key)
    out = [buffer.getvalue()[: -encoding.SYNC_SIZE], sync]
    for count, block in _v1_blocks(records):
        compressed = compress(block)
        out += (encoding.encode_long(count), encoding.encode_long(len(compressed)), compressed, sync)
    return b"".join(out)


def _v1_blocks(records: Sequence[Envelope]) -> Iterator[tuple[int, bytes]]:
    """encoding._blocks before v2, unchanged but for its name."""
    texts: dict[str, bytes] = {}
    long = encoding._long_encoder()
    pending: list[bytes] = []
    size = 0
    for record in records:
        topic, timestamp_type = record["topic"], record["timestamp_type"]
        key, value, headers = record["key"], record["value"], record["headers"]
        parts = [
            texts.get(topic) or encoding._text(texts, topic),
            long(record["partition"]),
            long(record["offset"]),
            long(record["timestamp"]),
            texts.get(timestamp_type) or encoding._text(texts, timestamp_type),
        ]
        if key is None:
            parts.append(b"\x00")
        else:
            parts += (b"\x02", long(len(key)), key)
        if value is None:
            parts.append(b"\x00")
        else:
            parts += (b"\x02", long(len(value)), value)
        if headers:
            parts.append(long(len(headers)))
            for header in headers:
                name, header_value = header["key"], header["value"]
                parts.append(texts.get(name) or encoding._text(texts, name))
                if header_value is None:
                    parts.append(b"\x00")
                else:
                    parts += (b"\x02", long(len(header_value)), header_value)
        parts.append(b"\x00")
        encoded = b"".join(parts)
        pending.append(encoded)
        size += len(encoded)
        if size >= encoding.SYNC_INTERVAL:
            yield len(pending), b"".join(pending)
            pending, size = [], 0
    if pending:
        yield len(pending), b"".join(pending)


def measure(rounds: int) -> list[dict[str, Any]]:
    rows = []
    for size in SIZES:
        records = variants.decode_ours(data.full_batch(size).event)
        for codec in CODECS:
            v1 = encode_v1(records, codec=codec, key="k")
            v2 = encoding.encode_records(records, codec=codec, key="k")
            assert v1 == encoding.encode_with_schema(V1, records, codec=codec, key="k"), "v1 writer != fastavro"
            assert v2 == encoding.fastavro_encode_records(records, codec=codec, key="k"), "v2 writer != fastavro"

            def write_v1(records: list[Envelope] = records, codec: str = codec) -> bytes:
                return encode_v1(records, codec=codec, key="k")

            def write_v2(records: list[Envelope] = records, codec: str = codec) -> bytes:
                return encoding.encode_records(records, codec=codec, key="k")

            timings = interleaved({"v1": write_v1, "v2": write_v2}, rounds=rounds)
            rows.append(
                {
                    "value_size": size,
                    "records": len(records),
                    "codec": codec,
                    "v1_bytes": len(v1),
                    "v2_bytes": len(v2),
                    "bytes_ratio": len(v2) / len(v1),
                    "v1_best_s": timings["v1"].best,
                    "v2_best_s": timings["v2"].best,
                    "time_ratio": timings["v2"].best / timings["v1"].best,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.envelope_v2", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    header_v1 = len(encode_v1([], codec="zstandard", key="k"))
    header_v2 = len(encoding.encode_records([], codec="zstandard", key="k"))
    print(f"empty container (header + sync): v1 {header_v1} B, v2 {header_v2} B (+{header_v2 - header_v1} B)")
    print(" value codec     records   v1 bytes   v2 bytes  ratio    v1 ms    v2 ms  ratio")
    for row in measure(args.rounds):
        print(
            f"{row['value_size']:>6} {row['codec']:<9} {row['records']:>7} {row['v1_bytes']:>10,} "
            f"{row['v2_bytes']:>10,} {row['bytes_ratio']:6.4f} {row['v1_best_s'] * 1e3:8.2f} "
            f"{row['v2_best_s'] * 1e3:8.2f} {row['time_ratio']:6.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
