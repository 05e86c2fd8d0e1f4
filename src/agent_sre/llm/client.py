"""A small chat client for tool calling: Ollama ``/api/chat`` or OpenAI-compatible ``/v1/chat/completions``.

Configured by the LLM settings (``agent_sre.settings.LLMSettings``):

* ``LLM_URL`` — e.g. ``http://ollama:11434`` (Ollama, ``/api/chat`` appended), ``http://ollama:11434/api/chat``,
  or ``http://vllm:8000/v1`` (OpenAI-compatible, ``/chat/completions`` appended);
* ``LLM_MODEL`` (default ``functiongemma:270m``); ``LLM_API`` = ``ollama`` | ``openai`` (default: from the URL
  path — ``/v1…`` is OpenAI, anything else Ollama); ``LLM_API_KEY`` (Bearer token, optional);
* ``LLM_CONNECT_TIMEOUT_MS`` (default 1000), ``LLM_TIMEOUT_MS`` (read timeout, default 10000);
* ``LLM_BREAKER_FAILURES`` (K, default 3) and ``LLM_BREAKER_COOLOFF_S`` (default 30);
* ``LLM_MAX_TOKENS`` (default 256): the longest answer (``max_tokens``, Ollama's ``num_predict``); a
  base model that answers in prose would otherwise write until its context is full;
* ``LLM_KEEP_ALIVE`` (default 30m): sent to Ollama's API, which otherwise unloads an idle model
  after 5 minutes and makes the next alert pay for loading it;
* ``LLM_TOOL_CHOICE`` (default unset): sent to OpenAI-compatible servers only when set; servers
  not started for tool choice (vLLM without ``--enable-auto-tool-choice``) refuse the request.

Transport failures (refused, timeout, HTTP error status, a body that is not JSON) count towards the circuit
breaker; an answer the catalog rejects does not (the server is healthy, the model is wrong).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import httpx

from ..settings import LLMSettings, load
from .parse import MalformedCall, ToolCall, message_of, tool_calls

log = logging.getLogger(__name__)

DEFAULT_MODEL = LLMSettings.model_fields["llm_model"].default
APIS = ("ollama", "openai")


class LLMUnavailable(RuntimeError):
    """The LLM could not be asked (down, slow, HTTP error, circuit open); the message says why."""


class CircuitOpen(LLMUnavailable):
    pass


def detect_api(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return "openai" if path == "/v1" or path.startswith("/v1/") or path.endswith("/chat/completions") else "ollama"


def endpoint(url: str, api: str) -> str:
    u = url.rstrip("/")
    if api == "openai":
        return u if u.endswith("/chat/completions") else (u + "/chat/completions" if u.endswith("/v1")
                                                          else u + "/v1/chat/completions")
    return u if u.endswith("/api/chat") else u + "/api/chat"


@dataclass
class LLMConfig:
    url: str
    model: str = DEFAULT_MODEL
    api: str = ""  # "" = detect from the URL
    api_key: str = ""
    connect_timeout_s: float = 1.0
    read_timeout_s: float = 10.0
    breaker_failures: int = 3
    breaker_cooloff_s: float = 30.0
    temperature: float = 0.0
    max_tokens: int = 256
    keep_alive: str = "30m"
    tool_choice: str = ""

    def __post_init__(self) -> None:
        self.api = (self.api or detect_api(self.url)).lower()
        if self.api not in APIS:
            raise ValueError(f"LLM_API must be one of {', '.join(APIS)}, not {self.api!r}")

    @property
    def endpoint(self) -> str:
        return endpoint(self.url, self.api)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "LLMConfig | None":
        """The configuration the LLM settings describe (``env``, default ``os.environ``), or None
        when ``LLM_URL`` is unset; SettingsError names a setting that cannot be used."""
        s = load(LLMSettings, env)
        if not s.llm_url:
            return None
        return cls(url=s.llm_url, model=s.llm_model, api=s.llm_api, api_key=s.llm_api_key or "",
                   connect_timeout_s=s.llm_connect_timeout_ms / 1000, read_timeout_s=s.llm_timeout_ms / 1000,
                   breaker_failures=s.llm_breaker_failures, breaker_cooloff_s=s.llm_breaker_cooloff_s,
                   max_tokens=s.llm_max_tokens, keep_alive=s.llm_keep_alive, tool_choice=s.llm_tool_choice)


class CircuitBreaker:
    """closed → (K consecutive failures) → open for ``cooloff_s`` → half-open: one trial call;
    its success closes the circuit, its failure opens it again for another cool-off."""

    def __init__(self, failures: int = 3, cooloff_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = max(1, failures)
        self.cooloff_s = cooloff_s
        self.clock = clock
        self._lock = threading.Lock()
        self.consecutive = 0
        self.opened_at: float | None = None
        self._trial_running = False
        self.last_error = ""

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.cooloff_s else "open"

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go out now (in half-open state: exactly one trial)."""
        with self._lock:
            st = self._state()
            if st == "closed":
                return
            if st == "half-open" and not self._trial_running:
                self._trial_running = True
                return
            left = max(0.0, self.cooloff_s - (self.clock() - (self.opened_at or 0.0)))
            why = "a trial call is in flight" if st == "half-open" else f"retry in {left:.1f}s"
            raise CircuitOpen(f"circuit open after {self.consecutive} consecutive failures "
                              f"(last: {self.last_error}); skipping the LLM, {why}")

    def success(self) -> None:
        with self._lock:
            self.consecutive = 0
            self.opened_at = None
            self._trial_running = False

    def failure(self, error: str) -> None:
        with self._lock:
            self.consecutive += 1
            self.last_error = error
            if self._trial_running or self.consecutive >= self.threshold:
                self.opened_at = self.clock()
            self._trial_running = False


