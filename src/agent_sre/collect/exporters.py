"""Which labels a metric's series carry once Prometheus has scraped them, by exporter.

A series that reaches an alert carries the exporter's own labels (``series``: the object it
describes, e.g. a claim's ``namespace`` and ``persistentvolumeclaim``) and the labels of the
scrape target (``target``: ``job``, ``instance`` and, under the Prometheus Operator's Kubernetes
discovery, the exporter pod's ``namespace``, ``pod``, ``service``, ``container``, ``endpoint``).
When both name the same label, the exporter's own value wins if the monitor honours labels
(kube-state-metrics, the kubelet); otherwise the series' label is renamed ``exported_<name>``,
which the series tables here already spell out.

``family_of(metric)`` finds the exporter by metric name (exact names first, then the longest
prefix); ``series_labels(metric)`` and ``family_of(metric).target`` are what ``promql`` adds to a
selector when asked for scraped labels, and the example values are what ``synth`` fills in.
To teach agent-sre another exporter, add a ``Family`` (and its series prefixes) below.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Family:
    """One exporter as Prometheus scrapes it: target labels with example values, the example value
    of its ``name`` label (what ``name`` means differs per exporter), and whether its monitor
    honours the series' own labels."""

    key: str
    target: dict[str, str]
    name_value: str = ""
    honor_labels: bool = False
    values: dict[str, str] = field(default_factory=dict)  # typical values of its series labels


def _k8s(job: str, namespace: str, pod: str, service: str, container: str, endpoint: str,
         instance: str) -> dict[str, str]:
    """Target labels of a pod scraped through a ServiceMonitor/PodMonitor."""
    return {"job": job, "instance": instance, "namespace": namespace, "pod": pod, "service": service,
            "container": container, "endpoint": endpoint}


