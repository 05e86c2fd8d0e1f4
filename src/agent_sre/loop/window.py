"""How long a remediated alert may keep firing before its fix counts as ineffective.

A fixed alert does not resolve at once: its expression keeps reading the old samples for its
longest range (``[15m]``, plus any offset), Prometheus notices at its next evaluation, a
``keep_firing_for`` holds it longer, and Alertmanager sends the resolved notification at the
group's next flush. If the fix did not hold, the condition comes back and needs its ``for:``
again before the alert fires anew. So the decay window of an alert is

    window = for + keep_firing_for + longest range + evaluation interval + group interval + grace

with ``for``, ``keep_firing_for``, the expression and the group's interval read from Prometheus's
rules API (``PROMETHEUS_URL``), the group interval from Alertmanager's status (the longest
``group_interval`` in its route tree, ``ALERTMANAGER_URL``, unless
``VERIFY_GROUP_INTERVAL_SECONDS`` says), and ``VERIFY_GRACE_SECONDS`` for scrape and delivery
delays. An alert whose rule cannot be read gets ``VERIFY_DEFAULT_WINDOW_SECONDS``.

Both APIs are read at most once a minute (``ttl_s``); a failure is logged and the last answer
(or the default) is used.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from ..collect.promql import PromQLError, duration_seconds, lookback_seconds

log = logging.getLogger(__name__)

AM_DEFAULT_GROUP_INTERVAL = 300.0  # Alertmanager's own default


@dataclass(frozen=True)
class Window:
    seconds: float
    parts: dict[str, Any] = field(default_factory=dict)  # what it is made of, for the record


@dataclass(frozen=True)
class RuleTiming:
    for_s: float
    keep_firing_s: float
    lookback_s: float
    interval_s: float


class WindowReader:
    def __init__(self, prometheus_url: str | None = None, alertmanager_url: str | None = None, *,
                 default_s: float = 900.0, grace_s: float = 60.0, group_interval_s: float | None = None,
                 ttl_s: float = 60.0, timeout_s: float = 3.0):
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.default_s, self.grace_s, self.fixed_group_s = default_s, grace_s, group_interval_s
        self.ttl_s, self.timeout_s = ttl_s, timeout_s
        self._lock = threading.Lock()
        self._rules: dict[str, RuleTiming] = {}
        self._rules_at = float("-inf")
        self._group_s: float | None = None
        self._group_at = float("-inf")

    def for_alert(self, alertname: str) -> Window:
        rule = self._rule(alertname)
        if rule is None:
            return Window(self.default_s + self.grace_s, {"source": "default", "default_s": self.default_s,
                                                          "grace_s": self.grace_s})
        group = self._group_interval()
        parts = {"source": "rule", "for_s": rule.for_s, "keep_firing_for_s": rule.keep_firing_s,
                 "lookback_s": rule.lookback_s, "evaluation_interval_s": rule.interval_s,
                 "group_interval_s": group, "grace_s": self.grace_s}
        total = rule.for_s + rule.keep_firing_s + rule.lookback_s + rule.interval_s + group + self.grace_s
        return Window(total, parts)

    # ------------------------------------------------------------------ Prometheus rules
    def _rule(self, alertname: str) -> RuleTiming | None:
        if self.prometheus_url is None:
            return None
        with self._lock:
            if time.monotonic() - self._rules_at >= self.ttl_s:
                self._rules_at = time.monotonic()
                try:
                    self._rules = self._read_rules()
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
                    log.warning("decay windows: cannot read rules from %s (%s); keeping what was read before",
                                self.prometheus_url, e)
            return self._rules.get(alertname)

    def _read_rules(self) -> dict[str, RuleTiming]:
        r = httpx.get(f"{self.prometheus_url}/api/v1/rules", params={"type": "alert"}, timeout=self.timeout_s)
        r.raise_for_status()
        out: dict[str, RuleTiming] = {}
        for g in r.json()["data"]["groups"]:
            for rule in g.get("rules", []):
                if rule.get("type") != "alerting":
                    continue
                try:
                    back = lookback_seconds(rule.get("query") or "")
                except PromQLError as e:
                    log.warning("decay window of %s: cannot read its expression (%s); no range counted",
                                rule.get("name"), e)
                    back = 0.0
                t = RuleTiming(float(rule.get("duration") or 0), float(rule.get("keepFiringFor") or 0), back,
                               float(g.get("interval") or 60))
                # Two rules of one name: the slower one decides (the alert may come from either).
                old = out.get(rule["name"])
                if old is None or _total(t) > _total(old):
                    out[rule["name"]] = t
        return out

    # ------------------------------------------------------------------ Alertmanager group interval
    def _group_interval(self) -> float:
        if self.fixed_group_s is not None:
            return self.fixed_group_s
        if self.alertmanager_url is None:
            return AM_DEFAULT_GROUP_INTERVAL
        with self._lock:
            if time.monotonic() - self._group_at >= self.ttl_s:
                self._group_at = time.monotonic()
                try:
                    r = httpx.get(f"{self.alertmanager_url}/api/v2/status", timeout=self.timeout_s)
                    r.raise_for_status()
                    route = (yaml.safe_load(r.json()["config"]["original"]) or {}).get("route") or {}
                    self._group_s = longest_group_interval(route)
                except (httpx.HTTPError, ValueError, KeyError, TypeError, yaml.YAMLError, PromQLError) as e:
                    log.warning("decay windows: cannot read Alertmanager's routes from %s (%s)", self.alertmanager_url, e)
            return self._group_s if self._group_s is not None else AM_DEFAULT_GROUP_INTERVAL


def _total(t: RuleTiming) -> float:
    return t.for_s + t.keep_firing_s + t.lookback_s + t.interval_s


def longest_group_interval(route: dict[str, Any], inherited: float = AM_DEFAULT_GROUP_INTERVAL) -> float:
    """The longest ``group_interval`` in an Alertmanager route tree (children inherit their parent's)."""
    own = duration_seconds(str(route["group_interval"])) if route.get("group_interval") else inherited
    return max([own, *(longest_group_interval(r, own) for r in route.get("routes") or [])])
