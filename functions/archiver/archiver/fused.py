"""Records of raw topics, from the event straight to their objects' Avro blocks in one pass.

For a raw topic nothing reads a record between decoding and encoding but the partitioner, yet building an envelope
dict per record (``decoding.decode_record``) only to take it apart again (``encoding.record_encoder``) was most of
the handler's Python work. ``RawScan`` checks each record the way ``decoding._decode_common`` does and appends its
Avro bytes to its object's current block at once: no dict, no header list, no second walk.

The partition path comes from the configured partitioner, called on a real envelope, but only once per *path key*:
the built-in ``default`` and ``time`` partitioners' paths depend on nothing but the topic and partition (default)
or the topic and the timestamp's minute (time; ``partitioning._time_partitioner`` memoises by minute itself), so
``PATH_KEYS`` says what to key the lookup on. Any other partitioner (``field`` reads the value) is called for every
record. Anything not as AWS normally sends it -- a missing field, a null header value, bad base64, a topic or header
name that is not ASCII, a timestamp outside years 1 to 9999, a typed topic -- takes the general route for that
record: ``decode_record`` (which names the problem, for the dead letter), the partitioner and the envelope encoder.
Both routes write the same bytes, byte for byte what ``fastavro.writer`` writes (tests/unit/test_fused.py).

``RawScan.groups`` hands each object's records over as soon as no later list of the event can add to it, so the
pipeline uploads one object while it encodes the next.
"""

from __future__ import annotations

from binascii import a2b_base64
from collections.abc import Collection, Hashable, Iterator
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter
from typing import Any, Literal

from archiver.decoding import (
    MAX_OFFSET,
    DecodedBatch,
    Envelope,
    RecordFailure,
    decode_record,
    record_lists,
    start_batch,
)
from archiver.encoding import (
    SYNC_INTERVAL,
    TIMESTAMP_MILLIS_MAX,
    TIMESTAMP_MILLIS_MIN,
    block_compressor,
    compressed_blocks,
    encode_long,
    record_encoder,
    varint_tables,
)
from archiver.errors import RecordError
from archiver.partitioning import PartitionPath

# What the path of each built-in partitioner depends on besides the topic (partitioning.py): the partition, or the
# partition and the minute of the timestamp (a superset of what the time partitioner reads). A partitioner missing
# here is called for every record.
PathKey = Literal["partition", "minute"]
PATH_KEYS: dict[str, PathKey] = {"default": "partition", "time": "minute"}
MINUTE_MS = 60_000
# Values longer than this are appended to the block apart from the bytes around them, saving a copy of the value.
_LARGE_VALUE = 2048
_COORDINATES = itemgetter("topic", "partition")
_END = b"\x00"  # union branch 0 (null), and the end of the headers array
# The "current topic" when there is no current group. Not None: a record's topic may be null (fuzz seed 1 found
# one archived under the previous group's topic when it followed a record of the general route).
_NO_GROUP = object()


class _Unusual(Exception):
    """The record is not in the shape AWS normally sends: the general route decides what it is."""


@dataclass(eq=False, slots=True)
class EncodedGroup:
    """The records of one (topic, partition, path) so far: their compressed blocks and the block being built."""

    topic: str
    partition: int
    path: str
    first_offset: int
    prefix: bytes  # the Avro bytes every record of the group starts with: its topic and partition
    raws: list[Any] = field(default_factory=list)  # the delivered records, in the order they were added
    blocks: list[tuple[int, bytes]] = field(default_factory=list)  # (record count, compressed block)
    buffer: bytearray = field(default_factory=bytearray)  # the uncompressed block being built
    blocked: int = 0  # how many of ``raws`` are in ``blocks``; the others are in ``buffer``
    last_offset: int = 0  # the offset of the last record added (offsets are never negative)
    newest_timestamp: int = -1  # the newest timestamp from 0 to the scan's limit (see newest_or_none)
    ordered: bool = True  # offsets never decreased; else the records are sorted and encoded again at the end
    # Sealed: its last block is compressed, at the end of a list that added to it (a later list may reopen it).
    # Released: handed over for upload; nothing can be added any more.
    sealed: bool = False
    released: bool = False

    @property
    def records(self) -> int:
        return len(self.raws)

    @property
    def newest_or_none(self) -> int | None:
        return None if self.newest_timestamp < 0 else self.newest_timestamp

    def envelopes(self) -> list[Envelope]:
        """The group's records decoded again, in offset order: for the rare object that must be encoded anew
        (records out of order, or a retry writing only the records an existing object lacks)."""
        envelopes = [decode_record(raw) for raw in self.raws]  # each decoded once before, so none raises
        envelopes.sort(key=_offset)
        return envelopes


