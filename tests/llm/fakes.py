"""Loopback HTTP servers speaking the Ollama ``/api/chat`` and OpenAI ``/v1/chat/completions`` wire formats.

Replies are shaped exactly as those APIs return them (non-streaming); ``reply`` decides the assistant
message (tool calls and/or content), or an HTTP status, raw bytes, or a delay, per request."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def ollama_body(model: str, content: str = "", calls: list[tuple[str, dict]] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = [{"function": {"name": n, "arguments": a}} for n, a in calls]
    return {"model": model, "created_at": "2026-11-24T10:00:00.123456Z", "message": msg,
            "done_reason": "stop", "done": True, "total_duration": 412345678, "load_duration": 1234567,
            "prompt_eval_count": 412, "prompt_eval_duration": 201234567, "eval_count": 31,
            "eval_duration": 198765432}


def openai_body(model: str, content: str | None = None, calls: list[tuple[str, dict | str]] | None = None) -> dict:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = [{"id": f"call_{i}abc", "type": "function",
                              "function": {"name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}}
                             for i, (n, a) in enumerate(calls)]
    return {"id": "chatcmpl-9x2", "object": "chat.completion", "created": 1764000000, "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 412, "completion_tokens": 31, "total_tokens": 443}}


class Reply:
    def __init__(self, content: str | None = "", calls=None, status: int = 200, raw: bytes | None = None,
                 delay: float = 0.0):
        self.content, self.calls, self.status, self.raw, self.delay = content, calls, status, raw, delay


class FakeLLM:
    """``FakeLLM("ollama", lambda req: Reply(calls=[...]))``; ``.url``, ``.requests`` (path, headers, json)."""

    def __init__(self, api: str, reply: Callable[[dict], Reply] | Reply):
        self.api = api
        self.reply = reply if callable(reply) else (lambda _req, r=reply: r)
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n)
                try:
                    doc = json.loads(raw)
                except json.JSONDecodeError:
                    doc = None
                fake.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, doc))
                want = "/v1/chat/completions" if fake.api == "openai" else "/api/chat"
                if self.path != want:
                    return self._send(404, b'{"error":"not found"}')
                r = fake.reply(doc)
                if r.delay:
                    time.sleep(r.delay)
                if r.raw is not None:
                    return self._send(r.status, r.raw)
                model = (doc or {}).get("model", "?")
                body = (openai_body(model, r.content, r.calls) if fake.api == "openai"
                        else ollama_body(model, r.content or "", r.calls))
                self._send(r.status, json.dumps(body).encode())

            def _send(self, status: int, body: bytes):
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json; charset=utf-8")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{port}"
        self.url = self.base + ("/v1" if api == "openai" else "")
        self._t = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeLLM":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
