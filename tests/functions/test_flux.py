"""Flux reconcile functions against the KMock API server over real HTTP."""

from __future__ import annotations

import pytest

from .conftest import NOW

KS = "kustomize.toolkit.fluxcd.io/v1/kustomizations"
GIT = "source.toolkit.fluxcd.io/v1/gitrepositories"
HR = "helm.toolkit.fluxcd.io/v2/helmreleases"
HREPO = "source.toolkit.fluxcd.io/v1/helmrepositories"
STAMP = "2026-11-25T12:00:00.123456Z"


def ks(name="apps", suspend=False, source="flux-system"):
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "generation": 3},
            "spec": {"suspend": suspend, "interval": "10m", "path": "./apps",
                     "sourceRef": {"kind": "GitRepository", "name": source}},
            "status": {"observedGeneration": 3, "conditions": [
                {"type": "Ready", "status": "False", "reason": "ArtifactFailed", "message": "stale"}]}}


def patches(cluster):
    return cluster.requests("PATCH")


def test_kustomization_reconcile_patches_annotation_and_waits_for_ready(cluster, runner):
    cluster.add(KS, "flux-system", ks())
    cluster.set_flux({"ready": "True", "delay": 0.05})
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)

    assert res["status"] == "success", res
    assert res["dry_run"] is False
    [p] = patches(cluster)
    assert p.url.path == "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps"
    assert p.headers["Content-Type"] == "application/merge-patch+json"
    assert "dryRun" not in p.params
    assert p.data == {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": STAMP}}}
    # the spec was not edited, only the annotation added (Flux would revert spec edits)
    stored = cluster.get(KS, "flux-system", "apps")
    assert stored["spec"] == ks()["spec"]
    assert stored["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": STAMP}
    d = res["details"]
    assert d["confirmed"] is True and d["ready"] == "True" and d["lastHandledReconcileAt"] == STAMP
    assert d["request"] == {"method": "PATCH", "path": p.url.path, "body": p.data,
                            "content_type": "application/merge-patch+json", "sent": True}
    assert res["target"] == {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                             "namespace": "flux-system", "name": "apps"}


def test_reconciled_but_not_ready_is_an_error_with_the_condition(cluster, runner):
    cluster.add(KS, "flux-system", ks())
    cluster.set_flux({"ready": "False", "delay": 0.02, "message": "kustomize build failed: missing file"})
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    assert res["status"] == "error"
    assert "kustomize build failed" in res["message"]
    assert res["details"]["confirmed"] is True and res["details"]["ready"] == "False"


def test_unconfirmed_within_wait_says_so(cluster, runner, settings):
    cluster.add(KS, "flux-system", ks())  # no controller running: status never catches up
    runner.settings = settings.model_copy(update=dict(flux_wait_seconds=0.2))
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    assert res["status"] == "success"
    assert res["details"]["confirmed"] is False
    assert "not confirmed within 0.2s" in res["message"]
    assert len(patches(cluster)) == 1


def test_suspended_object_is_refused_and_untouched(cluster, runner):
    cluster.add(KS, "flux-system", ks(suspend=True))
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    assert res["status"] == "refused"
    assert "suspended" in res["message"]
    assert cluster.writes() == []
    assert "annotations" not in cluster.get(KS, "flux-system", "apps")["metadata"]


def test_a_missing_object_is_a_noop(cluster, runner):
    cluster.add(KS, "flux-system", ks(name="other"))
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    assert res["status"] == "noop" and "does not exist" in res["message"]
    assert cluster.writes() == []


def ready(obj, generation=3, observed=3):
    obj["metadata"]["generation"] = generation
    obj["status"] = {"observedGeneration": observed, "conditions": [
        {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied"}]}
    return obj


def test_a_ready_and_current_object_is_not_reconciled(cluster, runner):
    cluster.add(KS, "flux-system", ready(ks()))
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    assert res["status"] == "noop" and "is Ready (ReconciliationSucceeded) at generation 3" in res["message"]
    assert cluster.writes() == []


@pytest.mark.parametrize("obj", [ready(ks(), generation=4, observed=3),       # stale: spec changed, not seen
                                 {**ks(), "status": {}}])                      # no Ready condition yet
def test_a_stale_or_unknown_object_is_reconciled(cluster, runner, obj):
    cluster.add(KS, "flux-system", obj)
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=True)
    assert res["status"] == "success", res
    assert len(patches(cluster)) == 1


def test_dry_run_sends_server_side_dry_run_and_persists_nothing(cluster, runner):
    cluster.add(KS, "flux-system", ks())
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=True)
    assert res["status"] == "success" and res["dry_run"] is True
    [p] = cluster.writes()
    assert p.params == {"dryRun": "All"}
    assert p.data == {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": STAMP}}}
    assert "annotations" not in cluster.get(KS, "flux-system", "apps")["metadata"]
    req = res["details"]["request"]
    assert req["query"] == {"dryRun": "All"} and req["body"] == p.data and req["path"] == p.url.path
    assert res["details"]["verified"] is True


def test_dry_run_setting_wins_over_trigger(cluster, runner, settings):
    cluster.add(KS, "flux-system", ks())
    runner.settings = settings.model_copy(update=dict(dry_run=True))  # DRY_RUN=true (the default)
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    assert res["dry_run"] is True
    assert [w.params for w in cluster.writes()] == [{"dryRun": "All"}]


def test_with_source_reconciles_the_git_repository_first(cluster, runner, settings):
    cluster.add(KS, "flux-system", ks(source="fleet"))
    cluster.add(GIT, "flux-system", {"metadata": {"name": "fleet"}, "spec": {"url": "https://example.org/fleet"}})
    runner.settings = settings.model_copy(update=dict(flux_with_source=True, flux_wait_seconds=0))
    res = runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    assert res["status"] == "success", res
    paths = [p.url.path for p in patches(cluster)]
    assert paths == ["/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/fleet",
                     "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps"]
    assert cluster.get(GIT, "flux-system", "fleet")["metadata"]["annotations"] == {
        "reconcile.fluxcd.io/requestedAt": STAMP}
    assert [r["path"] for r in res["details"]["requests"]] == paths


def test_gitrepository_reconcile(cluster, runner, settings):
    cluster.add(GIT, "flux-system", {"metadata": {"name": "fleet"}, "spec": {"url": "https://example.org/fleet"}})
    runner.settings = settings.model_copy(update=dict(flux_wait_seconds=0))
    res = runner.run("flux-reconcile-gitrepository", {"name": "fleet", "namespace": "flux-system"}, dry_run=False)
    assert res["status"] == "success"
    [p] = patches(cluster)
    assert p.url.path == "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/fleet"


@pytest.mark.parametrize("force", [False, True])
def test_helmrelease_force_and_chart_source(cluster, runner, settings, force):
    cluster.add(HR, "monitoring", {"metadata": {"name": "kube-prometheus-stack"}, "spec": {"chart": {"spec": {
        "chart": "kube-prometheus-stack",
        "sourceRef": {"kind": "HelmRepository", "name": "prometheus-community", "namespace": "flux-system"}}}}})
    cluster.add(HREPO, "flux-system", {"metadata": {"name": "prometheus-community"}, "spec": {}})
    cluster.set_flux({"ready": "True", "delay": 0.02})
    runner.settings = settings.model_copy(update=dict(flux_force=force, flux_with_source=True))
    res = runner.run("flux-reconcile-helmrelease", {"name": "kube-prometheus-stack", "namespace": "monitoring"},
                     dry_run=False)
    assert res["status"] == "success", res
    src, hr = patches(cluster)
    assert src.url.path == "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/helmrepositories/prometheus-community"
    assert src.data == {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": STAMP}}}
    assert hr.url.path == "/apis/helm.toolkit.fluxcd.io/v2/namespaces/monitoring/helmreleases/kube-prometheus-stack"
    want = {"reconcile.fluxcd.io/requestedAt": STAMP}
    if force:
        want["reconcile.fluxcd.io/forceAt"] = STAMP
    assert hr.data == {"metadata": {"annotations": want}}
    assert res["details"]["force"] is force


def test_force_is_ignored_for_kustomizations(cluster, runner, settings):
    cluster.add(KS, "flux-system", ks())
    runner.settings = settings.model_copy(update=dict(flux_force=True, flux_wait_seconds=0))
    runner.run("flux-reconcile-kustomization", {"name": "apps", "namespace": "flux-system"}, dry_run=False)
    [p] = patches(cluster)
    assert p.data == {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": STAMP}}}


def test_timestamp_is_rfc3339_utc():
    from agent_sre.functions.registry import rfc3339
    assert rfc3339(NOW) == STAMP
    assert rfc3339(NOW, nanos=False) == "2026-11-25T12:00:00Z"
