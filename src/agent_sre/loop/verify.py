"""Verification: did a remediation work? Two levels, both with bounded waits.

The target, where the cluster is: a function that acted watches its object for a bounded time
(``FLUX_WAIT_SECONDS``, ``VERIFY_WAIT_SECONDS``) and reports what it saw in its result,
``details.verification = {"ok": true | false | null, "observed": "..."}`` (a replacement pod Ready
with the same owner, a rollout complete, a Flux object Ready with a newer
``lastHandledReconcileAt``). Only the functions can see the cluster (the agent holds no
Kubernetes credentials), and they see it right after acting.

The alert, here in the agent: only the agent receives Alertmanager's notifications and knows the
rule, and the alert may take many minutes to clear (window.py) — far longer than a function
should live. For each executed mutating step that succeeded, a *watch* is opened on the alert's
fingerprint until ``started + window``:

* the resolved notification of that fingerprint (webhook) → ``verified``, with the time it took;
* ``sweep`` (the loop's thread): with ``ALERTMANAGER_URL``, an alert no longer active in its v2
  API → ``verified``; at the deadline, still active → ``ineffective``; no way to tell (no
  Alertmanager to ask) → ``unverified``;
* while a watch's window lasts, the same fingerprint firing again (a re-fire, a repeated
  notification) is *suppressed*: recorded, never acted on (``suppress``).

A result that failed is ``failed`` at once, and one whose target did not recover
(``verification.ok`` false) is ``ineffective`` at once. Dry-run results open nothing: nothing was
changed, so nothing can be verified (and nothing is learnt from them).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import httpx

from .. import catalog
from ..alerts import Alert, label_fingerprint
from ..ce import CloudEvent
from ..decision import Decision
from ..events import correlation_id
from ..gate import target_of
from ..metrics import Metrics
from .autonomy import alert_class
from .outcomes import Ledger
from .records import OutcomeRecord, Watch
from .store import LoopStore
from .window import WindowReader

log = logging.getLogger(__name__)

AuditItems = list[tuple[str, dict[str, Any], str | None, str | None]]


def step_of(decision: Decision, result: dict[str, Any]) -> int | None:
    """The plan step a result answers (by the function that answered)."""
    fns = {result.get(k) for k in ("function", "lambda_function")}
    return next((i for i, s in enumerate(decision.plan) if s.lambda_function in fns), None)


def fingerprint_of(alert: Alert | dict[str, Any]) -> str:
    if isinstance(alert, Alert):
        return alert.fingerprint or label_fingerprint(alert.labels)
    return alert.get("fingerprint") or label_fingerprint(alert.get("labels") or {})


class Verifier:
    def __init__(self, store: LoopStore, ledger: Ledger, window: WindowReader, metrics: Metrics,
                 audit: Callable[[AuditItems], None], *, alertmanager_url: str | None = None, timeout_s: float = 3.0):
        self.store = store
        self.ledger = ledger
        self.window = window
        self.metrics = metrics
        self.audit = audit
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.timeout_s = timeout_s

    # ------------------------------------------------------------------ a result came in
    def result(self, alert: Alert, decision: Decision, data: dict[str, Any], now: float) -> list[CloudEvent]:
        idx = step_of(decision, data)
        if idx is None or data.get("dry_run") is not False:
            return []  # not a step of this plan, or nothing was changed
        fn = decision.plan[idx].lambda_function
        try:
            mutating = catalog.get(fn).mutating
        except catalog.UnknownFunction:
            return []
        if not mutating:
            return []  # a check: its result is its verification, and the plan goes on from it
        corr = correlation_id(alert)
        target = data.get("target") if isinstance(data.get("target"), dict) else {}
        base = dict(id=f"{corr}:{idx}", alert_class=alert_class(alert, fn), alertname=alert.name, function=fn,
                    correlation_id=corr, target=target_of(target) if target else None, ts=now)
        status = data.get("status")
        seen = (data.get("details") or {}).get("verification") or {}
        if status not in ("success", "noop"):
            rec = OutcomeRecord(**base, outcome="failed", reason=f"{fn} {status}: {data.get('message') or ''}".strip(),
                                details={"result": _brief(data)})
            return self.ledger.record(rec, alert, decision)
        if seen.get("ok") is False:
            rec = OutcomeRecord(**base, outcome="ineffective",
                                reason=f"the target did not recover: {seen.get('observed') or data.get('message')}",
                                details={"result": _brief(data)})
            return self.ledger.record(rec, alert, decision)
        win = self.window.for_alert(alert.name)
        w = Watch(id=base["id"], alert_class=base["alert_class"], alertname=alert.name, function=fn,
                  target=base["target"], correlation_id=corr, fingerprint=fingerprint_of(alert),
                  alert=alert.model_dump(mode="json", exclude_none=True), decision=decision.model_dump(mode="json"),
                  started=now, deadline=now + win.seconds, window={**win.parts, "seconds": win.seconds,
                                                                   "target": seen or None})
        if self.store.open_watch(w):
            self.audit([("verify", {"watch": w.id, "function": fn, "target": w.target, "window": w.window,
                                    "deadline": w.deadline}, corr, alert.name)])
        return []

    # ------------------------------------------------------------------ alerts coming in
    def resolved(self, alert: Alert, now: float) -> list[CloudEvent]:
        fp = fingerprint_of(alert)
        events: list[CloudEvent] = []
        for w in self.store.watches(status="open"):
            if w.fingerprint == fp:
                events += self._close(w, now, resolved=True, how="resolved notification")
        return events

    def suppress(self, alert: Alert, now: float) -> Watch | None:
        """The watch whose window holds this firing alert back, if any (counted and recorded)."""
        w = self.store.suppressing(fingerprint_of(alert), now)
        if w is None:
            return None
        self.store.count_suppressed(w.id)
        self.metrics.suppressed.labels(alert.name).inc()
        self.audit([("suppressed", {"watch": w.id, "startsAt": alert.startsAt, "until": w.deadline,
                                    "reason": f"inside the decay window of {w.function} on {w.target} "
                                              f"({w.deadline - now:.0f}s left)"},
                     correlation_id(alert), alert.name)])
        return w

    # ------------------------------------------------------------------ the loop's thread
    def sweep(self, now: float) -> list[tuple[Watch, list[CloudEvent]]]:
        """Close the watches whose alert resolved (Alertmanager says so) or whose window ran out."""
        open_ = self.store.watches(status="open")
        if not open_:
            return []
        active = self._active() if self.alertmanager_url else None
        out = []
        for w in open_:
            still = None if active is None else _is_active(w, active)
            if still is False:
                out.append((w, self._close(w, now, resolved=True, how="no longer active in Alertmanager")))
            elif now >= w.deadline:
                out.append((w, self._close(w, now, resolved=False if still else None,
                                           how="still active in Alertmanager" if still
                                           else "no signal (no Alertmanager to ask, no resolved notification)")))
        return [(w, ev) for w, ev in out if ev]

    def _active(self) -> tuple[set[str], list[dict[str, str]]] | None:
        try:
            r = httpx.get(f"{self.alertmanager_url}/api/v2/alerts", params={"active": "true", "silenced": "true",
                                                                            "inhibited": "true"},
                          timeout=self.timeout_s)
            r.raise_for_status()
            alerts = r.json()
        except (httpx.HTTPError, ValueError) as e:
            log.warning("verification: Alertmanager %s unreachable (%s)", self.alertmanager_url, e)
            return None
        return ({a.get("fingerprint") for a in alerts}, [a.get("labels") or {} for a in alerts])

    def _close(self, w: Watch, now: float, *, resolved: bool | None, how: str) -> list[CloudEvent]:
        if resolved and now > w.deadline:
            outcome, reason = "ineffective", f"resolved only after its {w.window.get('seconds', 0):.0f}s window ({how})"
        elif resolved:
            outcome, reason = "verified", f"alert resolved {now - w.started:.0f}s after the fix ({how})"
        elif resolved is False:
            outcome, reason = "ineffective", f"alert still firing {w.window.get('seconds', 0):.0f}s after the fix ({how})"
        else:
            outcome, reason = "unverified", how
        closed = self.store.close_watch(w.id, outcome, now)
        if closed is None:
            return []  # closed by someone else in the meantime
        rec = OutcomeRecord(id=w.id, alert_class=w.alert_class, alertname=w.alertname, function=w.function,
                            outcome=outcome, reason=reason, correlation_id=w.correlation_id, target=w.target, ts=now,
                            seconds=round(now - w.started, 3) if outcome == "verified" else None,
                            details={"window": w.window, "suppressed": closed.suppressed})
        return self.ledger.record(rec, Alert.model_validate(w.alert), Decision.model_validate(w.decision))


def _is_active(w: Watch, active: tuple[set[str], list[dict[str, str]]]) -> bool:
    fps, label_sets = active
    return w.fingerprint in fps or (w.alert.get("labels") or {}) in label_sets


def _brief(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in ("status", "message", "target", "dry_run")}
