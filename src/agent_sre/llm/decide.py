"""From an alert to a validated decision through one LLM tool call."""

from __future__ import annotations

import logging

from .. import catalog
from ..alerts import Alert
from ..decision import Abstain, Decision, InvalidProposal, Method, validated
from . import prompt
from .client import CircuitOpen, LLMClient, LLMUnavailable
from .parse import MalformedCall

log = logging.getLogger(__name__)

# A tool call carries no calibrated probability; this fixed value marks LLM decisions as uncalibrated.
LLM_CONFIDENCE = 0.5


class LLMDecider:
    def __init__(self, client: LLMClient):
        self.client = client

    def decide(self, alert: Alert) -> Decision:
        try:
            reply = self.client.chat(prompt.messages(alert), prompt.tools())
        except CircuitOpen as e:
            raise Abstain(str(e)) from None
        except LLMUnavailable as e:
            log.warning("LLM unavailable for %s: %s", alert.name, e)
            raise Abstain(str(e)) from None
        except MalformedCall as e:
            raise Abstain(f"unreadable model output ({e})") from None
        model = self.client.config.model
        if not reply.calls:
            said = " ".join(reply.content.split())[:120]
            raise Abstain(f"{model} made no tool call (no action proposed)" + (f": {said!r}" if said else ""))
        call = reply.calls[0]
        if not call.name:
            raise Abstain(f"{model} returned a tool call without a name")
        name = prompt.catalog_name(call.name)
        if name not in catalog.function_names():
            raise Abstain(f"{model} called unknown function {call.name!r}")
        extra = f" (+{len(reply.calls) - 1} more calls ignored)" if len(reply.calls) > 1 else ""
        args = ", ".join(f"{k}={v}" for k, v in call.arguments.items())
        try:
            return validated(name, call.arguments, method=Method.LLM, confidence=LLM_CONFIDENCE,
                             reasoning=f"{model} called {name}({args}) via {call.source} "
                                       f"in {reply.elapsed_s * 1000:.0f} ms{extra}")
        except InvalidProposal as e:
            raise InvalidProposal(f"{model} proposed invalid arguments: {e}") from None