@dataclass
class ChatReply:
    calls: list[ToolCall]
    content: str
    elapsed_s: float
    raw: dict[str, Any]


class LLMClient:
    def __init__(self, config: LLMConfig, breaker: CircuitBreaker | None = None,
                 transport: httpx.BaseTransport | None = None):
        self.config = config
        self.breaker = breaker or CircuitBreaker(config.breaker_failures, config.breaker_cooloff_s)
        headers = {"content-type": "application/json"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
        self._http = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def close(self) -> None:
        self._http.close()

    def request_body(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        c = self.config
        if c.api == "openai":
            body = {"model": c.model, "messages": messages, "tools": tools, "temperature": c.temperature,
                    "max_tokens": c.max_tokens, "stream": False}
            if c.tool_choice:
                body["tool_choice"] = c.tool_choice
            return body
        # Ollama reads keep_alive as a duration string or a number of seconds ("-1" is not a duration).
        keep = int(c.keep_alive) if c.keep_alive.lstrip("-").isdigit() else c.keep_alive
        return {"model": c.model, "messages": messages, "tools": tools, "stream": False, "keep_alive": keep,
                "options": {"temperature": c.temperature, "num_predict": c.max_tokens}}

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ChatReply:
        """One chat turn. Raises LLMUnavailable (transport, breaker) or MalformedCall (unreadable reply)."""
        self.breaker.before_call()
        t0 = time.perf_counter()
        try:
            r = self._http.post(self.config.endpoint, json=self.request_body(messages, tools))
            if r.status_code >= 400:
                raise LLMUnavailable(f"HTTP {r.status_code} from {self.config.endpoint}: {r.text[:200]!r}")
            try:
                body = r.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise LLMUnavailable(f"reply from {self.config.endpoint} is not JSON: {r.text[:120]!r}") from None
        except httpx.TimeoutException as e:
            err = f"timed out after {time.perf_counter() - t0:.2f}s ({type(e).__name__}) at {self.config.endpoint}"
            self.breaker.failure(err)
            raise LLMUnavailable(err) from None
        except httpx.HTTPError as e:
            err = f"unreachable at {self.config.endpoint} ({type(e).__name__}: {e})"
            self.breaker.failure(err)
            raise LLMUnavailable(err) from None
        except LLMUnavailable as e:
            self.breaker.failure(str(e))
            raise
        self.breaker.success()
        msg = message_of(body, self.config.api)
        calls, content = tool_calls(msg)
        return ChatReply(calls, content, time.perf_counter() - t0, body)


__all__ = ["LLMClient", "LLMConfig", "CircuitBreaker", "CircuitOpen", "LLMUnavailable", "ChatReply",
           "MalformedCall", "detect_api", "endpoint", "DEFAULT_MODEL"]
