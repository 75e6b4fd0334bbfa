"""archiver.jsontext: untrusted JSON read with a nesting limit, and JSON written exactly at any depth."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.jsontext import (
    COMPACT,
    MAX_NESTING,
    SPACED,
    JsonNestingError,
    _dump_iteratively,
    dump_json,
    load_json,
    nesting,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(codec=None, exclude_categories=())),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=25,
)


def deep(levels: int) -> Any:
    """Lists and objects, alternating, ``levels`` deep around a number."""
    document: Any = 0
    for level in range(levels):
        document = [document] if level % 2 else {"k": document}
    return document


@given(document=JSON, ascii_only=st.booleans(), sort_keys=st.booleans(), separators=st.sampled_from([COMPACT, SPACED]))
def test_the_iterative_writer_writes_what_json_dumps_writes(
    document: Any, ascii_only: bool, sort_keys: bool, separators: tuple[str, str]
) -> None:
    expected = json.dumps(document, ensure_ascii=ascii_only, sort_keys=sort_keys, separators=separators)
    assert _dump_iteratively(document, ascii_only, sort_keys, separators) == expected


def test_dump_json_writes_values_deeper_than_json_dumps_can() -> None:
    document = deep(50_000)
    with pytest.raises(RecursionError):
        json.dumps(document)
    text = dump_json(document)
    assert text == '[{"k":' * 25_000 + "0" + "}]" * 25_000


@pytest.mark.parametrize("levels", [MAX_NESTING - 1, MAX_NESTING])
def test_json_up_to_the_nesting_limit_is_read(levels: int) -> None:
    assert load_json(json.dumps(deep(levels)).encode()) == deep(levels)


@pytest.mark.parametrize(
    "text",
    [
        "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1),
        "[" * 1_000_000,  # never closed: still no recursion
        '{"a": "' + "]" * 5_000 + '", "b": ' + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "}",
    ],
)
def test_json_deeper_than_the_limit_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(JsonNestingError):
        load_json(text.encode())


def test_brackets_after_an_unterminated_string_are_inside_it_for_the_parser_too() -> None:
    with pytest.raises(json.JSONDecodeError, match="Unterminated string"):
        load_json(b'"\\"' + b"[" * 5_000)  # an escaped quote does not end the string, and nothing else does


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 10_000, "b": '{\\"[' * 1_000, "c": [[1]]})
    assert load_json(text.encode())["c"] == [[1]]


def test_unicode_text_refuses_lone_surrogates_and_keeps_pairs() -> None:
    assert load_json(b'{"a": "\\ud83d\\ude00"}', unicode_text=True) == {"a": "\U0001f600"}
    assert load_json(b'{"a": "\\ud800"}') == {"a": "\ud800"}
    for text in (b'{"a": "\\ud800"}', b'["\\udfff\\ud800"]', '"\ud800"'.encode("utf-8", "surrogatepass")):
        with pytest.raises(ValueError, match="surrogate"):
            load_json(text, unicode_text=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Expecting value"),
        (b"\xff\xfe\x00", "can't decode"),  # a UTF-16 byte order mark, then half a character
        (b"{", "Expecting property name"),
        (b"1" * 5_000, "Exceeds the limit"),  # more digits than Python converts
        ('{"a": 1}'.encode("utf-16")[:-1], "truncated data"),
    ],
)
def test_what_is_not_json_is_a_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_json(data)


def depth_of(document: Any) -> int:
    """How deep ``json.dumps(document)`` nests arrays and objects."""
    if isinstance(document, list):
        return 1 + max(map(depth_of, document), default=0)
    if isinstance(document, dict):
        return 1 + max(map(depth_of, document.values()), default=0)
    return 0


NESTED_JSON = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9', max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a'), children, max_size=3)
    ),
    max_leaves=60,
)


@given(document=NESTED_JSON, ensure_ascii=st.booleans())
def test_the_nesting_scan_measures_exactly_how_deep_json_nests(document: Any, ensure_ascii: bool) -> None:
    # Strings full of brackets, quotes and backslashes: only the structure counts.
    text = json.dumps(document, ensure_ascii=ensure_ascii).encode()
    assert nesting(text) == depth_of(document)


def parser_depth(text: str) -> int:
    """The deepest the JSON parser can get in ``text``, read character by character: brackets outside strings,
    strings ended by an unescaped quote, and nothing after a backslash outside a string, where the parser stops.
    (On other broken text the parser stops earlier still; it never gets deeper.)"""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "\\":
            break
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@given(text=st.text(alphabet='[]{}"\\ ,:1a', max_size=80))
def test_the_nesting_scan_never_counts_less_than_the_parser_could_recurse(text: str) -> None:
    assert nesting(text.encode()) >= parser_depth(text)
