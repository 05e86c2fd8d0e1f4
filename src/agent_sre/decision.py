"""What the chain decides for one alert."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field

from . import catalog


class Method(str, enum.Enum):
    STATIC = "static_annotation"
    TRM = "trm_recursive_reasoning"
    LLM = "function_gemma"
    RULES = "rule_based"
    NONE = "none"


class PlanStep(BaseModel):
    lambda_function: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    # A later step runs only when the previous step's result says so ("unhealthy": the check found
    # something wrong), never unconditionally; it takes ``from_previous`` parameters from that result.
    when: str | None = None
    from_previous: list[str] = Field(default_factory=list)


class Decision(BaseModel):
    """A validated decision. ``lambda_function`` is None for no action (then ``plan`` is empty)."""

    lambda_function: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    plan: list[PlanStep] = Field(default_factory=list)
    reasoning: str = ""
    confidence: float = 0.0
    method: Method = Method.NONE
    iterations: int | None = None
    # Why earlier stages did not decide (e.g. "trm: abstained (confidence 0.41 < 0.9)").
    fallthrough: list[str] = Field(default_factory=list)

    @property
    def action(self) -> bool:
        return self.lambda_function is not None


def no_action(reason: str, fallthrough: list[str] | None = None) -> Decision:
    return Decision(reasoning=reason, method=Method.NONE, confidence=1.0, fallthrough=fallthrough or [])


class InvalidProposal(ValueError):
    pass


class Abstain(Exception):
    """A stage has no (confident, valid) answer; the message says why, and the next stage decides."""


_PLACEHOLDER = "from-previous-step"


def validated(
    lambda_function: Any,
    parameters: Any,
    *,
    method: Method,
    reasoning: str = "",
    confidence: float = 0.0,
    plan: list[dict[str, Any]] | None = None,
    iterations: int | None = None,
) -> Decision:
    """Turn a stage's proposal into a Decision, or raise InvalidProposal saying why.

    Every stage goes through here: nothing leaves the agent that the catalog does not accept.
    """
    if not isinstance(lambda_function, str) or not lambda_function:
        raise InvalidProposal(f"lambda_function must be a function name, got {lambda_function!r}")
    try:
        params = catalog.validate_parameters(lambda_function, parameters if parameters is not None else {})
    except (catalog.UnknownFunction, catalog.InvalidParameters) as e:
        raise InvalidProposal(str(e)) from None
    steps = [PlanStep(lambda_function=lambda_function, parameters=params)]
    for i, raw in enumerate(plan or []):
        if i == 0:
            if raw.get("lambda_function") not in (None, lambda_function):
                raise InvalidProposal("plan[0] must be the decided function")
            continue
        fn = raw.get("lambda_function")
        later = list(raw.get("from_previous") or [])
        known = dict(raw.get("parameters") or {})
        try:
            # Parameters taken from the previous result are unknown now: check the rest with a
            # placeholder in their place; the gate validates the full set when the step runs.
            p = catalog.validate_parameters(fn, {**known, **{k: _PLACEHOLDER for k in later}})
        except (catalog.UnknownFunction, catalog.InvalidParameters) as e:
            raise InvalidProposal(f"plan[{i}]: {e}") from None
        p = {k: v for k, v in p.items() if k not in later}
        steps.append(PlanStep(lambda_function=fn, parameters=p, when=raw.get("when") or "unhealthy",
                              from_previous=later))
    if not 0.0 <= float(confidence) <= 1.0:
        raise InvalidProposal(f"confidence {confidence} outside [0, 1]")
    return Decision(
        lambda_function=lambda_function,
        parameters=params,
        plan=steps,
        reasoning=reasoning,
        confidence=float(confidence),
        method=method,
        iterations=iterations,
    )
