"""Decoders for the two compressed encodings inside boomerang.js beacons.

- JSURL (``err``, ``servertiming``, ``c.*``): a URL-safe JSON. ``~(`` opens an object or
  an array (an array when ``~`` follows at once; ``~)`` alone after ``(`` is ``[]``),
  ``)`` closes it, ``~'`` starts a string, ``~`` followed by a digit or ``-`` a number, and
  ``~true``/``~false``/``~null`` the literals. Object members are ``key~value`` joined by
  ``~``. In keys and strings ``*XX`` is the character with hex code XX, ``**XXXX`` a 16-bit
  code unit, and ``!`` stands for ``$``.
- ResourceTiming trie (``restiming``, JSON): keys are URL fragments, nested objects
  continue the URL, ``|`` ends a URL that is also a prefix of others, ``\\n`` is a
  placeholder boomerang inserts to break XSS-looking URLs. A leaf holds one or more
  ``|``-separated entries ``<initiator char><start>,<responseEnd>,…`` (base 36 offsets in
  ms, trailing zeros dropped), each optionally followed by ``*<type><data>`` segments
  (``*1`` = sizes ``encoded,transfer−encoded,decoded−encoded``). A leading ``*0…`` entry is
  the element's on-screen dimensions, not a resource.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

_MAX_DEPTH = 32
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_BASE36 = re.compile(r"[0-9a-z]{1,12}").fullmatch
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


class CodecError(ValueError):
    """A compressed value could not be decoded."""


class _Jsurl:
    __slots__ = ("s", "i")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0

    def eat(self, expected: str) -> None:
        if self.s[self.i : self.i + 1] != expected:
            raise CodecError(f"bad JSURL: expected {expected!r} at {self.i}")
        self.i += 1

    def word(self) -> str:
        s, out, i, n = self.s, [], self.i, len(self.s)
        start = i
        while i < n and s[i] not in "~)":
            ch = s[i]
            if ch == "*":
                out.append(s[start:i])
                width = 4 if s[i + 1 : i + 2] == "*" else 2
                offset = i + (2 if width == 4 else 1)
                code = s[offset : offset + width]
                if len(code) != width:
                    raise CodecError("bad JSURL escape")
                try:
                    out.append(chr(int(code, 16)))
                except ValueError:
                    raise CodecError("bad JSURL escape") from None
                i = start = offset + width
            elif ch == "!":
                out.append(s[start:i])
                out.append("$")
                i += 1
                start = i
            else:
                i += 1
        out.append(s[start:i])
        self.i = i
        return "".join(out)

    def value(self, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise CodecError("JSURL nested too deeply")
        self.eat("~")
        ch = self.s[self.i : self.i + 1]
        if ch == "(":
            self.i += 1
            is_array = self.s[self.i : self.i + 1] == "~"
            result: Any = self.array(depth) if is_array else self.obj(depth)
            self.eat(")")
            return result
        if ch == "'":
            self.i += 1
            return self.word()
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in "~)":
            self.i += 1
        token = self.s[start : self.i]
        if ch and (ch.isdigit() or ch == "-"):
            match = _NUMBER.match(token)
            if match is None:
                raise CodecError(f"bad JSURL number {token[:20]!r}")
            number = float(match.group())
            return int(number) if number.is_integer() and "." not in match.group() else number
        if token in _LITERALS:
            return _LITERALS[token]
        raise CodecError(f"bad JSURL value {token[:20]!r}")

    def array(self, depth: int) -> list[Any]:
        items: list[Any] = []
        if self.s[self.i + 1 : self.i + 2] == ")":
            self.i += 1
            return items
        while True:
            items.append(self.value(depth + 1))
            if self.s[self.i : self.i + 1] != "~":
                return items

    def obj(self, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.s[self.i : self.i + 1] == ")":
            return result
        while True:
            key = self.word()
            result[key] = self.value(depth + 1)
            if self.s[self.i : self.i + 1] != "~":
                return result
            self.i += 1


def decode_jsurl(text: str) -> Any:
    """Decode one JSURL value; raises :class:`CodecError` on bad syntax or trailing data."""
    parser = _Jsurl(text)
    result = parser.value()
    if parser.i != len(text):
        raise CodecError(f"bad JSURL: trailing data at {parser.i}")
    return result


@dataclass(frozen=True, slots=True)
class ResourceEntry:
    url: str
    initiator: str
    start_ms: int
    duration_ms: int
    transfer_bytes: int


def _b36(text: str) -> int:
    if not text:
        return 0
    if _BASE36(text) is None:
        raise CodecError(f"bad base-36 number {text[:20]!r}")
    return int(text, 36)


def _transfer_bytes(segment: str) -> int:
    """Bytes over the wire from a ``*1`` size segment (0 when served from the cache)."""
    parts = segment.split(",")
    encoded = _b36(parts[0])
    if len(parts) < 2 or parts[1] == "":
        return encoded  # transferSize == encodedBodySize
    if parts[1] == "_":
        return 0  # transferSize 0: cache hit
    return max(encoded + _b36(parts[1]), 0)


def _entries(url: str, leaf: str) -> list[ResourceEntry]:
    found: list[ResourceEntry] = []
    for raw in leaf.split("|"):
        if not raw or raw[0] == "*":
            continue  # "*0…": on-screen dimensions of the element, not a resource
        head, *segments = raw[1:].split("*")
        timings = head.split(",")
        transfer = 0
        for segment in segments:
            if segment[:1] == "1":
                transfer = _transfer_bytes(segment[1:])
        found.append(
            ResourceEntry(
                url=url,
                initiator=raw[0],
                start_ms=_b36(timings[0]),
                duration_ms=_b36(timings[1]) if len(timings) > 1 else 0,
                transfer_bytes=transfer,
            )
        )
    return found


def decode_restiming(text: str) -> list[ResourceEntry]:
    """Decode a ``restiming`` trie (JSON) into entries (a node's leaves before its branches)."""
    try:
        trie = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise CodecError("restiming is not JSON") from None
    if not isinstance(trie, dict):
        raise CodecError("restiming must be a JSON object")
    found: list[ResourceEntry] = []
    stack: list[tuple[str, dict[str, Any], int]] = [("", trie, 0)]
    while stack:
        prefix, node, depth = stack.pop()
        if depth > 512:
            raise CodecError("restiming trie nested too deeply")
        children: list[tuple[str, dict[str, Any], int]] = []
        for key, value in node.items():
            url = prefix if key == "|" else prefix + key.replace("\n", "")
            if isinstance(value, str):
                found.extend(_entries(url, value))
            elif isinstance(value, dict):
                children.append((url, value, depth + 1))
            else:
                raise CodecError("restiming leaves must be strings")
        stack.extend(reversed(children))
    return found
