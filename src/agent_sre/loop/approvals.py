"""Approvals: a step held back in suggest mode waits for a person.

* ``request``: the gate held a mutating step back because its alert class has not earned
  execute yet (``Verdict.approvable``): the suggestion is stored (durably, id derived from the
  alert occurrence and step, so a re-sent alert finds the same request) and announced as
  ``io.homelab.agent-sre.approval.requested``.
* ``resolve``: approved, rejected, refused (the gate said no when it was given), expired
  (``APPROVAL_TTL_SECONDS``) or withdrawn (its alert resolved: nothing ever acts on a resolved
  alert). Only a pending request can change, and only once (compare and set in the store), so
  two people approving at once run it once. Each change is an audit record, an
  ``io.homelab.agent-sre.approval.resolved`` event and a metric.

What an approval *does* (the step passes through the gate again, with the class's mode lifted)
is the agent's: see ``Loop.decide``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from ..alerts import Alert, label_fingerprint
from ..ce import CloudEvent
from ..decision import Decision
from ..events import APPROVAL_REQUESTED, APPROVAL_RESOLVED, correlation_id, loop_event
from ..metrics import Metrics
from .records import Approval
from .store import LoopStore

AuditItems = list[tuple[str, dict[str, Any], str | None, str | None]]


def approval_id(alert: Alert, step: int) -> str:
    """Short enough to type (``agent-sre approve 3f9c0a1b2d4e``), fixed by the occurrence and step."""
    return hashlib.sha256(f"approval:{alert.key()}:{step}".encode()).hexdigest()[:12]


class Approvals:
    def __init__(self, store: LoopStore, metrics: Metrics, audit: Callable[[AuditItems], None], *,
                 ttl_s: float, link: str | None = None):
        self.store = store
        self.metrics = metrics
        self.audit = audit
        self.ttl_s = ttl_s
        self.link = link

    def request(self, alert: Alert, decision: Decision, step: int, params: dict[str, Any],
                observed: dict[str, Any] | None, alert_class: str, now: float) -> list[CloudEvent]:
        a = Approval(id=approval_id(alert, step), alert_class=alert_class, alertname=alert.name,
                     function=decision.plan[step].lambda_function, parameters=params, step=step,
                     correlation_id=correlation_id(alert),
                     fingerprint=alert.fingerprint or label_fingerprint(alert.labels),
                     alert=alert.model_dump(mode="json", exclude_none=True), decision=decision.model_dump(mode="json"),
                     observed=observed, created=now, expires=now + self.ttl_s)
        stored, new = self.store.add_approval(a)
        if stored.status != "pending":
            return []
        if new:
            self.metrics.approvals.labels("requested").inc()
            self.audit([("approval", {"status": "requested", **self._brief(stored)}, stored.correlation_id,
                         stored.alertname)])
        # A request seen again gets the same event id: the outbox sends it once.
        return [loop_event(APPROVAL_REQUESTED, self._announce(stored), key=stored.id, subject=stored.alertname,
                           correlation=stored.correlation_id)]

    def resolve(self, a: Approval, status: str, *, by: str | None, note: str | None, now: float,
                expect: str = "pending") -> tuple[Approval | None, list[CloudEvent]]:
        got = self.store.resolve_approval(a.id, status, by=by, note=note, now=now, expect=expect)
        if got is None:
            return None, []
        self.metrics.approvals.labels(status).inc()
        doc = {"status": status, "by": by, "note": note, **self._brief(got)}
        self.audit([("approval", doc, got.correlation_id, got.alertname)])
        return got, [loop_event(APPROVAL_RESOLVED, doc, key=(got.id, status), subject=got.alertname,
                                correlation=got.correlation_id)]

    def pending_for(self, fingerprint: str) -> list[Approval]:
        return [a for a in self.store.approvals(status="pending") if a.fingerprint == fingerprint]

    def due(self, now: float) -> list[Approval]:
        return [a for a in self.store.approvals(status="pending") if a.expires <= now]

    @staticmethod
    def _brief(a: Approval) -> dict[str, Any]:
        return {"id": a.id, "alert_class": a.alert_class, "alertname": a.alertname, "function": a.function,
                "parameters": a.parameters, "step": a.step}

    def _announce(self, a: Approval) -> dict[str, Any]:
        d = a.decision
        return {**self._brief(a), "reasoning": d.get("reasoning"), "confidence": d.get("confidence"),
                "method": d.get("method"), "expires": a.expires, "correlation_id": a.correlation_id,
                "link": f"{self.link.rstrip('/')}/ui" if self.link else None,
                "alert": {"labels": a.alert.get("labels"), "startsAt": a.alert.get("startsAt")}}
