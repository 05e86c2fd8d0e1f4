"""Confirming an incident's links with the Kubernetes API (optional; read-only).

``KubeFacts`` answers the two questions the correlator may ask (``correlate.ClusterFacts``):
where does a pod run and who owns it (``spec.nodeName``, the controller in
``metadata.ownerReferences``), and what does a Flux object point at (``spec.sourceRef``,
``spec.chart.spec.sourceRef`` / ``spec.chartRef`` of a HelmRelease, ``spec.dependsOn``).

Every answer is cached for ``ttl_s`` (the correlator asks again each time the set of alerts
changes) and every request is bounded by ``timeout_s``. Anything that goes wrong (object gone,
API unreachable, forbidden) answers None, and the correlator decides from the alerts alone: the
cluster can only confirm or refute a link, never be required for one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable

from .correlate import PodInfo
from .evidence import Ref

log = logging.getLogger(__name__)

# kind → (group, version, plural) of the Flux objects that point upstream
FLUX_API: dict[str, tuple[str, str, str]] = {
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "HelmChart": ("source.toolkit.fluxcd.io", "v1", "helmcharts"),
}
_MISS = object()


def load_api_client(kubeconfig: str | None = None):
    """The official client, in-cluster (ServiceAccount) or from ``kubeconfig``; None if neither."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg, persist_config=False)
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
            "/var/run/secrets/kubernetes.io/serviceaccount/token"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        return None
    return client.ApiClient(cfg)


class KubeFacts:
    def __init__(self, api_client: Any, ttl_s: float = 60.0, timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._cache: dict[tuple, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple, fetch: Callable[[], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key, _MISS)
        if hit is not _MISS and now - hit[0] < self.ttl_s:  # type: ignore[index]
            return hit[1]  # type: ignore[index]
        try:
            value = fetch()
        except Exception as e:  # noqa: BLE001 - any API failure means "cannot tell"
            log.info("cluster lookup %s failed: %s", key, e)
            value = None
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def _read(self, call: Callable[..., Any], *args: Any) -> dict[str, Any]:
        resp = call(*args, _preload_content=False, _request_timeout=self.timeout_s)
        return json.loads(resp.data)

    def pod(self, namespace: str, name: str) -> PodInfo | None:
        def fetch() -> PodInfo:
            doc = self._read(self.core.read_namespaced_pod, name, namespace)
            owner = next((o for o in (doc.get("metadata") or {}).get("ownerReferences") or []
                          if o.get("controller")), None)
            return PodInfo(node=(doc.get("spec") or {}).get("nodeName") or None,
                           owner=Ref(str(owner.get("kind", "")).lower(), namespace, owner["name"]) if owner else None)
        return self._cached(("pod", namespace, name), fetch)

    def flux_refs(self, kind: str, namespace: str, name: str) -> tuple[Ref, ...] | None:
        api = FLUX_API.get(kind)
        if api is None:
            return None

        def fetch() -> tuple[Ref, ...]:
            doc = self._read(self.custom.get_namespaced_custom_object, api[0], api[1], namespace, api[2], name)
            spec = doc.get("spec") or {}
            refs = []
            src = spec.get("sourceRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") \
                or spec.get("chartRef")
            if isinstance(src, dict) and src.get("name"):
                refs.append(Ref(src.get("kind") or "source", src.get("namespace") or namespace, src["name"]))
            for dep in spec.get("dependsOn") or []:
                if isinstance(dep, dict) and dep.get("name"):
                    refs.append(Ref(kind, dep.get("namespace") or namespace, dep["name"]))
            return tuple(refs)
        return self._cached(("flux", kind, namespace, name), fetch)
