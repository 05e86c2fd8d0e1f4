"""The functions' trust boundary over real HTTP (uvicorn on loopback) against KMock: only triggers
the agent signed, fresh, never answered before and allowed by the policy reach a handler; the
handler acts only on something broken now."""

from __future__ import annotations

import time

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent

from agent_sre import audit, policy, signing
from agent_sre.functions.app import app_from_env, create_app
from agent_sre.settings import SettingsError
from tests.helpers import serve_asgi
from tests.keys import AGENT, ATTACKER, FUNCTIONS, by_agent, function_trust, key_files

from .test_app import parse, trigger
from .test_pods import DEP, PODS, UNREADY, crashing, deployment_chain


def send(url, event):
    msg = to_binary_event(event)
    return httpx.post(url + "/", headers=msg.headers, content=msg.body, timeout=20)


def coredns(cluster):
    """kube-system/coredns, broken enough that only the policy can stop a restart."""
    cluster.add(DEP, "kube-system", {"metadata": {"name": "coredns"}, "spec": {"replicas": 2, "template": {}},
                                     "status": UNREADY})
    cluster.add(PODS, "kube-system", crashing("coredns-5d78-abcde", owner=("ReplicaSet", "coredns-5d78")))


def attack(**over):
    return trigger("pod-restart", {"name": "coredns", "namespace": "kube-system", "type": "deployment"},
                   dry_run=False, **over)


@pytest.fixture
def served(runner):
    with serve_asgi(create_app(runner=runner, sink="", trust=function_trust())) as url:
        yield url


def test_the_attackers_triggers_restart_nothing(cluster, served):
    coredns(cluster)
    # ten fresh ids, no credentials: ten 401s
    for i in range(10):
        r = send(served, attack(id=f"evil-{i}"))
        assert r.status_code == 401 and r.json()["error"] == "unsigned", r.text
    # signed by someone else, or with a function's own key (it can sign results, never triggers)
    for key, reason in ((ATTACKER, "unknown-key"), (FUNCTIONS, "unknown-key")):
        r = send(served, signing.sign(attack(id=f"evil-{reason}-{key.id}"), key))
        assert r.status_code == 401 and r.json()["error"] == reason
    # validly signed by the agent: the policy still says no (kube-system is deny_mutating)
    r = send(served, by_agent(attack(id="signed-but-kube-system")))
    assert r.status_code == 403 and r.json()["error"] == "policy" and "kube-system" in r.json()["message"]
    assert cluster.writes() == []
    assert cluster.get(DEP, "kube-system", "coredns")["spec"]["template"] == {}
    text = httpx.get(served + "/metrics").text
    assert 'agent_sre_function_rejected_events_total{reason="unsigned"}' in text
    assert 'agent_sre_function_rejected_events_total{reason="policy"}' in text


def test_a_signed_event_that_was_changed_is_refused(cluster, served):
    deployment_chain(cluster)
    good = by_agent(trigger(id="t-1", dry_run=False))
    attrs, data = good.get_attributes(), dict(good.get_data())
    changed = [
        CloudEvent(attrs, {**data, "parameters": {"name": "web-7d9f-abcde", "namespace": "payments"}}),
        CloudEvent(attrs, {**data, "dry_run": True}),  # even towards the safe side: not what was signed
        CloudEvent({**attrs, "lambdafunction": "pod-check-status"}, {**data, "lambda_function": "pod-check-status"}),
        CloudEvent({**attrs, "id": "t-2"}, data),
        CloudEvent({**attrs, "source": "/elsewhere"}, data),
        CloudEvent({**attrs, "signature": attrs["signature"][:-4] + "AAAA"}, data),
        CloudEvent({**attrs, "signature": "not base64 !"}, data),
    ]
    for ev in changed:
        r = send(served, ev)
        assert r.status_code == 401 and r.json()["error"] == "bad-signature", (ev.get_attributes(), r.text)
    assert cluster.writes() == []
    # the untouched event still works
    assert parse(send(served, good)).get_data()["status"] == "success"


