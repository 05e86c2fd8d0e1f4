"""Stage 4: an LLM with tool calling (FunctionGemma behind Ollama, or any OpenAI-compatible API).

Configured by ``LLM_URL`` (see ``agent_sre.llm.client`` for LLM_MODEL, LLM_API, timeouts and the circuit
breaker); without it the stage abstains. Every failure mode — down, slow, circuit open, garbage, unknown
function, invalid arguments, no tool call — makes the stage fall through with the reason."""

from __future__ import annotations

from ..alerts import Alert
from ..decision import Abstain, Decision


class LLMStage:
    name = "llm"

    def __init__(self, url: str | None = None, config=None, client=None):
        from ..llm.client import LLMClient, LLMConfig

        if client is None:
            if config is None:
                config = LLMConfig(url=url) if url else (LLMConfig.from_env() if url is None else None)
            client = LLMClient(config) if config is not None else None
        self.client = client
        self.url = client.config.url if client is not None else ""
        # The chain bounds the stage by the client's own timeouts plus a margin (see chain.stage_timeout).
        self.timeout_s = (client.config.connect_timeout_s + client.config.read_timeout_s + 0.5
                          if client is not None else None)

    def __call__(self, alert: Alert) -> Decision:
        if self.client is None:
            raise Abstain("no LLM configured (LLM_URL unset)")
        from ..llm.decide import LLMDecider

        return LLMDecider(self.client).decide(alert)
