"""An inline agent with a closed loop on real stores (SQLite, or Redis through the ``redis_url``
fixture), a clock the test moves, and builders for results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent_sre import policy as pol
from agent_sre.agent import Agent
from agent_sre.audit import Audit
from agent_sre.ce import CloudEvent
from agent_sre.chain.chain import Chain
from agent_sre.events import APPROVAL_REQUESTED, APPROVAL_RESOLVED, AUTONOMY_CHANGED, OUTCOME, result_event
from agent_sre.gate import Gate
from agent_sre.loop import Loop
from agent_sre.loop.store import LoopStore, SQLiteLoopStore
from agent_sre.settings import LoopSettings
from agent_sre.state import SQLiteState
from tests.gate.support import FakeModel, Recorder, alert, data
from tests.keys import agent_trust, by_functions

T0 = 1_800_000_000.0
CLASS = "PodCrashLoopBackOff/pod-restart"


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def crash(i: int, starts: str = "2026-11-25T08:00:00Z", status: str = "firing"):
    return alert(namespace="media", pod=f"web-{i}", fingerprint=f"fp{i}", starts=starts, status=status)


def propose(a):
    return "pod-restart", {"name": a.labels["pod"], "namespace": a.labels["namespace"], "type": "pod"}, 0.95


@dataclass
class Rig:
    agent: Agent
    loop: Loop
    broker: Recorder
    clock: Clock
    audit: Audit
    store: LoopStore
    seen: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def of(self, t: str) -> list[CloudEvent]:
        return self.broker.of_type(t)

    def outcomes(self) -> list[dict[str, Any]]:
        return [data(e) for e in self.of(OUTCOME)]

    def requests(self) -> list[dict[str, Any]]:
        return [data(e) for e in self.of(APPROVAL_REQUESTED)]

    def resolutions(self) -> list[dict[str, Any]]:
        return [data(e) for e in self.of(APPROVAL_RESOLVED)]

    def autonomy(self) -> list[dict[str, Any]]:
        return [data(e) for e in self.of(AUTONOMY_CHANGED)]

    def answer(self, trigger: CloudEvent, status: str = "success", **details: Any):
        """The function's result for ``trigger`` (executed, not dry-run unless the trigger says so)."""
        d = data(trigger)
        res = {"function": d["lambda_function"], "status": status, "action": "restart",
               "message": f"{status} on {d['parameters']}", "dry_run": d["dry_run"],
               "target": {"kind": "Pod", **{k: d["parameters"][k] for k in ("namespace", "name")}},
               "details": {"request": {"method": "DELETE", "path": "/api/v1/…", "sent": not d["dry_run"]},
                           **({"verification": details} if details else {})}}
        return self.agent.handle_result(by_functions(result_event(trigger, res)))

    def kinds(self) -> list[str]:
        from agent_sre import audit

        return [r["kind"] for r in audit.read(self.audit.path)]


def make(tmp_path, policy: str = "mode: execute", store: LoopStore | None = None, clock: Clock | None = None,
         **settings: Any) -> Rig:
    p = pol.parse("defaults: {enabled: true}\n" + policy)  # every function on; ``policy`` adds the rest
    clock = clock or Clock()
    store = store or SQLiteLoopStore(tmp_path / "state.db")
    audit = Audit(tmp_path / "audit.jsonl")
    s = LoopSettings(**{"verify_default_window_seconds": 600, "verify_grace_seconds": 0, "approval_ttl_seconds": 3600,
                        **settings})
    loop = Loop(store, policy=p, settings=s, audit=audit, clock=clock)
    rec = Recorder()
    agent = Agent(chain=Chain([FakeModel(propose)]), broker=rec, audit=audit, trust=agent_trust(),
                  gate=Gate(policy=p, state=SQLiteState(tmp_path / "gate.db")), loop=loop)
    return Rig(agent, loop, rec, clock, audit, store)
