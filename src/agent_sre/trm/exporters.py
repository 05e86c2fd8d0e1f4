"""The labels Prometheus attaches to a series on its way to an alert, per exporter family.

An alert carries the labels its expression leaves (the series' own labels, or an aggregation's
``by`` list), plus — when the expression keeps them — the scrape target's labels: ``job`` and
``instance`` and, under Kubernetes service discovery (the Prometheus Operator), ``namespace``,
``pod``, ``service``, ``container``, ``endpoint``. Those name the *exporter's* pod, not the object
the alert is about, unless the target is scraped with ``honorLabels`` (kube-state-metrics is), in
which case the object's own ``namespace``/``pod`` win. Then the rule's labels (``severity``) and the
external labels (``prometheus="<ns>/<name>"`` under the Operator, sometimes ``cluster``).

Each builder returns the scrape labels of one family for a generated alert; the generator merges
them under the series labels. Values are drawn with the caller's seeded RNG.
"""

from __future__ import annotations

import random

from . import namegen as ng

# Helm release names a kube-prometheus-stack install goes by (the prefix of its job/service names).
RELEASES = ["kube-prometheus-stack", "kube-prometheus-stack", "kps", "prometheus-stack", "monitoring",
            "kube-prom", "prom-stack", "victoria"]
KP_JOBS = {"prometheus": "prometheus-k8s", "alertmanager": "alertmanager-main"}


def release(r: random.Random) -> str:
    return r.choice(RELEASES) if r.random() < 0.85 else ng.syllable_name(r)


def mon_ns(r: random.Random) -> str:
    return r.choice(["monitoring", "monitoring", "observability", "o11y"] + ng.MONITORING_NAMESPACES)


def replicaset_pod(r: random.Random, owner: str) -> str:
    return f"{owner}-{ng.rand_str(r, r.choice((8, 9, 10)))}-{ng.rand_str(r, 5)}"


def external(r: random.Random, ns: str | None = None, rel: str | None = None) -> dict[str, str]:
    """External labels: the Operator's ``prometheus`` (60%), ``cluster`` in multi-cluster setups (15%)."""
    out: dict[str, str] = {}
    if r.random() < 0.6:
        rel = rel or release(r)
        out["prometheus"] = f"{ns or mon_ns(r)}/{r.choice([rel + '-prometheus', 'k8s', rel])}"
    if r.random() < 0.15:
        out["cluster"] = r.choice(["main", "home", "prod", "staging", "utility", "k3s", ng.syllable_name(r)])
    return out


def ksm(r: random.Random, *, honor: bool = True, ns: str | None = None, rel: str | None = None) -> dict[str, str]:
    """kube-state-metrics. ``honor``: object series (its namespace/pod are the object's and are set
    by the caller); otherwise (custom-resource-state) namespace/pod/container are KSM's own."""
    rel = rel or release(r)
    svc = r.choice([f"{rel}-kube-state-metrics", "kube-state-metrics"])
    out = {"job": "kube-state-metrics", "instance": ng.instance(r, 8080), "endpoint": "http", "service": svc}
    if not honor:
        out.update(namespace=ns or mon_ns(r), pod=replicaset_pod(r, svc), container="kube-state-metrics")
    return out


def kubelet(r: random.Random, *, cadvisor: bool = False, rel: str | None = None) -> dict[str, str]:
    rel = rel or release(r)
    out = {"job": "kubelet", "instance": f"192.168.{r.randint(0, 10)}.{r.randint(2, 250)}:10250",
           "metrics_path": "/metrics/cadvisor" if cadvisor else "/metrics", "node": ng.node(r)}
    if r.random() < 0.8:
        out["endpoint"] = "https-metrics"
        out["service"] = f"{rel}-kubelet"
    return out


def node_exporter(r: random.Random, *, k8s: bool | None = None, rel: str | None = None) -> dict[str, str]:
    """node-exporter; under kube-prometheus-stack the scrape adds node-exporter's own pod."""
    k8s = r.random() < 0.6 if k8s is None else k8s
    node = ng.node(r)
    out = {"job": "node-exporter" if r.random() < 0.8 else r.choice(["node", "nodes", "node_exporter"]),
           "instance": node if (k8s and r.random() < 0.6) else f"{node}:9100"}
    if k8s:
        rel = rel or release(r)
        svc = f"{rel}-prometheus-node-exporter"
        out.update(namespace=mon_ns(r), pod=f"{svc}-{ng.rand_str(r, 5)}", container="node-exporter",
                   endpoint="http-metrics", service=svc)
    return out


