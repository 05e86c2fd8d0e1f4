"""The pipeline: alerts → decisions → gate → trigger events → results (→ next plan step).

Two ways to run it:

* without an outbox (the embedded demo, unit tests): events are sent inline and replies handled
  at once; open plans are kept in memory;
* with an ``Outbox`` (``agent-sre serve``): alerts are committed to the inbox before anything
  else, their events are enqueued in the same transaction that marks them done, and a background
  ``Worker`` delivers them with retries; plans and results are durable, so a restart (even after
  kill -9) resumes where it stopped and never sends a second event id.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from . import ce
from .alerts import Alert
from .audit import Audit
from .broker import Broker, BrokerError, InProcessBroker
from .ce import CloudEvent
from .chain.chain import Chain
from .decision import Decision, InvalidProposal
from .events import RESULT_TYPES, correlation_id, escalation_event, trigger_event
from .gate import Gate, Verdict
from .outbox import Outbox, Retry, Worker

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """Everything that happened to one alert, for the HTTP answer, the CLI and the demo."""

    alert: Alert
    decision: Decision
    verdict: Verdict | None = None
    events: list[CloudEvent] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)  # later plan steps
    opened: bool = False  # a plan that waits for results was opened

    def summary(self) -> dict[str, Any]:
        return {
            "alertname": self.alert.name,
            "status": self.alert.status,
            "correlation_id": correlation_id(self.alert),
            "decision": self.decision.model_dump(mode="json"),
            "verdict": self.verdict.model_dump(mode="json") if self.verdict else None,
            "events": [{"id": e.get_id(), "type": e.get_type(),
                        "lambdafunction": e.get_attributes().get("lambdafunction")} for e in self.events],
            "results": self.results,
            "error": self.error,
        }


def needs_nothing(alert: Alert) -> bool:
    """The runbook explicitly maps this alert to an empty plan."""
    from . import runbook

    try:
        entry = runbook.load().entry_for(alert.name)
    except (OSError, ValueError):
        return False
    case = next((c for c in entry.when if c.matches(alert.labels)), None) if entry else None
    return case is not None and not case.plan


class Agent:
    def __init__(self, chain: Chain | None = None, broker: Broker | None = None, gate: Gate | None = None,
                 dry_run: bool = True, *, outbox: Outbox | None = None, audit: Audit | None = None,
                 retry: Retry | None = None, delivery_concurrency: int = 4, poll_s: float = 0.5):
        self.chain = chain or Chain()
        self.broker = broker or InProcessBroker()
        self.gate = gate or Gate(dry_run=dry_run)
        self.outbox = outbox
        self.audit = audit
        # correlation id → (alert, decision), to run the next plan step when a result arrives
        # (in memory without an outbox; the outbox's ``plans`` table otherwise).
        self._open: dict[str, tuple[Alert, Decision]] = {}
        self._lock = threading.Lock()
        self.worker: Worker | None = None
        if outbox is not None:
            self.worker = Worker(outbox, send=self.broker.send, on_reply=self._on_reply,
                                 resume=self._resume, on_dead=self._on_dead, on_delivered=self._on_delivered,
                                 retry=retry, concurrency=delivery_concurrency, poll_s=poll_s)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Agent":
        for stage in self.chain.stages:
            warm = getattr(stage, "warm", None)
            if warm is not None:
                warm()
        if self.worker is not None:
            self.worker.start()
        return self

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    # ------------------------------------------------------------------ audit
    def _record(self, items: list[tuple[str, dict[str, Any], str | None, str | None]]) -> None:
        if self.audit is None or not items:
            return
        try:
            self.audit.append_many(items)
        except OSError as e:  # the audit must not stop remediation, but it must be loud
            log.error("audit log write failed: %s", e)

    @staticmethod
    def _ev_doc(ev: CloudEvent) -> dict[str, Any]:
        a = ev.get_attributes()
        data = ce.data_of(ev) or {}
        doc = {"id": ev.get_id(), "type": ev.get_type(), "lambdafunction": a.get("lambdafunction")}
        for k in ("parameters", "step", "dry_run", "reason", "code"):
            if k in data:
                doc[k] = data[k]
        return doc

    # ------------------------------------------------------------------ alerts in
    def handle_alerts(self, alerts: list[Alert]) -> list[Outcome]:
        if self.outbox is None:
            decisions = self.chain.decide_many(alerts)
            return [self._act(a, d) for a, d in zip(alerts, decisions)]
        ids = self.outbox.accept(alerts)  # committed: from here on the alerts cannot be lost
        self._record([("alert", {"inbox_id": i, "alert": a.model_dump(mode="json", exclude_none=True)},
                       correlation_id(a), a.name) for i, a in zip(ids, alerts)])
        return self._process(ids, alerts)

    def _process(self, ids: list[int], alerts: list[Alert]) -> list[Outcome]:
        assert self.outbox is not None
        try:
            decisions = self.chain.decide_many(alerts)
            outs = [self._act(a, d) for a, d in zip(alerts, decisions)]
            plans = [(correlation_id(o.alert), o.alert.model_dump_json(exclude_none=True),
                      o.decision.model_dump_json()) for o in outs if o.opened]
            fresh = set(self.outbox.finish(ids, [e for o in outs for e in o.events], plans))
        except Exception as e:  # noqa: BLE001 - left pending: the worker retries them
            log.exception("processing %d alerts failed; they stay in the inbox", len(alerts))
            for i in ids:
                try:
                    self.outbox.fail_alert(i, f"{type(e).__name__}: {e}")
                except Exception:  # noqa: BLE001
                    pass
            return [Outcome(a, Decision(reasoning="processing failed; will be retried"), error=str(e))
                    for a in alerts]
        rec = []
        for o in outs:
            corr, name = correlation_id(o.alert), o.alert.name
            rec.append(("decision", {"decision": o.decision.model_dump(mode="json"),
                                     "verdict": o.verdict.model_dump(mode="json") if o.verdict else None},
                        corr, name))
            rec += [("event", self._ev_doc(e), corr, name) for e in o.events if e.get_id() in fresh]
        self._record(rec)
        if self.worker is not None:
            self.worker.kick()
        return outs

    def _resume(self, rows: list[tuple[int, str]]) -> None:
        """Alerts accepted by a process that died before deciding: decide them now."""
        alerts, ids = [], []
        for i, doc in rows:
            try:
                alerts.append(Alert.model_validate_json(doc))
                ids.append(i)
            except ValueError as e:
                self.outbox.fail_alert(i, f"stored alert unreadable: {e}", max_attempts=1)  # type: ignore[union-attr]
        if alerts:
            log.info("resuming %d accepted alerts", len(alerts))
            self._process(ids, alerts)

    def _act(self, alert: Alert, decision: Decision) -> Outcome:
        out = Outcome(alert, decision)
        if not decision.action:
            # Nothing in the catalog fits: a person should look, unless the runbook says this alert
            # needs nothing (a heartbeat such as Watchdog).
            if alert.firing and not needs_nothing(alert):
                self._emit(out, escalation_event(alert, decision, decision.reasoning or "no remediation fits",
                                            "no_action"))
            return out
        verdict = self.gate.check(alert, decision)
        out.verdict = verdict
        if verdict.duplicate:
            self._replay(out, verdict)
            return out
        if not verdict.allowed:
            self._emit(out, escalation_event(alert, decision, f"gate refused: {verdict.reason}", f"0:{verdict.code}"))
            return out
        if verdict.mode == "suggest":
            # Decide and report, never trigger: the suggestion goes out as an escalation.
            self._emit(out, escalation_event(alert, decision, f"suggest-only: would run {decision.lambda_function}"
                                        f"({decision.parameters})", "0:suggest"))
            return out
        if len(decision.plan) > 1:
            out.opened = True
            if self.outbox is None:
                with self._lock:
                    self._open[correlation_id(alert)] = (alert, decision)
        self._send_step(out, 0, None, dry_run=verdict.mode == "dry_run")
        return out

    def _replay(self, out: Outcome, verdict: Verdict) -> None:
        """A duplicate of an occurrence whose step 0 was allowed. With an outbox, enqueue the same
        trigger again: a no-op when it is there already, and the repair when a crash came between
        the gate's reservation and the outbox commit. Only if the decision is the one reserved."""
        prior = verdict.prior or {}
        step = out.decision.plan[0]
        if (self.outbox is None or prior.get("function") != step.lambda_function
                or prior.get("params") != step.parameters or prior.get("mode") == "suggest"):
            return
        if len(out.decision.plan) > 1:
            out.opened = True
        out.events.append(trigger_event(out.alert, out.decision, step_index=0, dry_run=prior.get("mode") != "execute"))

    def _send_step(self, out: Outcome, index: int, params: dict[str, Any] | None, dry_run: bool) -> None:
        ev = trigger_event(out.alert, out.decision, step_index=index, parameters=params, dry_run=dry_run)
        reply = self._emit(out, ev)
        if reply is not None and reply.get_type() in RESULT_TYPES:
            self._on_result(out, reply)

    def _emit(self, out: Outcome, event: CloudEvent) -> CloudEvent | None:
        """Without an outbox: send now. With one: collect; the caller commits, the worker sends."""
        out.events.append(event)
        if self.outbox is not None:
            return None
        try:
            return self.broker.send(event)
        except BrokerError as e:
            out.error = str(e)
            log.error("delivery of %s failed: %s", event.get_id(), e)
            return None

    # ------------------------------------------------------------------ worker callbacks
    def _on_reply(self, reply: CloudEvent) -> None:
        if reply.get_type() in RESULT_TYPES:
            self.handle_result(reply)

    def _on_dead(self, event: CloudEvent, error: str, attempts: int) -> None:
        data = ce.data_of(event) or {}
        self._record([("dead_letter", {**self._ev_doc(event), "error": error, "attempts": attempts},
                       data.get("correlation_id"), event.get_attributes().get("subject"))])

    def _on_delivered(self, done: list[tuple[CloudEvent, int]]) -> None:
        self._record([("delivery", {"id": ev.get_id(), "type": ev.get_type(), "attempts": n},
                       ev.get_attributes().get("correlationid"), ev.get_attributes().get("subject"))
                      for ev, n in done])

    # ------------------------------------------------------------------ results in
    def _plan(self, corr: str | None) -> tuple[Alert, Decision] | None:
        if not corr:
            return None
        if self.outbox is not None:
            row = self.outbox.get_plan(corr)
            if row is None:
                return None
            return Alert.model_validate_json(row[0]), Decision.model_validate_json(row[1])
        with self._lock:
            return self._open.get(corr)

    def handle_result(self, event: CloudEvent) -> Outcome | None:
        """A function's result event (from the broker): record it and run the next step if due."""
        data = ce.data_of(event) or {}
        if not isinstance(data, dict):
            data = {}
        corr = data.get("correlation_id") or event.get_attributes().get("correlationid")
        found = self._plan(corr)
        if found is None:
            log.info("result for unknown correlation id %s", corr)
            self._record([("result", {"id": event.get_id(), "type": event.get_type(), "known": False,
                                      "status": data.get("status")}, corr, None)])
            return None
        out = Outcome(*found)
        if self.outbox is not None and self.outbox.has_result(event.get_id()):
            out.results.append(data)
            return out  # delivered twice: handled the first time
        self._on_result(out, event)
        if self.outbox is not None:
            fresh = out.events
            if self.outbox.record_result(event.get_id(), corr, data, fresh):
                self._record([("result", {"id": event.get_id(), "type": event.get_type(), **data}, corr,
                               out.alert.name)] + [("event", self._ev_doc(e), corr, out.alert.name) for e in fresh])
                if self.worker is not None and fresh:
                    self.worker.kick()
        return out

    def _on_result(self, out: Outcome, event: CloudEvent) -> None:
        data = ce.data_of(event) or {}
        out.results.append(data)
        if data.get("status") == "error":
            tgt = data.get("target") if isinstance(data.get("target"), dict) else {}
            self.gate.record_failure(tgt or out.decision.parameters)
        nxt = self._next_step(out.decision, data)
        if nxt is None:
            return
        index, params = nxt
        verdict = self.gate.check(out.alert, out.decision, step_index=index, parameters=params,
                                  observed=data, previous=out.decision.plan[index - 1].parameters)
        out.verdicts.append(verdict)
        if verdict.duplicate:
            prior = verdict.prior or {}
            if self.outbox is not None and prior.get("function") == out.decision.plan[index].lambda_function \
                    and prior.get("params") == params and prior.get("mode") != "suggest":
                out.events.append(trigger_event(out.alert, out.decision, step_index=index, parameters=params,
                                                dry_run=prior.get("mode") != "execute"))
            return
        if not verdict.allowed:
            self._emit(out, escalation_event(out.alert, out.decision, f"gate refused step {index}: {verdict.reason}",
                                        f"{index}:{verdict.code}"))
            return
        if verdict.mode == "suggest":
            self._emit(out, escalation_event(out.alert, out.decision, f"suggest-only: would run step {index} "
                                        f"{out.decision.plan[index].lambda_function}({params})", f"{index}:suggest"))
            return
        self._send_step(out, index, params, dry_run=verdict.mode == "dry_run" or bool(data.get("dry_run")))

    @staticmethod
    def _next_step(decision: Decision, result: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The step after the one ``result`` answers, if the result calls for it."""
        fns = [result.get(k) for k in ("function", "lambda_function", "action")]
        idx = next((i for i, s in enumerate(decision.plan) if s.lambda_function in fns), None)
        if idx is None or idx + 1 >= len(decision.plan):
            return None
        if result.get("status") not in ("success", "noop"):
            return None
        step = decision.plan[idx + 1]
        details = result.get("details") or {}
        if step.when == "unhealthy" and details.get("healthy", True):
            return None
        params = dict(step.parameters)
        if step.from_previous:
            targets = details.get("unhealthy") or []
            if not targets:
                return None
            first = targets[0]
            params.update({k: first.get(k) for k in step.from_previous if first.get(k)})
        try:
            from .catalog import validate_parameters

            params = validate_parameters(step.lambda_function, params)
        except (ValueError, InvalidProposal):
            return None
        return idx + 1, params