FAMILIES: dict[str, Family] = {f.key: f for f in (
    Family("kube-state-metrics", honor_labels=True, name_value="sonarr", target={
        "job": "kube-state-metrics", "instance": "10.42.3.17:8080", "endpoint": "http",
        "service": "kube-prometheus-stack-kube-state-metrics"},
        values={"reason": "CrashLoopBackOff", "phase": "Failed", "condition": "Ready", "status": "false",
                "created_by_kind": "ReplicaSet", "owner_kind": "ReplicaSet"}),
    # kube-state-metrics' custom-resource-state metrics (the Flux objects' gotk_resource_info):
    # the object's namespace arrives as exported_namespace, KSM's own pod as namespace/pod.
    Family("kube-state-metrics-crs", name_value="apps", target={
        **_k8s("kube-state-metrics", "monitoring", "kube-prometheus-stack-kube-state-metrics-5f9c8d7b6-hn4wz",
               "kube-prometheus-stack-kube-state-metrics", "kube-state-metrics", "http", "10.42.3.17:8080")},
        values={"ready": "False", "suspended": "false", "revision": "main@sha1:3b1f9c2d",
                "customresource_version": "v1"}),
    Family("kubelet", honor_labels=True, target={
        "job": "kubelet", "instance": "192.168.1.22:10250", "node": "worker-2", "metrics_path": "/metrics",
        "endpoint": "https-metrics", "service": "kube-prometheus-stack-kubelet", "namespace": "kube-system"}),
    Family("cadvisor", honor_labels=True, name_value="k8s_app_sonarr-7d9c5f6b8-x2kqp_media", target={
        "job": "kubelet", "instance": "192.168.1.22:10250", "node": "worker-2", "metrics_path": "/metrics/cadvisor",
        "endpoint": "https-metrics", "service": "kube-prometheus-stack-kubelet", "namespace": "kube-system"}),
    Family("node-exporter", name_value="k3s.service", target=_k8s(
        "node-exporter", "monitoring", "kube-prometheus-stack-prometheus-node-exporter-4xk2p",
        "kube-prometheus-stack-prometheus-node-exporter", "node-exporter", "http-metrics", "192.168.1.22:9100"),
        values={"device": "/dev/nvme0n1p2", "fstype": "ext4", "mountpoint": "/", "state": "failed",
                "type": "service", "mode": "idle", "cpu": "0", "chip": "platform_coretemp_0", "sensor": "temp1"}),
    Family("systemd-exporter", name_value="k3s.service", target=_k8s(
        "systemd-exporter", "monitoring", "systemd-exporter-8xk2p", "systemd-exporter", "systemd-exporter",
        "http-metrics", "192.168.1.22:9558"), values={"state": "failed", "type": "service"}),
    Family("prometheus", target=_k8s(
        "prometheus-k8s", "monitoring", "prometheus-k8s-0", "prometheus-k8s", "prometheus", "web", "10.42.0.31:9090"),
        values={"rule_group": "/etc/prometheus/rules/prometheus-k8s-rulefiles-0/monitoring-k8s.yaml;k8s.rules",
                "scrape_job": "serviceMonitor/monitoring/node-exporter/0",
                "alertmanager": "http://10.42.0.32:9093/api/v2/alerts", "remote_name": "b5e1c2",
                "url": "https://mimir.example.org/api/v1/push"}),
    Family("prometheus-operator", target=_k8s(
        "prometheus-operator", "monitoring", "prometheus-operator-6b8f9c7d5-p2x4k", "prometheus-operator",
        "prometheus-operator", "https", "10.42.0.28:8443"), values={"controller": "prometheus"}),
    Family("alertmanager", target=_k8s(
        "alertmanager-main", "monitoring", "alertmanager-main-0", "alertmanager-main", "alertmanager", "web",
        "10.42.0.32:9093"), values={"integration": "webhook"}),
    # Flux controllers through a PodMonitor: no service label.
    Family("flux-controller", target={
        "job": "flux-system/flux-system", "instance": "10.42.1.40:8080", "namespace": "flux-system",
        "pod": "kustomize-controller-6c8d9bd7f-qk5zt", "container": "manager", "endpoint": "http-prom"},
        name_value="apps",
        values={"type": "Ready", "status": "False"}),
    Family("flux-operator", name_value="apps", target=_k8s(
        "flux-operator", "flux-system", "flux-operator-7b9f6c5d4-m8z2q", "flux-operator", "manager",
        "http-metrics", "10.42.1.41:8080"),
        values={"ready": "False", "suspended": "False", "reason": "ReconciliationFailed",
                "revision": "refs/heads/main@sha1:3b1f9c2d"}),
    Family("cert-manager", name_value="wildcard-example-org-tls", target=_k8s(
        "cert-manager", "cert-manager", "cert-manager-7c5f9d8b6-w6k4d", "cert-manager", "cert-manager-controller",
        "tcp-prometheus-servicemonitor", "10.42.2.14:9402"),
        values={"condition": "False", "issuer_name": "letsencrypt", "issuer_kind": "ClusterIssuer"}),
    Family("external-secrets", name_value="app-credentials", target=_k8s(
        "external-secrets", "external-secrets", "external-secrets-5d8c7b9f4-t7wq2", "external-secrets-metrics",
        "external-secrets", "metrics", "10.42.2.19:8080"), honor_labels=True,
        values={"condition": "Ready", "status": "False"}),
    Family("blackbox", target={"job": "blackbox", "instance": "https://grafana.example.org"}),
    Family("apiserver", target={"job": "apiserver", "instance": "192.168.1.10:6443", "namespace": "default",
                                "service": "kubernetes", "endpoint": "https"}),
    Family("exporter", name_value="app", target=_k8s(
        "app-exporter", "monitoring", "app-exporter-5d8c7b9f4-t7wq2", "app-exporter", "exporter", "metrics",
        "10.42.2.23:9100")),
)}

# Exact metric names whose exporter a prefix would get wrong.
_EXACT: dict[str, str] = {"gotk_resource_info": "kube-state-metrics-crs", "up": "exporter"}

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("kube_", "kube-state-metrics"),
    ("kubelet_", "kubelet"), ("kubeproxy_", "kubelet"), ("storage_operation_", "kubelet"),
    ("container_", "cadvisor"), ("machine_", "cadvisor"),
    ("node_", "node-exporter"),
    ("systemd_", "systemd-exporter"),
    ("prometheus_operator_", "prometheus-operator"), ("prometheus_", "prometheus"),
    ("alertmanager_", "alertmanager"),
    ("gotk_", "flux-controller"), ("controller_runtime_", "flux-controller"),
    ("flux_", "flux-operator"),
    ("certmanager_", "cert-manager"),
    ("externalsecret_", "external-secrets"),
    ("probe_", "blackbox"),
    ("apiserver_", "apiserver"), ("aggregator_", "apiserver"), ("etcd_", "apiserver"),
    ("workqueue_", "apiserver"), ("rest_client_", "apiserver"), ("scheduler_", "apiserver"),
)