def prometheus(r: random.Random, *, rel: str | None = None, pod: bool = True) -> dict[str, str]:
    """Prometheus scraping itself (the identity labels of every self-monitoring alert)."""
    rel = rel or release(r)
    kp = r.random() < 0.3
    job = r.choice([KP_JOBS["prometheus"]] if kp else [f"{rel}-prometheus", "prometheus", "prometheus-operated"])
    out = {"job": job, "namespace": mon_ns(r), "instance": ng.instance(r, 9090)}
    if pod:
        out["pod"] = f"prometheus-k8s-{r.randint(0, 1)}" if kp else f"prometheus-{rel}-prometheus-{r.randint(0, 1)}"
        out["container"] = "prometheus"
        out["endpoint"] = "web" if kp else r.choice(["http-web", "web"])
        out["service"] = job if job != "prometheus" else f"{rel}-prometheus"
    return out


def prometheus_job(r: random.Random, rel: str | None = None) -> str:
    rel = rel or release(r)
    return r.choice(["prometheus-k8s", f"{rel}-prometheus", "prometheus", "prometheus-operated",
                     f"{ng.syllable_name(r)}-prometheus"])


def not_prometheus_job(r: random.Random, rel: str | None = None) -> str:
    """Jobs that share the stack's prefix (or the word) but are not Prometheus."""
    rel = rel or release(r)
    return r.choice([f"{rel}-alertmanager", f"{rel}-operator", f"{rel}-kube-state-metrics", "node-exporter",
                     f"{rel}-prometheus-node-exporter", f"{rel}-kubelet", f"{rel}-coredns", "kube-state-metrics",
                     "alertmanager-main", "prometheus-operator", "prometheus-pushgateway", "prometheus-blackbox-exporter",
                     "cert-manager", "coredns", "apiserver", "kubelet", ng.app(r), f"{ng.app(r)}-metrics",
                     "prometheus-node-exporter", "pushgateway", "grafana", "loki"])


def alertmanager(r: random.Random, *, rel: str | None = None) -> dict[str, str]:
    rel = rel or release(r)
    kp = r.random() < 0.3
    job = "alertmanager-main" if kp else f"{rel}-alertmanager"
    return {"job": job, "namespace": mon_ns(r), "instance": ng.instance(r, 9093),
            "pod": f"alertmanager-main-{r.randint(0, 2)}" if kp else f"alertmanager-{rel}-alertmanager-0",
            "container": "alertmanager", "endpoint": "web" if kp else "http-web", "service": job}


def flux_controller(r: random.Random, ctrl: str) -> dict[str, str]:
    """A Flux controller scraped by the flux-system PodMonitor (labels not honoured)."""
    out = {"job": r.choice(["flux-system/flux-system", f"flux-system/{ctrl}", "flux-system/flux-controllers"]),
           "namespace": "flux-system", "instance": ng.instance(r, 8080)}
    if r.random() < 0.85:
        out.update(pod=replicaset_pod(r, ctrl), container="manager", endpoint="http-prom")
    return out


def flux_operator(r: random.Random) -> dict[str, str]:
    return {"job": "flux-operator", "namespace": "flux-system", "instance": ng.instance(r, 8080),
            "pod": replicaset_pod(r, "flux-operator"), "service": "flux-operator", "container": "manager",
            "endpoint": r.choice(["http-metrics", "metrics"])}


def app_exporter(r: random.Random, exporter: str, *, k8s: bool | None = None) -> dict[str, str]:
    """An application exporter: ``job``/``instance``, and its own pod under Kubernetes discovery."""
    k8s = r.random() < 0.65 if k8s is None else k8s
    port = r.choice([9100, 9113, 9121, 9187, 9308, 9419, 9104, 9216, 8080, 9090, 9115, 9633, 9256, 9400])
    job = exporter if r.random() < 0.7 else r.choice([f"{exporter}-metrics", exporter.replace("-exporter", ""),
                                                      f"{ng.namespace(r)}/{exporter}"])
    out = {"job": job, "instance": ng.instance(r, port) if (k8s or r.random() < 0.5) else f"{ng.node(r)}:{port}"}
    if k8s:
        svc = exporter if r.random() < 0.6 else f"{ng.app(r)}-{exporter}"
        out.update(namespace=ng.namespace(r), pod=replicaset_pod(r, svc) if r.random() < 0.8 else f"{svc}-0",
                   service=svc, container=r.choice([exporter, "exporter", "metrics", svc]),
                   endpoint=r.choice(["metrics", "http-metrics", "http", "web"]))
    return out
