"""JSON that cannot be parsed, of any depth or size, gets a 400 with the reason on every JSON endpoint
of the three services (agent, functions, trm-reasoning), never a 500; the service answers the next
request normally. Real HTTP on loopback; the functions as the real `serve-function` process (in its
keyless dry-run-only mode, where a trigger's body is parsed before anything else)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from agent_sre.agent import Agent
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.reasoning.service import create_app as reasoning_app
from agent_sre.server import create_app as agent_app
from tests.gate.support import Recorder
from tests.helpers import free_port, serve_asgi, wait_http

TOKEN = "s3cret"  # the agent's intake token: dead letters that are not signed need it

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
    with serve_asgi(agent_app(agent, auth_token=TOKEN)) as url:
        yield url


@pytest.fixture(scope="module")
def function_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("function")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning", "DRY_RUN": "true",
           "FUNCTION_LOCAL_MODE": "dry-run-only", "STATE_DIR": str(tmp)}
    for var in ("KUBECONFIG", "BROKER_URL", "K_SINK", "RESULT_SINK"):
        env.pop(var, None)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("agent-sre")), "serve-function"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", 60)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="module")
def reasoning_url():
    with serve_asgi(reasoning_app()) as url:  # the shipped model
        yield url


def check(url: str, path: str, body: bytes, headers: dict[str, str]) -> None:
    r = httpx.post(url + path, content=body, headers={**headers, "authorization": f"Bearer {TOKEN}"}, timeout=30)
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