def _offset(envelope: Envelope) -> int:
    offset: int = envelope["offset"]
    return offset


class RawScan:
    """One event: its raw topics' records encoded into groups, its typed topics' records decoded, its failures.

    ``EventError`` is raised on construction, before any record is read, if the event is not a Kafka batch.
    Iterate ``groups()`` to the end; ``batch`` then holds the failures and the typed topics' envelopes.
    """

    def __init__(
        self,
        event: object,
        *,
        partition_path: PartitionPath,
        path_key: PathKey | None,
        typed_topics: Collection[str],
        codec: str,
        newest_limit: int,
        release_early_above: int = 0,
    ) -> None:
        self.batch: DecodedBatch = start_batch(event)
        self._lists = record_lists(event)
        # Each becomes exactly one of: a record of a group, a typed topic's envelope, a failure.
        self.records_received = sum(len(raw_records) for _, raw_records in self._lists)
        self._partition_path = partition_path
        self._path_key = path_key
        self._typed = typed_topics
        self._codec = codec
        self._compress = block_compressor(codec)
        self._newest_limit = newest_limit  # newer timestamps are not taken for an object's newest (pipeline.py)
        self._release_early = len(self._lists) > release_early_above
        self._groups: dict[tuple[str, int, str], EncodedGroup] = {}
        self._routes: dict[Hashable, EncodedGroup] = {}  # path key -> group (when the partitioner has a path key)
        self._touched: dict[EncodedGroup, None] = {}  # groups that received records from the current list, in order
        self._texts: dict[str, bytes] = {}  # ASCII strings seen, as Avro strings: timestamp types, header names
        self._single_headers: dict[str, bytes] = {}  # header name -> the bytes opening a one-header array
        self._encode_envelope = record_encoder()

    def groups(self) -> Iterator[EncodedGroup]:
        """Every group, its blocks complete; with more lists than ``release_early_above``, each as soon as no later
        list of the event can add records to it, else all at the end.

        Each group's open block is compressed when a list that added to it ends (AWS puts each topic-partition in
        one list), so that one uncompressed block at a time is alive rather than one per object. Handing an object
        over early lets its upload overlap the encoding of the rest, which shortens the batch only when there are
        more objects than requests in flight at once; otherwise every upload finishes within one request's latency
        of the last object anyway, and handing threads work while the encoding holds the interpreter lock costs CPU
        time (docs/benchmarks.md, "Fan-out").
        """
        last_claims = self._last_claims() if self._release_early else None
        for index, (records_key, raw_records) in enumerate(self._lists):
            self._touched = {}
            self._scan(records_key, raw_records)
            for group in self._touched:
                self._seal(group)
                if last_claims is not None and last_claims.get((group.topic, group.partition), -1) <= index:
                    yield self._release(group)
        for group in list(self._groups.values()):
            yield self._release(group)

    def _last_claims(self) -> dict[Any, int] | None:
        """(topic, partition) -> the index of the last list holding a record that claims it; None if some record
        is too broken to tell (its groups are then handed over at the end)."""
        last: dict[Any, int] = {}
        try:
            for index, (_, raw_records) in enumerate(self._lists):
                last.update(dict.fromkeys(set(map(_COORDINATES, raw_records)), index))
        except (KeyError, TypeError):  # not a dict, a field missing, or an unhashable topic or partition
            return None
        return last

    def _seal(self, group: EncodedGroup) -> None:
        if group.buffer:
            self._cut(group)
        group.sealed = True

    def _reopen(self, group: EncodedGroup) -> None:
        """A later list adds to a sealed group: its blocks are written again from its records when released (as
        for records out of order), since the sealed block may have ended before SYNC_INTERVAL."""
        group.sealed, group.ordered = False, False

    def _release(self, group: EncodedGroup) -> EncodedGroup:
        group.released = True
        del self._groups[(group.topic, group.partition, group.path)]
        if not group.ordered:  # AWS delivers each partition in order; sorting makes that a guarantee
            envelopes = group.envelopes()
            group.first_offset, group.last_offset = envelopes[0]["offset"], envelopes[-1]["offset"]
            group.blocks = list(compressed_blocks(envelopes, self._compress))
        elif group.buffer:
            self._cut(group)
        group.buffer = bytearray()
        return group

    def _cut(self, group: EncodedGroup) -> None:
        """The block being built is complete (it reached SYNC_INTERVAL, or its list ended): compress it."""
        group.blocks.append((len(group.raws) - group.blocked, self._compress(group.buffer)))
        group.buffer, group.blocked = bytearray(), len(group.raws)

    def _scan(self, records_key: str, raw_records: list[Any]) -> None:
        """Every record of one list into its group: inline for the usual shape, else by ``_general``.

        The per-record work is written out here, with the current group's state in local variables, because each
        function call or attribute access per record is measurable at 100 B values (bench/, docs/benchmarks.md).
        """
        last, continued = varint_tables()
        with_length = _union_lengths()
        texts, single_headers = self._texts, self._single_headers
        limit = self._newest_limit
        by_minute = self._path_key == "minute"
        # The current group and its hot state, in local variables; a record of another (topic, partition, minute)
        # switches group. ``idle`` stands for no group: state is handed back to it harmlessly.
        idle = group = EncodedGroup(topic="", partition=0, path="", first_offset=0, prefix=b"")
        topic_now: object = _NO_GROUP  # equal to no topic: the next record switches group, whatever its topic
        partition_now: object = None
        window_start, window_end = 1, 0  # the timestamps of the current group's path key: none until one is loaded
        buffer, raws = group.buffer, group.raws
        last_offset, newest, prefix = group.last_offset, group.newest_timestamp, group.prefix
        # Varints (encoding.encode_long) by 14-bit table lookups; the bytes above those only change every 8,192
        # offsets and every 37 hours of timestamps, so they are kept, with the byte that follows each.
        offset_high_key = time_high_key = -1
        offset_low: list[bytes] = last
        offset_rest = time_rest = b""
        type_now: object = None
        payload = 0

        for raw in raw_records:
            try:
                if type(raw) is not dict:
                    raise _Unusual
                topic, partition, offset = raw["topic"], raw["partition"], raw["offset"]
                timestamp, timestamp_type, headers = raw["timestamp"], raw["timestampType"], raw["headers"]
                key, value = raw.get("key"), raw["value"]
                if not (type(partition) is int and type(offset) is int and type(timestamp) is int):
                    raise _Unusual
                if partition != partition_now or topic != topic_now or not window_start <= timestamp < window_end:
                    group.last_offset, group.newest_timestamp = last_offset, newest
                    group, topic_now = idle, _NO_GROUP
                    if not TIMESTAMP_MILLIS_MIN <= timestamp <= TIMESTAMP_MILLIS_MAX:
                        raise _Unusual  # timestamp_raw holds it (general route)
                    route = (topic, partition, timestamp // MINUTE_MS) if by_minute else (topic, partition)
                    found = self._routes.get(route) if self._path_key is not None else None
                    if found is None or found.sealed or found.released:
                        raise _Unusual  # a new route, or a group to reopen: the general route sees to it
                    # A route exists only for a topic and partition that decode_record accepted.
                    group = found
                    if by_minute:
                        window_start = timestamp // MINUTE_MS * MINUTE_MS
                        window_end = window_start + MINUTE_MS
                    else:
                        window_start, window_end = TIMESTAMP_MILLIS_MIN, TIMESTAMP_MILLIS_MAX + 1
                    topic_now, partition_now, prefix = topic, partition, group.prefix
                    buffer, raws = group.buffer, group.raws
                    last_offset, newest = group.last_offset, group.newest_timestamp
                    self._touched[group] = None
                if not last_offset <= offset <= MAX_OFFSET:  # in order and in range: the usual case
                    if not 0 <= offset <= MAX_OFFSET:
                        raise _Unusual
                    group.ordered = False  # its records are sorted when it is released (harmless if this one fails)
                if type(headers) is not list:
                    raise _Unusual

                if key is None:
                    key_head, key_data, key_size = _END, b"", 0
                elif type(key) is str:
                    key_data = a2b_base64(key, strict_mode=True)
                    key_size = len(key_data)
                    key_head = with_length[key_size]  # IndexError (the general route) for keys of 8 KiB and more
                else:
                    raise _Unusual
                if value is None:
                    value_head, value_data, value_size = _END, b"", 0
                elif type(value) is str:
                    value_data = a2b_base64(value, strict_mode=True)
                    value_size = len(value_data)
                    value_head = with_length[value_size] if value_size < 8192 else _with_length(value_size)
                else:
                    raise _Unusual
                # The headers array: its count, then each name and value (union branch 1, length, bytes), then 0.
                if len(headers) == 1:
                    # Anything but a dict of one entry raises AttributeError or ValueError here.
                    ((name, header_value),) = headers[0].items()
                    if type(header_value) is not list:
                        raise _Unusual  # a null value takes the general route; never bytes() of a number
                    # ValueError or TypeError unless every item is an int 0-255 (or a bool, next line). bytearray(),
                    # not bytes(): half the time for a 55-byte header (bench: header_conversion).
                    data = bytearray(header_value)
                    if (0 in data or 1 in data) and bool in map(type, header_value):
                        raise _Unusual  # ... which takes JSON true and false for 1 and 0 (decoding._has_bool)
                    opening = single_headers.get(name) or _single_header(single_headers, texts, name)
                    # Values of 8 KiB and more raise IndexError here, and take the general route.
                    header_length, header_data, headers_end = with_length[len(data)], data, _END
                else:
                    opening = self._headers(headers) if headers else _END
                    header_length, header_data, headers_end = b"", bytearray(), b""
                zigzag = offset << 1
                if zigzag >> 14 != offset_high_key:
                    offset_high_key = zigzag >> 14
                    offset_low, offset_rest = _split_varint(offset_high_key, b"\x02")
                zigzag_time = (timestamp << 1) ^ (timestamp >> 63)
                if zigzag_time >> 28 != time_high_key or timestamp_type != type_now:
                    if not zigzag_time >> 28:
                        raise _Unusual  # within 37 hours of 1970 (or -1, "no timestamp"): a shorter varint
                    text = texts.get(timestamp_type) or _ascii_text(texts, timestamp_type)
                    time_rest = _split_varint(zigzag_time >> 28, _END)[1] + text  # + timestamp_raw null, the type
                    time_high_key, type_now = zigzag_time >> 28, timestamp_type
            except (_Unusual, KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
                # binascii.Error is a ValueError. Hand the group's state back, then let the general route decide.
                group.last_offset, group.newest_timestamp = last_offset, newest
                group, topic_now = idle, _NO_GROUP
                self._general(records_key, raw)
                continue

            # The record: topic and partition, offset, then timestamp as union branch 1 (timestamp-millis) and
            # timestamp_raw as branch 0 (null), the timestamp type, key, value and headers.
            offset_bytes = offset_low[zigzag & 0x3FFF]
            time_low = continued[zigzag_time & 0x3FFF]
            time_middle = continued[(zigzag_time >> 14) & 0x3FFF]
            if value_size > _LARGE_VALUE:
                buffer += b"".join(
                    (prefix, offset_bytes, offset_rest, time_low, time_middle, time_rest, key_head, key_data)
                )
                buffer += value_head
                buffer += value_data
                buffer += b"".join((opening, header_length, header_data, headers_end))
            else:
                buffer += b"".join(
                    (
                        prefix,
                        offset_bytes,
                        offset_rest,
                        time_low,
                        time_middle,
                        time_rest,
                        key_head,
                        key_data,
                        value_head,
                        value_data,
                        opening,
                        header_length,
                        header_data,
                        headers_end,
                    )
                )
            raws.append(raw)
            last_offset = offset
            if newest < timestamp <= limit:
                newest = timestamp
            payload += key_size + value_size
            if len(buffer) >= SYNC_INTERVAL:
                self._cut(group)
                buffer = group.buffer

        group.last_offset, group.newest_timestamp = last_offset, newest
        self.batch.payload_bytes += payload

    def _headers(self, headers: list[Any]) -> bytes:
        """Two or more headers as the Avro array ``_scan`` appends; ``_Unusual`` for anything but ASCII names and
        lists of byte values."""
        texts, long = self._texts, encode_long
        parts: list[bytes | bytearray] = [long(len(headers))]
        for entry in headers:
            if type(entry) is not dict or len(entry) != 1:
                raise _Unusual
            ((name, header_value),) = entry.items()
            if type(header_value) is not list:
                raise _Unusual
            data = bytearray(header_value)
            if (0 in data or 1 in data) and bool in map(type, header_value):
                raise _Unusual
            parts += (texts.get(name) or _ascii_text(texts, name), b"\x02", long(len(data)), data)
        parts.append(_END)
        return b"".join(parts)

    def _general(self, records_key: str, raw: Any) -> None:
        """One record the inline path did not take: decoded and checked in full, then placed and encoded."""
        try:
            envelope = decode_record(raw)
        except RecordError as error:
            self.batch.failures.append(RecordFailure(error=error, raw=raw, records_key=records_key))
            return
        topic, partition, timestamp = envelope["topic"], envelope["partition"], envelope["timestamp"]
        if topic in self._typed:
            self.batch.add(envelope, records_key, raw)
            return
        route: Hashable = None
        if self._path_key is not None:
            route = (topic, partition, timestamp // MINUTE_MS) if self._path_key == "minute" else (topic, partition)
        group = self._routes.get(route) if route is not None else None
        if group is None or group.released:
            try:
                path = self._partition_path(envelope)
            except RecordError as error:
                self.batch.failures.append(RecordFailure.of_envelope(error, envelope, raw))
                return
            group = self._group(topic, partition, path, envelope["offset"])
            if route is not None:
                self._routes[route] = group
        if group.sealed:
            self._reopen(group)
        self._touched[group] = None
        group.buffer += self._encode_envelope(envelope)
        group.raws.append(raw)
        offset = envelope["offset"]
        if offset < group.last_offset:
            group.ordered = False
        group.last_offset = offset
        if group.newest_timestamp < timestamp <= self._newest_limit:
            group.newest_timestamp = timestamp
        self.batch.payload_bytes += len(envelope["key"] or b"") + len(envelope["value"] or b"")
        if len(group.buffer) >= SYNC_INTERVAL:
            self._cut(group)

    def _group(self, topic: str, partition: int, path: str, first_offset: int) -> EncodedGroup:
        group = self._groups.get((topic, partition, path))
        if group is None:
            raw_topic = topic.encode("utf-8")  # decode_record checked that it is Unicode text
            prefix = encode_long(len(raw_topic)) + raw_topic + encode_long(partition)
            group = EncodedGroup(topic=topic, partition=partition, path=path, first_offset=first_offset, prefix=prefix)
            self._groups[(topic, partition, path)] = group
        return group


def _ascii_text(texts: dict[str, bytes], text: object) -> bytes:
    """``text`` as an Avro string, remembered in ``texts``; ``_Unusual`` unless it is an ASCII ``str``."""
    if type(text) is not str or not text.isascii():
        raise _Unusual
    encoded = texts[text] = encode_long(len(text)) + text.encode("ascii")
    return encoded


def _single_header(single_headers: dict[str, bytes], texts: dict[str, bytes], name: str) -> bytes:
    """The bytes before a lone header's value: array count 1, its name, union branch 1 (bytes)."""
    opening = single_headers[name] = b"\x02" + (texts.get(name) or _ascii_text(texts, name))
    return opening


def _with_length(length: int) -> bytes:
    """Union branch 1, then the length of what follows."""
    zigzag = length << 1
    if zigzag < 0x10000000:
        last, continued = varint_tables()
        return b"\x02" + (last[zigzag] if zigzag < 0x4000 else continued[zigzag & 0x3FFF] + last[zigzag >> 14])
    return b"\x02" + encode_long(length)


@cache
def _union_lengths() -> list[bytes]:
    """``_with_length(n)`` for every n below 8,192, built once (0.3 MB)."""
    return [_with_length(length) for length in range(8192)]


def _split_varint(high: int, then: bytes) -> tuple[list[bytes], bytes]:
    """For varints of zig-zag values whose bits above the 14 (or 28) lowest are ``high``: the table their lowest two
    bytes come from, and the bytes after the table's, followed by ``then``. ``encode_long(n)`` is
    ``table[z & 0x3FFF] + rest`` (or ``continued[z & 0x3FFF] + continued[(z >> 14) & 0x3FFF] + rest``). Called
    when those bits change: a few times per batch."""
    last, continued = varint_tables()
    if not high:
        return last, then
    rest = bytearray()
    while high >= 0x80:
        rest.append((high & 0x7F) | 0x80)
        high >>= 7
    rest.append(high)
    return continued, bytes(rest) + then
