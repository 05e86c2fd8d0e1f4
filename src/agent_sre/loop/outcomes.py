"""The outcome ledger: every remediated step's effect, counted per alert class.

``Ledger.record`` is the one way an outcome enters the loop (verified, ineffective, failed,
unverified from verification; rejected from a person). It counts the outcome in its class
(once per outcome id, see store.py), and says what follows, as events for the caller to send:

* ``io.homelab.agent-sre.outcome`` with the record;
* an escalation when the remediation failed or was ineffective (never repeat blindly: a person
  looks next);
* ``io.homelab.agent-sre.autonomy.changed`` when the class's mode changed (autonomy.py).

Each of these is also an audit record and a metric. ``pin`` is the operator's override of a
class's mode, recorded the same way.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..alerts import Alert
from ..ce import CloudEvent
from ..decision import Decision
from ..events import AUTONOMY_CHANGED, OUTCOME, escalation_event, loop_event
from ..metrics import Metrics
from .autonomy import Autonomy, mode_of
from .records import ClassStats, Mode, OutcomeRecord
from .store import LoopStore

log = logging.getLogger(__name__)

AuditItems = list[tuple[str, dict[str, Any], str | None, str | None]]


class Ledger:
    def __init__(self, store: LoopStore, autonomy: Autonomy, metrics: Metrics,
                 audit: Callable[[AuditItems], None]):
        self.store = store
        self.autonomy = autonomy
        self.metrics = metrics
        self.audit = audit

    def record(self, rec: OutcomeRecord, alert: Alert, decision: Decision) -> list[CloudEvent]:
        got = self.store.record_outcome(rec)
        if got is None:
            return []  # recorded already (a redelivered result, or another replica)
        before, after = got
        corr, name = rec.correlation_id, rec.alertname
        doc = rec.model_dump(mode="json")
        events = [loop_event(OUTCOME, doc, key=rec.id, subject=name, correlation=corr)]
        items: AuditItems = [("outcome", doc, corr, name)]
        self.metrics.outcomes.labels(name, rec.function, rec.outcome).inc()
        if rec.outcome == "verified" and rec.seconds is not None:
            self.metrics.time_to_verified.observe(rec.seconds)
        log.info("outcome %s", _json({"event": "outcome", **doc}))
        if rec.outcome in ("ineffective", "failed"):
            events.append(escalation_event(alert, decision, f"remediation {rec.outcome}: {rec.reason}",
                                           f"outcome:{rec.outcome}"))
        change = self.autonomy.change(before, after)
        if change is not None:
            events.append(loop_event(AUTONOMY_CHANGED, {**change, "outcome": rec.id}, key=("outcome", rec.id),
                                     subject=rec.alert_class, correlation=corr))
            items.append(("autonomy", change, corr, name))
            self.metrics.autonomy.labels(change["to"]).inc()
            log.warning("autonomy: %s now runs in %s (%s)", rec.alert_class, change["to"], change["why"])
        self.audit(items)
        return events

    def pin(self, key: str, mode: Mode | None, by: str, now: float) -> tuple[ClassStats, list[CloudEvent]]:
        """Pin class ``key`` to ``mode`` (None: back to its earned mode)."""
        alertname, _, function = key.rpartition("/")
        before, after = self.store.pin(key, alertname, function, mode)
        old, new = mode_of(before, self.autonomy.promote_after)[0], mode_of(after, self.autonomy.promote_after)[0]
        doc = {"alert_class": key, "from": old, "to": new, "pinned": mode is not None, "by": by,
               "why": f"pinned to {mode} by {by}" if mode else f"unpinned by {by}: back to its earned mode"}
        self.audit([("autonomy", doc, None, alertname)])
        if old != new:
            self.metrics.autonomy.labels(new).inc()
        return after, [loop_event(AUTONOMY_CHANGED, doc, key=("pin", key, mode, now), subject=key)]


def _json(doc: dict[str, Any]) -> str:
    import json

    return json.dumps(doc, sort_keys=True, default=str)
