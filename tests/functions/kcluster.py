"""A Kubernetes API on loopback for the function tests: KMock's emulator in a background thread.

The official ``kubernetes`` client talks to it over real HTTP through a kubeconfig file.  Two
things the real API server does and KMock 0.8 does not are added here, because the functions
rely on them: ``dryRun=All`` is honoured (nothing persisted), and ``labelSelector`` /
``fieldSelector`` (equality terms) filter lists.  Pod deletes honour ``preconditions.uid``.
A tiny Flux controller can be switched on: after a reconcile annotation it sets
``status.lastHandledReconcileAt`` and the Ready condition, like kustomize-/helm-/source-controller.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from typing import Any

import aiohttp.web
import kmock
import yaml

UPDATE, DELETE, CREATE = kmock.action.UPDATE, kmock.action.DELETE, kmock.action.CREATE


def _merge(dst: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dst)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _selector_ok(selector: str | None, labels: dict[str, Any]) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if str(labels.get(k.strip())) == v.strip():
                return False
        else:
            k, v = term.replace("==", "=").split("=", 1)
            if str(labels.get(k.strip())) != v.strip():
                return False
    return True


def _dotted(obj: dict[str, Any], path: str) -> dict[str, Any]:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


class Emulator(kmock.KubernetesEmulator):
    flux: dict[str, Any] | None = None  # {"ready": "True"|"False", "delay": s, "message": ...}

    async def _handle(self, request):  # type: ignore[override]
        if request.resource is not None and request.params.get("dryRun") == "All" and request.action in (
                UPDATE, DELETE, CREATE):
            return await self._dry_run(request)
        if request.resource is not None and request.action == DELETE and isinstance(request.data, dict):
            uid = ((request.data.get("preconditions") or {}).get("uid"))
            key = (request.resource, request.namespace, request.name)
            if uid and key in self.objects and not self.objects[key].deleted:
                have = (self.objects[key].get("metadata") or {}).get("uid")
                if have != uid:
                    raise kmock.KubernetesError(status=409, reason="Conflict",
                                                message=f"Precondition failed: UID in precondition: {uid}, UID in object meta: {have}")
        response = await super()._handle(request)
        if request.action == UPDATE and self.flux is not None and request.resource.group.endswith("fluxcd.io"):
            ann = ((request.data or {}).get("metadata") or {}).get("annotations") or {}
            if "reconcile.fluxcd.io/requestedAt" in ann:
                key = (request.resource, request.namespace, request.name)
                asyncio.get_running_loop().create_task(self._reconcile(key, ann["reconcile.fluxcd.io/requestedAt"]))
        return response

    async def _reconcile(self, key, requested: str) -> None:
        await asyncio.sleep(self.flux.get("delay", 0.05))
        ready = self.flux.get("ready", "True")
        self.objects[key].patch({"status": {
            "lastHandledReconcileAt": requested,
            "conditions": [{"type": "Ready", "status": ready,
                            "reason": "ReconciliationSucceeded" if ready == "True" else "BuildFailed",
                            "message": self.flux.get("message", "Applied revision: main@sha1:abc")}],
        }})

    async def _dry_run(self, request):
        key = (request.resource, request.namespace, request.name)
        if request.action == CREATE:
            return aiohttp.web.json_response(request.data, status=201)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        current = self.objects[key].raw
        if request.action == UPDATE:
            return aiohttp.web.json_response(_merge(current, request.data or {}))
        return aiohttp.web.json_response(current)

    async def _serve_list(self, request):  # type: ignore[override]
        doc = await super()._serve_list(request)
        labels = request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        items = []
        for it in doc["items"]:
            if not _selector_ok(labels, (it.get("metadata") or {}).get("labels") or {}):
                continue
            if fields and not all(str(_dotted(it, t.split("=", 1)[0])) == t.split("=", 1)[1]
                                  for t in fields.split(",")):
                continue
            items.append(it)
        return {**doc, "items": items}


class Cluster:
    """KMock on a loopback port, run by a private event loop in a daemon thread."""

    def __init__(self, tmp_path) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self._ready.wait(15):
            raise RuntimeError(f"kmock did not start: {self._error}")
        self.kubeconfig = str(tmp_path / "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
                "users": [{"name": "agent", "user": {"token": "test-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "agent"}}],
            }, f)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as e:  # pragma: no cover - reported by __init__
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with Emulator() as em, kmock.Server(em) as srv:
            self.em = em
            for res in ("v1/pods", "v1/events", "v1/persistentvolumeclaims", "storage.k8s.io/v1/storageclasses",
                        "apps/v1/deployments", "apps/v1/replicasets", "apps/v1/statefulsets", "apps/v1/daemonsets"):
                em.resources[res] = {}
            self.url = str(srv.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)

    def on_loop(self, fn, *args):
        """Run ``fn`` on the emulator's loop thread (object store mutations) and return its value."""
        async def call():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    # ------------------------------------------------------------------ objects
    def add(self, resource: str, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        obj = copy.deepcopy(obj)
        if namespace:
            obj["metadata"]["namespace"] = namespace
        obj["metadata"].setdefault("uid", f"uid-{name}")
        self.on_loop(self.em.objects.__setitem__, (kmock.resource(resource), namespace, name), obj)
        return obj

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        def read():
            key = (kmock.resource(resource), namespace, name)
            if key not in list(self.em.objects) or self.em.objects[key].deleted:
                return None
            return json.loads(json.dumps(self.em.objects[key].raw))
        return self.on_loop(read)

    def requests(self, method: str | None = None) -> list[Any]:
        reqs = self.on_loop(lambda: list(self.em))
        if method:
            reqs = [r for r in reqs if str(r.method.value if hasattr(r.method, "value") else r.method).upper() == method]
        return reqs

    def writes(self) -> list[Any]:
        return [r for r in self.requests() if str(getattr(r.method, "value", r.method)).upper()
                in ("PATCH", "DELETE", "POST", "PUT")]

    def set_flux(self, behaviour: dict[str, Any] | None) -> None:
        self.on_loop(setattr, self.em, "flux", behaviour)
