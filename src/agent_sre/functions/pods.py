"""pod-restart and pod-check-status.

pod-restart semantics (decided here, documented for the gate and the runbook):

* ``type: pod`` deletes *that pod* with its normal grace period (no gracePeriodSeconds at all, so
  the pod's terminationGracePeriodSeconds applies), and only when a controller owns it
  (an ownerReference with ``controller: true``); the controller recreates it.  A bare pod is
  refused: deleting it would lose it.  The owner is resolved (ReplicaSet -> Deployment) and
  reported in ``details.owner``/``details.workload`` but is *not* rolled out — the blast radius
  stays one pod.  The delete carries ``preconditions.uid`` so a newer pod that took the same
  name (StatefulSets) is never deleted by mistake.
* ``type: deployment|statefulset|daemonset`` does what ``kubectl rollout restart`` does: a merge
  patch of ``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]``.
  A paused Deployment is refused (kubectl refuses it too).

Both act only on something broken *now* (the live preconditions, checked against the API before
any write; otherwise the answer is ``noop`` with the reason): a pod must be unhealthy (not Ready,
waiting in CrashLoopBackOff or a like reason, failed, or restarted within ``RECENT_RESTART_S``);
a workload must have pods that are not ready by its controller's own count (its status). A
restart of something healthy cannot help, and the checks turn a wrong decision into a no-op.

After acting for real, pod-restart verifies its target for at most ``VERIFY_WAIT_SECONDS``
(``registry.watch``) and reports ``details.verification``: a replacement pod of the same
controller (another uid) Ready — or seen crashing, which is ``ok: false`` —, or the rollout
complete (the controller observed the new generation and every replica is updated and
available).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .. import catalog
from .kube import KubeError
from .registry import Context, Result, handler, rfc3339, watch

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet"}
# A container that terminated this recently counts as restarting (a crash loop between back-offs
# looks Running and Ready for a moment).
RECENT_RESTART_S = 600

# Container waiting reasons that mean the pod is broken rather than starting normally.
BAD_WAITING = {
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "PreStartHookError",
    "PostStartHookError", "ContainerCannotRun",
}


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True:
            return {"kind": ref.get("kind"), "name": ref.get("name"), "uid": ref.get("uid")}
    return None


# ------------------------------------------------------------------------------------ pod-restart
@handler("pod-restart", action="restart")
def pod_restart(params: catalog.PodRestart, ctx: Context) -> Result:
    if params.type == "pod":
        return _delete_pod(params, ctx)
    return _rollout_restart(params, ctx)


def _delete_pod(params: catalog.PodRestart, ctx: Context) -> Result:
    ns, name = params.namespace, params.name
    target = {"kind": "Pod", "namespace": ns, "name": name}
    if ctx.offline:
        ctx.kube.delete_pod(ns, name)
        return Result("success", f"would delete pod {ns}/{name} with its normal grace period "
                      "(no cluster: preconditions such as owner not checked)", target,
                      {"verified": False, "mode": "delete-pod"})
    pod = ctx.kube.get_pod(ns, name)
    meta = pod.get("metadata") or {}
    owner = controller_of(pod)
    details: dict[str, Any] = {"mode": "delete-pod", "owner": owner}
    if owner is None:
        return Result("refused", f"pod {ns}/{name} has no controller (bare pod): deleting it would lose it; "
                      "not restarted", target, details)
    if meta.get("deletionTimestamp"):
        return Result("noop", f"pod {ns}/{name} is already terminating (since {meta['deletionTimestamp']})",
                      target, details)
    sick = unhealthy_now(pod, ctx.clock())
    if sick is None:
        return Result("noop", f"pod {ns}/{name} is healthy now (Ready, running, no restart in the last "
                      f"{RECENT_RESTART_S // 60} minutes); not restarted", target, {**details, "healthy": True})
    details["unhealthy"] = sick
    details["workload"] = _workload_of(ns, owner, ctx)
    ctx.kube.delete_pod(ns, name, uid=meta.get("uid"))
    wl = details["workload"] or owner
    how = f"{owner['kind']} {owner['name']}" if wl is owner else f"{wl['kind']} {wl['name']} via {owner['kind']} {owner['name']}"
    if ctx.dry_run:
        return Result("success", f"dry-run: would delete pod {ns}/{name} (owned by {how}); server-side "
                      "dryRun=All, nothing deleted", target, {**details, "verified": True})
    details["verification"] = seen = watch(ctx, lambda: _replacement(ns, owner, meta.get("uid"), ctx))
    return Result("success", f"deleted pod {ns}/{name} with its normal grace period; {how} recreates it; "
                  f"{seen['observed']}", target, details)


def _replacement(ns: str, owner: dict[str, Any], old_uid: str | None, ctx: Context) -> tuple[bool | None, str]:
    """Is a pod of the same controller, other than the one deleted, Ready?"""
    mine = []
    for p in ctx.kube.list_pods(ns):
        o, m = controller_of(p), p.get("metadata") or {}
        same = o is not None and (o.get("uid") == owner.get("uid") if owner.get("uid") else
                                  (o.get("kind"), o.get("name")) == (owner.get("kind"), owner.get("name")))
        if same and m.get("uid") != old_uid and not m.get("deletionTimestamp"):
            mine.append(pod_report(p))
    ready = [r for r in mine if r["ready"] and r["healthy"]]
    if ready:
        return True, f"replacement pod {ready[0]['name']} is Ready"
    crashing = [r for r in mine if not r["healthy"] and r["reason"] and "not ready" not in r["reason"]]
    if crashing:
        return False, f"replacement pod {crashing[0]['name']} is not recovering: {crashing[0]['reason']}"
    if mine:
        return None, f"replacement pod {mine[0]['name']} not Ready yet ({mine[0]['reason']})"
    return None, "no replacement pod seen yet"


def _workload_of(ns: str, owner: dict[str, Any], ctx: Context) -> dict[str, Any] | None:
    """ReplicaSet -> its Deployment (for the report); other controllers are the workload themselves."""
    if owner.get("kind") != "ReplicaSet":
        return {"kind": owner.get("kind"), "name": owner.get("name")}
    try:
        rs = ctx.kube.get_workload("replicaset", ns, owner["name"])
    except KubeError as e:
        if e.not_found:
            return None
        raise
    dep = controller_of(rs)
    if dep:
        return {"kind": dep["kind"], "name": dep["name"]}
    return {"kind": "ReplicaSet", "name": owner["name"]}


def _rollout_restart(params: catalog.PodRestart, ctx: Context) -> Result:
    kind, ns, name = params.type, params.namespace, params.name
    target = {"kind": KINDS[kind], "namespace": ns, "name": name}
    now = rfc3339(ctx.clock(), nanos=False)
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    details: dict[str, Any] = {"mode": "rollout-restart", "restartedAt": now}
    if ctx.offline:
        ctx.kube.patch_workload(kind, ns, name, body)
        return Result("success", f"would roll out {KINDS[kind]} {ns}/{name} like kubectl rollout restart "
                      "(no cluster: preconditions not checked)", target, {**details, "verified": False})
    obj = ctx.kube.get_workload(kind, ns, name)
    if kind == "deployment" and (obj.get("spec") or {}).get("paused"):
        return Result("refused", f"Deployment {ns}/{name} is paused; not restarted (resume it first)",
                      target, details)
    sick = workload_unready(kind, obj)
    if sick is None:
        return Result("noop", f"{KINDS[kind]} {ns}/{name} has no unhealthy pods (all ready by its status); "
                      "not restarted", target, {**details, "healthy": True})
    details["unhealthy"] = sick
    ctx.kube.patch_workload(kind, ns, name, body)
    if ctx.dry_run:
        return Result("success", f"dry-run: would roll out {KINDS[kind]} {ns}/{name} (server-side dryRun=All, "
                      "nothing persisted)", target, {**details, "verified": True})
    details["verification"] = seen = watch(ctx, lambda: rollout_done(kind, ctx.kube.get_workload(kind, ns, name)))
    return Result("success", f"rollout restart of {KINDS[kind]} {ns}/{name} requested; {seen['observed']}",
                  target, details)


def rollout_done(kind: str, obj: dict[str, Any]) -> tuple[bool | None, str]:
    """Is the rollout complete, the way ``kubectl rollout status`` decides it?"""
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if meta.get("generation") is not None and (st.get("observedGeneration") or 0) < meta["generation"]:
        return None, "the controller has not observed the new template yet"
    if kind == "daemonset":
        want = st.get("desiredNumberScheduled") or 0
        have = (st.get("updatedNumberScheduled") or 0, st.get("numberAvailable") or 0)
    else:
        want = spec.get("replicas", 1)
        ready = st.get("availableReplicas" if kind == "deployment" else "readyReplicas") or 0
        have = (st.get("updatedReplicas") or 0, ready)
        if kind == "deployment" and (st.get("replicas") or 0) > have[0]:
            return None, f"{st.get('replicas', 0) - have[0]} old replicas still terminating"
    if have[0] >= want and have[1] >= want:
        return True, f"rollout complete: {have[0]} of {want} replicas updated and available"
    return None, f"rollout in progress: {have[0]} of {want} updated, {have[1]} available"


def _parse_time(value: Any) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def unhealthy_now(pod: dict[str, Any], now: _dt.datetime) -> str | None:
    """Why the pod needs a restart now, or None when it is healthy."""
    report = pod_report(pod)
    if not report["healthy"]:
        return report["reason"] or "unhealthy"
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        finished = _parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (now - finished).total_seconds() < RECENT_RESTART_S:
            return f"{cs.get('name')}: restarted {int((now - finished).total_seconds())}s ago"
    return None


def workload_unready(kind: str, obj: dict[str, Any]) -> str | None:
    """Why the workload needs a restart now (pods not ready by its status), or None."""
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "daemonset":
        want, ready = int(st.get("desiredNumberScheduled") or 0), int(st.get("numberReady") or 0)
        unavailable = int(st.get("numberUnavailable") or 0)
    else:
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        ready = int(st.get("readyReplicas") or 0)
        unavailable = int(st.get("unavailableReplicas") or 0)
    if want == 0:
        return None  # nothing runs: a restart starts nothing
    if ready < want or unavailable > 0:
        return f"{ready} of {want} pods ready" + (f", {unavailable} unavailable" if unavailable else "")
    return None


# ------------------------------------------------------------------------------- pod-check-status
def _ts(ev: dict[str, Any]) -> str:
    return (ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp")
            or (ev.get("metadata") or {}).get("creationTimestamp") or "")


def pod_report(pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    phase = status.get("phase") or "Unknown"
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    restarts = 0
    containers = []
    reasons: list[str] = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        c = {"name": cs.get("name"), "ready": bool(cs.get("ready")), "restarts": int(cs.get("restartCount") or 0)}
        if "waiting" in state:
            c["waiting"] = (state["waiting"] or {}).get("reason")
            if c["waiting"] in BAD_WAITING:
                reasons.append(f"{cs.get('name')}: {c['waiting']}")
        if "terminated" in state:
            c["terminated"] = (state["terminated"] or {}).get("reason")
        if last:
            c["last_terminated"] = last.get("reason")
        containers.append(c)
    terminating = bool(meta.get("deletionTimestamp"))
    if phase == "Succeeded" or terminating:
        healthy = True  # finished job pods are fine; terminating pods are being replaced already
    elif phase in ("Failed", "Unknown"):
        healthy = False
        reasons.insert(0, f"phase {phase}" + (f" ({status.get('reason')})" if status.get("reason") else ""))
    elif reasons:
        healthy = False
    elif not ready:
        healthy = False
        reasons.append(f"not ready (phase {phase})")
    else:
        healthy = True
    return {
        "name": meta.get("name"), "namespace": meta.get("namespace"), "phase": phase, "ready": ready,
        "restarts": restarts, "containers": containers, "terminating": terminating,
        "owner": controller_of(pod), "healthy": healthy, "reason": "; ".join(reasons) if not healthy else None,
    }


@handler("pod-check-status", action="check")
def pod_check_status(params: catalog.PodCheckStatus, ctx: Context) -> Result:
    ns = params.namespace
    target: dict[str, Any] = {"kind": "Pod", "namespace": ns}
    if params.name:
        target["name"] = params.name
    if params.selector:
        target["selector"] = params.selector
    if ctx.offline:
        return Result("noop", "no cluster: pod status cannot be read", target,
                      {"verified": False, "healthy": None, "unhealthy": [], "pods": []})
    if params.name:
        try:
            pods = [ctx.kube.get_pod(ns, params.name)]
        except KubeError as e:
            if not e.not_found:
                raise
            return Result("success", f"pod {ns}/{params.name} not found", target,
                          {"healthy": False, "unhealthy": [], "pods": [], "matched": 0, "found": False})
    else:
        pods = ctx.kube.list_pods(ns, params.selector)
    reports = [pod_report(p) for p in pods]
    field = "involvedObject.kind=Pod" + (f",involvedObject.name={params.name}" if params.name else "")
    names = {r["name"] for r in reports}
    by_pod: dict[str, list[dict[str, Any]]] = {}
    events_error = None
    try:
        events = ctx.kube.list_events(ns, field) if reports else []
    except KubeError as e:  # events are context, not the verdict: report without them
        events, events_error = [], f"events unavailable: {e}"
    for ev in sorted(events, key=_ts):
        io = ev.get("involvedObject") or {}
        if io.get("kind") == "Pod" and io.get("name") in names:
            by_pod.setdefault(io["name"], []).append({
                "type": ev.get("type"), "reason": ev.get("reason"), "message": ev.get("message"),
                "count": ev.get("count"), "last": _ts(ev)})
    for r in reports:
        r["events"] = by_pod.get(r["name"], [])[-ctx.settings.pod_events:]
    unhealthy = [{"name": r["name"], "namespace": r["namespace"], "type": "pod", "reason": r["reason"]}
                 for r in reports if not r["healthy"]]
    healthy = bool(reports) and not unhealthy
    what = f"pod {ns}/{params.name}" if params.name else (
        f"pods matching {params.selector} in {ns}" if params.selector else f"pods in namespace {ns}")
    if not reports:
        msg = f"no {what}"
    elif healthy:
        msg = f"{len(reports)} {what}: all healthy"
    else:
        msg = f"{len(unhealthy)} of {len(reports)} {what} unhealthy: " + ", ".join(
            f"{u['name']} ({u['reason']})" for u in unhealthy[:5])
    details = {"healthy": healthy, "unhealthy": unhealthy, "pods": reports, "matched": len(reports)}
    if events_error:
        details["events_error"] = events_error
    return Result("success", msg, target, details)
