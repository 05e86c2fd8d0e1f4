"""Knative's dead-letter sink: an event the broker gave up on is recorded, never acted on. Knative
sends no bearer token, so what is recorded is what a trusted key signed (or what carries the token)."""

import httpx

from agent_sre import audit, ce, signing
from agent_sre.events import COMPLETED, TRIGGER, result_event
from agent_sre.server import agent_from_env, create_app
from agent_sre.settings import StateSettings, load
from tests.helpers import EventSink, serve_asgi
from tests.keys import ATTACKER, key_files


def _trigger(**ext):
    return ce.make_event(TRIGGER, "/agent-sre/remediation", {"lambda_function": "pod-restart",
                         "parameters": {"name": "a", "namespace": "b"}, "correlation_id": "c0ffee"},
                         extensions={"lambdafunction": "pod-restart", "correlationid": "c0ffee", **ext})


def _dead(event, **knative):
    """What Knative posts: the original event plus knativeerror* extensions (not covered by the signature)."""
    attrs = {**event.get_attributes(), "knativeerrordest": "http://pod-restart.agent-sre.svc",
             "knativeerrorcode": "503", **knative}
    return ce.to_binary(ce.CloudEvent(attributes=attrs, data=event.get_data()))


def test_dead_letters_signed_by_the_agent_or_the_functions_are_recorded(tmp_path):
    agent_env, _ = key_files(tmp_path / "keys")
    agent_key = signing.SigningKey.load(agent_env["AGENT_SIGNING_KEY"])
    fn_key = signing.SigningKey.load(tmp_path / "keys" / "function-signing-key" / "function.pem")
    with EventSink() as sink:
        env = {"STATE_DIR": str(tmp_path), "BROKER_URL": sink.url, "DRY_RUN": "true", **agent_env}
        agent = agent_from_env(env)
        with serve_asgi(create_app(agent, auth_token="s3cret")) as url:
            # a trigger the agent signed long ago (dead letters are not checked for freshness)
            old = signing.sign(_trigger(), agent_key, now=1_000_000_000)
            h, b = _dead(old)
            r = httpx.post(url + "/dead-letter", headers=h, content=b)
            assert r.status_code == 202, r.text
            # a result a function signed, which the agent could not take
            res = signing.sign(result_event(_trigger(), {"function": "pod-restart", "status": "success"}), fn_key)
            h, b = _dead(res)
            assert httpx.post(url + "/dead-letter", headers=h, content=b).status_code == 202
            # unsigned, or signed by anyone else: 401, not recorded
            for ev in (_trigger(), signing.sign(_trigger(), ATTACKER)):
                h, b = _dead(ev)
                r = httpx.post(url + "/dead-letter", headers=h, content=b)
                assert r.status_code == 401, r.text
            # data changed after signing
            h, b = _dead(ce.CloudEvent(attributes=old.get_attributes(), data={"lambda_function": "x"}))
            assert httpx.post(url + "/dead-letter", headers=h, content=b).status_code == 401
            # not even a CloudEvent, without the token: 401; with the token: 400
            assert httpx.post(url + "/dead-letter", content=b"{}",
                              headers={"content-type": "application/json"}).status_code == 401
            assert httpx.post(url + "/dead-letter", content=b"{}", headers={
                "content-type": "application/json", "authorization": "Bearer s3cret"}).status_code == 400
            # an operator with the token may record an unsigned event by hand
            h, b = _dead(_trigger(id="by-hand"))
            assert httpx.post(url + "/dead-letter", headers={**h, "authorization": "Bearer s3cret"},
                              content=b).status_code == 202
            metrics = httpx.get(url + "/metrics").text
            assert 'agent_sre_dead_letters_total{type="io.homelab.agent-sre.lambda.trigger"} 2.0' in metrics
            assert f'agent_sre_dead_letters_total{{type="{COMPLETED}"}} 1.0' in metrics
            assert 'agent_sre_intake_refused_total{reason="unsigned"}' in metrics
        assert sink.requests == []  # recorded, never re-sent or acted on
    path = load(StateSettings, env).audit_path
    recs = [r for r in audit.read(path) if r.get("kind") == "dead_letter"]
    assert len(recs) == 3 and recs[0]["correlation_id"] == "c0ffee"
    assert recs[0]["data"]["error_code"] == "503"
    ring = signing.KeyRing.load(agent_env["AGENT_PUBLIC_KEYS"])
    res = audit.verify(path, key=audit.load_key(agent_env["AUDIT_HMAC_KEY"]), ring=ring, require_checkpoint=True)
    assert res.ok, res.summary()
