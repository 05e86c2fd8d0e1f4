"""The Kubernetes API as the functions use it: the official client, JSON dicts in and out.

* Configuration: the file named by the ``KUBECONFIG`` setting, else the ServiceAccount when
  running in a pod.  Neither: *offline* (the embedded demo) — reads fail with ``NoCluster`` and
  writes are only described, never sent.  ``~/.kube/config`` is deliberately not picked up
  implicitly: a laptop's default context must not become the demo's target by accident.
* Every write goes through ``_write``, which records ``{method, path, query, content_type, body}``
  exactly as sent, and in dry-run adds the server-side ``dryRun=All`` so nothing is persisted.
* Responses are read raw (``_preload_content=False``) and parsed as JSON: the functions work on
  what the API server returned, not on the client's model classes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

MERGE_PATCH = "application/merge-patch+json"


class NoCluster(RuntimeError):
    """No Kubernetes API is configured (not in a cluster, no KUBECONFIG)."""


class KubeError(RuntimeError):
    """The API server answered with an error."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404


def load_api_client(kubeconfig: str | None = None):
    """An official ``ApiClient``: from ``kubeconfig`` (the KUBECONFIG setting) when given, else the
    pod's ServiceAccount when running in a cluster; None when there is neither."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig:
        # KUBECONFIG may list several files; the client takes one: use the first that exists.
        first = next((p for p in kubeconfig.split(os.pathsep) if p and os.path.exists(p)), None)
        if first is None:
            raise NoCluster(f"KUBECONFIG={kubeconfig!r} names no existing file")
        config.load_kube_config(config_file=first, client_configuration=cfg, persist_config=False)
        return client.ApiClient(cfg)
    try:
        config.load_incluster_config(client_configuration=cfg)
    except config.ConfigException:
        return None  # not in a pod
    return client.ApiClient(cfg)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    body: Any = None
    sent: bool = False

    def doc(self) -> dict[str, Any]:
        d: dict[str, Any] = {"method": self.method, "path": self.path, "body": self.body}
        if self.query:
            d["query"] = dict(self.query)
        if self.content_type:
            d["content_type"] = self.content_type
        d["sent"] = self.sent
        return d


# (group, version, plural) -> the path of a namespaced object
def object_path(group: str, version: str, plural: str, namespace: str, name: str) -> str:
    prefix = f"/api/{version}" if group == "" else f"/apis/{group}/{version}"
    return f"{prefix}/namespaces/{quote(namespace)}/{plural}/{quote(name)}"


class Kube:
    """Thin layer over the official client's typed APIs. One instance per function call."""

    def __init__(self, api_client: Any | None, *, dry_run: bool, timeout: float = 10.0):
        self.api_client = api_client
        self.dry_run = dry_run
        self.timeout = timeout
        self.requests: list[Request] = []  # writes, in order

    @property
    def offline(self) -> bool:
        return self.api_client is None

    # ------------------------------------------------------------------ plumbing
    def _apis(self):
        if self.api_client is None:
            raise NoCluster("no Kubernetes API configured (not in a cluster and no KUBECONFIG)")
        from kubernetes import client

        return client, self.api_client

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        except ApiException as e:
            raise _kube_error(e) from None
        raw = resp.data
        return json.loads(raw) if raw else {}

    def _write(self, req: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.dry_run:
            req.query["dryRun"] = "All"
            kwargs["dry_run"] = "All"
        self.requests.append(req)
        if self.offline:
            return None  # described only; the caller decides whether that is allowed
        out = self._call(fn, *args, **kwargs)
        req.sent = True
        return out

    # ------------------------------------------------------------------ reads
    def get_custom(self, group: str, version: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        client, api = self._apis()
        return self._call(client.CustomObjectsApi(api).get_namespaced_custom_object,
                          group, version, namespace, plural, name)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        client, api = self._apis()
        return self._call(client.CoreV1Api(api).read_namespaced_pod, name, namespace)

    def list_pods(self, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        client, api = self._apis()
        kw = {"label_selector": label_selector} if label_selector else {}
        return self._call(client.CoreV1Api(api).list_namespaced_pod, namespace, **kw).get("items") or []

    def list_events(self, namespace: str, field_selector: str | None = None) -> list[dict[str, Any]]:
        client, api = self._apis()
        kw = {"field_selector": field_selector} if field_selector else {}
        return self._call(client.CoreV1Api(api).list_namespaced_event, namespace, **kw).get("items") or []

    def get_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        client, api = self._apis()
        apps = client.AppsV1Api(api)
        read = {"deployment": apps.read_namespaced_deployment, "statefulset": apps.read_namespaced_stateful_set,
                "daemonset": apps.read_namespaced_daemon_set, "replicaset": apps.read_namespaced_replica_set}[kind]
        return self._call(read, name, namespace)

    def get_pvc(self, namespace: str, name: str) -> dict[str, Any]:
        client, api = self._apis()
        return self._call(client.CoreV1Api(api).read_namespaced_persistent_volume_claim, name, namespace)

    def get_storage_class(self, name: str) -> dict[str, Any]:
        client, api = self._apis()
        return self._call(client.StorageV1Api(api).read_storage_class, name)

    # ------------------------------------------------------------------ writes
    def patch_custom(self, group: str, version: str, plural: str, namespace: str, name: str,
                     body: dict[str, Any]) -> Any:
        req = Request("PATCH", object_path(group, version, plural, namespace, name),
                      content_type=MERGE_PATCH, body=body)
        fn = None
        if not self.offline:
            client, api = self._apis()
            fn = client.CustomObjectsApi(api).patch_namespaced_custom_object
        return self._write(req, fn, group, version, namespace, plural, name, body, _content_type=MERGE_PATCH)

    def patch_workload(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> Any:
        plural = {"deployment": "deployments", "statefulset": "statefulsets", "daemonset": "daemonsets"}[kind]
        req = Request("PATCH", object_path("apps", "v1", plural, namespace, name), content_type=MERGE_PATCH, body=body)
        fn = None
        if not self.offline:
            client, api = self._apis()
            apps = client.AppsV1Api(api)
            fn = {"deployment": apps.patch_namespaced_deployment, "statefulset": apps.patch_namespaced_stateful_set,
                  "daemonset": apps.patch_namespaced_daemon_set}[kind]
        return self._write(req, fn, name, namespace, body, _content_type=MERGE_PATCH)

    def delete_pod(self, namespace: str, name: str, *, uid: str | None = None) -> Any:
        """Delete with the pod's own grace period (never 0). With ``uid`` the API server refuses
        to delete a different pod that took the same name meanwhile (StatefulSet pods do)."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            options["preconditions"] = {"uid": uid}
        req = Request("DELETE", object_path("", "v1", "pods", namespace, name),
                      content_type="application/json", body=options)
        fn = None
        kw: dict[str, Any] = {}
        if not self.offline:
            client, api = self._apis()
            fn = client.CoreV1Api(api).delete_namespaced_pod
            # This client sends the DeleteOptions body without a Content-Type; say what it is.
            kw["_headers"] = {"Content-Type": "application/json"}
            kw["body"] = client.V1DeleteOptions(
                api_version="v1", kind="DeleteOptions",
                preconditions=client.V1Preconditions(uid=uid) if uid else None,
            )
        return self._write(req, fn, name, namespace, **kw)


def _kube_error(e: Any) -> KubeError:
    status = int(getattr(e, "status", 0) or 0)
    reason = str(getattr(e, "reason", "") or "")
    message = reason
    body = getattr(e, "body", None)
    if body:
        try:
            doc = json.loads(body)
            message = doc.get("message") or message
            reason = doc.get("reason") or reason
        except (ValueError, TypeError, AttributeError):
            message = str(body)[:300]
    return KubeError(status, reason, message)
