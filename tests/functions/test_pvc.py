"""check-pvc-status: claim + storage class from KMock, usage from a loopback Prometheus API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

PVC = "v1/persistentvolumeclaims"
SC = "storage.k8s.io/v1/storageclasses"


class FakePrometheus:
    """Speaks Prometheus' /api/v1/query JSON for the two kubelet volume-stats metrics."""

    def __init__(self, used: float | None, capacity: float | None, status: str = "success"):
        self.queries: list[str] = []
        prom = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                u = urlparse(self.path)
                if u.path != "/api/v1/query":
                    self.send_response(404)
                    self.end_headers()
                    return
                q = parse_qs(u.query)["query"][0]
                prom.queries.append(q)
                val = used if "used_bytes" in q else capacity
                ok = 'namespace="data"' in q and 'persistentvolumeclaim="pg-data"' in q
                result = [{"metric": {}, "value": [1764072000.0, str(val)]}] if ok and val is not None else []
                doc = ({"status": "success", "data": {"resultType": "vector", "result": result}} if status == "success"
                       else {"status": "error", "errorType": "bad_data", "error": "parse error"})
                body = json.dumps(doc).encode()
                self.send_response(200 if status == "success" else 400)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pvc(cluster):
    cluster.add(SC, None, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "longhorn"},
                           "provisioner": "driver.longhorn.io", "allowVolumeExpansion": True})
    cluster.add(SC, None, {"metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path"})
    cluster.add(PVC, "data", {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pg-data"},
                              "spec": {"storageClassName": "longhorn", "accessModes": ["ReadWriteOnce"],
                                       "resources": {"requests": {"storage": "10Gi"}}, "volumeName": "pvc-123"},
                              "status": {"phase": "Bound", "capacity": {"storage": "10Gi"},
                                         "accessModes": ["ReadWriteOnce"]}})


def test_pvc_with_prometheus_usage(cluster, runner, settings, pvc):
    prom = FakePrometheus(used=9.2 * 2**30, capacity=10 * 2**30)
    try:
        runner.settings = settings.model_copy(update=dict(prometheus_url=prom.url))
        res = runner.run("check-pvc-status", {"name": "pg-data", "namespace": "data"}, dry_run=False)
    finally:
        prom.close()
    assert res["status"] == "success", res
    d = res["details"]
    assert d["phase"] == "Bound" and d["capacity"] == "10Gi" and d["storage_class"] == "longhorn"
    assert d["allow_volume_expansion"] is True and d["provisioner"] == "driver.longhorn.io"
    assert d["usage"]["available"] is True
    assert d["usage"]["used_bytes"] == int(9.2 * 2**30) and d["usage"]["capacity_bytes"] == 10 * 2**30
    assert d["usage"]["used_ratio"] == 0.92
    assert d["healthy"] is False and "92% used" in res["message"]
    assert any("kubelet_volume_stats_used_bytes" in q for q in prom.queries)
    assert any("kubelet_volume_stats_capacity_bytes" in q for q in prom.queries)
    paths = [r.url.path for r in cluster.requests("GET")]
    assert "/api/v1/namespaces/data/persistentvolumeclaims/pg-data" in paths
    assert "/apis/storage.k8s.io/v1/storageclasses/longhorn" in paths
    assert cluster.writes() == []


def test_pvc_without_prometheus_says_unavailable(cluster, runner, pvc):
    res = runner.run("check-pvc-status", {"name": "pg-data", "namespace": "data"}, dry_run=False)
    d = res["details"]
    assert d["usage"] == {"available": False, "reason": "PROMETHEUS_URL not set: usage unavailable"}
    assert d["healthy"] is True and "usage unavailable" in res["message"]


def test_pvc_prometheus_without_series_or_error(cluster, runner, settings, pvc):
    prom = FakePrometheus(used=None, capacity=None)
    bad = FakePrometheus(used=1, capacity=2, status="error")
    try:
        runner.settings = settings.model_copy(update=dict(prometheus_url=prom.url))
        d = runner.run("check-pvc-status", {"name": "pg-data", "namespace": "data"}, dry_run=False)["details"]
        assert d["usage"]["available"] is False and "no kubelet_volume_stats" in d["usage"]["reason"]
        runner.settings = settings.model_copy(update=dict(prometheus_url=bad.url))
        d = runner.run("check-pvc-status", {"name": "pg-data", "namespace": "data"}, dry_run=False)["details"]
        assert d["usage"]["available"] is False and "prometheus" in d["usage"]["reason"]
    finally:
        prom.close()
        bad.close()


def test_pvc_non_expandable_class_pending_and_missing(cluster, runner):
    cluster.add(SC, None, {"metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path"})
    cluster.add(PVC, "data", {"metadata": {"name": "cache"}, "spec": {"storageClassName": "local-path"},
                              "status": {"phase": "Pending"}})
    res = runner.run("check-pvc-status", {"name": "cache", "namespace": "data"}, dry_run=False)
    d = res["details"]
    assert d["allow_volume_expansion"] is False and d["phase"] == "Pending" and d["healthy"] is False
    res = runner.run("check-pvc-status", {"name": "gone", "namespace": "data"}, dry_run=False)
    assert res["status"] == "success" and res["details"]["found"] is False


def test_quantities():
    from agent_sre.functions.pvc import quantity_bytes
    assert quantity_bytes("10Gi") == 10 * 2**30
    assert quantity_bytes("500M") == 500 * 10**6
    assert quantity_bytes("1024") == 1024
    assert quantity_bytes("bogus") is None and quantity_bytes(None) is None
