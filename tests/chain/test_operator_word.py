"""The operator's word wins: a runbook entry the user adds decides its alert in the default chain
(before the TRM and the LLM), over `agent-sre select` and over a running `agent-sre serve`, and
an entry added while the agent runs takes effect with the next alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import httpx
import pytest

from agent_sre.alerts import parse_payload
from agent_sre.chain.chain import Chain, build_stages
from agent_sre.decision import Method
from tests.e2e import harness

AGENT_SRE = Path(sys.executable).parent / "agent-sre"
PACKAGED = Path(str(resources.files("agent_sre") / "data" / "runbook.yaml")).read_text()


def entry(name: str, label: str, kind: str) -> str:
    return f"""
  - alert: {name}
    description: The app hangs; a restart of its {kind} clears it.
    when:
      - match: {{}}
        plan:
          - function: pod-restart
            parameters:
              name: [{label}]
              namespace: [namespace]
              type: {{value: {kind}}}
"""


STUCK = {"alertname": "MyAppStuck", "deployment": "myapp", "namespace": "apps", "severity": "warning",
         "job": "kube-state-metrics", "instance": "10.42.3.17:8080"}
WANT = ("pod-restart", {"name": "myapp", "namespace": "apps", "type": "deployment"})


@pytest.fixture
def user_runbook(tmp_path, monkeypatch):
    p = tmp_path / "runbook.yaml"
    p.write_text(PACKAGED + entry("MyAppStuck", "deployment", "deployment"))
    monkeypatch.setenv("RUNBOOK_PATH", str(p))
    return p


def test_default_chain_asks_the_runbook_before_the_models(user_runbook, monkeypatch):
    monkeypatch.delenv("LLM_URL", raising=False)
    assert [s.name for s in build_stages()] == ["annotations", "rules", "trm"]
    monkeypatch.setenv("LLM_URL", "http://127.0.0.1:9/v1")
    assert [s.name for s in build_stages()] == ["annotations", "rules", "trm", "llm"]
    monkeypatch.delenv("LLM_URL")
    [a] = parse_payload({"labels": STUCK})
    d = Chain().decide(a)
    assert (d.lambda_function, d.parameters, d.method) == (*WANT, Method.RULES)
    assert d.fallthrough == ["annotations: no lambda_function annotation"]


def test_an_alert_the_runbook_does_not_name_is_left_to_the_models(user_runbook, monkeypatch):
    monkeypatch.delenv("LLM_URL", raising=False)
    [a] = parse_payload({"labels": {**STUCK, "alertname": "SomethingElse"}})
    d = Chain().decide(a)
    assert d.method in (Method.TRM, Method.NONE)
    assert "rules: no runbook entry for SomethingElse" in d.fallthrough


def test_select_follows_the_users_runbook(user_runbook):
    out = subprocess.run([str(AGENT_SRE), "select", json.dumps({"labels": STUCK})], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "RUNBOOK_PATH": str(user_runbook)})
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout.strip().splitlines()[-1])
    assert (d["lambda_function"], d["parameters"], d["method"]) == (*WANT, "rule_based")


@pytest.mark.slow
def test_serve_follows_the_users_runbook_and_a_new_entry_at_once(user_runbook, tmp_path):
    port = harness.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "BROKER", "AUTH", "REDIS"))}
    proc = harness.start_process("agent", [str(AGENT_SRE), "serve"], tmp_path, env={
        **env, "PORT": str(port), "HOST": "127.0.0.1", "STATE_DIR": str(tmp_path / "state"),
        "RUNBOOK_PATH": str(user_runbook), "DRY_RUN": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        harness.wait_until(lambda: _ready(proc, url), 60, what="agent ready")

        def decide(labels: dict[str, str]) -> dict:
            hook = {"version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": "{}:{}",
                    "alerts": [{"status": "firing", "labels": labels, "annotations": {},
                                "startsAt": "2026-11-29T10:00:00Z", "fingerprint": labels["alertname"][:16]}]}
            r = httpx.post(f"{url}/webhook", json=hook, timeout=30)
            assert r.status_code == 202, r.text
            [o] = r.json()["outcomes"]
            return o["decision"]

        d = decide(STUCK)
        assert (d["lambda_function"], d["parameters"], d["method"]) == (*WANT, "rule_based")
        # A second entry, written while the agent runs, decides the next alert.
        time.sleep(0.05)  # a distinct modification time on coarse file systems
        user_runbook.write_text(user_runbook.read_text() + entry("MyAppWedged", "statefulset", "statefulset"))
        d = decide({"alertname": "MyAppWedged", "statefulset": "db", "namespace": "apps"})
        assert (d["lambda_function"], d["parameters"], d["method"]) == (
            "pod-restart", {"name": "db", "namespace": "apps", "type": "statefulset"}, "rule_based")
    finally:
        proc.stop()


def _ready(proc: harness.Process, url: str) -> bool:
    if proc.proc.poll() is not None:
        raise RuntimeError(f"agent exited with {proc.proc.returncode}:\n{proc.tail()}")
    return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
