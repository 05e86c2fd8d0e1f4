"""Play generated storms to the incident desk under a simulated clock, and score the outcome.

Used by ``bench/storms.py`` (not a unit test). ``replay`` runs the agent's per-alert path in process:
the chain's decisions (computed once per distinct alert and cached), the desk's steps, and the real
``Gate`` (a fresh SQLite state per storm, the packaged policy) for every ``decide`` step. Time is
simulated: Alertmanager's deliveries, settle windows and releases happen at their simulated
instants, so a sweep over settle windows takes seconds. ``score`` compares what was sent with the
storm's ideal outcome; the HTTP benchmark scores what reached its sink with the same function.
"""

from __future__ import annotations

import heapq
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from agent_sre.agent import needs_nothing
from agent_sre.alerts import Alert, parse_payload
from agent_sre.decision import Decision
from agent_sre.gate import Gate
from agent_sre.incidents.desk import Desk
from agent_sre.incidents.scenarios import Scenario, deliveries
from agent_sre.state import SQLiteState


@dataclass
class Sent:
    """What left the agent for one storm."""

    triggers: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # function, params, fingerprint
    escalations: list[tuple[str, str]] = field(default_factory=list)  # fingerprint, code
    held: dict[str, str] = field(default_factory=dict)  # fingerprint → root fingerprint
    latency: list[float] = field(default_factory=list)  # seconds from delivery to trigger, control storms
    storm_opened: bool = False


def _key(fn: str, params: dict[str, Any]) -> tuple[str, tuple]:
    return fn, tuple(sorted((k, str(v)) for k, v in params.items()))


@dataclass
class Score:
    ideal: bool
    triggers: int
    ideal_triggers: int
    excess: int
    missing: int
    forbidden: int
    restarts_on_down_node: int
    escalations: int
    expected_escalations: int
    held_unrelated: int
    storm_opened: bool

    def row(self) -> dict[str, Any]:
        return self.__dict__.copy()


def score(scn: Scenario, sent: Sent) -> Score:
    truth = scn.by_fp()
    want = Counter(_key(*t) for t in scn.ideal_triggers)
    got = Counter(_key(fn, p) for fn, p, _ in sent.triggers)
    excess = sum((got - want).values())
    missing = sum((want - got).values())
    forbidden = down = 0
    for fn, _, fp in sent.triggers:
        t = truth.get(fp)
        if t is None:
            continue
        if t.on_down_node and fn == "pod-restart":
            down += 1
        if t.truth in ("symptom", "lead") or (t.on_down_node and fn == "pod-restart"):
            forbidden += 1
    held_unrelated = sum(1 for fp in sent.held if truth.get(fp) is not None and truth[fp].truth == "unrelated")
    ok = excess == 0 and missing == 0 and forbidden == 0 and len(sent.escalations) == scn.escalations \
        and held_unrelated == 0
    return Score(ok, len(sent.triggers), len(scn.ideal_triggers), excess, missing, forbidden, down,
                 len(sent.escalations), scn.escalations, held_unrelated, sent.storm_opened)


class DecisionCache:
    """The chain's decision per distinct alert (labels + annotations + status): the chain is a
    pure function of the alert, so a replay asks it once."""

    def __init__(self, chain: Any):
        self.chain = chain
        self.memo: dict[str, Decision] = {}

    def __call__(self, alerts: list[Alert]) -> list[Decision]:
        keys = [a.model_dump_json(include={"status", "labels", "annotations"}) for a in alerts]
        todo = [(k, a) for k, a in zip(keys, alerts) if k not in self.memo]
        if todo:
            uniq = dict(todo)
            for k, d in zip(uniq, self.chain.decide_many(list(uniq.values()))):
                self.memo[k] = d
        return [self.memo[k] for k in keys]


def replay(scn: Scenario, decide: Callable[[list[Alert]], list[Decision]], make_desk: Callable[[], Desk] | None,
           *, group_wait: float = 1.0, group_interval: float = 2.0, time_scale: float = 1.0, policy: Any = None,
           log: list[tuple[float, str, str, Any]] | None = None) -> Sent:
    """Play ``scn``; ``make_desk`` None: no incident layer (each alert on its own, as before).
    ``log`` receives (time, fingerprint, what, detail) for every delivery and step (the picture)."""
    sent = Sent()
    note = log.append if log is not None else (lambda item: None)
    desk = make_desk() if make_desk else None
    with tempfile.TemporaryDirectory() as tmp:
        gate = Gate(policy=policy, state=SQLiteState(Path(tmp) / "state.db"))
        queue: list[tuple[float, int, str, Any]] = []
        n = 0
        for d in deliveries(scn, group_wait, group_interval, time_scale=time_scale):
            heapq.heappush(queue, (d.at, n, "deliver", parse_payload(d.payload)))
            n += 1
        while queue:
            now, _, what, alerts = heapq.heappop(queue)
            decisions = decide(alerts)
            if what == "deliver":
                for a in alerts:
                    note((now, a.fingerprint or "", "delivered", None))
            if desk is None:
                for a, d in zip(alerts, decisions):
                    _act(gate, a, d, sent, scn, now, note, time_scale)
                continue
            steps, changes = desk.plan(list(zip(alerts, decisions)), now, fresh=what == "deliver")
            for a, d, st in zip(alerts, decisions, steps):
                if st.what == "decide":
                    _act(gate, a, d, sent, scn, now, note, time_scale)
                elif st.what == "defer":
                    note((now, a.fingerprint or "", "defer", st.until))
                    heapq.heappush(queue, (st.until, n, "wake", [a]))
                    n += 1
                elif st.what == "hold":
                    sent.held[a.fingerprint or ""] = st.role.root if st.role and st.role.root else ""
                    if not st.quiet:
                        note((now, a.fingerprint or "", "hold", st.reason))
                elif st.what == "escalate":
                    sent.escalations.append((a.fingerprint or "", f"incident:{st.incident}"))
                    note((now, a.fingerprint or "", "escalate", [m.fingerprint for m in st.members]))
            for c in changes:
                if c.what == "hold":
                    sent.held[c.alert.fingerprint or ""] = ""
                    note((now, c.alert.fingerprint or "", "hold", c.reason))
                elif c.what == "release":
                    sent.held.pop(c.alert.fingerprint or "", None)
                    heapq.heappush(queue, (c.until, n, "wake", [c.alert]))
                    n += 1
    return sent


def _act(gate: Gate, a: Alert, d: Decision, sent: Sent, scn: Scenario, now: float,
         note: Callable[[tuple[float, str, str, Any]], None], time_scale: float = 1.0) -> None:
    if not a.firing:
        return
    if not d.action:
        if not needs_nothing(a):
            sent.escalations.append((a.fingerprint or "", "no_action"))
            note((now, a.fingerprint or "", "escalate", None))
        return
    v = gate.check(a, d)
    if v.duplicate:
        return
    if not v.allowed:
        sent.storm_opened |= v.code == "storm"
        sent.escalations.append((a.fingerprint or "", v.code))
        note((now, a.fingerprint or "", "escalate", v.code))
        return
    sent.triggers.append((d.lambda_function or "", dict(d.parameters), a.fingerprint or ""))
    note((now, a.fingerprint or "", "trigger", d.lambda_function))
    first = min((x.at * time_scale for x in scn.alerts if x.fingerprint == a.fingerprint), default=now)
    sent.latency.append(now - first)
