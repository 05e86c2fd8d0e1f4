"""Target verification at the point of action: after acting for real, pod-restart watches for a
Ready replacement of the same controller or a complete rollout (KMock has no controllers: the
tests play the controller), and the Flux functions for Ready with their reconcile handled."""

from __future__ import annotations

import threading
import time

from tests.functions.test_pods import DEP, PODS, deployment_chain, pod


def later(seconds, fn, *args):
    t = threading.Timer(seconds, fn, args)
    t.start()
    return t


def replacement(name, *, ready=True, waiting=None, owner_uid="o-1"):
    p = pod(name, owner=("ReplicaSet", "web-7d9f"), ready=ready, waiting=waiting)
    p["metadata"]["ownerReferences"][0]["uid"] = owner_uid
    return p


def test_a_ready_replacement_of_the_same_owner_verifies_the_restart(cluster, runner):
    runner.settings = runner.settings.model_copy(update={"verify_wait_seconds": 5})
    deployment_chain(cluster)
    cluster.add(PODS, "shop", replacement("other-app-1", owner_uid="someone-else"))  # another controller's pod
    t = later(0.3, cluster.add, PODS, "shop", replacement("web-7d9f-fghij"))
    t0 = time.monotonic()
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False)
    t.join()
    seen = res["details"]["verification"]
    assert seen["ok"] is True and "web-7d9f-fghij is Ready" in seen["observed"], seen
    assert 0.25 < time.monotonic() - t0 < 4 and "web-7d9f-fghij is Ready" in res["message"]


def test_a_crashing_replacement_is_not_recovering(cluster, runner):
    deployment_chain(cluster)
    cluster.add(PODS, "shop", replacement("web-7d9f-fghij", ready=False, waiting="CrashLoopBackOff"))
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False)
    seen = res["details"]["verification"]
    assert res["status"] == "success" and seen["ok"] is False and "CrashLoopBackOff" in seen["observed"]


def test_no_replacement_within_the_wait_is_not_confirmed(cluster, runner):
    deployment_chain(cluster)
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False)
    seen = res["details"]["verification"]
    assert seen["ok"] is None and seen["observed"] == "no replacement pod seen yet"
    assert 0.25 <= seen["waited_seconds"] < 2


def test_dry_run_verifies_nothing(cluster, runner):
    deployment_chain(cluster)
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=True)
    assert "verification" not in res["details"]


def test_a_rollout_is_verified_when_the_controller_reports_it_complete(cluster, runner):
    runner.settings = runner.settings.model_copy(update={"verify_wait_seconds": 5})
    cluster.add(DEP, "shop", {"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": 2, "template": {}},
                              "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 0,
                                         "availableReplicas": 2}})

    def controller():
        obj = cluster.get(DEP, "shop", "web")
        obj["status"] = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        cluster.add(DEP, "shop", obj)

    t = later(0.3, controller)
    res = runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": "deployment"}, dry_run=False)
    t.join()
    seen = res["details"]["verification"]
    assert seen["ok"] is True and "2 of 2 replicas updated and available" in seen["observed"], seen


def test_a_rollout_not_observed_in_time_is_not_confirmed(cluster, runner):
    cluster.add(DEP, "shop", {"metadata": {"name": "web", "generation": 3}, "spec": {"template": {}},
                              "status": {"observedGeneration": 2}})
    res = runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": "deployment"}, dry_run=False)
    seen = res["details"]["verification"]
    assert seen["ok"] is None and "not observed" in seen["observed"]


def test_flux_reports_ready_after_its_request_was_handled(cluster, runner):
    from tests.functions.test_flux import KS, ks

    cluster.add(KS, "apps", ks("podinfo"))
    cluster.set_flux({"ready": "True"})
    res = runner.run("flux-reconcile-kustomization", {"name": "podinfo", "namespace": "apps"}, dry_run=False)
    seen = res["details"]["verification"]
    assert seen["ok"] is True and "Ready=True" in seen["observed"] and res["details"]["requestedAt"] in seen["observed"]


def test_flux_reports_not_ready_as_not_recovered(cluster, runner):
    from tests.functions.test_flux import KS, ks

    cluster.add(KS, "apps", ks("podinfo"))
    cluster.set_flux({"ready": "False", "message": "kustomize build failed"})
    res = runner.run("flux-reconcile-kustomization", {"name": "podinfo", "namespace": "apps"}, dry_run=False)
    assert res["status"] == "error" and res["details"]["verification"]["ok"] is False
