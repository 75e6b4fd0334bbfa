"""The deployed maintenance's configuration: one typed ``MaintenanceSettings``, read from the environment by the
maintenance Lambdas (``functions/maintenance``) and written into it by infra (``infra/maintenance.py``).

Like ``archiver.settings.Settings`` for the archiver function: infra builds the same type at synth time, so a bad
value fails ``cdk synth`` with the message the function would give at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from archive_ops.archive_audit import DEFAULT_STATE_PREFIX
from archive_ops.compact import DEFAULT_TARGET_BYTES, MAX_TARGET_BYTES, CompactionConfig
from archiver.errors import SettingsError
from archiver.settings import DEAD_LETTER_PREFIX, DEFAULT_PREFIX

DEFAULT_MIN_AGE_SECONDS = 2 * 3600  # an hour's window is closed, and late retries are over, two hours later
# With the deployed compaction, objects are merged within a schedule period or two after they reach its minimum age.
SETTLE_SLACK_SECONDS = 2 * 3600
WORK_MESSAGE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class MaintenanceSettings:
    archive_bucket: str
    archive_prefix: str = DEFAULT_PREFIX
    target_bytes: int = DEFAULT_TARGET_BYTES
    min_age_seconds: int = DEFAULT_MIN_AGE_SECONDS
    work_queue_url: str | None = None  # the compaction planner's and workers' queue
    audit_state_prefix: str = DEFAULT_STATE_PREFIX
    # The audit leaves objects the function wrote more recently than this unread (compaction is about to replace
    # them; archive_ops/archive_audit.py). 0: read everything, as without a deployed compaction.
    audit_settle_seconds: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.archive_bucket:
            problems.append("ARCHIVE_BUCKET is required")
        if not 1024 <= self.target_bytes <= MAX_TARGET_BYTES:
            problems.append(f"COMPACTION_TARGET_BYTES must be 1 KiB to 5 GiB (one PUT); got {self.target_bytes}")
        if self.audit_settle_seconds < 0:
            problems.append(f"AUDIT_SETTLE_SECONDS must be 0 or more; got {self.audit_settle_seconds}")
        if self.min_age_seconds < 0:
            problems.append(f"COMPACTION_MIN_AGE_SECONDS must be 0 or more; got {self.min_age_seconds}")
        state = self.audit_state_prefix
        reserved = (DEAD_LETTER_PREFIX,) + ((self.archive_prefix,) if self.archive_prefix else ())
        if not state.endswith("/") or state.startswith(reserved) or (self.archive_prefix or "\0").startswith(state):
            problems.append(
                f"AUDIT_STATE_PREFIX must end in '/' and lie outside the archive prefix and {DEAD_LETTER_PREFIX!r}; "
                f"got {state!r}"
            )
        if problems:
            raise SettingsError(problems)

    @property
    def min_age(self) -> timedelta:
        return timedelta(seconds=self.min_age_seconds)

    @property
    def audit_settle_age(self) -> timedelta | None:
        return timedelta(seconds=self.audit_settle_seconds) if self.audit_settle_seconds else None

    def compaction(self, *, topic: str | None = None) -> CompactionConfig:
        return CompactionConfig(
            bucket=self.archive_bucket,
            prefix=self.archive_prefix,
            target_bytes=self.target_bytes,
            older_than=self.min_age,
            topic=topic,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MaintenanceSettings:
        values: dict[str, Any] = {}
        problems = []
        for item in fields(cls):
            raw = env.get(_ENV[item.name])
            if raw is None or (raw == "" and item.name != "archive_prefix"):
                continue
            if item.type in ("int", int):
                if not raw.isdigit():
                    problems.append(f"{_ENV[item.name]} must be a whole number; got {raw!r}")
                    continue
                values[item.name] = int(raw)
            else:
                values[item.name] = raw
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        return {
            _ENV[item.name]: str(getattr(self, item.name))
            for item in fields(self)
            if getattr(self, item.name) is not None
        }


_ENV = {
    "archive_bucket": "ARCHIVE_BUCKET",
    "archive_prefix": "ARCHIVE_PREFIX",
    "target_bytes": "COMPACTION_TARGET_BYTES",
    "min_age_seconds": "COMPACTION_MIN_AGE_SECONDS",
    "work_queue_url": "COMPACTION_QUEUE_URL",
    "audit_state_prefix": "AUDIT_STATE_PREFIX",
    "audit_settle_seconds": "AUDIT_SETTLE_SECONDS",
}


def work_message(group: tuple[str, str, int, str | None]) -> str:
    """The compaction work queue's message for one group (directory, encoded topic, partition, fingerprint)."""
    directory, topic_segment, partition, fingerprint = group
    document = {
        "version": WORK_MESSAGE_VERSION,
        "directory": directory,
        "topicSegment": topic_segment,
        "partition": partition,
        "fingerprint": fingerprint,
    }
    return json.dumps(document, separators=(",", ":"))


def parse_work_message(body: str) -> tuple[str, str, int, str | None]:
    """The group a work message names; ``ValueError`` for anything that is not one."""
    document = json.loads(body)
    if not isinstance(document, dict) or document.get("version") != WORK_MESSAGE_VERSION:
        raise ValueError(f"not a compaction work message: {body[:200]!r}")
    directory, topic_segment, partition = document["directory"], document["topicSegment"], document["partition"]
    fingerprint = document.get("fingerprint")
    if not (isinstance(directory, str) and isinstance(topic_segment, str) and type(partition) is int):
        raise ValueError(f"not a compaction work message: {body[:200]!r}")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise ValueError(f"not a compaction work message: {body[:200]!r}")
    return directory, topic_segment, partition, fingerprint
