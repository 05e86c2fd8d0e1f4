"""Robust extraction of JSON objects from model text.

Models wrap JSON in prose and code fences, use single quotes, leave trailing commas, write
Python literals, or emit several candidate objects. ``extract_objects`` finds every balanced
``{...}`` span (fenced blocks first), repairs the common slips, and returns the objects that parse.
Nothing here trusts the content: the caller validates the object against the catalog.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Iterable

_FENCE = re.compile(r"```(?:[a-zA-Z0-9_-]+)?\s*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
MAX_TEXT = 200_000


class NoJSONFound(ValueError):
    pass


def _balanced_spans(text: str) -> Iterable[str]:
    """Every top-level {...} span, respecting strings in either quote style."""
    depth = 0
    start = -1
    quote: str | None = None
    escape = False
    for i, ch in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = None
            continue
        if ch in ("'", '"') and depth > 0:
            # An apostrophe inside prose ("it's") only matters inside an object.
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                yield text[start : i + 1]


def _swap_quotes(s: str) -> str:
    """Turn single-quoted strings into double-quoted ones, leaving double-quoted ones alone."""
    out = []
    quote: str | None = None
    escape = False
    for ch in s:
        if quote:
            if escape:
                escape = False
                out.append(ch)
                continue
            if ch == "\\":
                escape = True
                out.append(ch)
                continue
            if ch == quote:
                quote = None
                out.append('"')
                continue
            if quote == "'" and ch == '"':
                out.append('\\"')
                continue
            out.append(ch)
            continue
        if ch in ("'", '"'):
            quote = ch
            out.append('"')
            continue
        out.append(ch)
    return "".join(out)


def _py_literals(s: str) -> str:
    return re.sub(r"\b(True|False|None)\b", lambda m: _PY_LITERALS[m.group(1)], s)


def _parse_one(candidate: str) -> Any:
    # Cheapest first: well-formed JSON (the common case) costs one json.loads.
    def attempts():
        yield candidate
        yield _TRAILING_COMMA.sub(r"\1", candidate)
        swapped = _TRAILING_COMMA.sub(r"\1", _swap_quotes(candidate))
        yield swapped
        yield _py_literals(swapped)

    for a in attempts():
        try:
            return json.loads(a)
        except (json.JSONDecodeError, RecursionError):
            continue
    try:  # Python dict literal as a last resort; literal_eval evaluates no code.
        v = ast.literal_eval(candidate)
        json.dumps(v)
        return v
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def extract_objects(text: str) -> list[dict[str, Any]]:
    """All JSON objects found in ``text``, fenced blocks first, in order of appearance."""
    if not isinstance(text, str):
        return []
    text = text[:MAX_TEXT]
    regions = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for region in regions:
        for span in _balanced_spans(region):
            if span in seen:
                continue
            seen.add(span)
            obj = _parse_one(span)
            if isinstance(obj, dict):
                found.append(obj)
    return found


def extract_json(text: str, prefer_key: str | None = "lambda_function") -> dict[str, Any]:
    """The most plausible object: the first one carrying ``prefer_key``, else the first one."""
    objs = extract_objects(text)
    if not objs:
        raise NoJSONFound("no JSON object found in model output")
    if prefer_key:
        for o in objs:
            if prefer_key in o:
                return o
    return objs[0]
