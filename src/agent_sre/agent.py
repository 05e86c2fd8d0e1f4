"""The pipeline: alerts → decisions → gate → trigger events → results (→ next plan step)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from . import ce
from .alerts import Alert
from .broker import Broker, BrokerError, InProcessBroker
from .ce import CloudEvent
from .chain.chain import Chain
from .decision import Decision, InvalidProposal, Method
from .events import RESULT_TYPES, escalation_event, trigger_event, correlation_id
from .gate import Gate, Verdict

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


class Agent:
    def __init__(self, chain: Chain | None = None, broker: Broker | None = None, gate: Gate | None = None,
                 dry_run: bool = True):
        self.chain = chain or Chain()
        self.broker = broker or InProcessBroker()
        self.gate = gate or Gate(dry_run=dry_run)
        # correlation id → (alert, decision), to run the next plan step when a result arrives.
        self._open: dict[str, tuple[Alert, Decision]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ alerts in
    def handle_alerts(self, alerts: list[Alert]) -> list[Outcome]:
        decisions = self.chain.decide_many(alerts)
        return [self._act(a, d) for a, d in zip(alerts, decisions)]

    def _act(self, alert: Alert, decision: Decision) -> Outcome:
        out = Outcome(alert, decision)
        if not decision.action:
            if alert.firing and decision.method is Method.NONE:
                self._emit(out, escalation_event(alert, decision, decision.reasoning))
            return out
        verdict = self.gate.check(alert, decision)
        out.verdict = verdict
        if not verdict.allowed:
            self._emit(out, escalation_event(alert, decision, f"gate refused: {verdict.reason}"))
            return out
        if verdict.mode == "suggest":
            return out
        with self._lock:
            self._open[correlation_id(alert)] = (alert, decision)
        self._send_step(out, 0, None, dry_run=verdict.mode == "dry_run")
        return out

    def _send_step(self, out: Outcome, index: int, params: dict[str, Any] | None, dry_run: bool) -> None:
        ev = trigger_event(out.alert, out.decision, step_index=index, parameters=params, dry_run=dry_run)
        reply = self._emit(out, ev)
        if reply is not None and reply.get_type() in RESULT_TYPES:
            self._on_result(out, reply)

    def _emit(self, out: Outcome, event: CloudEvent) -> CloudEvent | None:
        out.events.append(event)
        try:
            return self.broker.send(event)
        except BrokerError as e:
            out.error = str(e)
            log.error("delivery of %s failed: %s", event.get_id(), e)
            return None

    # ------------------------------------------------------------------ results in
    def handle_result(self, event: CloudEvent) -> Outcome | None:
        """A function's result event (from the broker): record it and run the next step if due."""
        data = ce.data_of(event) or {}
        corr = data.get("correlation_id") or event.get_attributes().get("correlationid")
        with self._lock:
            found = self._open.get(corr)
        if found is None:
            log.info("result for unknown correlation id %s", corr)
            return None
        out = Outcome(*found)
        self._on_result(out, event)
        return out

    def _on_result(self, out: Outcome, event: CloudEvent) -> None:
        data = ce.data_of(event) or {}
        out.results.append(data)
        nxt = self._next_step(out.decision, data)
        if nxt is None:
            return
        index, params = nxt
        verdict = self.gate.check(out.alert, out.decision, step_index=index, parameters=params)
        if not verdict.allowed:
            self._emit(out, escalation_event(out.alert, out.decision, f"gate refused step {index}: {verdict.reason}"))
            return
        if verdict.mode != "suggest":
            self._send_step(out, index, params, dry_run=verdict.mode == "dry_run" or bool(data.get("dry_run")))

    @staticmethod
    def _next_step(decision: Decision, result: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The step after the one ``result`` answers, if the result calls for it."""
        fn = result.get("action") or result.get("lambda_function")
        idx = next((i for i, s in enumerate(decision.plan) if s.lambda_function == fn), None)
        if idx is None or idx + 1 >= len(decision.plan):
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
