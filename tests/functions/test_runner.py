"""Runner behaviour: offline (embedded demo) mode, dry-run defaults, idempotency, configuration."""

from __future__ import annotations

import pytest

from agent_sre.functions import run_function
from agent_sre.functions.registry import handlers
from agent_sre.settings import FunctionSettings, load
from agent_sre.functions.runner import Runner, reset_default_runner
from agent_sre.functions.store import MemoryStore, SQLiteStore
from agent_sre import catalog

from .test_pods import PODS, deployment_chain


def test_every_catalog_function_has_a_handler():
    assert sorted(handlers()) == sorted(catalog.function_names())


def test_offline_dry_run_describes_the_exact_request_unverified(offline_runner):
    res = offline_runner.run("pod-restart", {"name": "web-1", "namespace": "shop"}, dry_run=True)
    assert res["status"] == "success" and res["dry_run"] is True
    d = res["details"]
    assert d["verified"] is False and "preconditions" in res["message"]
    assert d["request"] == {"method": "DELETE", "path": "/api/v1/namespaces/shop/pods/web-1",
                            "query": {"dryRun": "All"}, "content_type": "application/json",
                            "body": {"apiVersion": "v1", "kind": "DeleteOptions"}, "sent": False}
    res = offline_runner.run("flux-reconcile-helmrelease", {"name": "podinfo", "namespace": "apps"}, dry_run=True)
    assert res["details"]["request"]["body"] == {
        "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2026-11-25T12:00:00.123456Z"}}}
    assert res["details"]["verified"] is False
    res = offline_runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": "statefulset"}, dry_run=True)
    assert res["details"]["request"]["path"] == "/apis/apps/v1/namespaces/shop/statefulsets/web"
    res = offline_runner.run("pod-check-status", {"namespace": "shop"}, dry_run=True)
    assert res["status"] == "noop" and res["details"]["healthy"] is None


def test_offline_outside_dry_run_is_an_error():
    r = Runner(FunctionSettings(dry_run=False), api_client=None, store=MemoryStore())
    res = r.run("pod-restart", {"name": "web-1", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "error" and "cluster is required" in res["message"]
    assert "request" not in res["details"]


def test_dry_run_defaults_true(monkeypatch):
    monkeypatch.delenv("DRY_RUN", raising=False)
    assert load(FunctionSettings).dry_run is True
    monkeypatch.setenv("DRY_RUN", "false")
    assert load(FunctionSettings).dry_run is False
    monkeypatch.setenv("FLUX_WAIT_SECONDS", "1.5")
    assert load(FunctionSettings).flux_wait_seconds == 1.5


def test_run_function_in_process_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("DRY_RUN", raising=False)
    monkeypatch.setenv("STATE_DIR", str(tmp_path))
    reset_default_runner()
    try:
        res = run_function("pod-restart", {"name": "web-1", "namespace": "shop"}, dry_run=True, event_id="e-1",
                           correlation_id="c-1")
        assert res["status"] == "success" and res["details"]["verified"] is False
        again = run_function("pod-restart", {"name": "web-1", "namespace": "shop"}, dry_run=True, event_id="e-1")
        assert again == res
        bad = run_function("", {}, dry_run=True)
        assert bad["status"] == "refused"
        bad = run_function("pod-restart", {"name": "web-1"}, dry_run=True)
        assert bad["status"] == "refused" and "namespace" in bad["message"]
    finally:
        reset_default_runner()


def test_kubeconfig_from_environment(cluster, monkeypatch):
    deployment_chain(cluster, sick=False)
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("DRY_RUN", "false")
    monkeypatch.delenv("STATE_DIR", raising=False)
    r = Runner.from_env()
    assert r.cluster_mode() == "cluster"
    res = r.run("pod-check-status", {"namespace": "shop", "name": "web-7d9f-abcde"}, dry_run=False)
    assert res["status"] == "success" and res["details"]["healthy"] is True
    auth = [req.headers.get("Authorization") for req in cluster.requests("GET")]
    assert auth and all(a == "Bearer test-token" for a in auth)


def test_idempotency_survives_restart_with_sqlite(cluster, runner, tmp_path):
    deployment_chain(cluster)
    path = str(tmp_path / "state" / "results.sqlite3")
    runner.store = SQLiteStore(path)
    first = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False, event_id="x1")
    # a new process (fresh runner, same file) answers from the store without touching the cluster
    fresh = Runner(runner.settings, api_client=runner.api_client, store=SQLiteStore(path))
    again = fresh.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False, event_id="x1")
    assert again == first
    assert len(cluster.writes()) == 1


def test_errors_are_not_remembered_so_redelivery_retries(cluster, runner):
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False, event_id="r1")
    assert res["status"] == "error"  # pod not there yet
    deployment_chain(cluster)
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False, event_id="r1")
    assert res["status"] == "success"
    assert cluster.get(PODS, "shop", "web-7d9f-abcde") is None


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_stores_are_bounded(tmp_path, store_kind):
    s = MemoryStore(3) if store_kind == "memory" else SQLiteStore(str(tmp_path / "s.db"), 3)
    for i in range(5):
        s.put(f"k{i}", {"i": i})
    assert len(s) == 3
    assert s.get("k0") is None and s.get("k1") is None and s.get("k4") == {"i": 4}
