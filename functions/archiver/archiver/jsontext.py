"""Untrusted JSON in, exact JSON out: the two places where record content meets Python's recursive JSON code.

* ``load_json`` reads JSON text from a record value with a fixed nesting limit. ``json.loads`` recurses once per
  ``[`` or ``{`` and raises ``RecursionError`` (about 10,000 levels in) -- a 10 KB value used to fail a whole batch
  this way. fastavro's compiled validator, writer and reader recurse the same way *without* any check: a typed value
  a few thousand levels deep crashes the process. And a typed archive must stay readable by Apache avro's
  pure-Python reader, which spends about five Python frames per level and stops at Python's default recursion limit
  of 1,000 (measured: it reads a recursive value 197 levels deep from a fresh stack, 137 under 300 frames).
  ``MAX_NESTING`` keeps clear of all three and is still deeper than real payloads nest (serde_json's default
  limit is 128). It is checked before parsing, so the outcome never depends on how deep the caller's stack is.
* ``dump_json`` writes what a record delivered back as JSON text exactly, whatever its depth: the dead-letter body
  must hold the record as it arrived.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Levels of arrays and objects a value may nest. The same limit bounds typed Avro values (values/avro_bounds.py).
MAX_NESTING = 100

# A JSON string (to its closing quote, or to the end if it has none) or one bracket. Strings are skipped whole, so
# brackets inside them do not count; the unrolled loop never backtracks, so one pass is linear in the text.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset("[{")
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonNestingError(ValueError):
    """The text nests arrays and objects deeper than ``MAX_NESTING``; it was not parsed."""


def load_json(data: bytes, *, unicode_text: bool = False) -> Any:
    """``json.loads(data)`` for untrusted bytes, nesting at most ``MAX_NESTING`` levels.

    Raises ``ValueError`` (``JSONDecodeError``, ``UnicodeDecodeError``, ``JsonNestingError``, or too many digits in
    an integer) for anything that is not such JSON. With ``unicode_text`` the result must also be valid Unicode:
    JSON may spell lone UTF-16 surrogates (``"\\ud800"``), which Avro strings and UTF-8 cannot hold.
    """
    # What json.loads itself does with bytes: detect UTF-8/16/32, keep surrogates. Done here so the nesting scan
    # and the parser see the same text.
    text = data.decode(json.detect_encoding(data), "surrogatepass")
    check_nesting(text)
    document = json.loads(text)
    if unicode_text and not _is_unicode(text, document):
        raise ValueError("JSON text holds a lone UTF-16 surrogate, which is not Unicode text")
    return document


def check_nesting(text: str) -> None:
    """Raise ``JsonNestingError`` if ``text``, read as JSON, would nest deeper than ``MAX_NESTING``.

    Counting brackets first is C-speed; only text with more brackets than the limit is scanned token by token. The
    scan never counts less than the parser would nest: it skips exactly what the parser reads as strings.
    """
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        char = text[match.start()]
        if char in _OPENERS:
            depth += 1
            if depth > MAX_NESTING:
                raise JsonNestingError(f"JSON nests deeper than {MAX_NESTING} levels")
        elif char != '"':
            depth -= 1


def _is_unicode(text: str, document: Any) -> bool:
    if not text.isascii():
        try:
            text.encode("utf-8")  # raw surrogates, e.g. CESU-8 bytes that surrogatepass let through
        except UnicodeEncodeError:
            return False
    if _LONE_SURROGATE_ESCAPE.search(text) is None:
        return True
    # Escaped surrogates: pairs became one character when parsed, lone ones stayed. Rare, so check the result.
    try:
        dump_json(document, ascii_only=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


COMPACT = (",", ":")
SPACED = (", ", ": ")  # json.dumps' own default


def dump_json(
    document: Any, *, ascii_only: bool = True, sort_keys: bool = False, separators: tuple[str, str] = COMPACT
) -> str:
    """JSON text of ``document``, as ``json.dumps`` writes it (compact by default), at any depth.

    ``json.dumps`` recurses like ``json.loads``; for what it cannot nest deep enough, an iterative writer produces
    the same text. Objects JSON cannot hold are written as their ``repr`` string.
    """
    try:
        return json.dumps(document, ensure_ascii=ascii_only, separators=separators, sort_keys=sort_keys, default=repr)
    except RecursionError:
        return _dump_iteratively(document, ascii_only, sort_keys, separators)


def _dump_iteratively(document: Any, ascii_only: bool, sort_keys: bool, separators: tuple[str, str]) -> str:
    """``dump_json`` with an explicit stack of pieces: text to emit as it is, or a value still to write."""
    item_separator, key_separator = separators
    out: list[str] = []
    pending: list[tuple[bool, Any]] = [(False, document)]  # (is text, piece)
    while pending:
        is_text, item = pending.pop()
        if is_text:
            out.append(item)
            continue
        if isinstance(item, dict):
            opener, closer = "{", "}"
            entries = sorted(item.items()) if sort_keys else list(item.items())
            parts = [
                piece
                for name, value in entries
                for piece in ((True, _scalar(_key_text(name, ascii_only), ascii_only) + key_separator), (False, value))
            ]
        elif isinstance(item, (list, tuple)):
            opener, closer = "[", "]"
            parts = [(False, value) for value in item]
        else:
            out.append(_scalar(item, ascii_only))
            continue
        # Items of a dict come in pairs (name, value), of a list one by one; separators go between them.
        step = 2 if opener == "{" else 1
        pieces: list[tuple[bool, Any]] = [(True, opener)]
        for index in range(0, len(parts), step):
            if index:
                pieces.append((True, item_separator))
            pieces += parts[index : index + step]
        pieces.append((True, closer))
        pending.extend(reversed(pieces))
    return "".join(out)


def _key_text(name: Any, ascii_only: bool) -> str:
    """An object key as ``json.dumps`` turns it into a string (``1`` -> ``"1"``, ``True`` -> ``"true"``)."""
    return name if isinstance(name, str) else _scalar(name, ascii_only)


def _scalar(value: Any, ascii_only: bool) -> str:
    """A value that holds no other values, exactly as ``json.dumps`` writes it (``repr`` for the unknown)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return json.dumps(value, ensure_ascii=ascii_only)
    return json.dumps(repr(value), ensure_ascii=ascii_only)
