"""Records that cannot be archived -> the SQS dead-letter queue, with the record exactly as it was delivered.

Message body (JSON, ASCII only; documented in README.md and docs/dead-letter.md)::

    {"version": 2, "id": ..., "reason": ..., "errorClass": ..., "errorMessage": ...,
     "topic": ..., "partition": ..., "offset": ...,
     "record": <the event's record, exactly as delivered>,
     "eventSource": ..., "eventSourceArn": ..., "bootstrapServers": ..., "recordsKey": "<topic>-<partition>"}

``record`` is the record as the event carried it -- every field, valid or not, in AWS's own shape (base64 key and
value, headers as lists of byte values) -- so a consumer can replay it with the rules that read events, and nothing
here ever builds bytes out of what arrived. ``topic``, ``partition`` and ``offset`` are its coordinates for routing
and de-duplication: the record's own where they are valid, else from its ``<topic>-<partition>`` map key.

A body larger than SQS accepts is written to ``s3://<bucket>/dead-letter/...`` (a deterministic key, so a retried
batch rewrites the same object) and the message carries ``payloadLocation`` instead of ``record``.
Any SQS or S3 failure after retries raises ``DeadLetterError``: the batch is retried, nothing is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from archiver.decoding import MAX_OFFSET, MAX_PARTITION, DecodedBatch, RecordFailure
from archiver.errors import DeadLetterError
from archiver.jsontext import SPACED, dump_json
from archiver.keys import dead_letter_key, dead_letter_ledger_key, offset_label
from archiver.parallel import RequestPool, parallel_requests
from archiver.partitioning import encode_topic

MESSAGE_VERSION = 2
LEDGER_VERSION = 1
MAX_MESSAGE_BYTES = 256 * 1024  # SQS's classic limit per message and per SendMessageBatch request
MAX_BATCH_ENTRIES = 10  # SendMessageBatch's limit
MAX_SEND_ATTEMPTS = 4  # our retries of entries SQS failed on its side, on top of the SDK's request retries
PAYLOAD_FIELD = "record"
MAX_ERROR_MESSAGE = 2_000  # characters; the record itself is in the body, the message only has to name the problem
# What a pointer to a spilled body keeps when the event's own fields (topic names, ARNs) would make it too long.
_BOUNDED_FIELDS = ("version", "id", "reason", "errorClass", "errorMessage", "partition", "offset")
_MAX_PARTITION_DIGITS = len(str(MAX_PARTITION))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message to send: its deterministic id, coordinates and JSON body."""

    record_id: str
    topic: str
    partition: int | None
    body: dict[str, Any]


def dead_letters_for(batch: DecodedBatch, failures: Sequence[RecordFailure]) -> list[DeadLetter]:
    """Build the dead-letter message of every failure, keeping each record exactly as it arrived.

    Two different records with the same coordinates in one batch (the fuzz suite delivers such batches) would get
    the same id, and so the same spill key in S3, where the second would overwrite the first. The second and later
    get ``+<hash of the record>`` appended to the id instead; the same batch again gives the same ids.
    """
    letters: list[DeadLetter] = []
    first: dict[str, RecordFailure] = {}  # id -> the failure that got it first
    for failure in failures:
        letter = _dead_letter(batch, failure)
        earlier = first.setdefault(letter.record_id, failure)
        if earlier is not failure and (text := _record_text(failure)) != _record_text(earlier):
            record_id = f"{letter.record_id}+{hashlib.sha256(text.encode('ascii')).hexdigest()[:16]}"
            letter = replace(letter, record_id=record_id, body={**letter.body, "id": record_id})
        letters.append(letter)
    return letters


def _record_text(failure: RecordFailure) -> str:
    return dump_json([failure.records_key, failure.raw], sort_keys=True, separators=SPACED)


