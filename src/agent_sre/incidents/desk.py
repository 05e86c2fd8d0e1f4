"""The incident desk: what to do with each alert, given every other alert firing now.

The chain decides each alert on its own; the desk takes those decisions and the incident view, and
says, per alert, one of:

* ``decide``: go on as without incidents (the gate checks it, a trigger or an escalation follows);
* ``defer``: wait until ``until`` and ask again (the settle window, below);
* ``hold``: a symptom of a firing root: no trigger, no escalation, recorded with its root;
* ``escalate``: one escalation for the whole incident, listing its members (a root no function
  fixes: a node, a HelmRepository; or the lead of a bad rollout);
* ``drop``: nothing left to do (a waiting alert resolved meanwhile, or the same alert is already
  waiting).

It only removes or holds actions; it never proposes one. The gate still checks everything that
goes out.

**Ordering.** A trigger cannot be taken back, and a symptom may arrive before its root (another
Alertmanager group, a later evaluation). So a *mutating* action on an alert that could be a
symptom — a pod (its node may be down, its ReplicaSet may be a bad rollout) or a Flux object built
from a source — waits ``settle_s`` after the alert was first seen, and is decided again then, with
whatever arrived meanwhile. Triggers for sources (a GitRepository) and read-only checks do not wait.
Escalations wait too (a root no function fixes, the lead of a rollout), so the one escalation of
an incident lists the members that arrived together; later members are recorded as they come.

**Release.** When a root resolves, each of its symptoms that still fires is decided on its own,
``release_s`` later (time for symptoms that clear with their root to resolve first).

Thread-safe: one lock around the view. Time comes from the caller (``now``), so the same desk runs
under the agent's clock and a benchmark's simulated one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .. import catalog
from ..alerts import Alert
from ..decision import Decision
from .correlate import ClusterFacts, Role, correlate
from .evidence import Facts
from .view import Entry, View, fingerprint

Correlator = Callable[[list[Facts]], dict[str, Role]]


@dataclass
class Step:
    what: str  # decide | defer | hold | escalate | drop
    role: Role | None = None
    reason: str = ""
    until: float | None = None
    incident: str | None = None
    members: list[Alert] = field(default_factory=list)
    root: Alert | None = None  # hold: the root alert
    quiet: bool = False  # nothing new to record (a re-sent alert held again)


@dataclass
class Change:
    """A decision about an alert outside the current batch."""

    what: str  # hold (a waiting alert turned out to be a symptom) | release (its root resolved)
    alert: Alert
    row: int | None  # the inbox row waiting for it (hold), if any
    reason: str
    until: float | None = None
    root: Alert | None = None


def mutates(decision: Decision) -> bool:
    """Any step of the plan writes to the cluster (a later step may, after a read-only check)."""
    for s in decision.plan:
        try:
            if catalog.get(s.lambda_function).mutating:
                return True
        except catalog.UnknownFunction:
            return True
    return False


class Desk:
    def __init__(self, settle_s: float = 10.0, release_s: float = 30.0, *, cluster: ClusterFacts | None = None,
                 correlator: Correlator | None = None, stale_s: float = 6 * 3600.0,
                 needs_nothing: Callable[[Alert], bool] = lambda a: False):
        self.settle_s = settle_s
        self.needs_nothing = needs_nothing
        self.release_s = release_s
        self.cluster = cluster
        self._correlate = correlator or (lambda fs: correlate(fs, cluster))
        self.view = View(stale_s=stale_s)
        self.escalated: set[str] = set()
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}  # fingerprint → the inbox row that waits for it
        self._cached: tuple[tuple[int, int], dict[str, Role]] | None = None

    # ------------------------------------------------------------------ in
    def plan(self, batch: list[tuple[Alert, Decision]], now: float, *, fresh: bool = True,
             rows: list[int | None] | None = None) -> tuple[list[Step], list[Change]]:
        """Steps for ``batch`` (alerts with the chain's decisions), plus changes to other alerts.

        ``fresh``: the alerts were just received (they update the view). Rows taken up again (a
        deferral ran out, a restart) only update the view if it does not know them."""
        rows = rows or [None] * len(batch)
        with self._lock:
            new_occ: dict[int, bool] = {}
            for i, (a, _) in enumerate(batch):
                known = self.view.get(fingerprint(a))
                if fresh or known is None:
                    _, new_occ[i] = self.view.observe(a, now)
            roles = self._roles(now)
            for a, d in batch:
                if a.firing and (e := self.view.get(fingerprint(a))) is not None and e.alert.startsAt == a.startsAt:
                    e.decision = d
            steps = [self._step(a, d, roles, now, rows[i], fresh, new_occ.get(i, False))
                     for i, (a, d) in enumerate(batch)]
            return steps, self._changes(roles, now, skip={fingerprint(a) for a, _ in batch})

    def refresh(self, now: float) -> list[Change]:
        """Look again without new alerts (after ``sync``)."""
        with self._lock:
            return self._changes(self._roles(now), now, skip=set())

    def sync(self, alerts: Iterable[Alert], now: float) -> list[Change]:
        """Alertmanager's list of active alerts: firing ones refresh the view; an alert it no longer
        lists (and that the view had from it) has resolved."""
        with self._lock:
            seen = set()
            for a in alerts:
                if a.firing:
                    seen.add(fingerprint(a))
                    self.view.observe(a, now, from_api=True)
            for e in list(self.view):
                if e.firing and e.from_api and e.fp not in seen:
                    self.view.resolve(e, now)
            return self._changes(self._roles(now), now, skip=set())

    def restore(self, rows: Iterable[tuple[int, Alert, float, bool]]) -> None:
        """Rebuild the view after a restart from the inbox: (row id, alert, received, done)."""
        rows = list(rows)
        with self._lock:
            for row, a, received, done in rows:
                e, _ = self.view.observe(a, received)
                if a.firing:
                    e.state = "decided" if done else "new"
                    if not done:
                        self._rows[e.fp] = row
            if rows:
                now = max(e.last_seen for e in self.view)
                for fp, r in self._roles(now).items():
                    e = self.view.get(fp)
                    if e is not None and e.state == "decided" and r.role == "symptom":
                        e.state, e.root, e.incident, e.reason = "held", r.root, r.incident, r.reason

    def decision_for(self, alert: Alert) -> Decision | None:
        """The chain's decision recorded for this occurrence of ``alert``, if it is waiting here."""
        with self._lock:
            e = self.view.get(fingerprint(alert))
            if e is None or e.decision is None or e.alert.startsAt != alert.startsAt:
                return None
            return e.decision

    def waiting(self, fp: str, row: int) -> None:
        """The agent left inbox row ``row`` pending for the deferred alert ``fp``."""
        with self._lock:
            self._rows[fp] = row

    # ------------------------------------------------------------------ out
    def stats(self, now: float) -> dict[str, Any]:
        """Counts for ``/readyz``: alerts firing, waiting (settle or release), held; incidents escalated;
        seconds until the next waiting alert is due."""
        with self._lock:
            firing = self.view.firing(now)
            waiting = [e for e in firing if e.state in ("deferred", "released")]
            due = min((e.until for e in waiting if e.until is not None), default=None)
            return {"firing": len(firing), "waiting": len(waiting), "held": sum(e.state == "held" for e in firing),
                    "escalated": len(self.escalated), "next_due_s": None if due is None else max(0.0, round(due - now, 3)),
                    "settle_s": self.settle_s}

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """The firing alerts with their roles and what was done (for ``GET /incidents``)."""
        with self._lock:
            roles = self._roles(now)
            out = []
            for e in self.view.firing(now):
                r = roles.get(e.fp)
                out.append({"fingerprint": e.fp, "alertname": e.facts.alertname,
                            "about": str(e.facts.ident) if e.facts.ident else None,
                            "role": r.role if r else None, "root": r.root if r else None,
                            "incident": r.incident if r else None, "reason": r.reason if r else "",
                            "state": e.state, "until": e.until, "first_seen": e.first_seen})
            return out

    # ------------------------------------------------------------------ inside
    def _roles(self, now: float) -> dict[str, Role]:
        """The correlator's roles for the firing alerts; computed again only when the view changed
        (a deferred batch taken up again, a re-sent group, reuse them)."""
        self.view.prune(now)
        firing = self.view.firing(now)
        key = (self.view.version, len(firing))
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._correlate([e.facts for e in firing]))
            # An incident none of whose alerts fires any more is over: when it comes back it is a
            # new one, to be escalated again (and what is remembered stays bounded).
            live = {r.incident or fp for fp, r in self._cached[1].items()}
            self.escalated &= live
        return self._cached[1]

    def _members(self, incident: str, roles: dict[str, Role], now: float) -> list[Alert]:
        return [e.alert for e in self.view.firing(now)
                if (r := roles.get(e.fp)) is not None and (r.incident == incident or e.fp == incident)]

    def _step(self, a: Alert, d: Decision, roles: dict[str, Role], now: float, row: int | None,
              fresh: bool, new_occ: bool) -> Step:
        fp = fingerprint(a)
        e = self.view.get(fp)
        if not a.firing or e is None:
            return Step("decide", reason="resolved")
        if not e.firing:
            return Step("drop", reason="resolved while it waited")
        if fresh and not new_occ and e.state in ("deferred", "released") and self._rows.get(fp) is not None \
                and self._rows.get(fp) != row:
            return Step("drop", reason="already waiting (a re-sent group)")
        r = roles.get(fp) or Role("alone")
        if r.role == "symptom":
            root = self.view.get(r.root) if r.root else None
            quiet = e.state == "held" and e.root == r.root
            e.state, e.root, e.incident, e.reason = "held", r.root, r.incident, r.reason
            self._rows.pop(fp, None)
            return Step("hold", role=r, reason=r.reason, incident=r.incident,
                        root=root.alert if root else None, quiet=quiet)
        if e.state in ("escalated",) and r.incident in self.escalated:
            return Step("hold", role=r, reason=f"incident {r.incident} already escalated", quiet=True)
        wait_until = e.first_seen + self.settle_s
        if r.role == "lead":
            if r.incident in self.escalated:
                e.state = "escalated"
                self._rows.pop(fp, None)
                return Step("hold", role=r, reason=f"incident {r.incident} already escalated", quiet=True)
            if now < wait_until:
                return self._defer(e, r, wait_until, "waits for the rest of the rollout", row)
            return self._escalate(e, r, roles, now)
        # alone or root: the chain's own decision; for what could be a symptom, after the settle
        # window (a trigger or an escalation cannot be taken back; a read-only check can go now)
        if e.facts.dependent and now < wait_until and e.state != "acted" and (not d.action or mutates(d)) \
                and not self.needs_nothing(a):
            return self._defer(e, r, wait_until, "could be a symptom of an alert still to come", row)
        if d.action:
            e.state = "acted"
            self._rows.pop(fp, None)
            return Step("decide", role=r, reason=r.reason)
        if self.needs_nothing(a) or (r.role == "alone" and e.facts.subject in ("other", "volume")):
            # a heartbeat, or an alert about nothing the correlator links (a latency rule, a volume):
            # no incident can form around it, so it is escalated on its own, as without this layer
            e.state = "acted"
            return Step("decide", role=r, reason="decided on its own")
        # Nothing fits: one escalation for the incident, after the settle window so that it lists
        # the members that arrive together. An alert alone is an incident of its own, so when its
        # symptoms arrive later it is not escalated a second time.
        inc = r.incident or fp
        if inc in self.escalated:
            e.state = "escalated"
            return Step("hold", role=r, reason=f"incident {inc} already escalated", quiet=True)
        if now < wait_until:
            return self._defer(e, r, wait_until, "the escalation waits for the incident's members", row)
        return self._escalate(e, r, roles, now)

    def _defer(self, e: Entry, r: Role, until: float, why: str, row: int | None) -> Step:
        e.state, e.until = "deferred", until
        if row is not None:
            self._rows[e.fp] = row
        return Step("defer", role=r, until=until, reason=f"settle window: {why}")

    def _escalate(self, e: Entry, r: Role, roles: dict[str, Role], now: float) -> Step:
        inc = r.incident or e.fp
        self.escalated.add(inc)
        e.state = "escalated"
        self._rows.pop(e.fp, None)
        members = self._members(inc, roles, now)
        return Step("escalate", role=r, incident=inc, members=members,
                    reason=f"{r.reason}; {len(members)} alert(s) in the incident")

    def _changes(self, roles: dict[str, Role], now: float, skip: set[str]) -> list[Change]:
        out: list[Change] = []
        for e in list(self.view):
            if e.fp in skip or not e.firing:
                continue
            r = roles.get(e.fp)
            if r is None:
                continue
            if e.state == "deferred" and r.role == "symptom":
                root = self.view.get(r.root) if r.root else None
                e.state, e.root, e.incident, e.reason = "held", r.root, r.incident, r.reason
                out.append(Change("hold", e.alert, self._rows.pop(e.fp, None), r.reason,
                                  root=root.alert if root else None))
            elif e.state == "held" and r.role != "symptom":
                e.state, e.until, e.root = "released", now + self.release_s, None
                out.append(Change("release", e.alert, None, "its root is no longer firing; decided on its own",
                                  until=e.until))
            elif e.state == "held" and r.role == "symptom" and r.root != e.root:
                e.root, e.incident, e.reason = r.root, r.incident, r.reason
        return out
