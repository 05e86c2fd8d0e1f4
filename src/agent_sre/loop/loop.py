"""``Loop``: the closed loop as the agent sees it — fed by alerts and results, feeding the gate.

    loop = Loop(open_loop_store(state), policy=policy, settings=loop_settings, audit=audit)
    agent = Agent(..., loop=loop)   # the agent binds itself and gives its gate the loop's autonomy

The agent calls, on its own paths (their events are committed with what caused them):

* ``intake(alert)`` for every alert before deciding: a resolved alert verifies its watches and
  withdraws its pending approvals; a firing one inside a decay window is suppressed;
* ``request_approval(...)`` when the gate held a step back in suggest mode for its class;
* ``result(alert, decision, data)`` for every function result: outcomes and watches (verify.py);
* ``delivered(events)`` after delivery: messages to people (notify.py).

People call ``decide`` (approve or reject, from the API, the CLI or the page) and ``pin``. The
loop's thread (``start``) expires approvals and sweeps watches every ``VERIFY_POLL_SECONDS``;
what it finds is sent through ``agent.emit``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from ..alerts import Alert
from ..audit import Audit
from ..ce import CloudEvent
from ..decision import Decision
from ..gate import Verdict
from ..metrics import Metrics
from ..policy import Policy
from ..settings import LoopSettings
from .approvals import Approvals
from .autonomy import Autonomy, alert_class
from .notify import Notifier, is_own_escalation
from .outcomes import Ledger
from .records import Approval, ClassStats, Mode, OutcomeRecord
from .store import LoopStore
from .verify import Verifier, fingerprint_of
from .window import WindowReader

if TYPE_CHECKING:
    from ..agent import Agent

log = logging.getLogger(__name__)


class LoopError(Exception):
    """A request people made that cannot be granted; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Loop:
    def __init__(self, store: LoopStore, *, policy: Policy | None = None, settings: LoopSettings | None = None,
                 metrics: Metrics | None = None, audit: Audit | None = None, window: WindowReader | None = None,
                 notifier: Notifier | None = None, clock: Callable[[], float] = time.time):
        s = settings or LoopSettings()
        self.settings = s
        self.store = store
        self.metrics = metrics or Metrics()
        self.audit_log = audit
        self.clock = clock
        promote = policy.autonomy.promote_after if policy is not None else 3
        self.autonomy = Autonomy(store, promote)
        self.ledger = Ledger(store, self.autonomy, self.metrics, self._audit)
        self.approvals = Approvals(store, self.metrics, self._audit, ttl_s=s.approval_ttl_seconds, link=s.external_url)
        self.window = window or WindowReader(s.prometheus_url, s.alertmanager_url, default_s=s.verify_default_window_seconds,
                                             grace_s=s.verify_grace_seconds,
                                             group_interval_s=s.verify_group_interval_seconds)
        self.verifier = Verifier(store, self.ledger, self.window, self.metrics, self._audit,
                                 alertmanager_url=s.alertmanager_url)
        self.notifier = notifier or Notifier(alertmanager_url=s.escalate_alertmanager_url, slack_url=s.slack_webhook_url,
                                             link=f"{s.external_url.rstrip('/')}/ui" if s.external_url else None,
                                             metrics=self.metrics)
        self.agent: Agent | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bind(self, agent: "Agent") -> None:
        self.agent = agent
        if self.audit_log is None:
            self.audit_log = agent.audit

    def _audit(self, items: list[tuple[str, dict[str, Any], str | None, str | None]]) -> None:
        if self.audit_log is None or not items:
            return
        try:
            self.audit_log.append_many(items)
        except OSError as e:  # the audit must not stop the loop, but it must be loud
            log.error("audit log write failed: %s", e)

    # ------------------------------------------------------------------ the agent's hooks
    def intake(self, alert: Alert) -> tuple[list[CloudEvent], str | None]:
        """(events, why it is suppressed or None) for an alert about to be decided."""
        now = self.clock()
        if is_own_escalation(alert.labels):
            return [], "the agent's own escalation: never acted on"
        if not alert.firing:
            events = self.verifier.resolved(alert, now)
            for a in self.approvals.pending_for(fingerprint_of(alert)):
                events += self.approvals.resolve(a, "withdrawn", by="alertmanager", now=now,
                                                 note="the alert resolved before anyone approved")[1]
            return events, None
        w = self.verifier.suppress(alert, now)
        if w is not None:
            return [], f"suppressed: inside the decay window of {w.function} on {w.target} until {w.deadline:.0f}"
        return [], None

    def request_approval(self, alert: Alert, decision: Decision, step: int, params: dict[str, Any],
                         observed: dict[str, Any] | None, verdict: Verdict) -> list[CloudEvent]:
        fn = decision.plan[step].lambda_function
        return self.approvals.request(alert, decision, step, params, observed,
                                      verdict.alert_class or alert_class(alert, fn), self.clock())

    def result(self, alert: Alert, decision: Decision, data: dict[str, Any]) -> list[CloudEvent]:
        return self.verifier.result(alert, decision, data, self.clock())

    def delivered(self, events: list[CloudEvent]) -> None:
        self.notifier.delivered(events)

    # ------------------------------------------------------------------ people
    def decide(self, approval_id: str, approve: bool, by: str, reason: str | None = None) -> Approval:
        """Approve (the step passes through the gate again and runs if it passes) or reject."""
        agent = self._agent()
        now = self.clock()
        a = self.store.get_approval(approval_id)
        if a is None:
            raise LoopError(404, f"no approval request {approval_id!r}")
        if a.status == "pending" and a.expires <= now:
            self._emit(self.approvals.resolve(a, "expired", by=None, now=now, note="nobody answered in time")[1])
            raise LoopError(409, f"approval request {a.id} expired")
        if a.status != "pending":
            raise LoopError(409, f"approval request {a.id} is {a.status}" + (f" ({a.note})" if a.note else ""))
        alert, decision = Alert.model_validate(a.alert), Decision.model_validate(a.decision)
        if not approve:
            got, events = self.approvals.resolve(a, "rejected", by=by, note=reason or "rejected", now=now)
            if got is None:
                raise LoopError(409, f"approval request {a.id} was answered by someone else")
            rec = OutcomeRecord(id=f"{a.correlation_id}:{a.step}", alert_class=a.alert_class, alertname=a.alertname,
                                function=a.function, outcome="rejected", reason=reason or "rejected by a person",
                                correlation_id=a.correlation_id, ts=now, details={"by": by})
            self._emit(events + self.ledger.record(rec, alert, decision))
            return got
        got, events = self.approvals.resolve(a, "approved", by=by, note=reason, now=now)
        if got is None:
            raise LoopError(409, f"approval request {a.id} was answered by someone else")
        out = agent.run_approved(alert, decision, a.step, a.parameters, a.observed)
        verdict = out.verdict if a.step == 0 else out.verdicts[-1]
        if verdict is not None and not (verdict.allowed or verdict.duplicate):
            refused, more = self.approvals.resolve(got, "refused", by=by, now=now, expect="approved",
                                                   note=f"the gate refused it when approved: {verdict.reason}")
            got, events = refused or got, events + more
        out.events = events + out.events
        agent.emit(out.events, out)
        return got

    def pin(self, key: str, mode: Mode | None, by: str) -> ClassStats:
        stats, events = self.ledger.pin(key, mode, by, self.clock())
        self._agent().emit(events)
        return stats

    def _agent(self) -> "Agent":
        if self.agent is None:
            raise RuntimeError("the loop is not bound to an agent")
        return self.agent

    def _emit(self, events: list[CloudEvent]) -> None:
        if events:
            self._agent().emit(events)

    # ------------------------------------------------------------------ the loop's thread
    def tick(self) -> None:
        """Expire approvals nobody answered; close watches that resolved or ran out of time."""
        now = self.clock()
        for a in self.approvals.due(now):
            self._emit(self.approvals.resolve(a, "expired", by=None, now=now, note="nobody answered in time")[1])
        for w, events in self.verifier.sweep(now):
            self._emit(events)

    def start(self) -> None:
        self.notifier.start()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="loop-verifier", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.notifier.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.verify_poll_seconds):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop's thread must survive a bad row or a locked DB
                log.exception("closed loop sweep failed")

    # ------------------------------------------------------------------ views
    def classes(self) -> list[dict[str, Any]]:
        from .autonomy import mode_of, why

        out = []
        for s in self.store.classes():
            mode, pinned = mode_of(s, self.autonomy.promote_after)
            out.append({**s.model_dump(mode="json"), "mode": mode, "pinned": pinned,
                        "why": why(s, self.autonomy.promote_after)})
        return out
