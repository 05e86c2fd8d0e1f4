"""A real alerting pipeline on loopback: exporter -> Prometheus -> Alertmanager -> webhook.

Starts Debian's ``/usr/bin/prometheus`` (2.42) and ``/usr/bin/prometheus-alertmanager`` (0.25) on
free loopback ports in temporary directories, with timings cut down so an alert fires within
seconds (``--rules.alert.resend-delay=1s``, rule groups evaluated every second, Alertmanager
``group_wait``/``group_interval`` 1s, no gossip).

Used as a library by tests/e2e and tests/collect (no pytest import at module level).

* ``Exporter``      prometheus_client registries served on loopback at /flux/metrics (scraped like
                    the Flux controllers: the target has ``namespace=flux-system`` so the series'
                    own namespace ends up in ``exported_namespace``) and /ksm/metrics (scraped
                    with ``honor_labels`` like kube-state-metrics and the kubelet).
* ``WebhookSink``   records every request Alertmanager (or anyone) POSTs to it.
* ``Stack``         writes the configs, starts both binaries, waits until ready, stops them.
* ``KnativeBroker`` the Broker and the Triggers of deploy/: 202 at ingress, asynchronous delivery
                    without credentials, replies back into the broker, retries, dead letters.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"
RECEIVER_EXAMPLE = REPO / "deploy" / "examples" / "alertmanager-receiver.yaml"
PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
ALERTMANAGER_BIN = os.environ.get("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")


def binaries_missing() -> list[str]:
    return [b for b in (PROMETHEUS_BIN, ALERTMANAGER_BIN) if not (Path(b).is_file() and os.access(b, os.X_OK))]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


# --------------------------------------------------------------------------- HTTP helpers


class _Server:
    """A ThreadingHTTPServer on a free loopback port, running in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "_Server":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _ExporterHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        exporter: Exporter = self.server.owner  # type: ignore[attr-defined]
        reg = exporter.registries.get(self.path.split("?")[0].rstrip("/"))
        if reg is None:
            self.send_error(404)
            return
        body = generate_latest(reg)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Exporter(_Server):
    """The metrics the rules watch, with the label sets the real exporters use."""

    def __init__(self):
        super().__init__(_ExporterHandler)
        self.flux = CollectorRegistry()
        self.ksm = CollectorRegistry()
        self.registries = {"/flux/metrics": self.flux, "/ksm/metrics": self.ksm}
        self.reconcile_condition = Gauge(
            "gotk_reconcile_condition", "The current condition status of a GitOps Toolkit resource.",
            ["kind", "name", "namespace", "type", "status"], registry=self.flux)
        self.waiting_reason = Gauge(
            "kube_pod_container_status_waiting_reason", "Describes the reason the container is in waiting state.",
            ["namespace", "pod", "uid", "container", "reason"], registry=self.ksm)
        self.available = Gauge("kubelet_volume_stats_available_bytes", "available bytes",
                               ["namespace", "persistentvolumeclaim", "job"], registry=self.ksm)
        self.capacity = Gauge("kubelet_volume_stats_capacity_bytes", "capacity bytes",
                              ["namespace", "persistentvolumeclaim", "job"], registry=self.ksm)
        self.used = Gauge("kubelet_volume_stats_used_bytes", "used bytes",
                          ["namespace", "persistentvolumeclaim", "job"], registry=self.ksm)

    # Flux reports each condition type with one series per status value (True/False/Unknown), 1 on
    # the current one.
    def set_flux_ready(self, kind: str, name: str, namespace: str, ready: bool) -> None:
        current = "True" if ready else "False"
        for status in ("True", "False", "Unknown"):
            self.reconcile_condition.labels(kind, name, namespace, "Ready", status).set(1 if status == current else 0)

    def set_crashloop(self, namespace: str, pod: str, container: str, crashing: bool) -> None:
        self.waiting_reason.labels(namespace, pod, f"uid-{pod}", container, "CrashLoopBackOff").set(1 if crashing else 0)

    def set_volume(self, namespace: str, pvc: str, capacity: float, available: float) -> None:
        for g, v in ((self.capacity, capacity), (self.available, available), (self.used, capacity - available)):
            g.labels(namespace, pvc, "kubelet").set(v)


