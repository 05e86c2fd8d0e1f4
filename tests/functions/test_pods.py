"""pod-restart and pod-check-status against the KMock API server over real HTTP."""

from __future__ import annotations

import pytest

PODS = "v1/pods"
RS = "apps/v1/replicasets"
DEP = "apps/v1/deployments"
STS = "apps/v1/statefulsets"
DS = "apps/v1/daemonsets"
EVENTS = "v1/events"


def pod(name, *, owner=None, labels=None, phase="Running", ready=True, waiting=None, restarts=0, last=None,
        deleting=False, finished=None):
    meta = {"name": name, "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "o-1",
                                    "controller": True, "blockOwnerDeletion": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-11-25T11:59:00Z"
    cs = {"name": "app", "ready": ready, "restartCount": restarts, "image": "nginx",
          "state": {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-11-25T10:00:00Z"}}}
    if last:
        cs["lastState"] = {"terminated": {"reason": last, "exitCode": 137}}
        if finished:
            cs["lastState"]["terminated"]["finishedAt"] = finished
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "nginx"}], "terminationGracePeriodSeconds": 30},
            "status": {"phase": phase, "containerStatuses": [cs],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def crashing(name, owner=("ReplicaSet", "web-7d9f"), **kw):
    """A controller-owned pod in CrashLoopBackOff: what pod-restart is for."""
    return pod(name, owner=owner, ready=False, waiting="CrashLoopBackOff", restarts=5, last="Error", **kw)


# a workload whose controller counts pods that are not ready (what a rollout restart is for)
UNREADY = {"replicas": 2, "readyReplicas": 1, "unavailableReplicas": 1, "desiredNumberScheduled": 2,
           "numberReady": 1, "numberUnavailable": 1}


def deployment_chain(cluster, ns="shop", sick=True):
    cluster.add(DEP, ns, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                          "spec": {"template": {"metadata": {"labels": {"app": "web"}}}}})
    cluster.add(RS, ns, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": "web-7d9f", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                 "uid": "d-1", "controller": True}]}})
    return cluster.add(PODS, ns, crashing("web-7d9f-abcde") if sick else pod("web-7d9f-abcde",
                                                                                   owner=("ReplicaSet", "web-7d9f")))


# ------------------------------------------------------------------------------------ pod-restart
def test_controller_owned_pod_is_deleted_with_normal_grace(cluster, runner):
    p = deployment_chain(cluster)
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "success", res
    [d] = cluster.writes()
    assert str(d.method.value).upper() == "DELETE"
    assert d.url.path == "/api/v1/namespaces/shop/pods/web-7d9f-abcde"
    assert "gracePeriodSeconds" not in d.params and "dryRun" not in d.params
    assert d.data == {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": p["metadata"]["uid"]}}
    assert "gracePeriodSeconds" not in d.data
    assert cluster.get(PODS, "shop", "web-7d9f-abcde") is None
    det = res["details"]
    assert det["owner"]["kind"] == "ReplicaSet" and det["workload"] == {"kind": "Deployment", "name": "web"}
    assert det["request"]["body"] == d.data and det["request"]["method"] == "DELETE"
    assert d.headers["Content-Type"] == det["request"]["content_type"] == "application/json"
    # type=pod never rolls out the owner
    assert cluster.requests("PATCH") == []


def test_bare_pod_is_refused(cluster, runner):
    cluster.add(PODS, "shop", pod("debug"))
    res = runner.run("pod-restart", {"name": "debug", "namespace": "shop", "type": "pod"}, dry_run=False)
    assert res["status"] == "refused"
    assert "bare pod" in res["message"]
    assert cluster.writes() == []
    assert cluster.get(PODS, "shop", "debug") is not None


def test_non_controller_owner_reference_does_not_count(cluster, runner):
    p = pod("loose")
    p["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "c"}]
    cluster.add(PODS, "shop", p)
    res = runner.run("pod-restart", {"name": "loose", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "refused" and cluster.writes() == []


def test_terminating_pod_is_a_noop(cluster, runner):
    cluster.add(PODS, "shop", pod("web-1", owner=("StatefulSet", "web"), deleting=True))
    res = runner.run("pod-restart", {"name": "web-1", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "noop" and cluster.writes() == []


def test_pod_delete_dry_run_keeps_the_pod(cluster, runner):
    deployment_chain(cluster)
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=True)
    assert res["status"] == "success" and res["dry_run"] is True
    [d] = cluster.writes()
    assert d.params == {"dryRun": "All"}
    assert cluster.get(PODS, "shop", "web-7d9f-abcde") is not None
    assert res["details"]["request"]["query"] == {"dryRun": "All"}


def test_missing_pod_is_an_error(cluster, runner):
    res = runner.run("pod-restart", {"name": "ghost", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "error" and "not found" in res["message"]
    assert cluster.writes() == []


@pytest.mark.parametrize("kind,res_path,plural", [("deployment", DEP, "deployments"),
                                                  ("statefulset", STS, "statefulsets"),
                                                  ("daemonset", DS, "daemonsets")])
def test_rollout_restart_patches_template_annotation(cluster, runner, kind, res_path, plural):
    cluster.add(res_path, "shop", {"metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {"metadata": {
        "labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}, "status": UNREADY})
    res = runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": kind}, dry_run=False)
    assert res["status"] == "success", res
    [p] = cluster.writes()
    assert p.url.path == f"/apis/apps/v1/namespaces/shop/{plural}/web"
    assert p.headers["Content-Type"] == "application/merge-patch+json"
    body = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-11-25T12:00:00Z"}}}}}
    assert p.data == body
    stored = cluster.get(res_path, "shop", "web")
    assert stored["spec"]["template"]["metadata"] == {"labels": {"app": "web"}, "annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-11-25T12:00:00Z"}}
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert res["details"]["request"]["body"] == body


def test_paused_deployment_is_refused(cluster, runner):
    cluster.add(DEP, "shop", {"metadata": {"name": "web"}, "spec": {"paused": True, "template": {}}})
    res = runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": "deployment"}, dry_run=False)
    assert res["status"] == "refused" and cluster.writes() == []


def test_rollout_restart_dry_run(cluster, runner):
    cluster.add(DEP, "shop", {"metadata": {"name": "web"}, "spec": {"template": {"metadata": {}}}, "status": UNREADY})
    res = runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": "deployment"}, dry_run=True)
    [p] = cluster.writes()
    assert p.params == {"dryRun": "All"}
    assert "annotations" not in cluster.get(DEP, "shop", "web")["spec"]["template"]["metadata"]
    assert res["details"]["request"]["path"] == "/apis/apps/v1/namespaces/shop/deployments/web"


def test_forbidden_says_rbac(cluster, runner):
    deployment_chain(cluster)
    import kmock
    cluster.on_loop(lambda: cluster.em["delete", kmock.resource("v1/pods")] << (
        lambda: (_ for _ in ()).throw(kmock.KubernetesError(status=403, reason="Forbidden",
                                                              message="pods is forbidden"))))
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "error"
    assert "403" in res["message"] and "RBAC" in res["message"]


# ------------------------------------------------------------------------------- pod-check-status
def ev(pod_name, reason, message, ts, kind="Pod"):
    return {"metadata": {"name": f"{pod_name}.{reason}.{ts[-3:-1]}"}, "type": "Warning", "reason": reason,
            "message": message, "count": 3, "lastTimestamp": ts,
            "involvedObject": {"kind": kind, "name": pod_name, "namespace": "shop"}}


def test_check_by_selector_reports_unhealthy_for_the_next_step(cluster, runner):
    cluster.add(PODS, "shop", pod("web-a", owner=("ReplicaSet", "web-1")))
    cluster.add(PODS, "shop", pod("web-b", owner=("ReplicaSet", "web-1"), ready=False, waiting="CrashLoopBackOff",
                                  restarts=7, last="OOMKilled"))
    cluster.add(PODS, "shop", pod("db-0", labels={"app": "db"}, ready=False, waiting="ImagePullBackOff"))
    cluster.add(EVENTS, "shop", ev("web-b", "BackOff", "Back-off restarting failed container", "2026-11-25T11:58:00Z"))
    cluster.add(EVENTS, "shop", ev("web-b", "Killing", "OOM", "2026-11-25T11:57:00Z"))
    cluster.add(EVENTS, "shop", ev("db-0", "Failed", "pull failed", "2026-11-25T11:58:00Z"))
    res = runner.run("pod-check-status", {"namespace": "shop", "selector": "app=web"}, dry_run=False)
    assert res["status"] == "success"
    d = res["details"]
    assert d["healthy"] is False and d["matched"] == 2
    assert d["unhealthy"] == [{"name": "web-b", "namespace": "shop", "type": "pod", "reason": "app: CrashLoopBackOff"}]
    [lst] = [r for r in cluster.requests("GET") if r.url.path == "/api/v1/namespaces/shop/pods"]
    assert lst.params["labelSelector"] == "app=web"
    web_b = next(p for p in d["pods"] if p["name"] == "web-b")
    assert web_b["restarts"] == 7 and web_b["containers"][0]["last_terminated"] == "OOMKilled"
    assert [e["reason"] for e in web_b["events"]] == ["Killing", "BackOff"]  # oldest first
    assert cluster.writes() == []
    # the unhealthy entry is exactly what the next plan step (pod-restart) accepts
    from agent_sre import catalog
    u = d["unhealthy"][0]
    assert catalog.validate_parameters("pod-restart", {k: u[k] for k in ("name", "namespace", "type")})


def test_check_whole_namespace_healthy(cluster, runner):
    cluster.add(PODS, "shop", pod("web-a", owner=("ReplicaSet", "web-1")))
    done = pod("job-x", owner=("Job", "x"), phase="Succeeded", ready=False)
    cluster.add(PODS, "shop", done)
    res = runner.run("pod-check-status", {"namespace": "shop"}, dry_run=False)
    assert res["details"]["healthy"] is True and res["details"]["unhealthy"] == []
    assert "all healthy" in res["message"]


def test_check_by_name_failed_phase_and_missing(cluster, runner):
    cluster.add(PODS, "shop", pod("web-a", phase="Failed", ready=False))
    res = runner.run("pod-check-status", {"namespace": "shop", "name": "web-a"}, dry_run=False)
    assert res["details"]["unhealthy"][0]["reason"].startswith("phase Failed")
    res = runner.run("pod-check-status", {"namespace": "shop", "name": "nope"}, dry_run=False)
    assert res["status"] == "success" and res["details"]["healthy"] is False and res["details"]["found"] is False


def test_check_no_match_is_not_healthy_but_names_nothing(cluster, runner):
    res = runner.run("pod-check-status", {"namespace": "shop", "selector": "app=none"}, dry_run=False)
    assert res["details"]["healthy"] is False and res["details"]["unhealthy"] == []
    assert res["message"].startswith("no pods matching")


def test_delete_carries_uid_precondition_so_a_replacement_pod_survives(cluster, runner):
    """The pod read (uid old) was replaced by a new pod of the same name (uid new) before the delete:
    the API server refuses the delete (409) and the new pod lives."""
    sts = ("StatefulSet", "web")
    cluster.add(PODS, "shop", {**crashing("web-0", sts), "metadata": {**crashing("web-0", sts)["metadata"], "uid": "new"}})
    stale = crashing("web-0", sts)
    stale["metadata"]["uid"] = "old"
    stale["metadata"]["namespace"] = "shop"
    cluster.on_loop(lambda: cluster.em["get /api/v1/namespaces/shop/pods/web-0"] << stale)
    res = runner.run("pod-restart", {"name": "web-0", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "error" and "409" in res["message"]
    [d] = cluster.writes()
    assert d.data["preconditions"] == {"uid": "old"}
    assert cluster.get(PODS, "shop", "web-0")["metadata"]["uid"] == "new"


# ------------------------------------------------------------------------ live preconditions
def test_a_healthy_pod_is_not_restarted(cluster, runner):
    deployment_chain(cluster, sick=False)
    res = runner.run("pod-restart", {"name": "web-7d9f-abcde", "namespace": "shop"}, dry_run=False)
    assert res["status"] == "noop" and "healthy now" in res["message"]
    assert cluster.writes() == [] and cluster.get(PODS, "shop", "web-7d9f-abcde") is not None


@pytest.mark.parametrize("finished,restarted", [("2026-11-25T11:58:00Z", True),    # 2 minutes before NOW
                                                ("2026-11-25T10:00:00Z", False)])  # 2 hours before
def test_a_ready_pod_that_restarted_recently_counts_as_unhealthy(cluster, runner, finished, restarted):
    cluster.add(PODS, "shop", pod("web-1", owner=("StatefulSet", "web"), restarts=9, last="Error", finished=finished))
    res = runner.run("pod-restart", {"name": "web-1", "namespace": "shop"}, dry_run=False)
    assert res["status"] == ("success" if restarted else "noop"), res
    assert (cluster.get(PODS, "shop", "web-1") is None) is restarted
    if restarted:
        assert res["details"]["unhealthy"] == "app: restarted 120s ago"


@pytest.mark.parametrize("kind,res_path,status", [
    ("deployment", DEP, {"replicas": 2, "readyReplicas": 2}),
    ("statefulset", STS, {"replicas": 3, "readyReplicas": 3}),
    ("daemonset", DS, {"desiredNumberScheduled": 4, "numberReady": 4, "numberUnavailable": 0}),
])
def test_a_workload_whose_pods_are_all_ready_is_not_restarted(cluster, runner, kind, res_path, status):
    replicas = {"replicas": status.get("replicas", 1)} if kind != "daemonset" else {}
    cluster.add(res_path, "shop", {"metadata": {"name": "web"}, "spec": {**replicas, "template": {}}, "status": status})
    res = runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": kind}, dry_run=False)
    assert res["status"] == "noop" and "no unhealthy pods" in res["message"]
    assert cluster.writes() == []


def test_a_workload_scaled_to_zero_is_not_restarted(cluster, runner):
    cluster.add(DEP, "shop", {"metadata": {"name": "web"}, "spec": {"replicas": 0, "template": {}}, "status": {}})
    res = runner.run("pod-restart", {"name": "web", "namespace": "shop", "type": "deployment"}, dry_run=False)
    assert res["status"] == "noop" and cluster.writes() == []