def _dead_letter(batch: DecodedBatch, failure: RecordFailure) -> DeadLetter:
    raw = failure.raw if isinstance(failure.raw, dict) else {}
    topic, partition = _coordinates(raw, failure.records_key)
    offset = raw.get("offset")
    offset = offset if type(offset) is int and 0 <= offset <= MAX_OFFSET else None
    record_id = _record_id(topic, partition, offset, failure.raw)
    body = {
        "version": MESSAGE_VERSION,
        "id": record_id,
        "reason": failure.error.reason,
        "errorClass": type(failure.error).__name__,
        "errorMessage": str(failure.error)[:MAX_ERROR_MESSAGE],
        "topic": topic,
        "partition": partition,
        "offset": offset,
        PAYLOAD_FIELD: failure.raw,
        "eventSource": batch.event_source,
        "eventSourceArn": batch.event_source_arn,
        "bootstrapServers": batch.bootstrap_servers,
        "recordsKey": failure.records_key,
    }
    return DeadLetter(record_id=record_id, topic=topic, partition=partition, body=body)


def _coordinates(raw: dict[str, Any], records_key: str) -> tuple[str, int | None]:
    """Topic and partition from the record where valid, else from its "<topic>-<partition>" map key."""
    key_topic, _, key_partition = records_key.rpartition("-")
    topic = raw.get("topic")
    if not isinstance(topic, str) or not topic:
        topic = key_topic or records_key
    partition = raw.get("partition")
    if type(partition) is not int or not 0 <= partition <= MAX_PARTITION:
        partition = _partition_number(key_partition)
    return topic, partition


def _partition_number(text: str) -> int | None:
    """The partition a map key names, or None. ``str.isdigit`` alone also accepts "²" and other digits int() won't
    read, and a 5,000-digit number int() refuses to convert."""
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_PARTITION_DIGITS):
        return None
    number = int(text)
    return number if number <= MAX_PARTITION else None


def _record_id(topic: str, partition: int | None, offset: int | None, raw: object) -> str:
    """``<topic>+<partition>+<offset>``; a record without a usable offset is named by a hash of its content."""
    if offset is not None and partition is not None:
        return f"{encode_topic(topic)}+{partition}+{offset_label(offset)}"
    # The text json.dumps(raw, sort_keys=True) gives, as in message version 1, so ids stay the same across versions.
    content = dump_json(raw, sort_keys=True, separators=SPACED).encode("ascii")
    digest = hashlib.sha256(content).hexdigest()[:32]
    return f"{encode_topic(topic)}+{partition if partition is not None else 'unknown'}+sha256-{digest}"


