"""The embedded default: the README's demo runs the whole flow with no cluster and no network."""

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "agent-sre"


def test_demo_shows_the_whole_flow_in_dry_run():
    env = {**os.environ, "BROKER_URL": "", "KUBECONFIG": ""}
    p = subprocess.run([str(BIN), "demo", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert len(rows) == 9

    helm = next(r for r in rows if r["decision"]["lambda_function"] == "flux-reconcile-helmrelease")
    assert helm["decision"]["parameters"] == {"name": "grafana", "namespace": "monitoring"}
    [res] = helm["results"]
    assert res["status"] == "success" and res["dry_run"] is True
    req = res["details"]["request"]
    assert req["method"] == "PATCH" and req["sent"] is False
    assert req["path"].endswith("/namespaces/monitoring/helmreleases/grafana")
    assert "reconcile.fluxcd.io/requestedAt" in req["body"]["metadata"]["annotations"]

    static = next(r for r in rows if r["alertname"] == "WebsiteCertificateReload")
    assert static["decision"]["method"] == "static_annotation"
    assert static["results"][0]["details"]["request"]["body"]["spec"]["template"]["metadata"]["annotations"]

    # A coredns crash loop is decided but the gate refuses a restart in kube-system and escalates.
    core = next(r for r in rows if r["decision"]["parameters"].get("namespace") == "kube-system")
    assert core["verdict"]["allowed"] is False
    assert [e["type"] for e in core["events"]] == ["io.homelab.agent-sre.escalation"]

    resolved = next(r for r in rows if r["status"] == "resolved")
    assert resolved["decision"]["lambda_function"] is None and resolved["events"] == []

    unknown = next(r for r in rows if r["alertname"] == "NodeFilesystemAlmostOutOfSpace")
    assert unknown["decision"]["lambda_function"] is None
    assert [e["type"] for e in unknown["events"]] == ["io.homelab.agent-sre.escalation"]


def test_demo_report_is_readable():
    env = {**os.environ, "BROKER_URL": "", "KUBECONFIG": "", "COLUMNS": "120"}
    p = subprocess.run([str(BIN), "demo"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert "would send" in p.stdout and "gate" in p.stdout and "refused" in p.stdout


def test_the_embedded_broker_answers_with_the_functions_result_events():
    from agent_sre.agent import Agent
    from agent_sre.alerts import parse_payload
    from agent_sre.broker import InProcessBroker
    from agent_sre.chain.chain import Chain
    from agent_sre.chain.rules import RuleStage
    from agent_sre.events import COMPLETED, result_id

    broker = InProcessBroker()
    [a] = parse_payload({"labels": {"alertname": "FluxHelmReleaseFailing", "kind": "HelmRelease", "name": "loki",
                                    "exported_namespace": "logging", "namespace": "flux-system"}})
    [out] = Agent(chain=Chain([RuleStage()]), broker=broker, dry_run=True).handle_alerts([a])
    [trigger], [reply] = broker.sent, broker.replies
    assert reply.get_type() == COMPLETED and reply.get_id() == result_id(trigger.get_id())
    assert reply.get_source() == "/agent-sre/functions/flux-reconcile-helmrelease"
    assert reply.get_attributes()["subject"] == "HelmRelease/logging/loki"
    assert reply.get_attributes()["correlationid"] == trigger.get_attributes()["correlationid"]
    assert out.results == [reply.get_data()]
