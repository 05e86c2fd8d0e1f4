"""One request's alerts go through the agent in chunks: bounded answers, leases renewed while a long
request is worked on (no alert decided twice), the model never sees more than TRM_BATCH_MAX at once.

Real HTTP on loopback (uvicorn), a real outbox and audit log on disk, the agent's background worker
running (it takes over alerts whose lease ran out: that is what a second decision would come from).
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
import numpy as np
import pytest

from agent_sre import audit
from agent_sre.alerts import Alert
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.chain.trm import TRMStage
from agent_sre.outbox import Outbox
from agent_sre.server import agent_from_env, create_app
from agent_sre.settings import AgentSettings
from tests.gate.support import alert, alert_doc, webhook
from tests.helpers import serve_asgi

POLICY = """
mode: dry_run
defaults: {enabled: true, cooldown_seconds: 0}
budget: {per_target_per_hour: 100000, global_per_hour: 100000}
storm: {distinct_targets: 100000}
"""


class SlowRules(RuleStage):
    """The runbook's rules, taking ``delay`` seconds per call of a batch: a slow model."""

    name = "slow-rules"

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay
        self.seen: Counter = Counter()

    def batch(self, alerts: list[Alert]) -> list:
        time.sleep(self.delay)
        out = []
        for a in alerts:
            self.seen[a.fingerprint] += 1
            try:
                out.append(self(a))
            except Exception as e:  # noqa: BLE001 - an Abstain is this alert's result
                out.append(e)
        return out


def crash(i: int) -> dict:
    return alert_doc(alert(namespace=f"ns{i % 7}", pod=f"web-6c5b7d9f4-{i:05d}", fingerprint=f"{i:016x}"))


def run_big_request(tmp_path, n: int, *, lease: float, chunk: int, keep: int, delay: float):
    (tmp_path / "policy.yaml").write_text(POLICY)
    env = {"STATE_DIR": str(tmp_path), "POLICY_PATH": str(tmp_path / "policy.yaml"), "DRY_RUN": "true",
           "OUTBOX_LEASE_SECONDS": str(lease), "INTAKE_CHUNK": str(chunk), "ANSWER_OUTCOMES_MAX": str(keep),
           "OUTBOX_RETENTION_SECONDS": "864000",
           "INCIDENTS": "false"}  # crash loops would wait out the incident settle window; leases are the subject here
    stage = SlowRules(delay)
    agent = agent_from_env(env, chain=Chain([stage]))
    agent.worker.poll_s = 0.05  # the worker looks for abandoned alerts often
    with serve_asgi(create_app(agent, settings=AgentSettings.model_validate(
            {"intake_chunk": chunk, "answer_outcomes_max": keep}))) as url:
        t0 = time.monotonic()
        r = httpx.post(url + "/webhook", json=webhook(*[crash(i) for i in range(n)]), timeout=120)
        took = time.monotonic() - t0
        time.sleep(min(lease * 3, 1.0))  # a worker that took over an alert would decide it now
        stats = agent.outbox.stats()
    decisions = Counter(rec["correlation_id"] for rec in audit.read(tmp_path / "audit.jsonl")
                        if rec["kind"] == "decision")
    return r, took, stage, decisions, stats


def test_a_request_longer_than_many_leases_decides_every_alert_once(tmp_path):
    # Each chunk takes twice the lease: without renewal the worker would take it over mid-way.
    r, took, stage, decisions, stats = run_big_request(tmp_path, 400, lease=0.3, chunk=40, keep=25, delay=0.6)
    assert took > 10 * 0.3  # the request outlived the lease many times over
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["accepted"] == 400
    assert len(doc["outcomes"]) == 25 and doc["outcomes_omitted"] == 375  # the answer stays bounded
    assert sum(doc["summary"]["method"].values()) == 400
    assert doc["summary"]["function"] == {"pod-restart": 400}
    assert len(decisions) == 400 and set(decisions.values()) == {1}
    assert set(stage.seen.values()) == {1} and len(stage.seen) == 400
    assert stats["inbox"] == {"done": 400}


def test_without_lease_renewal_the_worker_would_decide_alerts_again(tmp_path, monkeypatch):
    """The control: the same request with renewal switched off is taken over by the worker."""
    monkeypatch.setattr(Outbox, "renew", lambda self: 0)
    r, _, stage, decisions, _ = run_big_request(tmp_path, 400, lease=0.3, chunk=40, keep=25, delay=0.6)
    assert r.status_code == 202
    assert max(stage.seen.values()) > 1 or max(decisions.values()) > 1


def test_small_requests_keep_every_outcome(tmp_path):
    r, _, _, decisions, _ = run_big_request(tmp_path, 3, lease=30, chunk=256, keep=100, delay=0)
    doc = r.json()
    assert doc["accepted"] == 3 and len(doc["outcomes"]) == 3 and "outcomes_omitted" not in doc
    assert {o["correlation_id"] for o in doc["outcomes"]} == set(decisions)


class CountingPredictor:
    """Wraps the shipped model's predictor and records the rows of every forward pass."""

    def __init__(self, inner):
        self.inner = inner
        self.rows: list[int] = []
        self.info, self.meta = inner.info, inner.meta

    def threshold(self, t):
        return self.inner.threshold(t)

    def encode(self, alerts):
        return self.inner.encode(alerts)

    def decode(self, alerts, encs, out):
        return self.inner.decode(alerts, encs, out)

    def forward(self, x: np.ndarray):
        self.rows.append(len(x))
        return self.inner.forward(x)


def test_the_model_sees_at_most_trm_batch_max_alerts_per_pass(monkeypatch):
    monkeypatch.setenv("TRM_BATCH_MAX", "16")
    stage = TRMStage()
    stage.warm()
    assert stage.predictor is not None
    stage.predictor = CountingPredictor(stage.predictor)
    alerts = [Alert.model_validate(crash(i)) for i in range(100)]
    out = stage.batch(alerts)
    assert len(out) == 100
    assert max(stage.predictor.rows) <= 16 and sum(stage.predictor.rows) == 100


@pytest.mark.parametrize("n", [1, 17])
def test_outbox_renew_extends_only_held_rows(tmp_path, n):
    box = Outbox(tmp_path / "o.db", lease_s=0.2)
    ids = box.accept([Alert.model_validate(crash(i)) for i in range(n)])
    other = Outbox(tmp_path / "o.db", lease_s=0.2)
    time.sleep(0.3)
    assert box.renew() == n
    assert other.claim_alerts() == []  # renewed: nobody takes them over
    box.let_go("inbox", ids)
    time.sleep(0.3)
    assert box.renew() == 0
    assert [i for i, _ in other.claim_alerts()] == ids  # no longer held: the lease runs out