def test_stale_and_future_triggers_are_refused(cluster, served):
    deployment_chain(cluster)
    r = send(served, by_agent(trigger(id="old"), now=time.time() - 301))
    assert r.status_code == 403 and r.json()["error"] == "stale"
    r = send(served, by_agent(trigger(id="ahead"), now=time.time() + 120))
    assert r.status_code == 403 and r.json()["error"] == "future"
    # a few seconds of clock skew are fine
    assert send(served, by_agent(trigger(id="skew", dry_run=True), now=time.time() + 5)).status_code == 200
    assert [w.params for w in cluster.writes()] == [{"dryRun": "All"}]


def test_a_replayed_trigger_never_acts_twice(cluster, served):
    deployment_chain(cluster)
    first = parse(send(served, by_agent(trigger(id="once"))))
    # the agent's outbox retries (signed anew) and Knative redelivers the same bytes: both get the first answer
    again = parse(send(served, by_agent(trigger(id="once"))))
    assert again.get_data() == first.get_data() and first.get_data()["status"] == "success"
    assert len(cluster.writes()) == 1
    # the same id signed over other content is not a redelivery
    other = trigger(id="once", params={"name": "web-7d9f-zzzzz", "namespace": "shop", "type": "pod"})
    r = send(served, by_agent(other))
    assert r.status_code == 403 and r.json()["error"] == "replayed"
    assert len(cluster.writes()) == 1


def test_result_events_are_signed_by_the_functions(cluster, served):
    deployment_chain(cluster)
    reply = parse(send(served, by_agent(trigger(id="r-1", dry_run=True))))
    assert reply.get_attributes()["signaturekeyid"] == FUNCTIONS.id
    assert signing.verify(reply, signing.KeyRing([FUNCTIONS.public])) == FUNCTIONS.id
    with pytest.raises(signing.Refused):
        signing.verify(reply, signing.KeyRing([AGENT.public]))


def test_the_correlation_extension_must_agree_with_the_signed_data(cluster, served):
    deployment_chain(cluster)
    ev = by_agent(trigger(id="c-1"))
    forged = CloudEvent({**ev.get_attributes(), "correlationid": "someone-elses-plan"}, ev.get_data())
    r = send(served, forged)
    assert r.status_code == 400 and "correlationid" in r.json()["message"]
    assert cluster.writes() == []


@pytest.mark.parametrize("text,status", [
    ("mode: execute\nfunctions: {pod-restart: {enabled: false}}", 403),
    ("mode: execute\nnamespaces: {allow: [media]}", 403),
    ("mode: execute\nnamespaces: {deny: [shop]}", 403),
    ("mode: suggest", 403),
    ("mode: execute\nfunctions: {pod-restart: {mode: dry_run}}", 200),  # runs, but as a dry run
    ("mode: dry_run", 200),
    ("mode: execute", 200),
])
def test_the_functions_reapply_the_policy(cluster, runner, text, status):
    deployment_chain(cluster)
    # every function on unless the case says otherwise: each 403 is the case's own rule, not a default
    app = create_app(runner=runner, sink="", trust=function_trust(),
                     policy=policy.parse("defaults: {enabled: true}\n" + text))
    with serve_asgi(app) as url:
        r = send(url, by_agent(trigger(id="p-1", dry_run=False)))
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"] == "policy" and cluster.writes() == []
        return
    data = parse(r).get_data()
    executes = text == "mode: execute"
    assert data["dry_run"] is not executes
    assert [w.params for w in cluster.writes()] == [{} if executes else {"dryRun": "All"}]


def test_a_trigger_is_never_more_permissive_than_dry_run_setting(cluster, runner):
    deployment_chain(cluster)
    dry = runner.settings.model_copy(update={"dry_run": True})
    runner.settings = dry
    with serve_asgi(create_app(runner=runner, sink="", trust=function_trust())) as url:
        data = parse(send(url, by_agent(trigger(id="d-1", dry_run=False)))).get_data()
    assert data["dry_run"] is True and [w.params for w in cluster.writes()] == [{"dryRun": "All"}]


