"""The decision path over real HTTP: webhook / CloudEvent in, trigger CloudEvent out at a real sink."""

import json

import httpx
import pytest

from agent_sre import ce
from agent_sre.agent import Agent
from agent_sre.broker import HTTPBroker
from agent_sre.chain.annotations import AnnotationStage
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.events import TRIGGER
from agent_sre.server import create_app
from tests.helpers import EventSink, serve_asgi

FLUX = {"status": "firing", "fingerprint": "abc123", "startsAt": "2026-11-25T08:00:00Z",
        "labels": {"alertname": "FluxReconciliationFailure", "kind": "HelmRelease", "name": "grafana",
                   "exported_namespace": "monitoring", "namespace": "flux-system", "severity": "warning"},
        "annotations": {"summary": "HelmRelease monitoring/grafana failed"}}
CRASH = {"status": "firing", "fingerprint": "def456", "startsAt": "2026-11-25T08:00:00Z",
         "labels": {"alertname": "PodCrashLoopBackOff", "namespace": "media", "pod": "jellyfin-5c8-abcde"},
         "annotations": {}}
RESOLVED = {**CRASH, "status": "resolved", "fingerprint": "0ff"}


def webhook(*alerts):
    return {"version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": "k",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "alerts": list(alerts)}


@pytest.fixture()
def running():
    with EventSink() as sink:
        agent = Agent(chain=Chain([AnnotationStage(), RuleStage()]), broker=HTTPBroker(sink.url), dry_run=True)
        with serve_asgi(create_app(agent)) as url:
            yield url, sink


def triggers(sink):
    out = []
    for headers, body in sink.requests:
        ev = ce.from_http(headers, body)
        if ev.get_type() == TRIGGER:
            out.append((headers, ev))
    return out


def test_webhook_in_trigger_cloudevent_out(running):
    url, sink = running
    r = httpx.post(url + "/webhook", json=webhook(FLUX, CRASH, RESOLVED))
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 3
    got = triggers(sink)
    assert len(got) == 2  # the resolved alert triggers nothing
    headers, ev = got[0]
    # binary content mode: attributes in ce- headers, data as the body
    assert headers["ce-type"] == TRIGGER and headers["ce-source"] == "/agent-sre/remediation"
    assert headers["ce-lambdafunction"] == "flux-reconcile-helmrelease"
    assert headers["content-type"].startswith("application/json")
    data = ce.data_of(ev)
    assert data["lambda_function"] == "flux-reconcile-helmrelease"
    assert data["parameters"] == {"name": "grafana", "namespace": "monitoring"}
    assert data["alert"]["labels"]["name"] == "grafana"
    for key in ("plan", "reasoning", "confidence", "triggered_by", "correlation_id"):
        assert key in data
    assert data["plan"][0]["lambda_function"] == "flux-reconcile-helmrelease"
    assert ce.data_of(got[1][1])["parameters"] == {"name": "jellyfin-5c8-abcde", "namespace": "media", "type": "pod"}


def test_binary_mode_cloudevent_in(running):
    url, sink = running
    ev = ce.make_event("io.homelab.prometheus.alert.fired", "prometheus/alertmanager/agent-sre", webhook(CRASH))
    headers, body = ce.to_binary(ev)
    r = httpx.post(url + "/", headers=headers, content=body)
    assert r.status_code == 202, r.text
    [(h, trig)] = triggers(sink)
    assert h["ce-lambdafunction"] == "pod-restart"
    assert ce.data_of(trig)["parameters"]["name"] == "jellyfin-5c8-abcde"


def test_structured_mode_single_alert_and_resolved_type(running):
    url, sink = running
    ev = ce.make_event("io.homelab.prometheus.alert.fired", "prometheus/alertmanager/x", FLUX)
    headers, body = ce.to_structured(ev)
    assert httpx.post(url + "/", headers=headers, content=body).status_code == 202
    # A .resolved event never triggers, even if its data claims to be firing.
    ev = ce.make_event("io.homelab.prometheus.alert.resolved", "prometheus/alertmanager/x", CRASH)
    headers, body = ce.to_binary(ev)
    r = httpx.post(url + "/", headers=headers, content=body)
    assert r.status_code == 202
    assert r.json()["outcomes"][0]["decision"]["lambda_function"] is None
    assert [h["ce-lambdafunction"] for h, _ in triggers(sink)] == ["flux-reconcile-helmrelease"]


def test_same_alert_gives_the_same_event_id(running):
    url, sink = running
    first = httpx.post(url + "/webhook", json=webhook(CRASH)).json()
    again = httpx.post(url + "/webhook", json=webhook(CRASH)).json()
    # one agent sends an event id once: the second webhook names the same trigger and sends nothing
    assert again["outcomes"][0]["events"] == first["outcomes"][0]["events"]
    assert len(triggers(sink)) == 1
    # another agent (a restart, a replica) derives the same id for the same alert occurrence
    other = Agent(chain=Chain([AnnotationStage(), RuleStage()]), broker=HTTPBroker(sink.url), dry_run=True)
    with serve_asgi(create_app(other)) as url2:
        httpx.post(url2 + "/webhook", json=webhook(CRASH))
    ids = [ev.get_id() for _, ev in triggers(sink)]
    assert len(ids) == 2 and ids[0] == ids[1]


@pytest.mark.parametrize("headers,body,why", [
    ({"content-type": "application/json"}, b"{oops", "not valid JSON"),
    ({"content-type": "application/json"}, json.dumps({"version": "4", "alerts": []}).encode(), "alerts"),
    ({"ce-type": "io.homelab.prometheus.alert.fired", "ce-specversion": "1.0", "ce-id": "1",
      "content-type": "application/json"}, b"{}", "source"),
    ({"ce-type": "com.example.other", "ce-source": "/x", "ce-specversion": "1.0", "ce-id": "1",
      "content-type": "application/json"}, b"{}", "unsupported CloudEvent type"),
    ({"ce-type": "io.homelab.prometheus.alert.fired", "ce-source": "/x", "ce-specversion": "1.0", "ce-id": "1",
      "content-type": "application/json"}, b"", "no data"),
    ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0"', "not a valid CloudEvent"),
])
def test_malformed_requests_get_4xx_with_reason(running, headers, body, why):
    url, sink = running
    r = httpx.post(url + "/", headers=headers, content=body)
    assert 400 <= r.status_code < 500
    assert why in r.json()["error"]
    assert sink.requests == []


def test_health_and_metrics(running):
    url, _ = running
    assert httpx.get(url + "/healthz").json()["status"] == "ok"
    httpx.post(url + "/webhook", json=webhook(CRASH))
    m = httpx.get(url + "/metrics").text
    assert 'agent_sre_decisions_total{function="pod-restart",method="rule_based"} 1.0' in m
