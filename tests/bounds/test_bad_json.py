"""JSON that cannot be parsed, of any depth or size, gets a 400 with the reason on every JSON endpoint
of the three services (agent, functions, trm-reasoning), never a 500; the service answers the next
request normally. Real HTTP on loopback."""

from __future__ import annotations

import json

import httpx
import pytest

from agent_sre.agent import Agent
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.functions.app import create_app as function_app
from agent_sre.functions.runner import Runner
from agent_sre.functions.store import MemoryStore
from agent_sre.reasoning.service import create_app as reasoning_app
from agent_sre.server import create_app as agent_app
from agent_sre.settings import FunctionSettings
from tests.gate.support import Recorder
from tests.helpers import serve_asgi

ALERT = b'{"labels": {"alertname": "X"}, "x": '
BAD = {
    "nested 5,000": b'{"alerts": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "nested 200,000 unclosed": b"[" * 200_000,
    "5,000-digit integer": b'{"version": "4", "alerts": [], "x": ' + b"9" * 5000 + b"}",
    "100,000-digit integer": ALERT + b"1" * 100_000 + b"}",
    "not UTF-8": b'{"alerts": ["\xff\xfe"]}',
    "truncated": b'{"alerts": [{"labels": {"alertname": "X"',
    "NaN-like garbage": b"{nan: [}",
}
CE = {"ce-specversion": "1.0", "ce-id": "bad-json-1", "ce-source": "/test",
      "content-type": "application/json"}
ALERT_CE = {**CE, "ce-type": "io.homelab.prometheus.alert.fired"}
TRIGGER_CE = {**CE, "ce-type": "io.homelab.agent-sre.lambda.trigger", "ce-lambdafunction": "pod-check-status"}
STRUCTURED = {"content-type": "application/cloudevents+json"}


def structured(payload: bytes, type_: str) -> bytes:
    head = json.dumps({"specversion": "1.0", "id": "s-1", "source": "/test", "type": type_,
                       "datacontenttype": "application/json"})
    return head[:-1].encode() + b', "data": ' + payload + b"}"


@pytest.fixture(scope="module")
def agent_url():
    agent = Agent(chain=Chain([RuleStage()]), broker=Recorder(), dry_run=True)
    with serve_asgi(agent_app(agent)) as url:
        yield url


@pytest.fixture(scope="module")
def function_url():
    runner = Runner(FunctionSettings(dry_run=True), api_client=None, store=MemoryStore())
    with serve_asgi(function_app(runner=runner, sink="")) as url:
        yield url


@pytest.fixture(scope="module")
def reasoning_url():
    with serve_asgi(reasoning_app()) as url:  # the shipped model
        yield url


def check(url: str, path: str, body: bytes, headers: dict[str, str]) -> None:
    r = httpx.post(url + path, content=body, headers=headers, timeout=30)
    assert r.status_code == 400, (path, r.status_code, r.text[:300])
    assert r.json(), r.text  # a reason, as JSON
    assert httpx.get(url + "/healthz").status_code == 200


@pytest.mark.parametrize("name", BAD)
def test_agent(agent_url, name):
    body = BAD[name]
    check(agent_url, "/webhook", body, {"content-type": "application/json"})
    check(agent_url, "/", body, {"content-type": "application/json"})  # a webhook posted to /
    check(agent_url, "/", body, ALERT_CE)  # binary-mode CloudEvent data
    check(agent_url, "/", structured(body, ALERT_CE["ce-type"]), STRUCTURED)
    check(agent_url, "/dead-letter", structured(body, TRIGGER_CE["ce-type"])[:60_000], STRUCTURED)


@pytest.mark.parametrize("name", BAD)
def test_functions(function_url, name):
    body = BAD[name]
    check(function_url, "/", body, TRIGGER_CE)
    check(function_url, "/", structured(body, TRIGGER_CE["ce-type"]), STRUCTURED)


@pytest.mark.parametrize("name", BAD)
def test_reasoning(reasoning_url, name):
    body = BAD[name]
    check(reasoning_url, "/v1/decide", body, {"content-type": "application/json"})
    check(reasoning_url, "/v1/decide/batch", body, {"content-type": "application/json"})
