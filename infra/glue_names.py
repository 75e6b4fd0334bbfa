"""Glue/Athena names derived from the archive: table names of topics and partition column names of a layout.

Pure (no CDK), so the config validation (``infra.config``) names the same problems synth would meet in
``infra.catalog``. Athena reads only table and column names of lower-case letters, digits and underscores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import infra  # noqa: F401  (puts functions/archiver on sys.path)
from archiver.encoding import load_envelope_schema
from archiver.layout import Segment, TimeSegment

# Every table's data columns: the envelope's fields, and the typed archive's value_schema_id. A partition column may
# not repeat one (Hive and Athena reject a table whose partition key repeats a column).
DATA_COLUMNS = frozenset([*(item["name"] for item in load_envelope_schema()["fields"]), "value_schema_id"])
# Appended to a partition column name that a data column has (``partition=3`` is the column ``partition_part``).
TAKEN_SUFFIX = "_part"
MAX_NAME_LENGTH = 255  # Glue's limit on table and column names
_DEFAULT_TIME_COLUMNS = {"%Y": "year", "%m": "month", "%d": "day", "%H": "hour", "%M": "minute"}


def table_name_for(topic: str) -> str:
    """The Glue table name of a topic: lower-cased, a-z 0-9 _ only."""
    return re.sub(r"[^a-z0-9_]", "_", topic.lower())


def column_name(label: str) -> str:
    """The partition column of a path label: lower-cased, a-z 0-9 _ only, ``_part`` appended if a data column has it."""
    name = re.sub(r"[^a-z0-9_]", "_", label.lower())
    if name[:1].isdigit():
        name = f"p_{name}"
    return f"{name}{TAKEN_SUFFIX}" if name in DATA_COLUMNS else name


def time_columns(segment: TimeSegment) -> list[tuple[str, str, str]]:
    """(path part, its label with ``=``, column name) for each part of a time pattern that holds a directive.

    A part is named by its label (``hour=%H`` is ``hour``), else by its only directive (``%H`` is ``hour``), else by
    its place (``part<i>``).
    """
    found = []
    for index, part in enumerate(segment.pattern.split("/")):
        label, sep, value = part.rpartition("=")
        directives = re.findall(r"%[YmdHM]", value)
        if not directives:
            continue
        if sep:
            name = column_name(label)
        elif value in _DEFAULT_TIME_COLUMNS:
            name = column_name(_DEFAULT_TIME_COLUMNS[value])
        else:
            name = f"part{index}"
        found.append((part, f"{label}{sep}", name))
    return found


def partition_columns(segments: Sequence[Segment]) -> list[str]:
    """The partition column names of a layout, in path order."""
    names: list[str] = []
    for segment in segments:
        if isinstance(segment, TimeSegment):
            names += [name for _, _, name in time_columns(segment)]
        else:
            names.append(column_name(segment.label))
    return names


def column_problems(segments: Sequence[Segment]) -> list[str]:
    """Partition columns two segments would share once lower-cased and cleaned (``Country`` and ``country``)."""
    names = partition_columns(segments)
    problems = [
        f"segments would share the Glue partition column {name!r} (names are lower-cased, a-z 0-9 _ only); "
        "give one a different 'name'"
        for name in sorted({name for name in names if names.count(name) > 1})
    ]
    problems += [
        f"partition column {name!r} is longer than Glue's {MAX_NAME_LENGTH} characters"
        for name in names
        if len(name) > MAX_NAME_LENGTH
    ]
    return problems