# The exporter's own labels per metric prefix (longest prefix wins), beyond promql.KNOWN_METRICS.
_SERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kube_pod_container_", ("namespace", "pod", "uid", "container")),
    ("kube_pod_", ("namespace", "pod", "uid")),
    ("kube_deployment_", ("namespace", "deployment")),
    ("kube_statefulset_", ("namespace", "statefulset")),
    ("kube_daemonset_", ("namespace", "daemonset")),
    ("kube_replicaset_", ("namespace", "replicaset")),
    ("kube_job_", ("namespace", "job_name")),
    ("kube_cronjob_", ("namespace", "cronjob")),
    ("kube_horizontalpodautoscaler_", ("namespace", "horizontalpodautoscaler")),
    ("kube_poddisruptionbudget_", ("namespace", "poddisruptionbudget")),
    ("kube_persistentvolumeclaim_", ("namespace", "persistentvolumeclaim")),
    ("kube_persistentvolume_", ("persistentvolume",)),
    ("kube_node_", ("node",)),
    ("kube_namespace_", ("namespace",)),
    ("kube_resourcequota", ("namespace", "resourcequota", "resource", "type")),
    ("kube_endpoint_", ("namespace", "endpoint")),
    ("kube_service_", ("namespace", "service")),
    ("kubelet_volume_stats_", ("namespace", "persistentvolumeclaim")),
    ("container_", ("namespace", "pod", "container", "image", "name", "id")),
    ("node_filesystem_", ("device", "fstype", "mountpoint")),
    ("node_disk_", ("device",)),
    ("node_network_", ("device",)),
    ("node_md_", ("device",)),
    ("node_hwmon_", ("chip", "sensor")),
    ("node_cpu_seconds", ("cpu", "mode")),
    ("node_systemd_unit_state", ("name", "state", "type")),
    ("node_systemd_", ("name",)),
    ("systemd_unit_", ("name", "state", "type")),
    ("systemd_service_", ("name",)),
    ("prometheus_rule_group_", ("rule_group",)),
    ("prometheus_rule_evaluation", ("rule_group",)),
    ("prometheus_sd_kubernetes_", ()),
    ("prometheus_target_sync_", ("scrape_job",)),
    ("prometheus_target_scrape_pool_", ("scrape_job",)),
    ("prometheus_notifications_", ("alertmanager",)),
    ("prometheus_remote_storage_", ("remote_name", "url")),
    ("prometheus_operator_", ("controller",)),
    ("alertmanager_notifications_", ("integration",)),
    ("alertmanager_notification_", ("integration",)),
    ("flux_resource_info", ("uid", "kind", "name", "exported_namespace", "ready", "reason", "suspended", "revision")),
    ("flux_instance_info", ("uid", "kind", "name", "exported_namespace", "ready", "reason", "suspended", "revision")),
    ("certmanager_certificate_", ("name", "exported_namespace", "condition", "issuer_name", "issuer_kind")),
    ("externalsecret_", ("name", "namespace", "condition", "status")),
)

# Label values a metric always has (its series describe one kind of object).
FIXED_VALUES: dict[str, dict[str, str]] = {
    "flux_instance_info": {"kind": "FluxInstance", "name": "flux"},
}

# The Flux kinds a rule over Flux metrics may fire for when its expression fixes none: the three
# agent-sre reconciles, and a source kind it does not.
FLUX_KINDS = ("Kustomization", "HelmRelease", "GitRepository", "HelmRepository")
FLUX_GROUPS = {"Kustomization": "kustomize.toolkit.fluxcd.io", "HelmRelease": "helm.toolkit.fluxcd.io"}


def _longest(table: tuple[tuple[str, object], ...], metric: str):
    best = None
    for prefix, v in table:
        if metric.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, v)
    return best[1] if best else None


def family_of(metric: str | None) -> Family:
    """The exporter that serves ``metric`` (a generic exporter pod when none is known)."""
    if not metric:
        return FAMILIES["exporter"]
    key = _EXACT.get(metric) or _longest(_PREFIXES, metric) or "exporter"  # type: ignore[arg-type]
    return FAMILIES[key]  # type: ignore[index]


def series_labels(metric: str | None) -> tuple[str, ...]:
    """The exporter's own labels of ``metric``'s series, when the prefix table knows them."""
    return _longest(_SERIES, metric or "") or ()  # type: ignore[return-value]


def scraped_labels(metric: str | None) -> set[str]:
    """Every label a scraped series of ``metric`` carries that the tables know: its own and its
    target's."""
    return set(series_labels(metric)) | set(family_of(metric).target)
