"""Shared pieces for the gate and delivery tests: a fake model stage and alert builders."""

from __future__ import annotations

from typing import Any

from agent_sre import ce
from agent_sre.alerts import Alert
from agent_sre.ce import CloudEvent
from agent_sre.decision import Decision, Method, validated
from agent_sre.events import ESCALATION, TRIGGER


class FakeModel:
    """A chain stage standing in for a model: proposes whatever it is told (the model only
    proposes; the gate decides). ``propose(alert) -> (function, params, confidence[, plan])``."""

    name = "fake-model"

    def __init__(self, propose):
        self.propose = propose

    def __call__(self, alert: Alert) -> Decision:
        fn, params, conf, *rest = self.propose(alert)
        return validated(fn, params, method=Method.LLM, reasoning="fake model", confidence=conf,
                         plan=rest[0] if rest else None)


class Recorder:
    """An in-memory broker: records every event, answers nothing."""

    def __init__(self):
        self.sent: list[CloudEvent] = []

    def send(self, event: CloudEvent):
        self.sent.append(event)
        return None

    def of_type(self, t: str) -> list[CloudEvent]:
        return [e for e in self.sent if e.get_type() == t]

    @property
    def triggers(self) -> list[CloudEvent]:
        return self.of_type(TRIGGER)

    @property
    def escalations(self) -> list[CloudEvent]:
        return self.of_type(ESCALATION)


def alert(alertname: str = "PodCrashLoopBackOff", fingerprint: str = "fp1", starts: str = "2026-11-25T08:00:00Z",
          annotations: dict[str, str] | None = None, status: str = "firing", **labels: str) -> Alert:
    return Alert(status=status, labels={"alertname": alertname, **labels}, annotations=annotations or {},
                 startsAt=starts, fingerprint=fingerprint)


def alert_doc(a: Alert) -> dict[str, Any]:
    return a.model_dump(mode="json", exclude_none=True)


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": "k",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "alerts": list(alerts)}


def data(ev: CloudEvent) -> dict[str, Any]:
    return ce.data_of(ev) or {}
