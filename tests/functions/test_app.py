"""The functions' CloudEvents app over real HTTP (uvicorn on loopback), against KMock."""

from __future__ import annotations

import json

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from agent_sre.functions.app import create_app
from agent_sre.events import result_id
from tests.helpers import EventSink, serve_asgi
from tests.keys import by_agent, function_trust

from .test_pods import PODS, deployment_chain

TRIGGER = "io.homelab.agent-sre.lambda.trigger"


def trigger(fn="pod-restart", params=None, *, id="trig-1", dry_run=False, corr="corr-42", ext_fn=None, **over):
    data = {"lambda_function": fn, "parameters": params if params is not None else
            {"name": "web-7d9f-abcde", "namespace": "shop", "type": "pod"},
            "plan": [], "alert": {"labels": {"alertname": "PodCrashLooping"}}, "reasoning": "test",
            "confidence": 1.0, "triggered_by": "agent-sre/test", "correlation_id": corr, "dry_run": dry_run,
            "step": 0}
    data.update(over)
    attrs = {"type": TRIGGER, "source": "/agent-sre/remediation", "id": id, "datacontenttype": "application/json",
             "lambdafunction": ext_fn or fn, "correlationid": corr}
    return CloudEvent(attrs, data)


def post(url, event, structured=False, path="/", signed=True):
    """POST ``event``, signed by the agent's key unless ``signed`` is false."""
    event = by_agent(event) if signed else event
    msg = to_structured_event(event) if structured else to_binary_event(event)
    return httpx.post(url + path, headers=msg.headers, content=msg.body, timeout=20)


def parse(resp):
    return from_http_event(HTTPMessage(headers={k.lower(): v for k, v in resp.headers.items()}, body=resp.content))


@pytest.fixture
def served(runner):
    with serve_asgi(create_app(runner=runner, sink="", trust=function_trust())) as url:
        yield url


def test_binary_trigger_acts_and_replies_with_result_event_and_sink(cluster, runner):
    deployment_chain(cluster)
    with EventSink() as sink, serve_asgi(create_app(runner=runner, sink=sink.url, trust=function_trust())) as url:
        r = post(url, trigger())
        assert r.status_code == 200, r.text
        assert r.headers["ce-type"] == "io.homelab.agent-sre.lambda.completed"  # binary mode reply
        ev = parse(r)
        assert ev.get_source() == "/agent-sre/functions/pod-restart"
        assert ev.get_id() == result_id("trig-1")
        assert ev.get_extension("correlationid") == "corr-42"
        data = ev.get_data()
        assert data["status"] == "success" and data["correlation_id"] == "corr-42" and data["dry_run"] is False
        assert data["action"] == "restart"
        assert data["target"] == {"kind": "Pod", "namespace": "shop", "name": "web-7d9f-abcde"}
        assert set(data) >= {"status", "action", "target", "message", "details", "dry_run"}
        [(headers, body)] = sink.wait_for(1)
        assert headers["ce-id"] == ev.get_id() and json.loads(body) == data
    assert cluster.get(PODS, "shop", "web-7d9f-abcde") is None
    assert [str(w.method.value).upper() for w in cluster.writes()] == ["DELETE"]


def test_structured_trigger_and_refusal_is_a_failed_event(cluster, served):
    cluster.add(PODS, "shop", {"metadata": {"name": "bare"}, "spec": {}, "status": {"phase": "Running"}})
    r = post(served, trigger(params={"name": "bare", "namespace": "shop"}, id="t-bare"), structured=True)
    assert r.status_code == 200
    ev = parse(r)
    assert ev.get_type() == "io.homelab.agent-sre.lambda.failed"
    assert ev.get_data()["status"] == "refused"
    assert cluster.writes() == []


def test_same_trigger_id_twice_acts_once(cluster, served):
    deployment_chain(cluster)
    first = parse(post(served, trigger(id="dup")))
    second = parse(post(served, trigger(id="dup")))
    assert first.get_data() == second.get_data()
    assert first.get_id() == second.get_id()
    assert len([w for w in cluster.writes()]) == 1  # one DELETE reached the cluster
    gets = [r for r in cluster.requests("GET") if r.url.path.endswith("/pods/web-7d9f-abcde")]
    assert len(gets) == 1  # the second delivery did not even look


def test_trigger_dry_run_flag_sends_dry_run_to_server(cluster, served):
    deployment_chain(cluster)
    data = parse(post(served, trigger(id="dry", dry_run=True))).get_data()
    assert data["dry_run"] is True
    assert data["details"]["request"]["query"] == {"dryRun": "All"}
    assert [w.params for w in cluster.writes()] == [{"dryRun": "All"}]
    assert cluster.get(PODS, "shop", "web-7d9f-abcde") is not None


