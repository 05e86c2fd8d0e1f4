"""The incident view: the alerts firing now, by fingerprint, with what was done about each.

Fed by every alert the agent receives (webhook groups re-send their members, so a re-sent alert
only refreshes its entry), by Alertmanager's v2 API when configured (``sync``: the full list of
active alerts, so one that is gone from it has resolved), and at start-up by the inbox's recent
alerts. Not thread-safe on its own: ``Desk`` holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from ..alerts import Alert, label_fingerprint
from .evidence import Facts, facts

# What was done about an entry: new (nothing yet) | deferred (waiting out the settle window) |
# acted (decided on its own, through the gate) | held (a symptom) | escalated (for its incident) |
# released (its root resolved; it waits to be decided on its own) | decided (before a restart: unknown)
STATES = ("new", "deferred", "acted", "held", "escalated", "released", "decided")


@dataclass
class Entry:
    alert: Alert
    facts: Facts
    first_seen: float
    last_seen: float
    firing: bool = True
    resolved_at: float | None = None
    state: str = "new"
    until: float | None = None  # deferred / released: when it is decided
    root: str | None = None  # held: the fingerprint of its root
    incident: str | None = None
    reason: str = ""
    from_api: bool = False  # last seen in Alertmanager's API list (sync may resolve it)
    decision: Any = None  # the chain's decision for this occurrence (reused when a deferral ends)
    history: list[str] = field(default_factory=list)

    @property
    def fp(self) -> str:
        return self.facts.fp


def fingerprint(alert: Alert) -> str:
    return alert.fingerprint or label_fingerprint(alert.labels)


class View:
    def __init__(self, stale_s: float = 6 * 3600.0, keep_resolved_s: float = 3600.0):
        self.entries: dict[str, Entry] = {}
        self.stale_s = stale_s
        self.keep_resolved_s = keep_resolved_s
        self.version = 0  # bumped whenever the set of firing alerts or their facts change

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, fp: str) -> Entry | None:
        return self.entries.get(fp)

    def observe(self, alert: Alert, now: float, from_api: bool = False) -> tuple[Entry, bool]:
        """Record one received alert. Returns its entry and whether it is a new occurrence (first
        time seen, or firing again after it resolved)."""
        fp = fingerprint(alert)
        e = self.entries.get(fp)
        if e is None:
            e = Entry(alert=alert, facts=facts(alert), first_seen=now, last_seen=now, firing=alert.firing,
                      resolved_at=None if alert.firing else now, from_api=from_api)
            self.entries[fp] = e
            self.version += 1
            return e, True
        fresh = False
        if alert.firing:
            if not e.firing or (alert.startsAt and alert.startsAt != e.alert.startsAt):
                # a new occurrence of the same alert: its own decision, its own first_seen
                e.first_seen, e.state, e.until, e.root, e.incident, e.reason = now, "new", None, None, None, ""
                e.decision = None
                e.resolved_at, fresh = None, True
            if fresh or alert.labels != e.alert.labels or alert.annotations != e.alert.annotations:
                e.facts = facts(alert)
                self.version += 1
            e.firing = True
            e.alert = alert
        elif e.firing and (not alert.startsAt or not e.alert.startsAt or alert.startsAt == e.alert.startsAt):
            e.firing, e.resolved_at = False, now
            self.version += 1
        e.last_seen = now
        e.from_api = from_api or (e.from_api and not fresh)
        return e, fresh

    def firing(self, now: float) -> list[Entry]:
        return [e for e in self.entries.values() if e.firing and now - e.last_seen <= self.stale_s]

    def resolve(self, e: Entry, now: float) -> None:
        e.firing, e.resolved_at = False, now
        self.version += 1

    def prune(self, now: float) -> None:
        gone = [fp for fp, e in self.entries.items()
                if (not e.firing and e.resolved_at is not None and now - e.resolved_at > self.keep_resolved_s)
                or (e.firing and now - e.last_seen > self.stale_s)]
        for fp in gone:
            del self.entries[fp]
        if gone:
            self.version += 1