@dataclass
class Received:
    t: float
    path: str
    headers: dict[str, str]
    body: Any


class _SinkHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        sink: WebhookSink = self.server.owner  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with sink.lock:
            sink.received.append(Received(time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(sink.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class WebhookSink(_Server):
    """Records every POST (Alertmanager webhooks, CloudEvents in binary mode)."""

    def __init__(self, status: int = 200):
        super().__init__(_SinkHandler)
        self.status = status
        self.received: list[Received] = []
        self.lock = threading.Lock()

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class _RelayHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        relay: Relay = self.server.owner  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        target = relay.route(self.path, headers)
        status, out_headers, out_body = 404, {}, b"no subscriber"
        if target is not None:
            fwd = {k: v for k, v in headers.items() if k not in ("host", "content-length", "connection")}
            try:
                r = httpx.post(target + (self.path if relay.keep_path else ""), headers=fwd, content=raw, timeout=30)
                status, out_body = r.status_code, r.content
                out_headers = {k: v for k, v in r.headers.items()
                               if k.lower().startswith("ce-") or k.lower() == "content-type"}
            except httpx.HTTPError as e:
                status, out_body = 502, str(e).encode()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        try:
            reply: Any = json.loads(out_body) if out_body else None
        except ValueError:
            reply = out_body.decode(errors="replace")
        with relay.lock:
            relay.exchanges.append(Exchange(time.monotonic(), self.path, headers, body, target, status,
                                            {k.lower(): v for k, v in out_headers.items()}, reply))
        self.send_response(status)
        for k, v in out_headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out_body)))
        self.end_headers()
        self.wfile.write(out_body)

    def log_message(self, *args):
        pass


@dataclass
class Exchange:
    t: float
    path: str
    headers: dict[str, str]
    body: Any
    target: str | None
    status: int
    reply_headers: dict[str, str]
    reply: Any


class Relay(_Server):
    """Records every POST and forwards it, returning the receiver's answer (a CloudEvent reply
    included, as Knative does). ``route(path, headers)`` picks the receiver URL or None (404).

    Stands in for the Knative Broker + Triggers on loopback (route on ``ce-type`` and
    ``ce-lambdafunction`` exactly like the Trigger filters in deploy/), and for the network between
    Alertmanager and the agent (to see what was delivered and what the agent answered)."""

    def __init__(self, route: Callable[[str, dict[str, str]], str | None], keep_path: bool = False):
        super().__init__(_RelayHandler)
        self.route = route
        self.keep_path = keep_path
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()

    def snapshot(self) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges)


def trigger_router(filters: list[tuple[dict[str, str], str]]) -> Callable[[str, dict[str, str]], str | None]:
    """A router from Knative Trigger filters: each ``({attribute: value}, subscriber_url)``; binary
    mode CloudEvents carry attributes as ``ce-<name>`` headers."""

    def route(path: str, headers: dict[str, str]) -> str | None:
        for attrs, url in filters:
            if all(headers.get(f"ce-{k}") == v for k, v in attrs.items()):
                return url
        return None

    return route