def test_query_setting_override_with_source(cluster, served):
    cluster.add("kustomize.toolkit.fluxcd.io/v1/kustomizations", "flux-system", {
        "metadata": {"name": "apps"}, "spec": {"sourceRef": {"kind": "GitRepository", "name": "fleet"}}})
    cluster.add("source.toolkit.fluxcd.io/v1/gitrepositories", "flux-system", {"metadata": {"name": "fleet"}})
    ev = trigger("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, id="ks", dry_run=True)
    data = parse(post(served, ev, path="/?with_source=true")).get_data()
    assert data["status"] == "success", data
    assert [w.url.path.rsplit("/", 2)[-2] for w in cluster.writes()] == ["gitrepositories", "kustomizations"]


@pytest.mark.parametrize("value", ["enabled", "", "maybe", 2, ["false"], {"x": 1}])
def test_a_trigger_whose_dry_run_is_not_a_boolean_is_refused_never_run(cluster, served, value):
    deployment_chain(cluster)
    r = post(served, trigger(id=f"odd-{value!r}", dry_run=value))
    assert r.status_code == 400 and r.json()["error"] == "malformed" and "dry_run" in r.json()["message"]
    assert cluster.writes() == []


@pytest.mark.parametrize("value,dry", [("false", False), ("FALSE", False), ("0", False), ("off", False),
                                       ("true", True), ("yes", True)])
def test_trigger_dry_run_strings_are_read_like_every_other_flag(cluster, served, value, dry):
    deployment_chain(cluster)
    data = parse(post(served, trigger(id=f"s-{value}", dry_run=value))).get_data()
    assert data["status"] == "success" and data["dry_run"] is dry


def test_a_query_override_that_is_not_a_boolean_is_refused(cluster, served):
    ev = trigger("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, id="q", dry_run=True)
    r = post(served, ev, path="/?with_source=perhaps")
    assert r.status_code == 400 and "with_source" in r.json()["message"]
    assert cluster.writes() == []


def test_a_body_over_the_limit_is_refused(runner):
    with serve_asgi(create_app(runner=runner, sink="", max_body=2048, trust=function_trust())) as url:
        ev = trigger(id="big", reasoning="x" * 4096)
        r = post(url, ev)
        assert r.status_code == 413 and r.json()["error"] == "too-large"


@pytest.mark.parametrize("case,status,reason", [
    ("not-json", 400, "malformed"),
    ("no-ce", 400, "malformed"),
    ("wrong-type", 400, "wrong-type"),
    ("unknown-fn", 404, "unknown-function"),
    ("mismatch", 400, "malformed"),
    ("bad-params", 422, "invalid-parameters"),
    ("data-not-object", 400, "malformed"),
])
def test_bad_events_are_refused_with_4xx(cluster, served, case, status, reason):
    if case == "not-json":
        r = httpx.post(served + "/", headers={"content-type": "application/cloudevents+json"}, content=b"{nope")
    elif case == "no-ce":
        r = httpx.post(served + "/", json={"hello": "world"})
    elif case == "wrong-type":
        ev = trigger()
        ev = CloudEvent({**ev.get_attributes(), "type": "io.homelab.other"}, ev.get_data())
        r = post(served, ev)
    elif case == "unknown-fn":
        r = post(served, trigger("rm-rf", {"name": "x"}))
    elif case == "mismatch":
        r = post(served, trigger(ext_fn="check-pvc-status"))
    elif case == "bad-params":
        r = post(served, trigger(params={"name": "Not_A_Name!", "namespace": "shop"}))
    else:
        ev = trigger()
        r = post(served, CloudEvent(ev.get_attributes(), b'["just", "a", "list"]'))
    assert r.status_code == status, r.text
    assert r.json()["error"] == reason
    assert cluster.writes() == []


def test_single_function_service_refuses_others(cluster, runner):
    with serve_asgi(create_app("check-pvc-status", runner=runner, sink="", trust=function_trust())) as url:
        r = post(url, trigger())
        assert r.status_code == 404 and "serves only check-pvc-status" in r.json()["message"]
    with pytest.raises(Exception):
        create_app("no-such-function", runner=runner, trust=function_trust())


def test_health_ready_metrics(cluster, served):
    deployment_chain(cluster)
    assert httpx.get(served + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(served + "/readyz")
    assert ready.status_code == 200 and ready.json()["cluster"] == "cluster"
    post(served, trigger(id="m1"))
    post(served, trigger(id="m1"))
    text = httpx.get(served + "/metrics").text
    assert 'agent_sre_function_results_total{function="pod-restart",status="success"}' in text
    assert 'agent_sre_function_duration_seconds_count{function="pod-restart"}' in text
    assert 'agent_sre_function_duplicate_triggers_total{function="pod-restart"}' in text


def test_readyz_not_ready_without_cluster_outside_dry_run():
    from agent_sre.settings import FunctionSettings
    from agent_sre.functions.runner import Runner
    app = create_app(runner=Runner(FunctionSettings(dry_run=False), api_client=None), sink="",
                     trust=function_trust())
    with serve_asgi(app) as url:
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and r.json()["cluster"] == "offline"
        # and a trigger is answered with an error result, not acted on
        data = parse(post(url, trigger(id="off"))).get_data()
        assert data["status"] == "error" and "cluster is required" in data["message"]


def test_concurrent_duplicate_deliveries_act_once(cluster, served):
    """Knative may deliver the same trigger twice at once (retries overlapping a slow first try)."""
    import concurrent.futures

    deployment_chain(cluster)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: parse(post(served, trigger(id="race"))).get_data(), range(4)))
    assert all(r == replies[0] for r in replies) and replies[0]["status"] == "success"
    assert len(cluster.writes()) == 1
