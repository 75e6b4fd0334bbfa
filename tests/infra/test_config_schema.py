"""The config's published JSON Schema (config/schema.json) is generated from the one declaration (infra/config.py),
the shipped examples point at it and validate against it, and docs/configuration.md's field tables agree with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra import PROJECT_ROOT
from infra.config import json_schema, main, parse_config
from tests.infra.conftest import EXAMPLES, example, problems_of, with_changes

SCHEMA_FILE = PROJECT_ROOT / "config" / "schema.json"
DOCS = PROJECT_ROOT / "docs" / "configuration.md"
# docs/configuration.md heading (the section name in backticks, or "Top level") -> the config object it documents
SECTIONS = {
    "Top level": "",
    "msk": "msk",
    "selfManaged": "selfManaged",
    "eventSource": "eventSource",
    "archive": "archive",
    "catalog": "catalog",
    "bucket": "bucket",
    "function": "function",
    "monitoring": "monitoring",
    "maintenance": "maintenance",
}


def test_the_published_schema_is_the_generated_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(SCHEMA_FILE.read_text()), (
        "config/schema.json is stale: run `make schema`"
    )


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_name_the_schema_and_validate_against_it(name: str) -> None:
    document = example(name)
    assert document["$schema"] == "./schema.json"
    validator = jsonschema.Draft202012Validator(json_schema())
    assert [error.message for error in validator.iter_errors(document)] == []


def test_the_schema_rejects_what_the_validator_rejects_field_by_field() -> None:
    """Editors flag the same field mistakes synth does (cross-field rules are the validator's alone)."""
    validator = jsonschema.Draft202012Validator(json_schema())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"eventSource.batchSize": 20000}, "eventSource.batchSize"),
        ({"eventSource.startingPosition": "EARLIEST"}, "eventSource.startingPosition"),
        ({"function.architecture": "sparc"}, "function.architecture"),
        ({"eventSource.bachSize": 5}, "eventSource"),
        ({"msk.clusterArn": "arn:aws:kafka:eu-west-1:123:cluster/x"}, "msk.clusterArn"),
    ]
    for changes, field in cases:
        data = with_changes(example("msk"), changes)
        errors = list(validator.iter_errors(data))
        assert errors, changes
        nested = [e for error in errors for e in [error, *(error.context or [])]]  # anyOf [object, null]: inside
        assert any(".".join(map(str, error.absolute_path)) == field for error in nested), changes
        assert any(problem.startswith(field) for problem in problems_of(data))


def test_a_field_is_named_once_by_its_json_path() -> None:
    """Not 'archive.prefix: ARCHIVE_PREFIX (archive_prefix) must ...': the JSON path, then what is wrong."""
    (problem,) = problems_of(with_changes(example("msk"), {"archive.prefix": "no-slash"}))
    assert problem.startswith("archive.prefix: must be")
    assert "ARCHIVE_PREFIX" not in problem
    assert "archive_prefix" not in problem
    (problem,) = problems_of(with_changes(example("msk"), {"archive.codec": "lz4"}))
    assert problem == "archive.codec: must be one of null, deflate, snappy, zstandard; got 'lz4'"


def test_one_mistake_gives_one_message() -> None:
    for changes in (
        {"eventSource.batchSize": "100"},
        {"eventSource.onFailure": "dead-letter-queue"},
        {"eventSource.metrics": ["Lag"], "eventSource.provisionedPollers": {"minimum": 1}},
        {"bucket.lifecycle.transitions": [{"storageClass": "TAPE", "afterDays": 7}]},
        {"tags": {"a": 1, "b": 2}},
    ):
        assert len(problems_of(with_changes(example("msk"), changes))) == 1, changes


def test_schema_and_comment_keys_are_accepted() -> None:
    data = {"$schema": "./schema.json", "$comment": "x", **example("local")}
    assert parse_config(data).stack_name == "KafkaS3ArchiverLocal"


def documented_fields() -> dict[str, dict[str, tuple[str, str]]]:
    """Per section: documented field (dotted, `[]` for list items) -> (type column, default column)."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    section = None
    for line in DOCS.read_text().splitlines():
        if line.startswith("## "):
            heading = re.match(r"^## (?:`(\w+)`|(Top level))", line)
            section = SECTIONS.get((heading.group(1) or heading.group(2)) if heading else "")
            continue
        if section is not None and section in found and not line.startswith("|"):
            section = None  # only the section's first table
        if section is None or not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        found.setdefault(section, {})[cells[0].strip("`")] = (cells[1], cells[2])
    return found


def schema_fields(schema: dict[str, Any], node: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted field -> its schema, nested objects flattened (list items as `[]`), as the docs tables list them."""
    fields: dict[str, dict[str, Any]] = {}
    for name, prop in node.get("properties", {}).items():
        if name.startswith("$"):
            continue
        fields[prefix + name] = prop
        target = resolve(schema, prop)
        if target.get("type") == "object" and "properties" in target and prefix + name not in SECTIONS.values():
            fields.update(schema_fields(schema, target, f"{prefix}{name}."))
        items = target.get("items")
        if items is not None and "properties" in resolve(schema, items):
            fields.update(schema_fields(schema, resolve(schema, items), f"{prefix}{name}[]."))
    return fields


def resolve(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    for option in [prop, *prop.get("anyOf", [])]:
        if "$ref" in option:
            return dict(schema["$defs"][option["$ref"].rsplit("/", 1)[1]])
        if option.get("type") not in (None, "null"):
            return dict(option)
    return prop


@pytest.mark.parametrize("section", sorted(set(SECTIONS.values())))
def test_the_docs_tables_agree_with_the_schema(section: str) -> None:
    schema = json_schema()
    node = schema if not section else resolve(schema, schema["properties"][section])
    expected = schema_fields(schema, node)
    documented = documented_fields()[section]
    assert sorted(documented) == sorted(expected), f"docs/configuration.md, `{section or 'Top level'}` table"
    for name, prop in expected.items():
        kind, default = documented[name]
        target = resolve(schema, prop)
        for value in target.get("enum", []) if target.get("type") == "string" else []:
            assert f"`{value}`" in kind, f"{section}.{name}: {value!r} missing from the type column {kind!r}"
        if isinstance(prop.get("default"), bool | int | str) and prop["default"] != "":
            shown = json.dumps(prop["default"]) if isinstance(prop["default"], bool) else str(prop["default"])
            assert f"`{shown}`" in default, f"{section}.{name}: default {shown!r} not in {default!r}"


def test_schema_file_is_json(tmp_path: Path) -> None:
    assert json.loads(SCHEMA_FILE.read_text())["$id"].endswith("/config/schema.json")