def deploy_triggers(root: Path | None = None) -> list[tuple[dict[str, str], str, str]]:
    """Every Knative Trigger under deploy/base: (filter attributes, subscriber Service, path)."""
    out = []
    for f in sorted((root or REPO / "deploy" / "base").rglob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Trigger":
                sub = doc["spec"]["subscriber"]
                out.append((doc["spec"]["filter"]["attributes"], sub["ref"]["name"], sub.get("uri") or "/"))
    return out


@dataclass
class Delivery:
    """One delivery attempt by the broker stand-in."""

    type: str
    id: str
    url: str
    status: int
    headers: dict[str, str]
    reply_type: str | None = None
    answer: str = ""  # the start of the subscriber's answer body


class _BrokerHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        broker: KnativeBroker = self.server.owner  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        ok = "ce-type" in headers and "ce-id" in headers  # the ingress takes binary-mode CloudEvents
        self.send_response(202 if ok else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if ok:
            broker.ingest(headers, raw)

    def log_message(self, *args):
        pass


class KnativeBroker(_Server):
    """A Knative Broker on loopback, with the Triggers of deploy/ (``deploy_triggers``).

    Ingress answers 202 at once; each event goes, in a worker thread, to every subscriber whose
    filter matches its attributes, without any Authorization header (Knative sends none); a
    CloudEvent reply goes back into the broker; a subscriber that keeps failing gets ``retries``
    more attempts, then the event goes to ``dead_letter`` with ``knativeerrordest`` and
    ``knativeerrorcode``. ``services`` maps a subscriber Service name to its URL."""

    def __init__(self, services: dict[str, str], dead_letter: str | None = None, retries: int = 2,
                 backoff_s: float = 0.05):
        super().__init__(_BrokerHandler)
        self.services = services
        self.dead_letter = dead_letter
        self.retries = retries
        self.backoff_s = backoff_s
        self.triggers = deploy_triggers()
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="broker")
        self.deliveries: list[Delivery] = []
        self.dead: list[tuple[str, str, int]] = []  # (type, id, dead-letter sink's status)
        self.lock = threading.Lock()

    def ingest(self, headers: dict[str, str], body: bytes) -> None:
        self.pool.submit(self._fan_out, headers, body)

    def _fan_out(self, headers: dict[str, str], body: bytes) -> None:
        ce_headers = {k: v for k, v in headers.items() if k.startswith("ce-") or k == "content-type"}
        for attrs, service, path in self.triggers:
            url = self.services.get(service)
            if url is None or not all(headers.get(f"ce-{k}") == v for k, v in attrs.items()):
                continue
            self._deliver(url + path, ce_headers, body)

    def _deliver(self, url: str, headers: dict[str, str], body: bytes) -> None:
        status = 0
        for attempt in range(self.retries + 1):
            try:
                r = httpx.post(url, headers=headers, content=body, timeout=30)
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            reply = {k.lower(): v for k, v in r.headers.items()} if status else {}
            with self.lock:
                self.deliveries.append(Delivery(headers.get("ce-type", ""), headers.get("ce-id", ""), url, status,
                                                dict(headers), reply.get("ce-type"),
                                                r.content[:300].decode("utf-8", "replace") if status else ""))
            if 200 <= status < 300:
                if "ce-type" in reply and r.content:
                    self.ingest(reply, r.content)  # the reply goes back into the broker
                return
            time.sleep(self.backoff_s * 2 ** attempt)
        if self.dead_letter:
            dl = {**headers, "ce-knativeerrordest": url, "ce-knativeerrorcode": str(status)}
            try:
                code = httpx.post(self.dead_letter, headers=dl, content=body, timeout=30).status_code
            except httpx.HTTPError:
                code = 0
            with self.lock:
                self.dead.append((headers.get("ce-type", ""), headers.get("ce-id", ""), code))

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def stop(self) -> None:
        super().stop()
        self.pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- rule files


def load_rule_groups(paths: list[Path] | None = None) -> list[dict[str, Any]]:
    """The ``groups`` of the repository's rule files (plain files or PrometheusRule manifests)."""
    groups: list[dict[str, Any]] = []
    for p in paths or sorted(RULES_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(p.read_text()):
            if not doc:
                continue
            spec = doc.get("spec", doc) if doc.get("kind") == "PrometheusRule" else doc
            groups.extend(spec.get("groups", []))
    return groups


def fast_rules(groups: list[dict[str, Any]], only: set[str] | None = None) -> dict[str, Any]:
    """The same rules with test timings: groups evaluated every second, ``for`` cut to 0s.

    Expressions, labels and annotations are kept exactly as written. ``only`` keeps just the
    named alerts (and drops groups left empty).
    """
    out = []
    for g in groups:
        rules = []
        for r in g.get("rules", []):
            if "alert" in r and only is not None and r["alert"] not in only:
                continue
            r = dict(r)
            if "for" in r:
                r["for"] = "0s"
            rules.append(r)
        if rules:
            out.append({**g, "interval": "1s", "rules": rules})
    return {"groups": out}


# --------------------------------------------------------------------------- the stack


def receiver_config(webhook_url: str, token_file: Path) -> dict[str, Any]:
    """Alertmanager config: deploy/examples/alertmanager-receiver.yaml as written, with the agent's
    URL and token file filled in and every route's timings cut to a second."""
    example = yaml.safe_load(RECEIVER_EXAMPLE.read_text())
    for r in example["receivers"]:
        for wh in r.get("webhook_configs", []):
            wh["url"] = webhook_url
            wh["http_config"]["authorization"]["credentials_file"] = str(token_file)

    def fast(route: dict[str, Any]) -> None:
        route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        for child in route.get("routes", []):
            fast(child)

    fast(example["route"])
    return example


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_process(name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> Process:
    log = workdir / f"{name}.log"
    fh = open(log, "wb")
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=workdir,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    fh.close()
    return Process(name, proc, log)


@dataclass
class Stack:
    """Prometheus + Alertmanager on loopback, wired to an exporter and a webhook URL."""

    workdir: Path
    exporter_url: str
    webhook_url: str
    rules: dict[str, Any]
    token: str = "e2e-token"
    prom_port: int = field(default_factory=free_port)
    am_port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)
    started_at: float = 0.0

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prom_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.am_port}"

    @property
    def rules_path(self) -> Path:
        return self.workdir / "rules" / "agent-sre.rules.yaml"

    def write_configs(self) -> None:
        (self.workdir / "rules").mkdir(parents=True, exist_ok=True)
        self.rules_path.write_text(yaml.safe_dump(self.rules, sort_keys=False))
        host = self.exporter_url.split("://", 1)[1]
        prom = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "rule_files": [str(self.rules_path)],
            "scrape_configs": [
                # Like the Flux controllers' PodMonitor: the target's namespace is flux-system, so
                # the series' own `namespace` is renamed `exported_namespace`.
                {"job_name": "flux-system/flux", "metrics_path": "/flux/metrics",
                 "static_configs": [{"targets": [host], "labels": {"namespace": "flux-system"}}]},
                # Like kube-state-metrics and the kubelet: honor_labels keeps the object's labels.
                {"job_name": "kube-state-metrics", "metrics_path": "/ksm/metrics", "honor_labels": True,
                 "static_configs": [{"targets": [host]}]},
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(prom, sort_keys=False))
        token_file = self.workdir / "agent-sre-token"
        token_file.write_text(self.token)
        am = receiver_config(self.webhook_url, token_file)
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(am, sort_keys=False))

    def start(self, timeout: float = 30) -> "Stack":
        self.write_configs()
        self.started_at = time.monotonic()
        (self.workdir / "am-data").mkdir(exist_ok=True)
        am = start_process("alertmanager", [
            ALERTMANAGER_BIN,
            f"--config.file={self.workdir / 'alertmanager.yml'}",
            f"--storage.path={self.workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.am_port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ], self.workdir)
        self.processes.append(am)
        (self.workdir / "prom-data").mkdir(exist_ok=True)
        prom = start_process("prometheus", [
            PROMETHEUS_BIN,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{self.prom_port}",
            "--rules.alert.resend-delay=1s",
            "--log.level=info",
        ], self.workdir)
        self.processes.append(prom)
        try:
            for p, url in ((am, self.alertmanager_url), (prom, self.prometheus_url)):
                wait_until(lambda p=p, url=url: self._ready(p, url), timeout, what=f"{p.name} ready")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self, p: Process, url: str) -> bool:
        if p.proc.poll() is not None:
            raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}")
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- queries against the real APIs

    def prom_alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.prometheus_url}/api/v1/alerts", timeout=2)
        r.raise_for_status()
        return r.json()["data"]["alerts"]

    def am_alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.alertmanager_url}/api/v2/alerts", timeout=2)
        r.raise_for_status()
        return r.json()

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=2)
        r.raise_for_status()
        return r.json()["data"]["result"]


def copy_rules_for_collect(dst: Path) -> Path:
    """The repository's rule files copied into ``dst`` (a rules directory the collector reads)."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in RULES_DIR.glob("*.yaml"):
        shutil.copy(p, dst / p.name)
    return dst
