"""Stage 3: an LLM with tool calling (FunctionGemma behind Ollama or an OpenAI-compatible API).
Configured by LLM_URL; without it the stage abstains."""

from __future__ import annotations

import os

from ..alerts import Alert
from ..decision import Decision
from .base import Abstain


class LLMStage:
    name = "llm"

    def __init__(self, url: str | None = None):
        self.url = url if url is not None else os.environ.get("LLM_URL", "")

    def __call__(self, alert: Alert) -> Decision:
        if not self.url:
            raise Abstain("no LLM configured (LLM_URL unset)")
        raise Abstain("LLM stage not implemented yet")
