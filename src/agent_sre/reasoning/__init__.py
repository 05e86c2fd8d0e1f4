"""trm-reasoning: the TRM behind HTTP (``service``), its alerts batched into shared forward passes.
``engine`` holds what the service runs per batch."""

from .engine import DecisionEngine, Engine, TRMEngine, Verdict

__all__ = ["DecisionEngine", "Engine", "TRMEngine", "Verdict"]
