"""What a chain stage is.

A stage is any callable ``stage(alert) -> Decision``. To let the next stage decide it raises
``Abstain(reason)``; a proposal the catalog rejects raises ``decision.InvalidProposal``. The chain
records the reason either way (``Decision.fallthrough``), so a person can see why a stage passed.
"""

from __future__ import annotations

from typing import Protocol

from ..alerts import Alert
from ..decision import Abstain, Decision

__all__ = ["Abstain", "Stage"]


class Stage(Protocol):
    name: str

    def __call__(self, alert: Alert) -> Decision: ...
