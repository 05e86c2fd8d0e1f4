"""FunctionGemma / OpenAI-compatible tool-calling fallback.

``LLMDecider(client).decide(alert)`` asks the model for one tool call and turns it into a validated
``Decision`` (method ``function_gemma``); anything else raises ``Abstain`` with the reason."""

from .client import (DEFAULT_MODEL, CircuitBreaker, CircuitOpen, LLMClient, LLMConfig, LLMUnavailable,
                     detect_api, endpoint)
from .decide import LLMDecider
from .parse import MalformedCall, ToolCall, functiongemma_calls, tool_calls

__all__ = ["DEFAULT_MODEL", "CircuitBreaker", "CircuitOpen", "LLMClient", "LLMConfig", "LLMUnavailable",
           "LLMDecider", "MalformedCall", "ToolCall", "detect_api", "endpoint", "functiongemma_calls",
           "tool_calls"]
