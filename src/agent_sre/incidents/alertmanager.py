"""Alertmanager's own list of active alerts (``GET /api/v2/alerts``), read every few seconds.

Webhooks tell the agent about the groups it is routed; the API tells it about every active alert,
including a root whose group is routed elsewhere or not flushed yet, and an alert that resolved
while its resolved notification is still waiting for its group's next tick. ``AlertmanagerFeed``
hands each list to a callback (the agent's ``sync_incidents``); a failed read is logged and
skipped, never fatal: the webhooks alone still work.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import httpx

from ..alerts import Alert

log = logging.getLogger(__name__)


def parse_alerts(doc: Any) -> list[Alert]:
    """v2 ``gettableAlerts`` → firing ``Alert``s (active or suppressed: silenced and inhibited alerts
    still fire, and may be the root of what is routed)."""
    if not isinstance(doc, list):
        raise ValueError(f"expected a list of alerts, got {type(doc).__name__}")
    out = []
    for a in doc:
        if not isinstance(a, dict) or not isinstance(a.get("labels"), dict) or "alertname" not in a["labels"]:
            continue
        state = (a.get("status") or {}).get("state", "active")
        if state not in ("active", "suppressed"):
            continue
        out.append(Alert(status="firing", labels=a["labels"], annotations=a.get("annotations") or {},
                         startsAt=a.get("startsAt"), fingerprint=a.get("fingerprint"),
                         generatorURL=a.get("generatorURL")))
    return out


def fetch(url: str, timeout_s: float = 5.0) -> list[Alert]:
    r = httpx.get(url.rstrip("/") + "/api/v2/alerts", params={"active": "true"}, timeout=timeout_s)
    r.raise_for_status()
    return parse_alerts(r.json())


class AlertmanagerFeed:
    def __init__(self, url: str, interval_s: float, on_alerts: Callable[[list[Alert]], None]):
        self.url = url
        self.interval_s = interval_s
        self.on_alerts = on_alerts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "AlertmanagerFeed":
        self._thread = threading.Thread(target=self._run, name="alertmanager-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def poll_once(self) -> bool:
        try:
            alerts = fetch(self.url, timeout_s=min(5.0, self.interval_s))
        except (httpx.HTTPError, ValueError) as e:
            log.warning("reading %s/api/v2/alerts failed: %s", self.url, e)
            return False
        self.on_alerts(alerts)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval_s)
