"""Knative's dead-letter sink: an event the broker gave up on is recorded, never acted on."""

import httpx

from agent_sre import audit, ce
from agent_sre.events import TRIGGER
from agent_sre.server import agent_from_env, create_app
from agent_sre.settings import StateSettings, load
from tests.helpers import EventSink, serve_asgi


def test_dead_letter_is_recorded_in_the_audit_log(tmp_path):
    with EventSink() as sink:
        env = {"STATE_DIR": str(tmp_path), "BROKER_URL": sink.url, "DRY_RUN": "true"}
        agent = agent_from_env(env)
        with serve_asgi(create_app(agent, auth_token="s3cret")) as url:
            ev = ce.make_event(TRIGGER, "/agent-sre/remediation", {"lambda_function": "pod-restart",
                               "parameters": {"name": "a", "namespace": "b"}, "correlation_id": "c0ffee"},
                               extensions={"knativeerrordest": "http://pod-restart.agent-sre.svc",
                                           "knativeerrorcode": "503", "correlationid": "c0ffee"})
            headers, body = ce.to_binary(ev)
            r = httpx.post(url + "/dead-letter", headers=headers, content=body)
            assert r.status_code == 202, r.text
            assert httpx.post(url + "/dead-letter", content=b"{}",
                              headers={"content-type": "application/json"}).status_code == 400
            assert 'agent_sre_dead_letters_total{type="io.homelab.agent-sre.lambda.trigger"} 1.0' in \
                httpx.get(url + "/metrics").text
        assert sink.requests == []  # recorded, never re-sent or acted on
    recs = [r for r in audit.read(load(StateSettings, env).audit_path) if r.get("kind") == "dead_letter"]
    assert len(recs) == 1
    assert recs[0]["correlation_id"] == "c0ffee"
    assert audit.verify(load(StateSettings, env).audit_path).ok