# ---------------------------------------------------------------------------- settings: fail closed
def test_serve_function_needs_its_keys_and_state(tmp_path):
    _, fn = key_files(tmp_path / "keys")
    base = {"STATE_DIR": str(tmp_path / "state"), "DRY_RUN": "false", **fn}
    app_from_env(base)  # complete: starts
    for var in ("AGENT_PUBLIC_KEYS", "FUNCTION_SIGNING_KEY", "STATE_DIR"):
        with pytest.raises(SettingsError, match=f"{var} is unset.*FUNCTION_LOCAL_MODE=dry-run-only"):
            app_from_env({k: v for k, v in base.items() if k != var})
    with pytest.raises(SettingsError, match="FUNCTION_LOCAL_MODE='yes'"):
        app_from_env({**base, "FUNCTION_LOCAL_MODE": "yes"})
    with pytest.raises(SettingsError, match="DRY_RUN=false contradicts FUNCTION_LOCAL_MODE"):
        app_from_env({"DRY_RUN": "false", "FUNCTION_LOCAL_MODE": "dry-run-only"})
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(SettingsError, match="FUNCTION_SIGNING_KEY="):
        app_from_env({**base, "FUNCTION_SIGNING_KEY": str(tmp_path / "bad.pem")})
    two = ",".join(str(tmp_path / "keys" / d / "current.pem") for d in ("agent-public-keys", "function-public-keys"))
    extra = tmp_path / "third.pem"
    extra.write_bytes(signing.public_pem(ATTACKER.public))
    app_from_env({**base, "AGENT_PUBLIC_KEYS": two})  # two keys at once: rotation
    with pytest.raises(SettingsError, match="AGENT_PUBLIC_KEYS=.*at most 2"):
        app_from_env({**base, "AGENT_PUBLIC_KEYS": f"{two},{extra}"})


def test_local_mode_serves_without_keys_but_only_dry_runs(cluster, tmp_path):
    deployment_chain(cluster)
    env = {"FUNCTION_LOCAL_MODE": "dry-run-only", "KUBECONFIG": cluster.kubeconfig}
    with serve_asgi(app_from_env(env)) as url:
        assert httpx.get(url + "/readyz").json()["signed"] is False
        data = parse(send(url, trigger(id="l-1", dry_run=False))).get_data()
    assert data["status"] == "success" and data["dry_run"] is True
    assert [w.params for w in cluster.writes()] == [{"dryRun": "All"}]


def test_the_functions_audit_records_refusals_and_results_and_verifies(cluster, tmp_path):
    deployment_chain(cluster)
    _, fn = key_files(tmp_path / "keys")
    state = tmp_path / "state"
    # (VERIFY_WAIT_SECONDS=0: KMock runs no controller to replace the pod; the watch would only wait)
    env = {"STATE_DIR": str(state), "DRY_RUN": "false", "KUBECONFIG": cluster.kubeconfig, "VERIFY_WAIT_SECONDS": "0",
           **fn}
    with serve_asgi(app_from_env(env)) as url:
        assert send(url, trigger(id="u-1")).status_code == 401
        assert send(url, by_agent(attack(id="k-1"))).status_code == 401  # not this deployment's agent key
        assert send(url, signing.sign(trigger(id="ok-1", dry_run=False), _agent_key(tmp_path))).status_code == 200
    log = state / "functions-audit.jsonl"
    recs = list(audit.read(log))
    assert [(r["kind"], r["data"].get("reason") or r["data"].get("status")) for r in recs] == [
        ("refused", "unsigned"), ("refused", "unknown-key"), ("result", "success")]
    ring = signing.KeyRing.load(str(tmp_path / "keys" / "function-public-keys"))
    hmac_key = audit.load_key(fn["AUDIT_HMAC_KEY"])
    res = audit.verify(log, key=hmac_key, ring=ring, require_checkpoint=True)
    assert res.ok, res.summary()
    # a trigger answered before a restart is still answered, not acted on again (the id store is on disk)
    with serve_asgi(app_from_env(env)) as url:
        again = parse(send(url, signing.sign(trigger(id="ok-1", dry_run=False), _agent_key(tmp_path))))
    assert again.get_data()["status"] == "success"
    assert len([w for w in cluster.writes()]) == 1


def _agent_key(tmp_path):
    return signing.SigningKey.load(tmp_path / "keys" / "agent-signing-key" / "agent.pem")
