"""trm-reasoning: the TRM behind HTTP, with micro-batching (issue 8). See ``service``."""

from .batcher import MicroBatcher, Overloaded
from .engine import DecisionEngine, Engine, TRMEngine, Verdict

__all__ = ["MicroBatcher", "Overloaded", "DecisionEngine", "Engine", "TRMEngine", "Verdict"]
