"""Run fuzz events through the real ``Archiver`` and check every outcome against what was delivered.

The archiver runs with in-memory S3 and SQS that enforce AWS's limits (tests/unit/aws_fakes.py), one archiver per
(partitioner, codec) built once as at cold start, with three typed topics next to the raw ones. For each event:

* **unhandled**: the archiver raised anything but ``EventError`` for a malformed event -- including an
  infrastructure error, which here can only mean it sent S3 or SQS a request AWS would refuse;
* **wrong event verdict**: ``EventError`` for a well-formed event, or a malformed event accepted;
* **unreadable**: an archive object that fastavro or Apache avro (default settings) cannot read, or that they read
  differently;
* **wrong dead letters**: a dead letter whose ``record`` is not exactly a delivered record (under its map key) or
  whose message breaks the documented format, or a record of a raw topic dead-lettered although it is archivable;
* **wrong archived**: an archived record that is not exactly a delivered, archivable record (the oracle below
  decodes independently of the archiver), or that breaks the timestamp policy;
* **lost** / **duplicated**: delivered records in neither place, or in more than one.

The oracle is written from the documented rules (README, docs/schema.md), not from the decoder's code.
"""

from __future__ import annotations

import binascii
import json
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from archiver.encoding import TIMESTAMP_MILLIS_MAX, TIMESTAMP_MILLIS_MIN
from archiver.errors import EventError
from archiver.pipeline import Archiver
from archiver.settings import CODECS, Codec, Partitioner, Settings
from tests.avro_readers import read_both
from tests.fuzz.events import LINKED, REGISTERED, TYPED_CHAIN, TYPED_CONFLUENT, TYPED_JSON, fuzz_event
from tests.typed.conftest import running_registry
from tests.typed.schemas import ORDER_V1
from tests.unit.aws_fakes import LimitedS3, LimitedSqs

