"""Tool calls out of chat replies, in every shape the models we serve produce.

* native ``tool_calls`` — Ollama gives ``arguments`` as an object, OpenAI-compatible servers as a JSON
  string (both are accepted from both APIs: servers differ);
* FunctionGemma's raw text form, when the server's parser did not catch it:
  ``<start_function_call>call:NAME{key:<escape>value<escape>,n:3}<end_function_call>``, or the bare
  ``call:NAME{...}`` when the server stripped the special tokens;
* plain JSON in the text (``{"lambda_function": ..., "parameters": {...}}`` or
  ``{"name": ..., "arguments": {...}}``), found by ``jsonparse.extract_json``.

Nothing here trusts the content: the caller validates name and arguments against the catalog.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..jsonparse import NoJSONFound, extract_objects

ESCAPE = "<escape>"
START, END = "<start_function_call>", "<end_function_call>"
_FG_HEAD = re.compile(r"<start_function_call>\s*call:([A-Za-z0-9_.:-]*)\s*\{")
# Without the markers: ``call:`` at the start of the text or of a line/word, then a name and ``{``.
_FG_BARE = re.compile(r"(?:^|(?<=[\s>`]))call:([A-Za-z_][A-Za-z0-9_.-]*)\s*\{")


class MalformedCall(ValueError):
    """The model tried to call a function but the call cannot be read."""


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    source: str = "tool_calls"  # tool_calls | functiongemma_text | json_text


def _args(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            v = json.loads(raw)
        except json.JSONDecodeError as e:
            raise MalformedCall(f"tool call arguments are not JSON: {e}") from None
        if isinstance(v, dict):
            return v
    raise MalformedCall(f"tool call arguments must be an object, got {type(raw).__name__}")


def _scalar(text: str) -> Any:
    t = text.strip()
    if t in ("true", "false"):
        return t == "true"
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    if re.fullmatch(r"-?\d+\.\d*", t):
        return float(t)
    return t


def parse_functiongemma_args(body: str) -> dict[str, Any]:
    """``key:<escape>v<escape>,n:3`` → ``{"key": "v", "n": 3}``; strings may hold commas and braces."""
    out: dict[str, Any] = {}
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in " \t\r\n,":
            i += 1
        if i >= n:
            break
        colon = body.find(":", i)
        if colon < 0:
            raise MalformedCall(f"argument without a value: {body[i:i + 40]!r}")
        key = body[i:colon].strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise MalformedCall(f"bad argument name {key!r}")
        i = colon + 1
        if body.startswith(ESCAPE, i):
            end = body.find(ESCAPE, i + len(ESCAPE))
            if end < 0:
                raise MalformedCall(f"unterminated <escape> in argument {key!r}")
            out[key] = body[i + len(ESCAPE):end]
            i = end + len(ESCAPE)
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            out[key] = _scalar(body[i:end])
            i = end
    return out


def _body_end(text: str, i: int) -> int:
    """Index of the ``}`` closing a call body starting at ``i`` (braces inside <escape> ignored)."""
    while i < len(text):
        if text.startswith(ESCAPE, i):
            end = text.find(ESCAPE, i + len(ESCAPE))
            if end < 0:
                return -1
            i = end + len(ESCAPE)
            continue
        if text[i] == "}":
            return i
        i += 1
    return -1


def functiongemma_calls(text: str) -> list[ToolCall]:
    calls = []
    text = text or ""
    head = _FG_HEAD if START in text else _FG_BARE
    for m in head.finditer(text):
        end = _body_end(text, m.end())
        if end < 0:
            raise MalformedCall("unterminated FunctionGemma call")
        calls.append(ToolCall(m.group(1), parse_functiongemma_args(text[m.end():end]), "functiongemma_text"))
    if not calls and START in text:
        raise MalformedCall("unreadable <start_function_call> block")
    return calls


def json_text_calls(text: str) -> list[ToolCall]:
    try:
        objs = extract_objects(text or "")
    except NoJSONFound:  # pragma: no cover - extract_objects returns [] instead
        objs = []
    for o in objs:
        if "lambda_function" in o:
            return [ToolCall(str(o.get("lambda_function") or ""), _args(o.get("parameters")), "json_text")]
        if "name" in o and ("arguments" in o or "parameters" in o):
            return [ToolCall(str(o.get("name") or ""), _args(o.get("arguments", o.get("parameters"))), "json_text")]
        fn = o.get("function")
        if isinstance(fn, dict) and "name" in fn:
            return [ToolCall(str(fn.get("name") or ""), _args(fn.get("arguments")), "json_text")]
    return []


def message_of(body: Any, api: str) -> dict[str, Any]:
    """The assistant message of an Ollama ``/api/chat`` or OpenAI ``/v1/chat/completions`` reply."""
    if not isinstance(body, dict):
        raise MalformedCall(f"reply is not a JSON object ({type(body).__name__})")
    if api == "openai":
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedCall("reply has no choices")
        msg = choices[0].get("message")
    else:
        msg = body.get("message")
    if not isinstance(msg, dict):
        raise MalformedCall("reply has no assistant message")
    return msg


def tool_calls(message: dict[str, Any]) -> tuple[list[ToolCall], str]:
    """(calls, content text). Native calls first, then FunctionGemma's text form, then JSON text."""
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    native = message.get("tool_calls") or []
    if not isinstance(native, list):
        raise MalformedCall("tool_calls is not a list")
    calls = []
    for tc in native:
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict):
            raise MalformedCall("tool call without a function")
        calls.append(ToolCall(str(fn.get("name") or ""), _args(fn.get("arguments")), "tool_calls"))
    if calls:
        return calls, text
    calls = functiongemma_calls(text)
    if calls:
        return calls, text
    return json_text_calls(text), text
