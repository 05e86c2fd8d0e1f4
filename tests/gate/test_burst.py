"""A burst of alerts never buys more remediations than the budget: in-process at scale, then over HTTP."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from agent_sre import ce
from agent_sre import policy as pol
from agent_sre.agent import Agent
from agent_sre.audit import Audit, verify
from agent_sre.broker import HTTPBroker
from agent_sre.chain.chain import Chain
from agent_sre.events import TRIGGER
from agent_sre.gate import Gate
from agent_sre.outbox import Outbox
from agent_sre.server import create_app
from agent_sre.state import SQLiteState
from tests.gate.support import FakeModel, Recorder, alert, alert_doc, data, webhook
from tests.helpers import EventSink, serve_asgi

BURST_POLICY = """
mode: execute
defaults: {enabled: true, cooldown_seconds: 0}
functions: {pod-restart: {cooldown_seconds: 0}}
budget: {per_target_per_hour: 2, global_per_hour: 60}
storm: {distinct_targets: 1000}
loop: {max_returns: 1000}
"""


def restart_model():
    return FakeModel(lambda a: ("pod-restart", {"name": a.labels["pod"], "namespace": a.labels["namespace"]}, 1.0))


def burst(n: int, targets: int):
    # n distinct alert occurrences spread over `targets` pods (each a new startsAt: not duplicates)
    return [alert(namespace="media", pod=f"app-{i % targets}", fingerprint=f"fp{i % targets}",
                  starts=f"2026-11-25T08:{(i // targets) // 60:02d}:{(i // targets) % 60:02d}.{i:05d}Z")
            for i in range(n)]


def wait_drained(box: Outbox, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = box.stats()
        if not st["events"].get("pending") and not st["inbox"].get("pending"):
            return st
        time.sleep(0.05)
    raise AssertionError(f"outbox not drained: {box.stats()}")


def test_ten_thousand_alerts_for_fifty_targets_trigger_at_most_the_budget(tmp_path):
    rec = Recorder()
    box = Outbox(tmp_path / "outbox.db")
    agent = Agent(chain=Chain([restart_model()]), broker=rec,
                  gate=Gate(policy=pol.parse(BURST_POLICY), state=SQLiteState(tmp_path / "state.db")),
                  outbox=box, audit=Audit(tmp_path / "audit.jsonl"), poll_s=0.02).start()
    alerts = burst(10_000, 50)
    t0 = time.perf_counter()
    for i in range(0, len(alerts), 250):
        agent.handle_alerts(alerts[i:i + 250])
    st = wait_drained(box, 60)
    elapsed = time.perf_counter() - t0
    agent.stop()

    trig = rec.triggers
    ids = [e.get_id() for e in trig]
    assert len(ids) == len(set(ids)) == 60  # the global budget, exactly, no id twice
    per_target = Counter(data(e)["parameters"]["name"] for e in trig)
    assert max(per_target.values()) <= 2
    assert all(data(e)["dry_run"] is False for e in trig)
    # every other alert is an explicit, escalated refusal
    esc = rec.escalations
    assert len({e.get_id() for e in esc}) == len(esc) == 10_000 - 60
    codes = Counter(data(e)["code"] for e in esc)
    assert set(codes) <= {"0:budget_target", "0:budget_global"} and codes["0:budget_global"] > 0
    assert st["inbox"] == {"done": 10_000} and st["events"] == {"delivered": 10_000}
    assert verify(tmp_path / "audit.jsonl").ok
    print(f"10k burst: {elapsed:.1f}s, {10_000 / elapsed:.0f} alerts/s")


def test_burst_over_http_triggers_at_most_the_budget(tmp_path):
    policy = pol.parse(BURST_POLICY.replace("per_target_per_hour: 2, global_per_hour: 60",
                                            "per_target_per_hour: 1, global_per_hour: 25"))
    with EventSink() as sink:
        box = Outbox(tmp_path / "outbox.db")
        agent = Agent(chain=Chain([restart_model()]), broker=HTTPBroker(sink.url),
                      gate=Gate(policy=policy, state=SQLiteState(tmp_path / "state.db")), outbox=box, poll_s=0.02)
        alerts = [alert_doc(a) for a in burst(1000, 50)]
        with serve_asgi(create_app(agent)) as url:
            def post(chunk):
                return httpx.post(url + "/webhook", json=webhook(*chunk), timeout=30).status_code

            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(post, [alerts[i:i + 20] for i in range(0, 1000, 20)]))
            assert codes == [202] * 50
            wait_drained(box, 30)
        evs = [ce.from_http(h, b) for h, b in sink.requests]
        trig = [e for e in evs if e.get_type() == TRIGGER]
        assert len(trig) == len({e.get_id() for e in trig}) == 25
        assert max(Counter(data(e)["parameters"]["name"] for e in trig).values()) == 1
        assert len(evs) == 1000  # 25 triggers + 975 escalations, each once
