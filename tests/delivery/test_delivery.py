"""Delivery guarantees over real HTTP: replay, broker outage, dead letters, durable multi-step plans,
auth, audit history."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest
from typer.testing import CliRunner

from agent_sre import audit, ce, signing
from agent_sre import policy as pol
from agent_sre.agent import Agent
from agent_sre.audit import Audit, verify
from agent_sre.broker import HTTPBroker
from agent_sre.chain.annotations import AnnotationStage
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.cli import app as cli_app
from agent_sre.events import TRIGGER, result_event
from agent_sre.gate import Gate
from agent_sre.outbox import Outbox, Retry
from agent_sre.server import create_app
from agent_sre.state import SQLiteState
from agent_sre.settings import ServerSettings
from tests.gate.support import alert, alert_doc, data, webhook
from tests.delivery.sinks import StatusSink
from tests.helpers import serve_asgi
from tests.keys import AGENT, agent_trust, by_functions

EXECUTE = pol.parse("mode: execute\ndefaults: {enabled: true, cooldown_seconds: 0}\n"
                    "functions: {pod-restart: {cooldown_seconds: 0}}")


@pytest.fixture()
def sink():
    s = StatusSink()
    yield s
    s.close()


def make_agent(tmp_path, url, retry=None, **kw):
    return Agent(chain=Chain([AnnotationStage(), RuleStage()]), broker=HTTPBroker(url, timeout=2.0),
                 gate=Gate(policy=kw.pop("policy", EXECUTE), state=SQLiteState(tmp_path / "state.db")),
                 outbox=Outbox(tmp_path / "outbox.db"), audit=Audit(tmp_path / "audit.jsonl"),
                 retry=retry or Retry(0.05, 0.4, 50), poll_s=0.02, trust=kw.pop("trust", agent_trust()), **kw)


def crash(i=0, **extra):
    return alert_doc(alert(namespace="media", pod=f"jellyfin-{i}", fingerprint=f"fp{i}", **extra))


def wait(cond, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_replaying_the_same_webhook_five_times_triggers_once(tmp_path, sink):
    agent = make_agent(tmp_path, sink.url)
    with serve_asgi(create_app(agent)) as url:
        hook = webhook(crash(1), crash(2))
        replies = [httpx.post(url + "/webhook", json=hook) for _ in range(5)]
        assert [r.status_code for r in replies] == [202] * 5
        wait(lambda: len(sink.log) >= 2, what="two triggers")
        time.sleep(0.5)  # give a wrong second delivery the time to show up
    ids = sink.accepted_ids()
    assert len(ids) == 2 and len(set(ids)) == 2
    verdicts = [o["verdict"]["code"] for r in replies[1:] for o in r.json()["outcomes"]]
    assert verdicts == ["duplicate"] * 8


def test_broker_down_then_up_delivers_everything_exactly_once_in_effect(tmp_path, sink):
    sink.status = 503
    agent = make_agent(tmp_path, sink.url)
    with serve_asgi(create_app(agent)) as url:
        for i in range(10):
            assert httpx.post(url + "/webhook", json=webhook(crash(i))).status_code == 202
        # the broker refuses for a while: retries with backoff, nothing accepted yet
        def refused_twice():
            c = Counter(h["ce-id"] for _, h, _ in sink.log)
            return len(c) == 10 and min(c.values()) >= 2
        wait(refused_twice, 15, "two refused attempts of all ten")
        assert sink.accepted_ids() == []
        pending = agent.outbox.stats()["events"]
        assert pending == {"pending": 10}
        sink.status = 202
        wait(lambda: len(sink.accepted_ids()) >= 10, 15, "delivery after recovery")
        time.sleep(0.6)
        assert agent.outbox.stats()["events"] == {"delivered": 10}
    acc = Counter(sink.accepted_ids())
    assert len(acc) == 10 and set(acc.values()) == {1}  # every id accepted exactly once
    tries = Counter(h["ce-id"] for _, h, _ in sink.log)
    assert min(tries.values()) >= 3  # it really did retry each one
    # the ids are the decision's, so a function that remembers ids acts once for all the retries
    assert {e.get_id() for e in sink.events()} == set(tries)
    # each attempt was signed when it was sent: its own time, a valid signature, the same id
    ring = signing.KeyRing([AGENT.public])
    attempts = [e for e in sink.events(accepted_only=False) if e.get_id() == next(iter(tries))]
    assert len({e.get_attributes()["time"] for e in attempts}) == len(attempts) >= 3
    assert all(signing.verify(e, ring) == AGENT.id for e in attempts)


def test_retries_run_out_into_a_dead_letter_then_requeue(tmp_path, sink):
    sink.status = 500
    agent = make_agent(tmp_path, sink.url, retry=Retry(0.02, 0.05, 3)).start()
    try:
        agent.handle_alerts([alert(namespace="media", pod="x-1")])
        wait(lambda: agent.outbox.stats()["events"].get("dead") == 1, 10, "dead letter")
        assert len(sink.log) == 3
        [dead] = agent.outbox.events("dead")
        assert dead["attempts"] == 3 and "answered 500" in dead["last_error"]
        kinds = [r["kind"] for r in audit.read(tmp_path / "audit.jsonl")]
        assert "dead_letter" in kinds
        sink.status = 202
        assert agent.outbox.requeue_dead() == 1
        agent.worker.kick()
        wait(lambda: agent.outbox.stats()["events"] == {"delivered": 1}, 10, "requeued delivery")
    finally:
        agent.stop()


def _check_result(trigger, unhealthy):
    """The check's answer, signed with the functions' key."""
    return by_functions(result_event(trigger, {"function": "pod-check-status", "status": "success",
                                               "action": "check", "message": "checked", "dry_run": False,
                                               "details": {"healthy": not unhealthy, "unhealthy": unhealthy}}))


def test_second_plan_step_survives_a_restart_and_a_duplicate_result(tmp_path, sink):
    down = alert_doc(alert(alertname="PrometheusServiceDown", namespace="monitoring", pod="prometheus-0",
                           fingerprint="prom"))
    agent = make_agent(tmp_path, sink.url)
    with serve_asgi(create_app(agent)) as url:
        assert httpx.post(url + "/webhook", json=webhook(down)).status_code == 202
        wait(lambda: len(sink.accepted_ids()) == 1, what="step 0")
    [check] = sink.events()
    assert check.get_attributes()["lambdafunction"] == "pod-check-status"

    # a new agent process on the same files: the plan is on disk, not in memory
    agent2 = make_agent(tmp_path, sink.url)
    res = _check_result(check, [{"name": "prometheus-0", "namespace": "monitoring", "type": "pod"}])
    with serve_asgi(create_app(agent2)) as url:
        for _ in range(3):  # the broker delivers the result more than once
            h, b = ce.to_binary(res)
            r = httpx.post(url + "/", headers=h, content=b)
            assert r.status_code == 202 and r.json()["known"] is True
        wait(lambda: len(sink.accepted_ids()) == 2, what="step 1")
        time.sleep(0.4)
    evs = sink.events()
    assert len(evs) == 2
    step1 = data(evs[1])
    assert evs[1].get_attributes()["lambdafunction"] == "pod-restart" and step1["step"] == 1
    assert step1["parameters"] == {"name": "prometheus-0", "namespace": "monitoring", "type": "pod"}
    assert step1["correlation_id"] == data(check)["correlation_id"]


def test_forged_result_cannot_aim_the_second_step_elsewhere(tmp_path, sink):
    down = alert(alertname="PrometheusServiceDown", namespace="monitoring", pod="prometheus-0", fingerprint="p")
    agent = make_agent(tmp_path, sink.url).start()
    try:
        agent.handle_alerts([down])
        wait(lambda: len(sink.accepted_ids()) == 1)
        [check] = sink.events()
        out = agent.handle_result(_check_result(check, [{"name": "vault-0", "namespace": "secrets"}]))
        assert out.verdicts[0].code == "target"
        assert [e.get_type() for e in out.events] == ["io.homelab.agent-sre.escalation"]
        wait(lambda: len(sink.accepted_ids()) == 2)
        assert all(e.get_type() != TRIGGER for e in sink.events()[1:])
    finally:
        agent.stop()


def test_bearer_token_on_the_intake(tmp_path, sink):
    agent = make_agent(tmp_path, sink.url)
    with serve_asgi(create_app(agent, auth_token="s3cret")) as url:
        r = httpx.post(url + "/webhook", json=webhook(crash()))
        assert r.status_code == 401 and "missing" in r.json()["error"]
        r = httpx.post(url + "/webhook", json=webhook(crash()), headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and "invalid" in r.json()["error"]
        h, b = ce.to_binary(ce.make_event("io.homelab.prometheus.alert.fired", "/am", webhook(crash())))
        assert httpx.post(url + "/", headers=h, content=b).status_code == 401
        r = httpx.post(url + "/webhook", json=webhook(crash()), headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 202
        assert httpx.get(url + "/healthz").status_code == 200  # probes stay open
    assert agent.outbox.stats()["inbox"] == {"done": 1}  # the refused requests were never accepted


def test_chunked_body_over_the_limit_is_refused(tmp_path, sink):
    agent = make_agent(tmp_path, sink.url)
    with serve_asgi(create_app(agent, server=ServerSettings(max_body_bytes=1024))) as url:
        def gen():
            for _ in range(20):
                yield b" " * 100
        r = httpx.post(url + "/webhook", content=gen(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_audit_history_and_verify_from_the_cli(tmp_path, sink):
    agent = make_agent(tmp_path, sink.url)
    with serve_asgi(create_app(agent)) as url:
        httpx.post(url + "/webhook", json=webhook(crash(1), crash(2)))
        httpx.post(url + "/webhook", json=webhook(alert_doc(alert(alertname="Watchdog", fingerprint="w"))))
        wait(lambda: len(sink.accepted_ids()) == 2)  # Watchdog: decided "nothing to do", sends nothing
        time.sleep(0.3)
    log = tmp_path / "audit.jsonl"
    kinds = Counter(r["kind"] for r in audit.read(log))
    assert kinds["alert"] == 3 and kinds["decision"] == 3 and kinds["event"] == 2 and kinds["delivery"] == 2
    runner = CliRunner()
    env = {"AUDIT_LOG": str(log)}
    r = runner.invoke(cli_app, ["history", "--alertname", "Watchdog", "--json"], env=env)
    assert r.exit_code == 0, r.output
    recs = [json.loads(ln) for ln in r.output.splitlines()]
    assert recs and {x["alertname"] for x in recs} == {"Watchdog"}
    corr = recs[0]["correlation_id"]
    r = runner.invoke(cli_app, ["history", "--correlation-id", corr[:8], "--json"], env=env)
    assert {json.loads(ln)["correlation_id"] for ln in r.output.splitlines()} == {corr}
    r = runner.invoke(cli_app, ["history", "--since", "1h"], env=env)
    assert r.exit_code == 0 and "PodCrashLoopBackOff" in r.output
    r = runner.invoke(cli_app, ["history", "--verify"], env=env)
    assert r.exit_code == 0 and "OK" in r.output
    # tamper: change one decision's recorded parameters
    lines = log.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if '"kind":"decision"' in ln)
    lines[i] = lines[i].replace("jellyfin-1", "jellyfin-9")
    log.write_text("\n".join(lines) + "\n")
    assert not verify(log).ok
    r = runner.invoke(cli_app, ["history", "--verify"], env=env)
    assert r.exit_code == 1 and "TAMPERED" in r.output and "does not match its hash" in r.output
    # delete a record: the chain breaks
    lines = log.read_text().splitlines()
    del lines[i]
    log.write_text("\n".join(lines) + "\n")
    res = verify(log)
    assert not res.ok and any("chain broken" in p for p in res.problems)
