"""/dead-letter is bounded: events over DEAD_LETTER_MAX_BYTES are refused before anything is written,
a large event's data is kept as its digest (a few KB per record), and past DEAD_LETTER_PER_MINUTE the
route answers 429 with Retry-After. Forty 1 MB requests add nothing to the audit log. (The events
here are not signed; they come with the intake's bearer token, which a dead letter may carry instead.)"""

from __future__ import annotations

import json

import httpx

from agent_sre import audit, ce
from agent_sre.agent import Agent
from agent_sre.audit import Audit
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.events import TRIGGER
from agent_sre.server import create_app
from agent_sre.settings import AgentSettings
from tests.gate.support import Recorder
from tests.helpers import serve_asgi


TOKEN = "s3cret"


def dead(i: int, size: int) -> tuple[dict[str, str], bytes]:
    ev = ce.make_event(TRIGGER, "/agent-sre/remediation", {"lambda_function": "pod-restart", "pad": "x" * size,
                                                          "correlation_id": f"c{i}"},
                       id=f"dl-{i}", extensions={"knativeerrordest": "http://pod-restart.agent-sre.svc",
                                                 "knativeerrorcode": "503", "correlationid": f"c{i}"})
    headers, body = ce.to_binary(ev)
    return {**headers, "authorization": f"Bearer {TOKEN}"}, body


def serve(tmp_path, **limits):
    agent = Agent(chain=Chain([RuleStage()]), broker=Recorder(), dry_run=True, audit=Audit(tmp_path / "audit.jsonl"))
    return serve_asgi(create_app(agent, auth_token=TOKEN, settings=AgentSettings.model_validate(limits)))


def test_forty_one_megabyte_dead_letters_add_nothing_to_the_audit(tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(tmp_path) as url:
        with httpx.Client(timeout=30) as c:
            codes = [c.post(url + "/dead-letter", headers=h, content=b).status_code
                     for h, b in (dead(i, 1 << 20) for i in range(40))]
    assert set(codes) == {413}
    assert not log.exists() or log.stat().st_size == 0


def test_a_large_dead_letter_is_recorded_as_its_digest(tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(tmp_path) as url:
        with httpx.Client(timeout=30) as c:
            for i in range(40):
                h, b = dead(i, 60_000)  # just under the 64 KiB limit
                assert c.post(url + "/dead-letter", headers=h, content=b).status_code == 202
            h, b = dead(99, 10)
            assert c.post(url + "/dead-letter", headers=h, content=b).status_code == 202
    recs = [r for r in audit.read(log) if r["kind"] == "dead_letter"]
    assert len(recs) == 41
    assert log.stat().st_size < 41 * 4096  # 2.4 MB posted, a few KB recorded each
    big = recs[0]["data"]
    assert "data" not in big and big["data_bytes"] > 60_000 and len(big["data_sha256"]) == 64
    assert big["event"]["id"] == "dl-0" and big["error_code"] == "503"
    small = recs[-1]["data"]
    assert small["data"] == {"lambda_function": "pod-restart", "pad": "x" * 10, "correlation_id": "c99"}  # kept whole
    assert recs[0]["correlation_id"] == "c0"
    assert audit.verify(log).ok


def test_past_the_rate_dead_letters_get_429(tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(tmp_path, dead_letter_per_minute=10) as url:
        with httpx.Client(timeout=30) as c:
            replies = [c.post(url + "/dead-letter", headers=h, content=b) for h, b in (dead(i, 100) for i in range(25))]
            metrics = c.get(url + "/metrics").text
    codes = [r.status_code for r in replies]
    assert codes[:10] == [202] * 10 and set(codes[10:]) == {429}
    assert int(replies[-1].headers["retry-after"]) >= 1
    assert "more than 10 dead letters a minute" in replies[-1].json()["error"]
    assert sum(1 for r in audit.read(log) if r["kind"] == "dead_letter") == 10
    assert 'agent_sre_intake_refused_total{reason="dead_letter_rate"} 15.0' in metrics


def test_long_attributes_are_cut(tmp_path):
    ev = ce.make_event(TRIGGER, "/x", {"a": 1}, id="i" * 2000, extensions={f"ext{i}": "v" * 1000 for i in range(60)})
    h, b = ce.to_binary(ev)
    h["authorization"] = f"Bearer {TOKEN}"
    with serve(tmp_path) as url:
        assert httpx.post(url + "/dead-letter", headers=h, content=b).status_code == 202
    [rec] = [r for r in audit.read(tmp_path / "audit.jsonl") if r["kind"] == "dead_letter"]
    assert len(json.dumps(rec)) < 16_000
    assert all(len(v) <= 259 for v in rec["data"]["event"].values())
