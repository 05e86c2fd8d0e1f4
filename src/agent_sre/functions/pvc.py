"""check-pvc-status: the claim, its storage class, and its usage from Prometheus when configured."""

from __future__ import annotations

from typing import Any

import httpx

from .. import catalog
from .kube import KubeError
from .registry import Context, Result, handler

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
          "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def quantity_bytes(q: str | None) -> int | None:
    """Kubernetes quantity ("10Gi", "500M", "1e9") to bytes; None when absent or unparsable."""
    if not q:
        return None
    q = str(q).strip()
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if q.endswith(suffix):
            try:
                return int(float(q[: -len(suffix)]) * _UNITS[suffix])
            except ValueError:
                return None
    try:
        return int(float(q))
    except ValueError:
        return None


def _label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


def prometheus_usage(url: str, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    """Used/capacity bytes from the kubelet volume stats, via Prometheus' instant query API."""
    sel = f'{{namespace="{_label_value(namespace)}",persistentvolumeclaim="{_label_value(name)}"}}'
    out: dict[str, Any] = {"available": False, "source": url}
    values: dict[str, float | None] = {}
    try:
        with httpx.Client(timeout=timeout) as client:
            for key, metric in (("used_bytes", "kubelet_volume_stats_used_bytes"),
                                ("capacity_bytes", "kubelet_volume_stats_capacity_bytes")):
                r = client.get(url.rstrip("/") + "/api/v1/query", params={"query": f"max({metric}{sel})"})
                r.raise_for_status()
                doc = r.json()
                if doc.get("status") != "success":
                    out["reason"] = f"prometheus: {doc.get('errorType')}: {doc.get('error')}"
                    return out
                result = (doc.get("data") or {}).get("result") or []
                values[key] = float(result[0]["value"][1]) if result else None
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
        out["reason"] = f"prometheus query failed: {e}"
        return out
    if values.get("used_bytes") is None or not values.get("capacity_bytes"):
        out["reason"] = "no kubelet_volume_stats series for this claim (not mounted, or not scraped)"
        return out
    used, cap = values["used_bytes"], values["capacity_bytes"]
    return {"available": True, "source": url, "used_bytes": int(used), "capacity_bytes": int(cap),
            "used_ratio": round(used / cap, 4)}


@handler("check-pvc-status", action="check")
def check_pvc_status(params: catalog.CheckPVCStatus, ctx: Context) -> Result:
    ns, name = params.namespace, params.name
    target = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name}
    if ctx.offline:
        return Result("noop", "no cluster: claim status cannot be read", target,
                      {"verified": False, "healthy": None})
    try:
        pvc = ctx.kube.get_pvc(ns, name)
    except KubeError as e:
        if not e.not_found:
            raise
        return Result("success", f"PersistentVolumeClaim {ns}/{name} not found", target,
                      {"found": False, "healthy": False})
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    phase = status.get("phase") or "Unknown"
    sc_name = spec.get("storageClassName")
    details: dict[str, Any] = {
        "found": True,
        "phase": phase,
        "capacity": (status.get("capacity") or {}).get("storage"),
        "requested": ((spec.get("resources") or {}).get("requests") or {}).get("storage"),
        "access_modes": status.get("accessModes") or spec.get("accessModes") or [],
        "volume": spec.get("volumeName"),
        "storage_class": sc_name,
        "conditions": [{"type": c.get("type"), "status": c.get("status"), "message": c.get("message")}
                       for c in status.get("conditions") or []],
    }
    expandable: bool | None = None
    if sc_name:
        try:
            sc = ctx.kube.get_storage_class(sc_name)
            expandable = bool(sc.get("allowVolumeExpansion", False))
            details["provisioner"] = sc.get("provisioner")
        except KubeError as e:
            if not e.not_found:
                raise
            details["storage_class_missing"] = True
    details["allow_volume_expansion"] = expandable

    if ctx.settings.prometheus_url:
        usage = prometheus_usage(ctx.settings.prometheus_url, ns, name, ctx.settings.prometheus_timeout)
    else:
        usage = {"available": False, "reason": "PROMETHEUS_URL not set: usage unavailable"}
    details["usage"] = usage

    problems = []
    if phase != "Bound":
        problems.append(f"phase {phase}")
    if usage.get("available") and usage["used_ratio"] >= ctx.settings.pvc_usage_threshold:
        problems.append(f"{usage['used_ratio']:.0%} used (threshold {ctx.settings.pvc_usage_threshold:.0%})")
    details["healthy"] = not problems
    parts = [f"PersistentVolumeClaim {ns}/{name}: {phase}", f"capacity {details['capacity'] or '?'}",
             f"class {sc_name or '-'} (expansion {'allowed' if expandable else 'not allowed' if expandable is False else 'unknown'})"]
    if usage.get("available"):
        parts.append(f"{usage['used_ratio']:.0%} used")
    else:
        parts.append("usage unavailable")
    msg = ", ".join(parts) + (f"; problems: {'; '.join(problems)}" if problems else "")
    return Result("success", msg, target, details)
