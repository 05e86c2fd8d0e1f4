"""End to end on loopback, every component real:

    exporter --scrape--> Prometheus 2.42 --alerts--> Alertmanager 0.25 --webhook (bearer)-->
    `agent-sre serve` --trigger CloudEvent--> broker relay (Trigger filters from deploy/) -->
    `agent-sre serve-function` (FUNCTION=flux-reconcile-kustomization, dry-run) --reply--> agent

A Kustomization goes Ready=False; the alert (no static annotations: it goes through the chain)
must become a dry-run trigger for flux-reconcile-kustomization with the object's namespace taken
from `exported_namespace`, which the function answers. Then the Kustomization recovers, the
resolved notification reaches the agent, and nothing more is triggered.

Run alone with ``pytest -m e2e``. The timeline is printed and written to
``$E2E_TIMELINE`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from agent_sre.collect.sources import from_audit_log
from tests.e2e import harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
AGENT_SRE = Path(sys.executable).parent / "agent-sre"
FUNCTION = "flux-reconcile-kustomization"
TRIGGER = "io.homelab.agent-sre.lambda.trigger"
TOKEN = "e2e-token"


def _policy_from_deploy(dst: Path) -> Path:
    """The gate policy exactly as deploy/ ships it in the ConfigMap."""
    cm = yaml.safe_load((REPO / "deploy" / "base" / "agent-sre" / "policy.yaml").read_text())
    dst.write_text(cm["data"]["policy.yaml"])
    return dst


def _trigger_filters(function_url: str) -> list[tuple[dict[str, str], str]]:
    """The Trigger filters of deploy/base/functions/<FUNCTION>.yaml, pointed at the loopback service."""
    docs = list(yaml.safe_load_all((REPO / "deploy" / "base" / "functions" / f"{FUNCTION}.yaml").read_text()))
    trig = next(d for d in docs if d["kind"] == "Trigger")
    return [(trig["spec"]["filter"]["attributes"], function_url)]


def _serve(name: str, args: list[str], work: Path, env: dict[str, str]) -> tuple[harness.Process, str]:
    port = harness.free_port()
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("KUBE", "LLM_", "REDIS", "BROKER", "AUTH", "AGENT_", "FUNCTION_", "AUDIT_"))}
    proc = harness.start_process(name, [str(AGENT_SRE), *args], work, env={**base_env, "PORT": str(port),
                                                                          "HOST": "127.0.0.1", **env})
    return proc, f"http://127.0.0.1:{port}"


def _healthy(p: harness.Process, url: str) -> bool:
    if p.proc.poll() is not None:
        raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}")
    return httpx.get(f"{url}/healthz", timeout=1).status_code == 200


def test_alert_to_function_and_resolution(tmp_path, keyset):
    agent_keys, function_keys = keyset
    missing = harness.binaries_missing()
    assert not missing, f"{missing} missing: run .ci/install-system-deps.sh"
    assert AGENT_SRE.exists(), f"{AGENT_SRE} missing: pip install -e ."
    t0 = time.monotonic()
    timeline: list[tuple[float, str]] = []

    def mark(what: str, t: float | None = None) -> None:
        timeline.append((round((t if t is not None else time.monotonic()) - t0, 2), what))

    state = tmp_path / "state"
    state.mkdir()
    procs: list[harness.Process] = []
    stack = None
    with harness.Exporter() as ex:
        try:
            # No cluster and no kubeconfig: the function runs offline, in dry-run.
            fn_proc, fn_url = _serve("function", ["serve-function"], tmp_path,
                                     {"FUNCTION": FUNCTION, "DRY_RUN": "true", "HOME": str(tmp_path),
                                      "STATE_DIR": str(tmp_path / "function-state"), **function_keys})
            procs.append(fn_proc)
            broker = harness.Relay(harness.trigger_router(_trigger_filters(fn_url))).start()
            agent_proc, agent_url = _serve("agent", ["serve"], tmp_path, {
                "BROKER_URL": broker.url, "USE_TRM": "false", "DRY_RUN": "true", "AUTH_TOKEN": TOKEN,
                "POLICY_PATH": str(_policy_from_deploy(tmp_path / "policy.yaml")), "STATE_DIR": str(state),
                "RETRY_BASE_SECONDS": "0.2", **agent_keys})
            procs.append(agent_proc)
            wire = harness.Relay(lambda path, headers: agent_url, keep_path=True).start()
            for p, url in ((fn_proc, fn_url), (agent_proc, agent_url)):
                harness.wait_until(lambda p=p, url=url: _healthy(p, url), 30, what=f"{p.name} healthy")
            mark("agent and function serving")

            # A Kustomization in namespace `media` fails; another one is fine.
            ex.set_flux_ready("Kustomization", "sonarr", "media", ready=False)
            ex.set_flux_ready("Kustomization", "radarr", "media", ready=True)
            rules = harness.fast_rules(harness.load_rule_groups(), only={"FluxReconciliationFailure"})
            stack = harness.Stack(tmp_path / "stack", ex.url, wire.url + "/webhook", rules, token=TOKEN)
            stack.workdir.mkdir()
            stack.start()
            mark("Prometheus and Alertmanager ready; Kustomization media/sonarr Ready=False")

            def firing_hook():
                return next((x for x in wire.snapshot() if isinstance(x.body, dict) and x.body.get("status") == "firing"), None)

            hook = harness.wait_until(firing_hook, 40, what="firing webhook at the agent")
            mark("Alertmanager webhook (firing) delivered to agent", hook.t)
            assert hook.headers["authorization"] == f"Bearer {TOKEN}"
            assert 200 <= hook.status < 300, (hook.status, hook.reply)
            labels = hook.body["alerts"][0]["labels"]
            assert labels["exported_namespace"] == "media" and labels["namespace"] == "flux-system"
            assert "lambda_function" not in hook.body["alerts"][0]["annotations"]  # goes through the chain

            def trigger_exchange():
                return next((x for x in broker.snapshot() if x.headers.get("ce-type") == TRIGGER), None)

            trig = harness.wait_until(trigger_exchange, 20, what="trigger CloudEvent at the broker")
            mark("trigger CloudEvent at broker -> function", trig.t)
            assert trig.headers["ce-lambdafunction"] == FUNCTION
            data = trig.body
            assert data["lambda_function"] == FUNCTION
            # The object's namespace, not Flux's own: exported_namespace wins over namespace.
            assert data["parameters"] == {"name": "sonarr", "namespace": "media"}
            assert data["dry_run"] is True
            assert data["alert"]["labels"]["name"] == "sonarr"
            # No annotations, no TRM, no LLM configured: the runbook rules decided.
            assert data["triggered_by"] == "agent-sre/rule_based", data["triggered_by"]
            # The function answered with a result event (Knative reply), in dry-run, without a cluster.
            assert trig.target == fn_url and trig.status == 200, (trig.status, trig.reply)
            assert trig.reply_headers["ce-type"] == "io.homelab.agent-sre.lambda.completed", trig.reply_headers
            assert trig.reply["dry_run"] is True and trig.reply["status"] in ("success", "noop"), trig.reply
            # signed both ways: the trigger by the agent's key, the reply by the functions'
            assert trig.headers["ce-signaturekeyid"] != trig.reply_headers["ce-signaturekeyid"]
            mark(f"function replied {trig.reply['status']} (dry_run): {trig.reply.get('message', '')[:80]}", trig.t)
            triggers_before = [x for x in broker.snapshot() if x.headers.get("ce-type") == TRIGGER]
            assert len(triggers_before) == 1

            # Recovery.
            ex.set_flux_ready("Kustomization", "sonarr", "media", ready=True)
            mark("Kustomization media/sonarr Ready=True")

            def resolved_hook():
                return next((x for x in wire.snapshot() if isinstance(x.body, dict) and x.body.get("status") == "resolved"), None)

            res = harness.wait_until(resolved_hook, 30, what="resolved webhook at the agent")
            mark("Alertmanager webhook (resolved) delivered to agent", res.t)
            assert 200 <= res.status < 300, (res.status, res.reply)
            assert res.body["alerts"][0]["labels"]["name"] == "sonarr"
            time.sleep(3)  # time enough for anything the resolution would (wrongly) trigger
            triggers_after = [x for x in broker.snapshot() if x.headers.get("ce-type") == TRIGGER]
            assert triggers_after == triggers_before, [x.body for x in triggers_after[1:]]
            mark("3 s after resolution: no further trigger")

            # The audit log holds the result against its alert; a dry run changed nothing, so the
            # collector keeps the example for labelling but never labels it itself.
            audit = state / "audit.jsonl"
            recs = harness.wait_until(lambda: from_audit_log(audit), 10, what="result in the audit log")
            assert recs[0]["expect"] is None and recs[0]["meta"]["dry_run"] is True
            assert recs[0]["meta"]["function"] == FUNCTION and recs[0]["meta"]["result"] in ("success", "noop")
            assert recs[0]["alert"]["labels"]["exported_namespace"] == "media"
            mark("audit log holds the result; the collector keeps the dry-run example unlabelled")
        except BaseException:
            for p in procs:
                print(f"--- {p.name}\n{p.tail(60)}")
            if stack is not None:
                print(stack.logs())
            raise
        finally:
            if stack is not None:
                stack.stop()
            for p in procs:
                p.stop()
            total = time.monotonic() - t0
            mark("stopped")
            out = Path(os.environ.get("E2E_TIMELINE") or tmp_path / "e2e-timeline.json")
            out.write_text(json.dumps([{"t": t, "event": e} for t, e in timeline], indent=1))
            print("\n".join(f"{t:7.2f}s  {e}" for t, e in timeline))
    assert total < 90, f"e2e took {total:.1f}s"