class DeadLetterQueue:
    """Sends dead letters to one SQS queue, spilling oversized bodies to the archive bucket."""

    def __init__(
        self, sqs_client: Any, s3_client: Any, *, queue_url: str, bucket: str, pool: RequestPool | None = None
    ) -> None:
        self._sqs = sqs_client
        self._s3 = s3_client
        self._queue_url = queue_url
        self._bucket = bucket
        self._pool = pool or RequestPool(parallel_requests())

    def send_all(self, letters: Sequence[DeadLetter]) -> list[str]:
        """Send every letter (raising ``DeadLetterError`` if any cannot be). Returns the S3 keys of spilled bodies.

        First the ledger entries and the spilled bodies, side by side; then the messages, side by side: a message is
        never sent before its ledger entry (the archive audit reads the ledger from S3, never from the queue it must
        not consume) and its spilled body are stored.
        """
        bodies = [_json(letter.body) for letter in letters]
        spills = [
            (index, dead_letter_key(letter.topic, letter.partition, letter.record_id))
            for index, (letter, body) in enumerate(zip(letters, bodies, strict=True))
            if len(body) > MAX_MESSAGE_BYTES  # ASCII only: characters are bytes
        ]
        puts = [partial(self._put_ledger_entry, key, document) for key, document in _ledger_entries(letters)]
        puts += [partial(self._spill, key, bodies[index]) for index, key in spills]
        self._pool.run_all(puts)
        for index, key in spills:
            bodies[index] = _pointer(letters[index], {"bucket": self._bucket, "key": key, "bytes": len(bodies[index])})
        self._pool.run_all([partial(self._send_chunk, chunk) for chunk in _chunks(bodies)])
        return [key for _, key in spills]

    def _put_ledger_entry(self, key: str, document: dict[str, Any]) -> None:
        try:
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=_json(document).encode("ascii"), ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as error:
            raise DeadLetterError(f"could not record dead letters at s3://{self._bucket}/{key}: {error}") from error

    def _spill(self, key: str, body: str) -> None:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body.encode("ascii"), ContentType="application/json")
        except (ClientError, BotoCoreError) as error:
            raise DeadLetterError(
                f"could not store dead-letter payload at s3://{self._bucket}/{key}: {error}"
            ) from error

    def _send_chunk(self, bodies: list[str]) -> None:
        pending = {f"m{index}": body for index, body in enumerate(bodies)}
        for _attempt in range(MAX_SEND_ATTEMPTS):
            entries = [{"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                raise DeadLetterError(f"could not send to the dead-letter queue {self._queue_url}: {error}") from error
            failed = response.get("Failed", [])
            sender_faults = [entry for entry in failed if entry.get("SenderFault")]
            if sender_faults:
                # Retrying the same message cannot help; the batch must be retried (and the cause fixed).
                raise DeadLetterError(f"the dead-letter queue rejected messages: {sender_faults}")
            pending = {entry["Id"]: pending[entry["Id"]] for entry in failed}
            if not pending:
                return
        raise DeadLetterError(f"the dead-letter queue kept failing {len(pending)} message(s) after retries")


def _ledger_entries(letters: Sequence[DeadLetter]) -> list[tuple[str, dict[str, Any]]]:
    """The ledger: one small JSON object per topic-partition, which offsets this batch dead-lettered and why.

    S3 keeps it as long as the bucket's lifecycle says, beyond the queue's 14 days, so the audit can tell a
    dead-lettered offset from a lost one at any time. Letters without usable coordinates are only on the queue.
    """
    by_partition: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for letter in letters:
        offset = letter.body.get("offset")
        if letter.partition is None or type(offset) is not int:
            continue
        entry = {"offset": offset, "id": letter.record_id, "reason": letter.body["reason"]}
        by_partition.setdefault((letter.topic, letter.partition), []).append(entry)
    documents = []
    for (topic, partition), entries in by_partition.items():
        entries.sort(key=lambda entry: entry["offset"])
        key = dead_letter_ledger_key(topic, partition, entries[0]["offset"], entries[-1]["offset"])
        documents.append(
            (key, {"version": LEDGER_VERSION, "topic": topic, "partition": partition, "deadLettered": entries})
        )
    return documents


def _pointer(letter: DeadLetter, location: dict[str, Any]) -> str:
    """The message of a letter whose body is stored at ``location``: the body less the record."""
    pointer = _json({**{n: v for n, v in letter.body.items() if n != PAYLOAD_FIELD}, "payloadLocation": location})
    if len(pointer) <= MAX_MESSAGE_BYTES:
        return pointer
    # The event's own fields (a topic or map key megabytes long) are in the stored body; these are bounded.
    return _json({**{n: letter.body[n] for n in _BOUNDED_FIELDS}, "payloadLocation": location})


def _json(document: dict[str, Any]) -> str:
    # ASCII-only JSON is always within SQS's allowed characters, whatever bytes the record held.
    return dump_json(document)


def _chunks(bodies: list[str]) -> Iterator[list[str]]:
    """Groups of at most 10 bodies and 256 KiB in total, as SendMessageBatch requires."""
    chunk: list[str] = []
    size = 0
    for body in bodies:
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + len(body) > MAX_MESSAGE_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(body)
        size += len(body)
    if chunk:
        yield chunk
