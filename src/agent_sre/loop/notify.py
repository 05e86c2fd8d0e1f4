"""Messages to people: escalations as Alertmanager alerts, and a Slack-compatible webhook.

The broker carries escalations and approval requests as CloudEvents, which reach no one by
themselves. Once the outbox has delivered one, ``Notifier.delivered`` also

* posts each escalation to Alertmanager's v2 API (``ESCALATE_ALERTMANAGER_URL``) as an alert
  ``AgentSREEscalation`` carrying the original alert's labels (so the routes people already
  have page the right person), ``agent_sre="escalation"`` (the agent never acts on these) and
  ``escalated_alertname``, the reason as its summary, and a link to the agent's page;
* posts escalations, approval requests and outcomes to a Slack-compatible incoming webhook
  (``SLACK_WEBHOOK_URL``) as ``{"text": ..., "blocks": [...]}``.

Sending happens on one background thread, so a slow receiver never holds up delivery; a failure
is logged and counted (``agent_sre_notifications_total{result="error"}``), not retried: the
event itself is in the audit log and on the broker.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from .. import ce
from ..ce import CloudEvent
from ..events import APPROVAL_REQUESTED, ESCALATION, OUTCOME, escalation_reason
from ..metrics import Metrics

log = logging.getLogger(__name__)

ESCALATION_ALERT = "AgentSREEscalation"
OWN_LABEL = "agent_sre"  # = "escalation" on the alerts this module posts
HOLD = timedelta(hours=1)  # an escalation alert stays active this long unless posted again


def is_own_escalation(labels: dict[str, str]) -> bool:
    return labels.get(OWN_LABEL) == "escalation"


def escalation_alert(data: dict[str, Any], link: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The Alertmanager v2 alert for an escalation event's data."""
    now = now or datetime.now(timezone.utc)
    orig = dict((data.get("alert") or {}).get("labels") or {})
    name = orig.pop("alertname", "unknown")
    labels = {**{k: str(v) for k, v in orig.items()}, "alertname": ESCALATION_ALERT, OWN_LABEL: "escalation",
              "escalated_alertname": name, "escalation_reason": escalation_reason(data.get("code") or "")}
    decision = data.get("decision") or {}
    annotations = {"summary": f"{name}: {data.get('reason') or 'escalated'}",
                   "description": (decision.get("reasoning") or "")[:1000],
                   "correlation_id": str(data.get("correlation_id") or "")}
    doc = {"labels": labels, "annotations": annotations, "startsAt": now.isoformat(),
           "endsAt": (now + HOLD).isoformat()}
    if link:
        doc["generatorURL"] = link
    return doc


def slack_message(event: CloudEvent, link: str | None) -> dict[str, Any] | None:
    data = ce.data_of(event) or {}
    t = event.get_type()
    if t == ESCALATION:
        name = ((data.get("alert") or {}).get("labels") or {}).get("alertname", "?")
        text = f":rotating_light: agent-sre escalates {name}: {data.get('reason')}"
    elif t == APPROVAL_REQUESTED:
        text = (f":raised_hand: agent-sre asks to run {data.get('function')} {data.get('parameters')} for "
                f"{data.get('alertname')} ({data.get('alert_class')}). Why: {data.get('reasoning') or '-'} "
                f"Approve: `agent-sre approve {data.get('id')}`")
    elif t == OUTCOME:
        text = (f"agent-sre: {data.get('function')} on {data.get('target')} for {data.get('alertname')} was "
                f"*{data.get('outcome')}*: {data.get('reason')}")
    else:
        return None
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|open agent-sre>"}]})
    return {"text": text, "blocks": blocks}


class Notifier:
    def __init__(self, *, alertmanager_url: str | None = None, slack_url: str | None = None,
                 link: str | None = None, metrics: Metrics | None = None, timeout_s: float = 5.0):
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.slack_url = slack_url
        self.link = link
        self.metrics = metrics
        self.timeout_s = timeout_s
        self._q: queue.Queue[tuple[str, str, Any] | None] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return bool(self.alertmanager_url or self.slack_url)

    def start(self) -> None:
        if self.active and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="loop-notifier", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout)
            self._thread = None

    def delivered(self, events: list[CloudEvent]) -> None:
        """Queue the messages these delivered events call for."""
        if not self.active:
            return
        for ev in events:
            if ev.get_type() == ESCALATION and self.alertmanager_url:
                self._put("alertmanager", f"{self.alertmanager_url}/api/v2/alerts",
                          [escalation_alert(ce.data_of(ev) or {}, self.link)])
            if self.slack_url:
                msg = slack_message(ev, self.link)
                if msg is not None:
                    self._put("slack", self.slack_url, msg)

    def _put(self, sink: str, url: str, body: Any) -> None:
        try:
            self._q.put_nowait((sink, url, body))
        except queue.Full:
            log.error("notification to %s dropped: %d waiting", sink, self._q.qsize())
            self._count(sink, "dropped")
        if self._thread is None:  # not started (tests, embedded): send now
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._send(*item)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while (item := self._q.get()) is not None:
                self._send(*item, client=client)

    def _send(self, sink: str, url: str, body: Any, client: httpx.Client | None = None) -> None:
        try:
            r = (client or httpx).post(url, json=body, timeout=self.timeout_s)
            if r.status_code >= 300:
                raise httpx.HTTPStatusError(f"{r.status_code} {r.text[:200]}", request=r.request, response=r)
            self._count(sink, "sent")
        except httpx.HTTPError as e:
            log.error("notification to %s (%s) failed: %s", sink, url, e)
            self._count(sink, "error")

    def _count(self, sink: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(sink, result).inc()
