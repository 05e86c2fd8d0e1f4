"""A forged ``lambda.completed`` cannot steer the second step of PrometheusServiceDown.

The attack: the correlation id follows from the alert (fingerprint and startsAt), so anyone who
can reach the agent can answer the pod check with a "result" naming another pod; before results
were signed, the agent's second step restarted that pod. Now only a result a function key signed,
recently, drives a step: the others get 401/403 and nothing is triggered."""

from __future__ import annotations

import time

import httpx
import pytest

from agent_sre import ce, signing
from agent_sre import policy as pol
from agent_sre.agent import Agent
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.events import COMPLETED, correlation_id
from agent_sre.gate import Gate
from agent_sre.server import create_app
from tests.gate.support import Recorder, alert, data
from tests.helpers import serve_asgi
from tests.keys import AGENT, ATTACKER, FUNCTIONS, agent_trust

DOWN = alert(alertname="PrometheusServiceDown", namespace="monitoring", pod="prometheus-0", fingerprint="f1")
EXECUTE = pol.parse("mode: execute\ndefaults: {enabled: true}")


def forged(rid="forged-1", target="prometheus-1"):
    corr = correlation_id(DOWN)
    return ce.make_event(COMPLETED, "/agent-sre/functions/pod-check-status", {
        "function": "pod-check-status", "status": "success", "action": "check", "correlation_id": corr,
        "message": "checked", "dry_run": False,
        "details": {"healthy": False, "unhealthy": [{"name": target, "namespace": "monitoring", "type": "pod"}]}},
        id=rid, extensions={"lambdafunction": "pod-check-status", "correlationid": corr})


@pytest.mark.parametrize("how,status,reason", [
    ("unsigned", 401, "unsigned"),
    ("attacker", 401, "unknown-key"),
    ("agent-key", 401, "unknown-key"),   # the agent's own key signs triggers, never results
    ("stale", 403, "stale"),              # a real function's answer, replayed ten minutes later
])
def test_a_forged_result_does_not_drive_the_second_step(how, status, reason):
    rec = Recorder()
    agent = Agent(chain=Chain([RuleStage()]), broker=rec, gate=Gate(policy=EXECUTE),
                  trust=agent_trust())
    with serve_asgi(create_app(agent, auth_token="s3cret")) as url:
        r = httpx.post(url + "/webhook", json={"version": "4", "status": "firing",
                                               "alerts": [DOWN.model_dump(mode="json")]},
                       headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 202
        [check] = rec.triggers
        assert data(check)["lambda_function"] == "pod-check-status"
        ev = {"unsigned": forged(), "attacker": signing.sign(forged(), ATTACKER),
              "agent-key": signing.sign(forged(), AGENT),
              "stale": signing.sign(forged(), FUNCTIONS, now=time.time() - 600)}[how]
        h, b = ce.to_binary(ev)
        r = httpx.post(url + "/", headers=h, content=b)  # no bearer: results authenticate by signature
        assert r.status_code == status and r.json()["error"] == reason, r.text
        assert f'agent_sre_intake_refused_total{{reason="{reason}"}} 1.0' in httpx.get(url + "/metrics").text
        # the real answer, signed by the functions, still drives the plan to the right pod
        real = signing.sign(forged(rid="real-1", target="prometheus-0"), FUNCTIONS)
        h, b = ce.to_binary(real)
        r = httpx.post(url + "/", headers=h, content=b)
        assert r.status_code == 202 and r.json()["known"] is True
    assert [(data(t)["lambda_function"], data(t)["parameters"]) for t in rec.triggers] == [
        ("pod-check-status", {"namespace": "monitoring", "name": "prometheus-0"}),
        ("pod-restart", {"name": "prometheus-0", "namespace": "monitoring", "type": "pod"})]


def test_a_forged_reply_on_the_delivery_path_is_ignored():
    """The same through the outbox: a broker (or anything on its path) answering a trigger with an
    unsigned result gets the trigger marked delivered, and nothing more."""
    class Liar(Recorder):
        def send(self, event):
            super().send(event)
            return forged() if data(event)["lambda_function"] == "pod-check-status" else None

    liar = Liar()
    agent = Agent(chain=Chain([RuleStage()]), broker=liar, gate=Gate(policy=EXECUTE),
                  trust=agent_trust())
    [out] = agent.handle_alerts([DOWN])
    assert [data(t)["lambda_function"] for t in liar.triggers] == ["pod-check-status"]
    assert out.results == [] and agent.outbox.stats()["events"] == {"delivered": 1}
    # what the agent sent was signed by its key, with its own time
    [sent] = liar.sent
    assert signing.verify(sent, signing.KeyRing([AGENT.public])) == AGENT.id