PARTITIONERS = ("default", "time", "field", "segments")
# Every segment kind that reads hostile input (nested fields, headers, keys, their buckets), composed.
SEGMENTS = json.dumps(
    [
        {"kind": "field", "field": "customer.country", "name": "country"},
        {"kind": "header", "header": "trace"},
        {"kind": "key"},
        {"kind": "key", "buckets": 7},
        {"kind": "partition", "name": "p"},
        {"kind": "time", "pattern": "h=%H", "timezone": "Asia/Kolkata"},
    ]
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
TYPED_TOPICS = (TYPED_JSON, TYPED_CHAIN, TYPED_CONFLUENT)
EVENT_SOURCES = ("aws:kafka", "SelfManagedKafka", "aws:SelfManagedKafka")
MAX_PARTITION, MAX_OFFSET = 2**31 - 1, 2**63 - 1
DEAD_LETTER_FIELDS = {"version", "id", "reason", "errorClass", "errorMessage", "topic", "partition", "offset"}
BAD_COUNTS = ("unhandled", "wrong_event_verdict", "unreadable", "wrong_dead_letters", "wrong_archived", "lost")


@dataclass
class Counts:
    events: int = 0
    malformed_events: int = 0
    records: int = 0
    archived: int = 0
    dead_lettered: int = 0
    objects: int = 0
    unhandled: int = 0
    wrong_event_verdict: int = 0
    unreadable: int = 0
    wrong_dead_letters: int = 0
    wrong_archived: int = 0
    lost: int = 0
    duplicated: int = 0
    examples: list[str] = field(default_factory=list)  # the first few problems, for the report
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def bad(self) -> int:
        return sum(int(getattr(self, name)) for name in BAD_COUNTS) + self.duplicated

    def note(self, kind: str, detail: str, count: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + count)
        if len(self.examples) < 20:
            self.examples.append(f"{kind}: {detail[:300]}")

    def summary(self) -> str:
        return (
            f"{self.events:,} events ({self.malformed_events:,} malformed), {self.records:,} records: "
            f"{self.archived:,} archived in {self.objects:,} objects, {self.dead_lettered:,} dead-lettered; "
            f"unhandled {self.unhandled}, wrong event verdicts {self.wrong_event_verdict}, unreadable "
            f"{self.unreadable}, wrong dead letters {self.wrong_dead_letters}, wrong archived {self.wrong_archived}, "
            f"lost {self.lost}, duplicated {self.duplicated}"
        )


class Harness:
    """The archivers under test and their fakes; ``check(event_text)`` runs and judges one event."""

    def __init__(self, registry_url: str, schemas_dir: Path) -> None:
        self.s3, self.sqs = LimitedS3(), LimitedSqs()
        formats = {
            TYPED_JSON: {"format": "json", "schema": "orders.avsc"},
            TYPED_CHAIN: {"format": "json", "schema": "chains.avsc"},
            TYPED_CONFLUENT: {"format": "avro-confluent", "registryUrl": registry_url},
        }
        self.archivers = [
            Archiver(
                Settings(
                    archive_bucket=self.s3.bucket,
                    dead_letter_queue_url=self.sqs.queue_url,
                    partitioner=cast("Partitioner", partitioner),
                    partition_field="country" if partitioner == "field" else None,
                    partition_segments=SEGMENTS if partitioner == "segments" else None,
                    codec=cast("Codec", codec),
                    value_formats=json.dumps(formats),
                    value_schemas_dir=str(schemas_dir),
                ),
                s3_client=self.s3,
                sqs_client=self.sqs,
            )
            for partitioner in PARTITIONERS
            for codec in CODECS
        ]
        self.counts = Counts()

    def check(self, text: str, archiver: Archiver) -> None:
        counts = self.counts
        counts.events += 1
        self.s3.objects.clear()
        self.sqs.bodies.clear()
        event = json.loads(text)  # what the Lambda runtime does with the invocation payload
        malformed = is_malformed_event(event)
        counts.malformed_events += malformed
        try:
            archiver.archive(event)
        except EventError as error:
            if not malformed:
                counts.note("wrong_event_verdict", f"EventError for a well-formed event: {error}")
            return
        except Exception as error:  # anything else stalls the partition: that is what the fuzz is hunting
            counts.errors[type(error).__name__] += 1
            counts.note("unhandled", f"{type(error).__name__}: {error}")
            return
        if malformed:
            counts.note("wrong_event_verdict", f"malformed event accepted: {text[:200]}")
            return
        self._judge(event)

    def _judge(self, event: dict[str, Any]) -> None:
        delivered = [(key, raw) for key, chunk in event["records"].items() for raw in chunk]
        self.counts.records += len(delivered)
        by_text = {canonical(raw): raw for _, raw in delivered}
        expected = {text: expected_envelope(raw) for text, raw in by_text.items()}
        left = Counter((key, canonical(raw)) for key, raw in delivered)  # delivered, not yet accounted for
        self._account_dead_letters(left, by_text, expected)

        archivable: Counter[tuple[Any, ...]] = Counter()
        lost = 0
        for (_, text), remaining in left.items():
            envelope = expected[text]
            if envelope is None:
                lost += remaining  # cannot be archived, and no dead letter holds it
            else:
                archivable[envelope] += remaining
        self._account_archive(archivable, every=Counter(expected[canonical(raw)] for _, raw in delivered))
        lost += sum(remaining for remaining in archivable.values() if remaining > 0)
        if lost:
            self.counts.note("lost", f"{lost} record(s) neither archived nor dead-lettered", lost)

    def _account_dead_letters(
        self, left: Counter[tuple[Any, str]], by_text: dict[str, Any], expected: dict[str, Any]
    ) -> None:
        """Each dead letter must hold, under its map key, exactly one delivered record not accounted for yet."""
        for letter in self._dead_letters():
            match = (letter.get("recordsKey"), canonical(letter.get("record")))
            problem = letter_problem(letter)
            if problem is None and left[match] <= 0:
                kind = "duplicated" if match in left else "wrong_dead_letters"
                self.counts.note(kind, f"dead letter of no (other) delivered record: {json.dumps(letter)[:200]}")
                continue
            if problem is None and expected[match[1]] is not None and by_text[match[1]]["topic"] not in TYPED_TOPICS:
                problem = "an archivable record of a raw topic was dead-lettered"
            if problem is not None:
                self.counts.note("wrong_dead_letters", f"{problem}: {json.dumps(letter)[:200]}")
                continue
            left[match] -= 1
            self.counts.dead_lettered += 1

    def _account_archive(self, archivable: Counter[tuple[Any, ...]], every: Counter[Any]) -> None:
        """Each archived record, read by both readers, must be exactly one archivable record not accounted for."""
        for key, stored in self.s3.objects.items():
            if not key.endswith(".avro"):
                continue
            self.counts.objects += 1
            try:
                records = read_both(stored.body)
            except Exception as error:
                self.counts.note("unreadable", f"{key}: {type(error).__name__}: {error}")
                continue
            for record in records:
                found, problem = archived_envelope(record)
                if problem is None and archivable[found] <= 0:
                    kind = "duplicated" if every[found] else "wrong_archived"
                    self.counts.note(kind, f"not a delivered, archivable record: {key} offset {record['offset']}")
                elif problem is not None:
                    self.counts.note("wrong_archived", f"{problem}: {key} offset {record['offset']}")
                else:
                    archivable[found] -= 1
                    self.counts.archived += 1

    def _dead_letters(self) -> Iterator[dict[str, Any]]:
        """Every dead letter's full body: the SQS message, or for a spilled one the body stored in S3 (checked to
        be the message plus ``record``)."""
        for body in self.sqs.bodies:
            message = json.loads(body)
            location = message.pop("payloadLocation", None)
            if location is None:
                yield message
                continue
            stored = json.loads(self.s3.objects[location["key"]].body)
            if not message.items() <= stored.items():
                self.counts.note("wrong_dead_letters", f"pointer does not match its stored body: {body[:200]}")
                continue
            yield stored


def canonical(value: Any) -> str:
    """JSON text that keeps the order of object keys: a dead letter must keep even that as delivered."""
    return json.dumps(value)


def is_malformed_event(event: Any) -> bool:
    """What the README calls a malformed event: the batch raises EventError instead of archiving anything."""
    if type(event) is not dict or event.get("eventSource") not in EVENT_SOURCES:
        return True
    records = event.get("records")
    if type(records) is not dict or any(type(chunk) is not list for chunk in records.values()):
        return True
    return event["eventSource"] == "aws:kafka" and type(event.get("eventSourceArn")) is not str


def letter_problem(letter: dict[str, Any]) -> str | None:
    missing = DEAD_LETTER_FIELDS - set(letter)
    if missing:
        return f"fields missing: {sorted(missing)}"
    if letter["version"] != 2 or not isinstance(letter["id"], str) or not letter["id"]:
        return "bad version or id"
    if "record" not in letter:
        return "no record"
    return None


def _is_text(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


_INVALID = object()  # _base64's answer for what is not valid base64


def _base64(value: Any) -> Any:
    """Decoded bytes, None for null or absent, ``_INVALID`` when not valid base64."""
    if value is None:
        return None
    if type(value) is not str or not value.isascii():
        return _INVALID
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        return _INVALID


def expected_envelope(raw: Any) -> tuple[Any, ...] | None:
    """What the archive must hold for ``raw``, by the documented rules; None if it cannot be archived."""
    if type(raw) is not dict:
        return None
    topic, timestamp_type = raw.get("topic"), raw.get("timestampType", None)
    if not (_is_text(topic) and topic) or not (timestamp_type is None or _is_text(timestamp_type)):
        return None
    if not (_is_int(raw.get("partition"), 0, MAX_PARTITION) and _is_int(raw.get("offset"), 0, MAX_OFFSET)):
        return None
    if not _is_int(raw.get("timestamp"), -MAX_OFFSET, MAX_OFFSET):
        return None
    key, value = _base64(raw.get("key")), _base64(raw.get("value"))
    if key is _INVALID or value is _INVALID:
        return None
    if raw.get("headers") is not None and type(raw["headers"]) is not list:
        return None
    headers: list[tuple[str, bytes | None]] = []
    for entry in raw.get("headers") or []:
        if type(entry) is not dict or len(entry) != 1:
            return None
        ((name, data),) = entry.items()
        if not _is_text(name):
            return None
        if data is None:
            headers.append((name, None))
        elif type(data) is list and set(map(type, data)) <= {int} and all(0 <= item <= 255 for item in data):
            headers.append((name, bytes(data)))
        else:
            return None
    value_part: Any = value
    if topic in TYPED_TOPICS:
        value_part = typed_value_part(topic, value)
    return (topic, raw["partition"], raw["offset"], raw["timestamp"], timestamp_type or "", key, value_part, *headers)


def typed_value_part(topic: str, value: bytes | None) -> Any:
    """What a typed record's value must be once archived: JSON topics their parsed JSON, Avro ones left out."""
    if value is None or topic == TYPED_CONFLUENT:
        return None if value is None else "avro"
    try:
        return numbers_as_floats(json.loads(value))
    except (ValueError, RecursionError):
        return "not json"  # such a value is dead-lettered; no archived record can match it


def numbers_as_floats(document: Any) -> str:
    """Canonical JSON in which 5 and 5.0 are the same: a JSON integer archived as an Avro double reads back 5.0."""
    return json.dumps(json.loads(json.dumps(document), parse_int=float), sort_keys=True)


def archived_envelope(record: dict[str, Any]) -> tuple[tuple[Any, ...], str | None]:
    """An archived record in ``expected_envelope``'s shape, and what is wrong with it (None if nothing)."""
    stamp, raw = record["timestamp"], record["timestamp_raw"]
    if (stamp is None) == (raw is None):
        return (), "exactly one of timestamp and timestamp_raw must be set"
    value: Any = record["value"]
    exact: int = raw if stamp is None else (stamp - _EPOCH) // _MILLISECOND
    if (TIMESTAMP_MILLIS_MIN <= exact <= TIMESTAMP_MILLIS_MAX) != (stamp is not None):
        return (), f"timestamp {exact} is in the wrong field"
    if record["topic"] in TYPED_TOPICS:
        value = None if value is None else ("avro" if record["topic"] == TYPED_CONFLUENT else numbers_as_floats(value))
    headers = [(header["key"], header["value"]) for header in record["headers"]]
    envelope = (record["topic"], record["partition"], record["offset"], exact, record["timestamp_type"])
    return (*envelope, record["key"], value, *headers), None


@contextmanager
def harness() -> Iterator[Harness]:
    """A harness with its registry (a local HTTP server) and value schemas, torn down afterwards."""
    with ExitStack() as stack:
        registry = stack.enter_context(running_registry())
        for schema_id, schema in REGISTERED.items():
            registry.register(schema_id, schema)
        schemas_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (schemas_dir / "orders.avsc").write_text(json.dumps(ORDER_V1))
        (schemas_dir / "chains.avsc").write_text(json.dumps(LINKED))
        yield Harness(registry.url, schemas_dir)


def run(events: int, seed: int) -> Counts:
    """``events`` seeded events, each through the next archiver configuration in turn."""
    rnd = random.Random(seed)
    with harness() as fuzz:
        for index in range(events):
            fuzz.check(fuzz_event(rnd), fuzz.archivers[index % len(fuzz.archivers)])
        return fuzz.counts
