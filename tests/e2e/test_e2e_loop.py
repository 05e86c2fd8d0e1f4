"""The closed loop end to end on loopback, every component real but the cluster (KMock):

    exporter --> Prometheus 2.42 --> Alertmanager 0.25 --webhook--> `agent-sre serve` (execute)
        --trigger--> broker relay --> `agent-sre serve-function` (flux-reconcile-kustomization,
        DRY_RUN=false) --PATCH--> KMock (a tiny Flux controller sets Ready) --result--> agent

1. Three Kustomizations fail. The class FluxReconciliationFailure/flux-reconcile-kustomization
   has earned nothing: the agent asks; each suggestion is approved with `agent-sre approve`.
   The function reconciles on the API emulator; the test's exporter clears the condition once it
   sees the request; the alerts resolve in Alertmanager; the outcomes are `verified`.
2. The agent restarts: the ledger, the approvals and the class's mode are still there.
3. A fourth one runs in execute without asking, is verified; it fires again inside its decay
   window (the rule's window read from Prometheus and Alertmanager): suppressed, nothing runs.
4. A fifth one runs without asking but its condition never clears: after the window, still
   active in Alertmanager → `ineffective`, escalated into the real Alertmanager as an alert, and
   the class is demoted to suggest.
5. `agent-sre history` shows each result with its alert, message and the request sent;
   /metrics has the outcomes.

Run alone with ``pytest -m e2e``; the timeline is printed and written to ``$E2E_TIMELINE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e import harness
from tests.functions.kcluster import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
AGENT_SRE = Path(sys.executable).parent / "agent-sre"
FUNCTION = "flux-reconcile-kustomization"
CLASS = f"FluxReconciliationFailure/{FUNCTION}"
KS = "kustomize.toolkit.fluxcd.io/v1/kustomizations"
TRIGGER = "io.homelab.agent-sre.lambda.trigger"
TOKEN = "e2e-loop-token"
GRACE = 8  # seconds added to the rule's window (1 s evaluation + 1 s group interval here)


def kustomization(name: str) -> dict:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "generation": 1},
            "spec": {"interval": "10m", "path": f"./{name}", "sourceRef": {"kind": "GitRepository", "name": "home"}},
            "status": {"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "kustomize build failed"}]}}


def _serve(name: str, args: list[str], work: Path, env: dict[str, str], port: int | None = None):
    port = port or harness.free_port()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("KUBE", "LLM_", "REDIS", "BROKER", "AUTH", "AGENT_", "FUNCTION_", "AUDIT_"))}
    proc = harness.start_process(name, [str(AGENT_SRE), *args], work,
                                 env={**base, "PORT": str(port), "HOST": "127.0.0.1", **env})
    return proc, f"http://127.0.0.1:{port}"


def _healthy(p: harness.Process, url: str) -> bool:
    if p.proc.poll() is not None:
        raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}")
    return httpx.get(f"{url}/healthz", timeout=1).status_code == 200


def test_suggest_approve_verify_earn_and_demote(tmp_path, keyset):
    missing = harness.binaries_missing()
    assert not missing, f"{missing} missing: run .ci/install-system-deps.sh"
    agent_keys, function_keys = keyset  # signed triggers and results, a keyed audit log (execute needs them)
    t0 = time.monotonic()
    timeline: list[tuple[float, str]] = []

    def mark(what: str) -> None:
        timeline.append((round(time.monotonic() - t0, 2), what))

    state = tmp_path / "state"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    procs: list[harness.Process] = []
    stack = None
    cluster = Cluster(tmp_path)
    stop = threading.Event()
    ex = harness.Exporter().start()
    try:
        names = [f"app{i}" for i in range(1, 6)]
        for n in names:
            cluster.add(KS, "media", kustomization(n))
            ex.set_flux_ready("Kustomization", n, "media", ready=True)
        cluster.set_flux({"ready": "True", "delay": 0.05})

        fn_proc, fn_url = _serve("function", ["serve-function"], tmp_path, {
            "FUNCTION": FUNCTION, "DRY_RUN": "false", "KUBECONFIG": cluster.kubeconfig, "HOME": str(tmp_path),
            "FLUX_WAIT_SECONDS": "5", "FLUX_POLL_SECONDS": "0.1", "STATE_DIR": str(tmp_path / "function-state"),
            **function_keys})
        procs.append(fn_proc)
        docs = yaml.safe_load_all((REPO / "deploy" / "base" / "functions" / f"{FUNCTION}.yaml").read_text())
        trig = next(d for d in docs if d["kind"] == "Trigger")
        # The broker: triggers to the function as the Trigger filters say; every other event (approval
        # requests, outcomes, escalations) accepted with no subscriber, as a Knative broker does.
        others = harness.WebhookSink(status=202).start()
        to_function = harness.trigger_router([(trig["spec"]["filter"]["attributes"], fn_url)])
        broker = harness.Relay(lambda path, headers: to_function(path, headers) or others.url).start()
        agent_at = {"url": ""}
        wire = harness.Relay(lambda path, headers: agent_at["url"], keep_path=True).start()
        rules = harness.fast_rules(harness.load_rule_groups(), only={"FluxReconciliationFailure"})
        stack = harness.Stack(tmp_path / "stack", ex.url, wire.url + "/webhook", rules, token=TOKEN)
        stack.workdir.mkdir()
        policy = tmp_path / "policy.yaml"
        policy.write_text(yaml.safe_load((REPO / "deploy" / "base" / "agent-sre" / "policy.yaml").read_text())
                          ["data"]["policy.yaml"])
        agent_env = {
            "BROKER_URL": broker.url, "USE_TRM": "false", "DRY_RUN": "false", "AUTH_TOKEN": TOKEN,
            "POLICY_PATH": str(policy), "STATE_DIR": str(state), "RETRY_BASE_SECONDS": "0.2",
            "ALERTMANAGER_URL": stack.alertmanager_url, "PROMETHEUS_URL": stack.prometheus_url,
            "ESCALATE_ALERTMANAGER_URL": stack.alertmanager_url, "VERIFY_GRACE_SECONDS": str(GRACE),
            "VERIFY_POLL_SECONDS": "0.5", **agent_keys}
        agent_port = harness.free_port()

        def start_agent():
            p, url = _serve("agent", ["serve"], tmp_path, {**agent_env, "EXTERNAL_URL": f"http://127.0.0.1:{agent_port}"},
                            port=agent_port)
            procs.append(p)
            harness.wait_until(lambda: _healthy(p, url), 30, what="agent healthy")
            agent_at["url"] = url
            return p, url

        agent_proc, agent = start_agent()
        harness.wait_until(lambda: _healthy(fn_proc, fn_url), 30, what="function healthy")
        mark("agent (execute) and function serving")

        def api(path: str):
            r = httpx.get(agent + path, headers=auth, timeout=5)
            r.raise_for_status()
            return r.json()

        def klass() -> dict:
            return next((c for c in api("/api/outcomes")["classes"] if c["alert_class"] == CLASS), {})

        def triggers_for(name: str) -> list:
            return [x for x in broker.snapshot() if x.headers.get("ce-type") == TRIGGER
                    and x.body["parameters"]["name"] == name]

        # The test's exporter: clears a Kustomization's condition once the function has asked
        # Flux to reconcile it (what Flux does), except those it is told to keep failing.
        broken = {"app5"}

        def exporter_follows_the_cluster():
            cleared: set[str] = set()
            while not stop.is_set():
                for r in cluster.requests("PATCH"):
                    n = r.url.path.rsplit("/", 1)[-1]
                    if n not in cleared and n not in broken:
                        ex.set_flux_ready("Kustomization", n, "media", ready=True)
                        cleared.add(n)
                time.sleep(0.1)

        threading.Thread(target=exporter_follows_the_cluster, daemon=True).start()
        for n in ("app1", "app2", "app3"):
            ex.set_flux_ready("Kustomization", n, "media", ready=False)
        stack.start()
        mark("Prometheus and Alertmanager ready; app1..app3 Ready=False")

        # 1. suggest -> approve (CLI) -> act -> verify
        pending = harness.wait_until(lambda: (lambda p: p if len(p) == 3 else None)(
            api("/api/approvals?status=pending")), 60, what="three approval requests")
        mark("three approval requests (the class has earned nothing)")
        assert {a["parameters"]["name"] for a in pending} == {"app1", "app2", "app3"}
        assert all(a["alert_class"] == CLASS and a["parameters"]["namespace"] == "media" for a in pending)
        assert [x for x in broker.snapshot() if x.headers.get("ce-type") == TRIGGER] == []
        cli_env = {**os.environ, "AGENT_URL": agent, "AUTH_TOKEN": TOKEN}  # the operator's shell
        for a in pending:
            out = subprocess.run([str(AGENT_SRE), "approve", a["id"], "--reason", "e2e"], env=cli_env,
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and f"{a['id']}: approved" in out.stdout, out.stdout + out.stderr
        mark("approved with `agent-sre approve`")
        for n in ("app1", "app2", "app3"):
            [t] = harness.wait_until(lambda n=n: triggers_for(n), 20, what=f"trigger for {n}")
            assert t.body["dry_run"] is False and t.status == 200
            assert t.reply_headers["ce-type"] == "io.homelab.agent-sre.lambda.completed", t.reply
            assert t.reply["details"]["verification"]["ok"] is True
        assert {r.url.path.rsplit("/", 1)[-1] for r in cluster.requests("PATCH")} == {"app1", "app2", "app3"}
        mark("the function reconciled app1..app3 on the API emulator; the exporter clears them")
        c = harness.wait_until(lambda: (lambda c: c if c.get("verified") == 3 else None)(klass()), 60,
                               what="three verified outcomes")
        mark("three outcomes verified (alerts resolved in Alertmanager)")
        assert c["mode"] == "execute" and c["streak"] == 3 and c["attempts"] == 3, c
        out = next(o for o in api("/api/outcomes")["outcomes"] if o["outcome"] == "verified")
        assert out["details"]["window"]["source"] == "rule", out  # read from Prometheus's rules API
        assert out["details"]["window"]["group_interval_s"] == 1.0  # read from Alertmanager's routes

        # 2. restart: the loop's state is durable
        agent_proc.stop()
        procs.remove(agent_proc)
        agent_proc, agent = start_agent()
        c = klass()
        assert (c["mode"], c["verified"]) == ("execute", 3), c
        assert len(api("/api/approvals?status=approved")) == 3
        mark("agent restarted: ledger, approvals and the earned mode survived")

        # 3. earned: runs without asking; a re-fire inside the window is suppressed
        ex.set_flux_ready("Kustomization", "app4", "media", ready=False)
        [t4] = harness.wait_until(lambda: triggers_for("app4"), 40, what="trigger for app4 without approval")
        assert t4.body["dry_run"] is False
        assert not [a for a in api("/api/approvals") if a["parameters"]["name"] == "app4"]
        mark("app4 remediated without asking")
        harness.wait_until(lambda: klass().get("verified") == 4, 40, what="app4 verified")
        mark("app4 verified")
        seen = len(wire.snapshot())
        ex.set_flux_ready("Kustomization", "app4", "media", ready=False)  # it comes back at once

        def refire():
            return next((x for x in wire.snapshot()[seen:] if isinstance(x.body, dict)
                         and x.body.get("status") == "firing"
                         and x.body["alerts"][0]["labels"].get("name") == "app4"), None)

        again = harness.wait_until(refire, 30, what="app4 firing again")
        [o] = again.reply["outcomes"]
        assert o["suppressed"] and "decay window" in o["suppressed"], again.reply
        assert o["events"] == [] and len(triggers_for("app4")) == 1
        mark("app4 re-fired inside its window: suppressed, nothing triggered")

        # 4. ineffective: escalated into Alertmanager, the class demoted
        ex.set_flux_ready("Kustomization", "app5", "media", ready=False)
        harness.wait_until(lambda: triggers_for("app5"), 40, what="trigger for app5")
        mark("app5 remediated without asking (its condition will not clear)")

        def escalated():
            return next((a for a in stack.am_alerts() if a["labels"].get("alertname") == "AgentSREEscalation"
                         and a["labels"].get("name") == "app5"), None)

        esc = harness.wait_until(escalated, 60, what="the escalation in Alertmanager")
        mark("ineffective: escalation arrived in Alertmanager as an alert")
        on_broker = [x.headers.get("ce-type", "").rsplit(".", 2)[-2:] for x in others.snapshot()]
        for kind in (["approval", "requested"], ["approval", "resolved"], ["agent-sre", "outcome"],
                     ["autonomy", "changed"], ["agent-sre", "escalation"]):
            assert kind in on_broker, (kind, on_broker)
        assert esc["labels"]["escalated_alertname"] == "FluxReconciliationFailure"
        assert esc["labels"]["escalation_reason"] == "outcome:ineffective"
        assert esc["labels"]["exported_namespace"] == "media" and esc["labels"]["agent_sre"] == "escalation"
        assert "still firing" in esc["annotations"]["summary"]
        c = klass()
        assert (c["mode"], c["ineffective"], c["streak"]) == ("suggest", 1, 0), c
        assert c["last"]["outcome"] == "ineffective"

        # 5. what people read afterwards
        hist = subprocess.run([str(AGENT_SRE), "history", "--kind", "result", "-a", "FluxReconciliationFailure"],
                              env={**os.environ, "STATE_DIR": str(state)}, capture_output=True, text=True, timeout=60)
        assert hist.returncode == 0, hist.stderr
        line = next(ln for ln in hist.stdout.splitlines() if "app1" in ln)
        assert f"{FUNCTION} success: Kustomization media/app1 reconciled and Ready" in line
        assert "sent PATCH /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/media/kustomizations/app1" in line
        metrics = httpx.get(agent + "/metrics").text
        assert ('agent_sre_outcomes_total{alertname="FluxReconciliationFailure",function="flux-reconcile-kustomization",'
                'outcome="ineffective"} 1.0') in metrics
        assert "agent_sre_time_to_verified_seconds_count 1.0" in metrics
        mark("history shows results with alert, message and request; metrics exposed")
    except BaseException:
        for p in procs:
            print(f"--- {p.name}\n{p.tail(80)}")
        if stack is not None:
            print(stack.logs())
        raise
    finally:
        stop.set()
        if stack is not None:
            stack.stop()
        for p in procs:
            p.stop()
        ex.stop()
        cluster.close()
        if "others" in locals():
            others.stop()
        total = time.monotonic() - t0
        mark("stopped")
        out = Path(os.environ.get("E2E_TIMELINE") or tmp_path / "e2e-loop-timeline.json")
        out.write_text(json.dumps([{"t": t, "event": e} for t, e in timeline], indent=1))
        print("\n".join(f"{t:7.2f}s  {e}" for t, e in timeline))
    assert total < 120, f"e2e took {total:.1f}s"
