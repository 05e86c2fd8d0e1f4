"""Flux reconcile requests, the way `flux reconcile` asks: through annotations, never by editing spec.

* ``reconcile.fluxcd.io/requestedAt`` = now (RFC 3339) via a JSON merge patch on metadata.annotations.
* HelmRelease with the ``force`` setting: also ``reconcile.fluxcd.io/forceAt`` (same value), which
  makes helm-controller run a one-off forced upgrade.
* ``with_source`` setting: first request a reconcile of the source named by ``spec.sourceRef``
  (Kustomization), ``spec.chart.spec.sourceRef`` or ``spec.chartRef`` (HelmRelease).
* A suspended object (``spec.suspend: true``) is not touched: result ``refused``.
* Only an object that needs it is asked (the live preconditions; otherwise ``noop`` with the
  reason): it must exist, and be not Ready (Ready False or Unknown, or no Ready condition yet)
  or stale (its controller has not observed the latest generation).
* Afterwards the object is polled for a bounded time (``FLUX_WAIT_SECONDS``) until
  ``status.lastHandledReconcileAt`` equals the requested value and the Ready condition is known.
"""

from __future__ import annotations

from typing import Any

from .. import catalog
from .kube import KubeError
from .registry import Context, Result, handler, rfc3339

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"

# kind -> (group, version, plural); the versions served by Flux >= 2.6 (all GA).
KINDS: dict[str, tuple[str, str, str]] = {
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "ocirepositories"),
    "Bucket": ("source.toolkit.fluxcd.io", "v1", "buckets"),
    "HelmRepository": ("source.toolkit.fluxcd.io", "v1", "helmrepositories"),
    "HelmChart": ("source.toolkit.fluxcd.io", "v1", "helmcharts"),
}


def _target(kind: str, namespace: str, name: str) -> dict[str, Any]:
    group, version, _ = KINDS[kind]
    return {"apiVersion": f"{group}/{version}", "kind": kind, "namespace": namespace, "name": name}


def ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def source_ref(kind: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The source object a Kustomization/HelmRelease reads from, as {kind, namespace, name}."""
    spec = obj.get("spec") or {}
    ns = (obj.get("metadata") or {}).get("namespace")
    ref = None
    if kind == "Kustomization":
        ref = spec.get("sourceRef")
    elif kind == "HelmRelease":
        ref = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or spec.get("chartRef")
    if not ref or not ref.get("name") or ref.get("kind") not in KINDS:
        return None
    return {"kind": ref["kind"], "namespace": ref.get("namespace") or ns, "name": ref["name"]}


def up_to_date(obj: dict[str, Any]) -> str | None:
    """How the object is fine (Ready and its latest generation observed), or None when a
    reconcile could help."""
    cond = ready_condition(obj)
    if cond is None or cond.get("status") != "True":
        return None
    gen = (obj.get("metadata") or {}).get("generation")
    seen = (obj.get("status") or {}).get("observedGeneration")
    if gen is not None and seen is not None and seen < gen:
        return None
    return f"is Ready ({cond.get('reason') or 'no reason given'}) at generation {seen if seen is not None else '?'}"


def _suspended(obj: dict[str, Any]) -> bool:
    return bool((obj.get("spec") or {}).get("suspend"))


def _annotation_patch(value: str, *, force: bool) -> dict[str, Any]:
    ann = {REQUESTED_AT: value}
    if force:
        ann[FORCE_AT] = value
    return {"metadata": {"annotations": ann}}


def reconcile(kind: str, params: Any, ctx: Context) -> Result:
    group, version, plural = KINDS[kind]
    name, ns = params.name, params.namespace
    target = _target(kind, ns, name)
    s = ctx.settings
    force = s.flux_force and kind == "HelmRelease"
    now = rfc3339(ctx.clock())
    body = _annotation_patch(now, force=force)
    details: dict[str, Any] = {"requestedAt": now, "with_source": s.flux_with_source, "force": force}

    if ctx.offline:
        # Embedded demo, no cluster: describe the request; suspend and source cannot be looked up.
        ctx.kube.patch_custom(group, version, plural, ns, name, body)
        details["verified"] = False
        return Result("success", f"would request reconcile of {kind} {ns}/{name} "
                      "(no cluster: preconditions such as suspend not checked)", target, details)

    try:
        obj = ctx.kube.get_custom(group, version, plural, ns, name)
    except KubeError as e:
        if not e.not_found:
            raise
        return Result("noop", f"{kind} {ns}/{name} does not exist; nothing to reconcile", target, details)
    if _suspended(obj):
        return Result("refused", f"{kind} {ns}/{name} is suspended (spec.suspend: true); not touched — "
                      "resume it deliberately (flux resume) before asking for a reconcile", target,
                      {**details, "suspended": True})

    current = up_to_date(obj)
    if current is not None:
        return Result("noop", f"{kind} {ns}/{name} {current}; no reconcile needed", target,
                      {**details, "ready": "True"})

    steps: list[dict[str, Any]] = []
    if s.flux_with_source:
        ref = source_ref(kind, obj)
        if ref is None:
            steps.append({"source": None, "message": "no source reference found; source not reconciled"})
        else:
            sg, sv, sp = KINDS[ref["kind"]]
            try:
                src = ctx.kube.get_custom(sg, sv, sp, ref["namespace"], ref["name"])
            except KubeError as e:
                if not e.not_found:
                    raise
                return Result("error", f"source {ref['kind']} {ref['namespace']}/{ref['name']} of {kind} "
                              f"{ns}/{name} not found", target, {**details, "source": ref})
            if _suspended(src):
                steps.append({"source": ref, "message": "source is suspended; not touched"})
            else:
                ctx.kube.patch_custom(sg, sv, sp, ref["namespace"], ref["name"], _annotation_patch(now, force=False))
                steps.append({"source": ref, "message": "source reconcile requested"})
        details["source"] = steps[-1]

    ctx.kube.patch_custom(group, version, plural, ns, name, body)
    verb = "would request" if ctx.dry_run else "requested"
    if ctx.dry_run:
        details["verified"] = True
        return Result("success", f"dry-run: {verb} reconcile of {kind} {ns}/{name} (server-side dryRun=All, "
                      "nothing persisted)", target, details)
    return _watch(kind, group, version, plural, ns, name, now, target, details, ctx)


def _watch(kind: str, group: str, version: str, plural: str, ns: str, name: str, requested: str,
           target: dict[str, Any], details: dict[str, Any], ctx: Context) -> Result:
    """Poll until the controller handled our request (lastHandledReconcileAt == requested) and Ready
    is decided, for at most FLUX_WAIT_SECONDS."""
    s = ctx.settings
    deadline = ctx.monotonic() + max(0.0, s.flux_wait_seconds)
    obj: dict[str, Any] = {}
    caught_up = False
    cond = None
    while True:
        obj = ctx.kube.get_custom(group, version, plural, ns, name)
        status = obj.get("status") or {}
        caught_up = status.get("lastHandledReconcileAt") == requested
        cond = ready_condition(obj)
        gen = (obj.get("metadata") or {}).get("generation")
        current = gen is None or status.get("observedGeneration") in (None, gen)
        if caught_up and current and cond and cond.get("status") in ("True", "False"):
            break
        if ctx.monotonic() >= deadline:
            break
        ctx.sleep(max(0.01, min(s.flux_poll_seconds, deadline - ctx.monotonic())))
    ready = None if cond is None else cond.get("status")
    seen = f"Ready={ready} ({(cond or {}).get('reason')}) after lastHandledReconcileAt={requested}" if caught_up \
        else f"the controller has not handled the request within {s.flux_wait_seconds:g}s"
    details["verification"] = {"ok": {"True": True, "False": False}.get(ready) if caught_up else None,
                               "observed": seen}
    details.update({
        "confirmed": caught_up,
        "lastHandledReconcileAt": (obj.get("status") or {}).get("lastHandledReconcileAt"),
        "ready": ready,
        "readyReason": (cond or {}).get("reason"),
        "readyMessage": (cond or {}).get("message"),
        "waited_seconds": s.flux_wait_seconds,
    })
    if caught_up and ready == "True":
        return Result("success", f"{kind} {ns}/{name} reconciled and Ready", target, details)
    if caught_up and ready == "False":
        return Result("error", f"{kind} {ns}/{name} reconciled but not Ready: "
                      f"{(cond or {}).get('reason')}: {(cond or {}).get('message')}", target, details)
    return Result("success", f"reconcile of {kind} {ns}/{name} requested; not confirmed within "
                  f"{s.flux_wait_seconds:g}s (lastHandledReconcileAt={details['lastHandledReconcileAt']}, "
                  f"Ready={ready})", target, details)


@handler("flux-reconcile-kustomization", action="reconcile")
def reconcile_kustomization(params: catalog.FluxReconcileKustomization, ctx: Context) -> Result:
    return reconcile("Kustomization", params, ctx)


@handler("flux-reconcile-gitrepository", action="reconcile")
def reconcile_gitrepository(params: catalog.FluxReconcileGitRepository, ctx: Context) -> Result:
    return reconcile("GitRepository", params, ctx)


@handler("flux-reconcile-helmrelease", action="reconcile")
def reconcile_helmrelease(params: catalog.FluxReconcileHelmRelease, ctx: Context) -> Result:
    return reconcile("HelmRelease", params, ctx)
