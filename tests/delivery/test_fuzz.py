"""Malformed input, fuzzed with hypothesis against the running HTTP service: never a 5xx, and
nothing that is not an accepted alert reaches the broker."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sre.agent import Agent
from agent_sre.audit import Audit
from agent_sre.broker import HTTPBroker
from agent_sre.chain.annotations import AnnotationStage
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.gate import Gate
from agent_sre.outbox import Outbox, Retry
from agent_sre.server import create_app
from agent_sre.state import SQLiteState
from tests.delivery.sinks import StatusSink
from tests.helpers import serve_asgi


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    sink = StatusSink()
    agent = Agent(chain=Chain([AnnotationStage(), RuleStage()]), broker=HTTPBroker(sink.url),
                  gate=Gate(state=SQLiteState(tmp / "state.db")), outbox=Outbox(tmp / "outbox.db"),
                  audit=Audit(tmp / "audit.jsonl"), retry=Retry(0.05, 0.2, 3), poll_s=0.05)
    with serve_asgi(create_app(agent)) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client, agent
    sink.close()


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=40), st.sampled_from(["firing", "resolved", "4", "", "pod-restart",
                                                            "kube-system", "{{ $labels.pod }}"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                           max_leaves=20)
label_maps = st.dictionaries(st.sampled_from(["alertname", "namespace", "pod", "name", "kind", "job", "severity",
                                              "exported_namespace", "persistentvolumeclaim", "x"]),
                             st.one_of(st.text(max_size=30), json_values), max_size=6)
alerts = st.fixed_dictionaries({}, optional={
    "status": st.one_of(st.sampled_from(["firing", "resolved", "FIRING", "weird"]), json_values),
    "labels": st.one_of(label_maps, json_values),
    "annotations": st.one_of(st.dictionaries(st.sampled_from(["lambda_function", "lambda_parameters", "summary"]),
                                             st.one_of(st.text(max_size=60), json_values), max_size=3),
                             json_values),
    "startsAt": st.one_of(st.text(max_size=30), json_values),
    "fingerprint": st.one_of(st.text(max_size=20), json_values),
})
webhooks = st.fixed_dictionaries({"alerts": st.one_of(st.lists(alerts, max_size=4), json_values)}, optional={
    "version": st.one_of(st.just("4"), json_values), "status": json_values, "groupKey": json_values,
    "commonLabels": st.one_of(label_maps, json_values), "commonAnnotations": json_values,
    "truncatedAlerts": json_values, "receiver": json_values})
bodies = st.one_of(webhooks.map(lambda d: json.dumps(d).encode()), alerts.map(lambda d: json.dumps(d).encode()),
                   json_values.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200))
ce_headers = st.fixed_dictionaries({}, optional={
    "ce-type": st.sampled_from(["io.homelab.prometheus.alert.fired", "io.homelab.prometheus.alert.resolved",
                                "io.homelab.agent-sre.lambda.completed", "io.homelab.agent-sre.lambda.failed",
                                "x", ""]),
    "ce-specversion": st.sampled_from(["1.0", "0.3", "", "2"]),
    "ce-id": st.text("abc123", max_size=8), "ce-source": st.sampled_from(["/x", "", "am"]),
    "content-type": st.sampled_from(["application/json", "application/cloudevents+json",
                                     "application/cloudevents-batch+json", "text/plain", ""]),
})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(path=st.sampled_from(["/", "/webhook"]), headers=ce_headers, body=bodies)
def test_fuzzed_requests_never_get_a_5xx(service, path, headers, body):
    client, _ = service
    r = client.post(path, content=body, headers={k: v for k, v in headers.items() if v is not None})
    assert r.status_code < 500, (r.status_code, r.text[:300])
    # 401: a result event that is not signed by the functions (none of these is)
    assert r.status_code in (202, 400, 413, 415, 422) or (
        r.status_code == 401 and r.json()["error"] in ("unsigned", "bad-signature", "unknown-key")), r.status_code
    if r.status_code >= 400:
        assert r.json()["error"]  # every refusal says why


def test_after_the_fuzzing_the_service_is_consistent(service):
    client, agent = service
    st_ = agent.outbox.stats()
    assert st_["inbox"].get("dead", 0) == 0 and st_["inbox"].get("pending", 0) == 0
    assert client.get("/healthz").status_code == 200
