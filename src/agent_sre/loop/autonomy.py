"""Earned autonomy: which mode each alert class runs in, from its ledger.

An alert class is the runbook entry an alert belongs to (its canonical name, so aliases share
it) or else the alert's name, together with the function acting on it: ``PodCrashLoopBackOff/
pod-restart``. Its mode:

* pinned by an operator: that mode, whatever the ledger says;
* else ``execute`` once its last ``promote_after`` outcomes (policy ``autonomy.promote_after``,
  default 3) were verified with nothing failed, ineffective or rejected in between (the ledger's
  ``streak``), and ``suggest`` before that and after any such outcome.

The gate asks ``mode_for`` for every mutating step and takes the strictest of this mode and the
policy's, so the policy's mode stays the ceiling; earned modes only apply where the policy says
execute (see gate.py).
"""

from __future__ import annotations

import logging
import time

from .. import runbook
from ..alerts import Alert
from .records import ClassStats, Mode
from .store import LoopStore

log = logging.getLogger(__name__)


_CANONICAL: dict[str, tuple[float, str]] = {}  # alertname -> (until, runbook entry name)
CANONICAL_TTL_S = 10.0  # the gate asks for every mutating step; the runbook changes rarely


def alert_class(alert: Alert, function: str) -> str:
    """``<runbook entry or alertname>/<function>``."""
    name = alert.name
    now = time.monotonic()
    hit = _CANONICAL.get(name)
    if hit is None or hit[0] < now:
        try:
            entry = runbook.load().entry_for(name)
        except (OSError, ValueError) as e:
            log.warning("alert class of %s: runbook unreadable (%s); using the alert's name", name, e)
            entry = None
        if len(_CANONICAL) > 10_000:
            _CANONICAL.clear()
        hit = _CANONICAL[name] = (now + CANONICAL_TTL_S, entry.alert if entry else name)
    return f"{hit[1]}/{function}"


def mode_of(stats: ClassStats | None, promote_after: int) -> tuple[Mode, bool]:
    """(the class's mode, whether it is pinned)."""
    if stats is not None and stats.pin is not None:
        return stats.pin, True
    return ("execute" if stats is not None and stats.streak >= promote_after else "suggest"), False


def why(stats: ClassStats, promote_after: int) -> str:
    mode, pinned = mode_of(stats, promote_after)
    if pinned:
        return f"pinned to {mode} by an operator"
    if mode == "execute":
        return f"{stats.streak} verified outcomes in a row (promotes after {promote_after})"
    last = stats.last.outcome if stats.last else None
    if last in ("failed", "ineffective", "rejected"):
        return f"last outcome {last}: back to suggest until {promote_after} verified in a row"
    return f"{stats.streak} of {promote_after} verified outcomes in a row needed to run without asking"


class Autonomy:
    """What the gate consults (``gate.Autonomy``)."""

    def __init__(self, store: LoopStore, promote_after: int = 3):
        self.store = store
        self.promote_after = promote_after

    def mode_for(self, alert: Alert, function: str) -> tuple[str, Mode, bool]:
        key = alert_class(alert, function)
        mode, pinned = mode_of(self.store.get_class(key), self.promote_after)
        return key, mode, pinned

    def change(self, before: ClassStats, after: ClassStats) -> dict | None:
        """The mode change between two states of a class's ledger, or None."""
        old, new = mode_of(before, self.promote_after)[0], mode_of(after, self.promote_after)[0]
        if old == new:
            return None
        return {"alert_class": after.alert_class, "from": old, "to": new, "why": why(after, self.promote_after),
                "pinned": after.pin is not None}
