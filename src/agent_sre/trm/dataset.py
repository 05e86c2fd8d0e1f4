"""Training data for the TRM, driven by the runbook and the catalog.

A record (one JSON line)::

    {"alert": {...Alertmanager alert...},
     "expect": {"lambda_function": str|None, "parameters": {...}, "plan": [...], "sources": {param: label key}},
     "meta": {"template": ..., "alertname": ..., "family": ..., "style": ..., "source": ...}}

* ``write_runbook_dataset`` — one canonical example per runbook case.
* ``generate`` — varied alerts: alert-name variants composed from synonym sets, label-key variants
  (gotk ``exported_namespace``, kube-state-metrics ``customresource_*``), annotation templates, noise
  labels, missing labels, resolved alerts and a broad family of alerts that need no action, including
  hard negatives sharing label keys with actionable ones. The expected decision of every actionable
  variant is computed by the runbook itself (the case that matches, the labels each parameter is read
  from), so the data follows the runbook and the catalog.
* ``split`` — deterministic random split, or by alert name and annotation template (held-out names).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import runbook as rb
from ..alerts import Alert, label_fingerprint
from . import namegen as ng

# --------------------------------------------------------------------------- expectations


def no_action_expect() -> dict[str, Any]:
    return {"lambda_function": None, "parameters": {}, "plan": [], "sources": {}}


def runbook_expect(entry: rb.Entry, labels: dict[str, str], status: str = "firing") -> dict[str, Any]:
    """What the runbook decides for ``labels`` under ``entry`` (no action when resolved, when no case
    matches, when the plan is empty or a required parameter has no label)."""
    if status != "firing":
        return no_action_expect()
    case = next((c for c in entry.when if c.matches(labels)), None)
    if case is None or not case.plan:
        return no_action_expect()
    alert = Alert(labels={**labels, "alertname": labels.get("alertname") or entry.alert})
    first = case.plan[0]
    params, missing = rb.resolve_step(first, alert)
    if missing:
        return no_action_expect()
    sources = {}
    for name, src in first.parameters.items():
        _, key = src.resolve(labels)
        if key is not None:
            sources[name] = key
    plan: list[dict[str, Any]] = [{"lambda_function": first.function, "parameters": dict(params)}]
    for step in case.plan[1:]:
        later, _ = rb.resolve_step(step, alert)
        plan.append({"lambda_function": step.function, "parameters": later, "from_previous": list(step.from_previous)})
    return {"lambda_function": first.function, "parameters": dict(params), "plan": plan, "sources": sources}


# --------------------------------------------------------------------------- runbook-derived facts


@dataclass
class Facts:
    """What the generator needs to know about the runbook, derived from it."""

    book: rb.Runbook
    kind_fn: dict[str, str] = field(default_factory=dict)  # Flux kind -> function (kind dispatch)
    dispatch_entry: rb.Entry | None = None  # the entry that dispatches on kind
    kind_entry: dict[str, rb.Entry] = field(default_factory=dict)  # kind -> entry answering it without a kind label
    crash: rb.Entry | None = None
    down: rb.Entry | None = None
    volume: rb.Entry | None = None
    heartbeat: list[rb.Entry] = field(default_factory=list)

    @classmethod
    def from_runbook(cls, book: rb.Runbook) -> "Facts":
        f = cls(book)
        for e in book.alerts:
            fns = [c.plan[0].function for c in e.when if c.plan]
            if not any(c.plan for c in e.when):
                f.heartbeat.append(e)
                continue
            kind_cases = [c for c in e.when if c.plan and ("kind" in c.match)]
            if len([c for c in e.when if c.plan]) > 2 and kind_cases:
                f.dispatch_entry = e
                for c in kind_cases:
                    want = c.match["kind"]
                    for k in want if isinstance(want, list) else [want]:
                        if k:
                            f.kind_fn.setdefault(k, c.plan[0].function)
            elif fns[0] == "pod-restart":
                f.crash = e
            elif fns[0] == "pod-check-status":
                f.down = e
            elif fns[0] == "check-pvc-status":
                f.volume = e
        # Which entry answers a kind-specific alert name that carries no kind label.
        for kind, fn in f.kind_fn.items():
            for e in book.alerts:
                if e is f.dispatch_entry:
                    continue
                if runbook_expect(e, {"name": "x", "namespace": "y"})["lambda_function"] == fn:
                    f.kind_entry[kind] = e
                    break
            else:
                if f.dispatch_entry and runbook_expect(f.dispatch_entry, {"name": "x", "namespace": "y"})[
                        "lambda_function"] == fn:
                    f.kind_entry[kind] = f.dispatch_entry
        return f


# --------------------------------------------------------------------------- alert names

FLUX_KIND_WORDS = {
    "Kustomization": ["Kustomization", "Kustomize", "Ks", "Kustomizations"],
    "GitRepository": ["GitRepository", "GitRepo", "Git", "GitSource", "Source", "SourceGit", "Repository"],
    "HelmRelease": ["HelmRelease", "Helm", "Release", "HelmReleases", "Hr"],
}
FLUX_KIND_MIDDLE = {
    "Kustomization": ["", "", "Reconcile", "Reconciliation", "Apply", "Build", "Health", "Sync", "Ready"],
    "GitRepository": ["", "", "Fetch", "Clone", "Checkout", "Sync", "Reconcile", "Artifact", "Pull"],
    "HelmRelease": ["", "", "Upgrade", "Install", "Rollback", "Reconcile", "Deploy", "Release", "Test"],
}
UNSUPPORTED_KINDS = ["Bucket", "HelmRepository", "HelmChart", "OCIRepository", "ImageRepository",
                     "ImagePolicy", "ImageUpdateAutomation", "Receiver", "Alert", "Provider"]
FLUX_PREFIX = ["Flux", "Flux", "Flux", "", "", "Gotk", "FluxCD", "GitOps"]
GENERIC_FLUX_SUBJECT = ["Reconciliation", "Reconcile", "Reconciler", "Resource", "Object", "Sync", "Controller"]
FAIL_VERBS = ["Failed", "Failing", "Failure", "Fails", "Error", "Errors", "Errored", "Stalled", "NotReady",
              "Degraded", "Stuck", "OutOfSync", "Unhealthy", "Broken", "TimedOut", "Timeout", "Unready",
              "NotSynced", "SyncFailed", "Problem", "Issue"]
CRASH_PREFIX = ["Kube", "Kube", "K8s", "", "", "Kubernetes"]
CRASH_SUBJECT = ["Pod", "Pod", "Container", "", "Workload", "Deployment?"]
CRASH_COND = ["CrashLooping", "CrashLoopBackOff", "CrashLoopBackoff", "CrashLoop", "Crashing", "InCrashLoop",
              "CrashLoopDetected", "Crashlooping", "RestartLoop", "CrashLoops", "KeepsCrashing"]
VOLUME_PREFIX = ["Kube", "Kube", "", "", "K8s"]
VOLUME_SUBJECT = ["PersistentVolume", "PersistentVolumeClaim", "PVC", "Pvc", "Volume", "VolumeClaim", "Pv",
                  "Storage"]
VOLUME_COND = ["FillingUp", "FillingUpCritical", "AlmostFull", "Full", "UsageHigh", "SpaceLow", "LowSpace",
               "UsageCritical", "InodesFillingUp", "RunningOutOfSpace", "NearlyFull", "OutOfSpace",
               "SpaceFillingUp", "UsageAbove90", "CapacityLow", "FreeSpaceLow", "DiskPressure"]
DOWN_COND = ["Down", "ServiceDown", "Unavailable", "NotUp", "Unreachable", "InstanceDown", "ServerDown",
             "Absent", "IsDown", "NotResponding", "NotRunning", "Offline", "NoTargetsUp", "HealthCheckFailed",
             "ScrapeFailing?"]
HEARTBEAT_NAMES = ["Heartbeat", "AlertmanagerHeartbeat", "AlwaysFiring", "DeadMansSnitch", "PipelineHeartbeat",
                   "WatchdogAlert", "AlertingPipelineHeartbeat", "HealthyPipeline"]


def _clean(parts: list[str]) -> list[str]:
    return [p for p in parts if p and not p.endswith("?")]


def style_name(parts: list[str], rng: random.Random) -> str:
    parts = _clean(parts)
    r = rng.random()
    if r < 0.8:
        return "".join(parts)
    words = [w.lower() for p in parts for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", p)]
    if r < 0.93:
        return "_".join(words)
    return "".join(parts[:1]) + "".join(p for p in parts[1:])  # kept CamelCase, different join


# --------------------------------------------------------------------------- annotation templates
# Each template: (id, key, text). Ids are stable; the by-template split holds some out.

ANNOT: dict[str, list[tuple[str, str]]] = {
    "flux": [
        ("summary", "{kind} {namespace}/{name} reconciliation failed"),
        ("summary", "Flux {kind} {name} is not ready"),
        ("message", "{kind} '{name}' in namespace {namespace} has been failing for more than 10 minutes"),
        ("description", "The {kind_l} {name} ({namespace}) reports Ready=False: {reason}"),
        ("summary", "{name} failed to reconcile"),
        ("summary", "Reconciliation of {kind} {name} stalled"),
        ("description", "Flux could not reconcile {namespace}/{name}. Check `flux get {kind_l}s -n {namespace}`."),
        ("message", "{reason} while reconciling {name}"),
        ("summary", "GitOps object {name} out of sync"),
        ("description", "Object {name} of kind {kind} is degraded"),
    ],
    "crash": [
        ("description", "Pod {namespace}/{pod} ({container}) is in waiting state (reason: \"CrashLoopBackOff\")."),
        ("summary", "Pod is crash looping."),
        ("description", "Container {container} of pod {pod} restarted {n} times in the last 15 minutes"),
        ("message", "{pod} keeps crashing"),
        ("summary", "Container {container} in {namespace} is restarting repeatedly"),
        ("description", "Back-off restarting failed container {container} in pod {pod}"),
        ("summary", "CrashLoopBackOff: {pod}"),
        ("description", "Workload {app} in {namespace} has a pod stuck in a crash loop"),
    ],
    "volume": [
        ("summary", "PersistentVolume is filling up."),
        ("description", "The PersistentVolume claimed by {pvc} in Namespace {namespace} is only {pct}% free."),
        ("message", "Volume {pvc} is {used}% full"),
        ("summary", "PVC {namespace}/{pvc} almost full"),
        ("description", "Based on recent sampling, the volume claimed by {pvc} is expected to fill up within four days."),
        ("summary", "Disk usage of claim {pvc} above {used}%"),
        ("description", "Less than {pct}% space left on the volume of {pvc}"),
    ],
    "down": [
        ("summary", "{subject} is down"),
        ("summary", "{subject} has disappeared from target discovery."),
        ("description", "{subject} instance {instance} has not been reachable for 5 minutes"),
        ("message", "No {subject_l} server is answering in {namespace}"),
        ("summary", "Target {job} is down"),
        ("description", "{subject} in namespace {namespace} is unavailable; queries and alerting are affected"),
        ("summary", "{subject} not scraped for 3 minutes"),
    ],
    "heartbeat": [
        ("summary", "An alert that should always be firing to certify that Alertmanager is working properly."),
        ("description", "This is a heartbeat alert; it is meant to fire all the time."),
        ("message", "Alerting pipeline heartbeat"),
        ("summary", "Dead man's switch"),
    ],
    "none": [
        ("summary", "{subject} {cond_l}"),
        ("description", "{subject} on {where} is {cond_l} for more than 10 minutes"),
        ("message", "{cond_l}: {where}"),
        ("summary", "{where}: {subject} {cond_l}"),
        ("description", "Investigate {subject_l} {cond_l} ({value})"),
        ("summary", "{subject} is {cond_l} (current value {value})"),
    ],
}

# --------------------------------------------------------------------------- no-action families
# (subjects, conditions, label builder name)
NONE_FAMILIES: list[tuple[str, list[str], list[str], str]] = [
    ("node", ["Node", "Host", "Server", "Machine"], ["HighCPU", "CPUHigh", "HighMemory", "MemoryPressure", "OutOfMemory",
     "DiskPressure", "FilesystemSpaceFillingUp", "FilesystemAlmostOutOfSpace", "HighLoad", "ClockSkewDetected",
     "ClockNotSynchronising", "NetworkReceiveErrs", "SwapUsageHigh", "HighTemperature", "InodesFillingUp",
     "Rebooted", "TextfileStale"], "node"),
    ("kubenode", ["KubeNode", "Node", "KubeletNode"], ["NotReady", "Unreachable", "ReadinessFlapping", "MemoryPressure",
     "PIDPressure", "Cordoned", "Eviction"], "kubenode"),
    ("cert", ["Certificate", "Cert", "TLSCertificate", "SSLCert", "CertManagerCert", "X509Certificate"], ["Expiring",
     "ExpiringSoon", "Expired", "NotReady", "RenewalFailed", "RenewalError", "NotValid", "Failing"], "named"),
    ("secret", ["ExternalSecret", "SealedSecret", "SecretStore", "ClusterSecretStore"], ["SyncFailed", "NotReady",
     "Error", "Failing", "Stale"], "named"),
    ("argo", ["ArgoCDApp", "ArgoApplication", "ArgoCD", "ArgoWorkflow", "Application"], ["OutOfSync", "Degraded",
     "SyncFailed", "Failed", "HealthDegraded", "Missing"], "named"),
    ("backup", ["Velero", "Backup", "Restic", "K8up", "Volsync", "Snapshot", "Kopia"], ["BackupFailed", "Failed",
     "PartialFailure", "Missing", "Stale", "TooOld", "Overdue", "Failing"], "backup"),
    ("latency", ["HTTP", "API", "Ingress", "Nginx", "Traefik", "Service", "Request", "Grpc", "Envoy", "Gateway"],
     ["LatencyHigh", "HighLatency", "ErrorRateHigh", "5xxErrors", "HighErrorRate", "SlowResponses", "P99Latency",
      "Errors", "TooManyRequests", "4xxRateHigh"], "service"),
    ("target", ["Target", "Endpoint", "ScrapeTarget", "Exporter"], ["Down", "Missing", "Unreachable", "Absent"], "target"),
    ("otherdown", ["Alertmanager", "Grafana", "Loki", "NodeExporter", "Kubelet", "CoreDNS", "KubeAPI", "Promtail",
     "Tempo", "Mimir", "Thanos", "KubeStateMetrics", "KubeScheduler", "KubeControllerManager", "Blackbox", "Vector"],
     ["Down", "Unavailable", "NotUp", "Unreachable", "InstanceDown", "Absent", "NotResponding", "Offline"], "service"),
    ("prometheus-other", ["Prometheus"], ["RuleFailures", "TSDBCompactionsFailing", "TSDBReloadsFailing",
     "NotificationQueueRunningFull", "RemoteWriteBehind", "BadConfig", "ConfigReloadFailed",
     "ErrorSendingAlertsToSomeAlertmanagers", "NotConnectedToAlertmanagers", "MissingRuleEvaluations",
     "HighQueryLoad", "LabelLimitHit", "OutOfOrderTimestamps", "DuplicateTimestamps", "SDRefreshFailure"], "promother"),
    ("job", ["KubeJob", "Job", "CronJob", "KubeCronJob"], ["Failed", "NotCompleted", "Failing", "TooLong",
     "Running", "Stuck", "Suspended"], "jobname"),
    ("hpa", ["KubeHpa", "HPA", "HorizontalPodAutoscaler", "Autoscaler"], ["MaxedOut", "ReplicasMismatch",
     "AtMaxReplicas", "ScalingLimited"], "hpa"),
    ("workload", ["KubeDeployment", "KubeStatefulSet", "KubeDaemonSet", "Deployment", "StatefulSet", "DaemonSet"],
     ["ReplicasMismatch", "RolloutStuck", "GenerationMismatch", "MisScheduled", "NotScheduled", "UpdateNotRolledOut",
      "Unavailable"], "workload"),
    ("podmisc", ["KubePod", "Pod", "Container", "KubeContainer", "CPU", "Memory"], ["NotReady", "Pending", "Waiting",
     "ThrottlingHigh", "HighMemoryUsage", "OOMKilled", "HighCPU", "Evicted", "ImagePullBackOff", "Terminating",
     "NotScheduled", "Unschedulable"], "pod"),
    ("quota", ["KubeQuota", "ResourceQuota", "KubeCPUOvercommit", "KubeMemoryOvercommit", "Namespace"],
     ["Exceeded", "AlmostFull", "FullyUsed", "Overcommitted", "High"], "quota"),
    ("apiserver", ["KubeAPIErrorBudget", "KubeClientCertificate", "KubeVersion", "Etcd", "KubeAPI", "KubeAggregatedAPI"],
     ["Burn", "Expiration", "Mismatch", "HighNumberOfLeaderChanges", "NoLeader", "MembersDown", "Errors",
      "TerminatedRequests", "InsufficientMembers", "HighFsyncDurations"], "apiserver"),
    ("database", ["Postgresql", "Postgres", "MySQL", "Mariadb", "Redis", "MongoDB", "Cnpg", "Elasticsearch"],
     ["ReplicationLag", "TooManyConnections", "HighMemory", "SlowQueries", "DeadLocks", "ClusterRed",
      "RejectedConnections", "NotHealthy"], "service"),
    ("homelab", ["Ups", "Smart", "Zfs", "Raid", "Temperature", "Battery", "Power", "Wan", "Internet", "Wifi"],
     ["OnBattery", "LowBattery", "DiskFailing", "PoolDegraded", "ArrayDegraded", "High", "Critical", "Down", "Lost",
      "Error"], "node"),
    ("volume-other", ["KubePersistentVolume", "PersistentVolume", "Volume", "Longhorn", "Ceph", "Csi"],
     ["Errors", "Failed", "Degraded", "AttachFailed", "Faulted", "HealthError", "PhaseFailed"], "pv"),
    ("security", ["Falco", "Trivy", "Kyverno", "Crowdsec", "Audit"], ["CriticalEvent", "VulnerabilitiesFound",
     "PolicyViolation", "BanIssued", "SuspiciousActivity"], "named"),
]


# Conditions composed from (component, problem) for families whose subject also has actionable alerts
# (a Prometheus that is *down* needs a check; a Prometheus with a component problem does not).
COMPOSED_CONDS: dict[str, tuple[list[str], list[str]]] = {
    "prometheus-other": (["Rule", "Rules", "Config", "TSDB", "RemoteWrite", "RemoteRead", "Notification", "SD",
                          "Scrape", "Query", "Wal", "Compaction", "Head", "Storage", "Federation", "Label",
                          "Sample", "Exemplar", "Target", "Relabel", "Ingestion", "Retention", "Block"],
                         ["Failures", "Failing", "Failed", "Errors", "Full", "Behind", "Slow", "Corrupted",
                          "TooHigh", "High", "Missing", "Dropped", "Limit", "LimitHit", "Lag", "Invalid",
                          "Rejected", "Truncated", "Duplicates", "Stale", "Timeout", "Overloaded"]),
}
# Hard negatives are drawn more often than the other no-action families.
NONE_WEIGHTS = {"prometheus-other": 4, "podmisc": 2, "named": 2, "volume-other": 2, "secret": 2, "argo": 2}

# --------------------------------------------------------------------------- the generator

SEVERITIES = ["warning", "warning", "critical", "critical", "info", "error", "page", "high"]
NOISE = {
    "team": lambda r: r.choice(["platform", "sre", "homelab", "infra", "core", "ops"]),
    "cluster": lambda r: r.choice(["home", "prod", "k3s", "lab", "main", "edge-1", "talos"]),
    "env": lambda r: r.choice(["prod", "production", "staging", "dev", "lab"]),
    "prometheus": lambda r: r.choice(["observability/kube-prometheus-stack-prometheus", "prom/k8s", "metrics/vmagent"]),
    "region": lambda r: r.choice(["eu-west-1", "us-east-1", "home", "dc1"]),
    "receiver": lambda r: r.choice(["default", "pager", "slack", "null"]),
    "priority": lambda r: r.choice(["P1", "P2", "P3", "P4"]),
    "source": lambda r: r.choice(["prometheus", "vmalert", "mimir-ruler"]),
}


class Gen:
    def __init__(self, facts: Facts, rng: random.Random):
        self.f = facts
        self.r = rng

    # -- helpers ---------------------------------------------------------------------------------
    def noise(self, labels: dict[str, str], k: int | None = None) -> None:
        r = self.r
        if "severity" not in labels and r.random() < 0.9:
            labels["severity"] = r.choice(SEVERITIES)
        for key in r.sample(sorted(NOISE), k if k is not None else r.choice((0, 0, 1, 1, 2, 3))):
            labels.setdefault(key, NOISE[key](r))

    def annotate(self, family: str, ctx: dict[str, Any]) -> tuple[dict[str, str], str]:
        r = self.r
        if r.random() < 0.07:
            return {}, f"{family}:none"
        templates = ANNOT[family]
        i = r.randrange(len(templates))
        key, text = templates[i]
        ann = {key: text.format(**ctx)}
        if r.random() < 0.25:
            ann["runbook_url"] = f"https://runbooks.example.org/{family}/{i}"
        if r.random() < 0.15:  # a second template under another key
            j = r.randrange(len(templates))
            k2, t2 = templates[j]
            if k2 not in ann:
                ann[k2] = t2.format(**ctx)
        return ann, f"{family}:{i}"

    def record(self, labels: dict[str, str], annotations: dict[str, str], expect: dict[str, Any], *,
               family: str, template: str, style: str, status: str = "firing") -> dict[str, Any]:
        r = self.r
        starts = f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z"
        alert = {
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts,
            "endsAt": starts.replace("T", "T") if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph?g0.expr=" + labels["alertname"],
            "fingerprint": label_fingerprint(labels),
        }
        if status != "firing":
            expect = no_action_expect()
        return {"alert": alert, "expect": expect,
                "meta": {"template": template, "alertname": labels["alertname"], "family": family, "style": style,
                         "source": "generate"}}

    # -- flux ------------------------------------------------------------------------------------
    def flux_labels(self, name: str, ns: str, kind: str | None, style: str) -> dict[str, str]:
        r = self.r
        if style == "gotk":
            ctrl = {"GitRepository": "source-controller", "HelmRelease": "helm-controller"}.get(kind or "", "kustomize-controller")
            lab = {"name": name, "exported_namespace": ns, "namespace": "flux-system"}
            if kind:
                lab["kind"] = kind
            if r.random() < 0.8:
                lab["job"] = r.choice(["flux-system/flux", f"flux-system/{ctrl}", ctrl, "gotk-metrics"])
            if r.random() < 0.5:
                lab["pod"] = f"{ctrl}-{ng.rand_str(r, 9)}-{ng.rand_str(r, 5)}"
                lab["container"] = "manager"
            if r.random() < 0.5:
                lab["instance"] = ng.instance(r, 8080)
            if r.random() < 0.3:
                lab["endpoint"] = "http-prom"
            if r.random() < 0.5:
                lab["ready"] = "False"
        elif style == "ksm":
            lab = {"customresource_name": name, "customresource_namespace": ns}
            if kind:
                lab["customresource_kind"] = kind
                lab["customresource_group"] = {"GitRepository": "source.toolkit.fluxcd.io",
                                               "HelmRelease": "helm.toolkit.fluxcd.io"}.get(
                    kind, "kustomize.toolkit.fluxcd.io")
                if r.random() < 0.6:
                    lab["customresource_version"] = r.choice(["v1", "v2", "v1beta2"])
            if r.random() < 0.6:
                lab["namespace"] = r.choice(ng.MONITORING_NAMESPACES)
            lab["job"] = "kube-state-metrics"
            if r.random() < 0.4:
                lab["instance"] = ng.instance(r, 8080)
        else:  # plain
            lab = {"name": name, "namespace": ns}
            if kind:
                lab["kind"] = kind
            if r.random() < 0.3:
                lab["reason"] = r.choice(["ReconciliationFailed", "InstallFailed", "UpgradeFailed", "BuildFailed",
                                          "GitOperationFailed", "HealthCheckFailed", "ArtifactFailed"])
        self.noise(lab)
        return lab

    def flux(self) -> dict[str, Any]:
        r, f = self.r, self.f
        kinds = sorted(f.kind_fn)
        scenario = r.choices(["generic_kind", "specific_kind", "specific_nokind", "generic_nokind", "unsupported",
                              "unsupported_named", "missing_name"], weights=[30, 25, 25, 4, 7, 4, 5])[0]
        kind: str | None = r.choice(kinds)
        app = ng.app(r)
        ns = "flux-system" if r.random() < 0.1 else ng.namespace(r, app)
        name = "flux-system" if ns == "flux-system" and r.random() < 0.4 else app
        style = r.choice(["gotk", "gotk", "plain", "plain", "ksm"])
        verb = r.choice(FAIL_VERBS)
        prefix = r.choice(FLUX_PREFIX)
        entry = f.dispatch_entry
        label_kind: str | None = kind
        if scenario in ("generic_kind", "generic_nokind"):
            subj = r.choice(GENERIC_FLUX_SUBJECT)
            if not prefix and subj not in ("Reconciliation", "Reconcile", "Reconciler"):
                prefix = "Flux"
            parts = [prefix, subj, verb]
            if scenario == "generic_nokind":
                label_kind = None
                kind = next(k for k, e in f.kind_entry.items() if e is f.dispatch_entry)
            if style == "ksm" and label_kind is None:
                style = "plain"
        elif scenario in ("specific_kind", "specific_nokind", "missing_name"):
            word = r.choice(FLUX_KIND_WORDS[kind])
            parts = [prefix, word, r.choice(FLUX_KIND_MIDDLE[kind]), verb]
            entry = f.kind_entry[kind]
            if scenario == "specific_nokind":
                label_kind = None
                if style == "ksm":
                    style = "plain"
        else:  # unsupported kinds: no action
            kind = label_kind = r.choice(UNSUPPORTED_KINDS)
            if scenario == "unsupported_named":
                parts = [prefix or "Flux", kind, verb]
            else:
                parts = [prefix, r.choice(GENERIC_FLUX_SUBJECT), verb]
            if style == "ksm":
                style = "gotk"  # the runbook only dispatches customresource_kind for supported kinds
        alertname = style_name(parts, r)
        labels = {"alertname": alertname, **self.flux_labels(name, ns, label_kind, style)}
        if scenario == "missing_name":
            for k in ("name", "customresource_name"):
                labels.pop(k, None)
        ctx = {"kind": kind or "Kustomization", "kind_l": (kind or "Kustomization").lower(), "name": name,
               "namespace": ns, "reason": r.choice(["artifact not found", "health check failed", "timeout waiting",
                                                    "install retries exhausted", "authentication required"])}
        ann, tmpl = self.annotate("flux", ctx)
        if scenario.startswith("unsupported"):
            expect = no_action_expect()
        else:
            expect = runbook_expect(entry, labels)
        return self.record(labels, ann, expect, family="flux", template=tmpl, style=f"{style}:{scenario}")

    # -- crash loop ------------------------------------------------------------------------------
    def crash(self) -> dict[str, Any]:
        r = self.r
        app = ng.app(r)
        ns = ng.namespace(r, app)
        pod, _owner = ng.pod(r, app)
        container = app if r.random() < 0.7 else r.choice(["app", "main", "server", "sidecar", app + "-init"])
        parts = [r.choice(CRASH_PREFIX), r.choice(CRASH_SUBJECT), r.choice(CRASH_COND)]
        alertname = style_name(parts, r)
        labels = {"alertname": alertname, "pod": pod, "namespace": ns}
        if r.random() < 0.85:
            labels["container"] = container
        if r.random() < 0.8:
            labels["job"] = r.choice(["kube-state-metrics", "kubernetes-pods", "kube-state-metrics"])
        if r.random() < 0.4:
            labels["instance"] = ng.instance(r, 8080)
        if r.random() < 0.3:
            labels["reason"] = "CrashLoopBackOff"
        if r.random() < 0.3:
            labels["uid"] = f"{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}-{ng.rand_str(r, 4)}"
        if r.random() < 0.2:
            labels["service"] = "kube-prometheus-stack-kube-state-metrics"
        self.noise(labels)
        missing = r.random() < 0.07
        if missing:
            labels.pop("pod")
        ctx = {"namespace": ns, "pod": pod, "container": container, "n": r.randint(3, 40), "app": app}
        ann, tmpl = self.annotate("crash", ctx)
        return self.record(labels, ann, runbook_expect(self.f.crash, labels), family="crash", template=tmpl,
                           style="missing" if missing else "ksm")

    # -- volume ----------------------------------------------------------------------------------
    def volume(self) -> dict[str, Any]:
        r = self.r
        app = ng.app(r)
        ns = ng.namespace(r, app)
        pvc = ng.pvc(r, app)
        parts = [r.choice(VOLUME_PREFIX), r.choice(VOLUME_SUBJECT), r.choice(VOLUME_COND)]
        alertname = style_name(parts, r)
        labels = {"alertname": alertname, "persistentvolumeclaim": pvc}
        if r.random() < 0.92:
            labels["namespace"] = ns
        else:
            labels["exported_namespace"] = ns
        if r.random() < 0.8:
            labels["job"] = "kubelet"
        if r.random() < 0.5:
            labels["node"] = ng.node(r)
        if r.random() < 0.4:
            labels["instance"] = ng.instance(r, 10250)
        if r.random() < 0.3:
            labels["metrics_path"] = "/metrics"
        if r.random() < 0.3:
            labels["service"] = "kube-prometheus-stack-kubelet"
        if r.random() < 0.2:
            labels["endpoint"] = "https-metrics"
        self.noise(labels)
        missing = r.random() < 0.07
        if missing:
            labels.pop("persistentvolumeclaim")
            if r.random() < 0.5:
                labels["persistentvolume"] = f"pvc-{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}"
        used = r.randint(85, 99)
        ctx = {"pvc": pvc, "namespace": ns, "pct": 100 - used, "used": used}
        ann, tmpl = self.annotate("volume", ctx)
        return self.record(labels, ann, runbook_expect(self.f.volume, labels), family="volume", template=tmpl,
                           style="missing" if missing else "kubelet")

    # -- service down ----------------------------------------------------------------------------
    def down(self) -> dict[str, Any]:
        r = self.r
        entry = self.f.down
        subject = re.findall(r"[A-Z][a-z]+", entry.alert)[0]  # PrometheusServiceDown -> Prometheus
        cond = r.choice(DOWN_COND)
        parts = [r.choice(["", "", "", "Kube"]), subject, r.choice(["", "", "", "Server", "Instance", "Service"]), cond]
        alertname = style_name(parts, r)
        ns = r.choice(ng.MONITORING_NAMESPACES + [ng.namespace(r)])
        sl = subject.lower()
        labels = {"alertname": alertname, "namespace": ns}
        if r.random() < 0.85:
            labels["job"] = r.choice([sl, f"{sl}-k8s", f"kube-prometheus-stack-{sl}", f"{ns}/{sl}", f"{sl}-server"])
        if r.random() < 0.35:
            labels["pod"] = f"{sl}-{r.choice(['kube-prometheus-stack', 'k8s', 'main', 'server'])}-{r.randint(0, 1)}"
        if r.random() < 0.35:
            labels["instance"] = ng.instance(r, 9090)
        if r.random() < 0.3:
            labels["service"] = f"{sl}-operated"
        self.noise(labels)
        ctx = {"subject": subject, "subject_l": sl, "namespace": ns, "instance": labels.get("instance", "unknown"),
               "job": labels.get("job", sl)}
        ann, tmpl = self.annotate("down", ctx)
        return self.record(labels, ann, runbook_expect(entry, labels), family="down", template=tmpl, style="prom")

    # -- heartbeat and no-action families --------------------------------------------------------
    def heartbeat(self) -> dict[str, Any]:
        r = self.r
        names = [n for e in self.f.heartbeat for n in e.names] + HEARTBEAT_NAMES
        labels = {"alertname": r.choice(names)}
        if r.random() < 0.5:
            labels["namespace"] = r.choice(ng.MONITORING_NAMESPACES)
        if r.random() < 0.5:
            labels["prometheus"] = NOISE["prometheus"](r)
        labels["severity"] = r.choice(["none", "info", "none"])
        ann, tmpl = self.annotate("heartbeat", {})
        return self.record(labels, ann, no_action_expect(), family="heartbeat", template=tmpl, style="heartbeat")

    def none_labels(self, builder: str) -> tuple[dict[str, str], str]:
        r = self.r
        app = ng.app(r)
        ns = ng.namespace(r, app)
        lab: dict[str, str] = {}
        where = app
        if builder == "node":
            n = ng.node(r)
            lab = {"instance": ng.instance(r, 9100) if r.random() < 0.7 else n, "job": "node-exporter"}
            if r.random() < 0.6:
                lab["node"] = n
            if r.random() < 0.4:
                lab["device"] = r.choice(["sda1", "nvme0n1p2", "dm-0", "md0", "eth0"])
                lab["mountpoint"] = r.choice(["/", "/var", "/data", "/mnt/storage"])
            where = n
        elif builder == "kubenode":
            n = ng.node(r)
            lab = {"node": n, "job": "kube-state-metrics", "condition": r.choice(["Ready", "MemoryPressure"]),
                   "status": r.choice(["false", "unknown", "true"])}
            where = n
        elif builder == "named":
            lab = {"name": app if r.random() < 0.6 else f"{app}-tls", "namespace": ns}
            if r.random() < 0.4:
                lab["exported_namespace"] = ns
                lab["namespace"] = r.choice(["cert-manager", "external-secrets", "argocd", "security"])
            if r.random() < 0.3:
                lab["kind"] = r.choice(["Certificate", "ExternalSecret", "Application", "ClusterIssuer", "Issuer"])
            if r.random() < 0.3:
                lab["condition"] = "Ready"
        elif builder == "backup":
            lab = {"namespace": ns, "schedule": r.choice(["daily", "nightly", f"{app}-daily", "weekly"])}
            if r.random() < 0.5:
                lab["name"] = f"{app}-{ng.rand_str(r, 6)}"
        elif builder == "service":
            lab = {"namespace": ns, "service": app}
            if r.random() < 0.5:
                lab["job"] = app
            if r.random() < 0.3:
                lab["instance"] = ng.instance(r)
            if r.random() < 0.3:
                lab["pod"] = ng.pod(r, app)[0]
        elif builder == "target":
            lab = {"job": r.choice(["node-exporter", "blackbox", app, "kubelet", "coredns", "unifi-poller"]),
                   "namespace": ns}
            if r.random() < 0.5:
                lab["service"] = app
        elif builder == "promother":
            lab = {"namespace": r.choice(ng.MONITORING_NAMESPACES), "job": "prometheus-k8s"}
            if r.random() < 0.6:
                lab["pod"] = f"prometheus-k8s-{r.randint(0, 1)}"
            if r.random() < 0.4:
                lab["instance"] = ng.instance(r, 9090)
        elif builder == "jobname":
            lab = {"job_name": f"{app}-{r.randint(27000000, 29999999)}", "namespace": ns, "job": "kube-state-metrics"}
        elif builder == "hpa":
            lab = {"horizontalpodautoscaler": app, "namespace": ns}
        elif builder == "workload":
            key = r.choice(["deployment", "statefulset", "daemonset"])
            lab = {key: app, "namespace": ns, "job": "kube-state-metrics"}
        elif builder == "pod":
            lab = {"pod": ng.pod(r, app)[0], "namespace": ns}
            if r.random() < 0.7:
                lab["container"] = app
        elif builder == "quota":
            lab = {"namespace": ns, "resourcequota": f"{ns}-quota", "resource": r.choice(["cpu", "memory", "pods"])}
        elif builder == "apiserver":
            lab = {"job": r.choice(["apiserver", "etcd", "kubelet"])}
            if r.random() < 0.5:
                lab["instance"] = ng.instance(r, 6443)
        elif builder == "pv":
            lab = {"persistentvolume": f"pvc-{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}", "phase": "Failed"}
            if r.random() < 0.4:
                lab["namespace"] = ns
        self.noise(lab)
        return lab, where

    def none(self) -> dict[str, Any]:
        r = self.r
        fam, subjects, conds, builder = r.choices(
            NONE_FAMILIES, weights=[NONE_WEIGHTS.get(f[0], NONE_WEIGHTS.get(f[3], 1)) for f in NONE_FAMILIES])[0]
        subject = r.choice(subjects)
        cond = r.choice(conds)
        if fam in COMPOSED_CONDS and r.random() < 0.6:
            comp, prob = COMPOSED_CONDS[fam]
            cond = r.choice(comp) + r.choice(prob)
        alertname = style_name([subject, cond], r)
        lab, where = self.none_labels(builder)
        labels = {"alertname": alertname, **lab}
        ctx = {"subject": subject, "subject_l": subject.lower(), "cond_l": " ".join(
            w.lower() for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", cond)),
            "where": where, "value": f"{r.uniform(0, 100):.1f}"}
        ann, tmpl = self.annotate("none", ctx)
        return self.record(labels, ann, no_action_expect(), family=f"none-{fam}", template=tmpl, style=builder)


MIX = [("flux", 30), ("crash", 11), ("volume", 11), ("down", 9), ("heartbeat", 3), ("none", 36)]
RESOLVED_SHARE = 0.07


def generate(book: rb.Runbook | None = None, n: int = 20000, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` records, deterministic for (runbook, n, seed)."""
    book = book or rb.load()
    facts = Facts.from_runbook(book)
    missing = [k for k, v in (("crash", facts.crash), ("down", facts.down), ("volume", facts.volume)) if v is None]
    if not facts.kind_fn or missing:
        raise ValueError(f"runbook lacks entries the generator expects (flux kind dispatch, {missing})")
    rng = random.Random(seed)
    gen = Gen(facts, rng)
    makers: dict[str, Callable[[], dict[str, Any]]] = {"flux": gen.flux, "crash": gen.crash, "volume": gen.volume,
                                                       "down": gen.down, "heartbeat": gen.heartbeat, "none": gen.none}
    names, weights = zip(*MIX)
    out = []
    for _ in range(n):
        rec = makers[rng.choices(names, weights=weights)[0]]()
        if rng.random() < RESOLVED_SHARE:
            rec["alert"]["status"] = "resolved"
            rec["alert"]["endsAt"] = rec["alert"]["startsAt"]
            rec["expect"] = no_action_expect()
            rec["meta"]["style"] += ":resolved"
        rec["meta"]["seed"] = seed
        out.append(rec)
    return out


# --------------------------------------------------------------------------- runbook dataset


def runbook_records(book: rb.Runbook | None = None) -> list[dict[str, Any]]:
    """One canonical example per runbook case: the entry's own alert name, plain labels built from the
    case's match and its parameter sources (first label key of each), expected decision from the runbook."""
    book = book or rb.load()
    out = []
    for e in book.alerts:
        for ci, case in enumerate(e.when):
            labels: dict[str, str] = {"alertname": e.alert, "severity": "warning"}
            for key, want in case.match.items():
                vals = want if isinstance(want, list) else [want]
                v = next((x for x in vals if x), None)
                if v:
                    labels[key] = v
            ctx_values = {"name": "demo-app", "namespace": "demo", "selector": "app=demo"}
            for step in case.plan[:1]:
                for pname, src in step.parameters.items():
                    if src.value is None and src.labels:
                        key = src.labels[0]
                        default = {"pod": "demo-app-5c9d7b8f6d-x2k9q", "persistentvolumeclaim": "data-demo-app-0"}
                        labels[key] = default.get(key, ctx_values.get(pname, "demo"))
            alert = {"status": "firing", "labels": labels, "annotations": {"summary": e.description},
                     "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                     "fingerprint": label_fingerprint(labels)}
            out.append({"alert": alert, "expect": runbook_expect(e, labels),
                        "meta": {"template": f"runbook:{e.alert}:{ci}", "alertname": e.alert, "family": "runbook",
                                 "style": "canonical", "source": "runbook"}})
    return out


def write_runbook_dataset(path: str | Path = "data/runbook_test_dataset.jsonl",
                          book: rb.Runbook | None = None) -> int:
    recs = runbook_records(book)
    write_jsonl(path, recs)
    return len(recs)


# --------------------------------------------------------------------------- io, merge, split


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w") as f:
        for rec in records:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not JSON: {e}") from None
    return out


def record_key(rec: dict[str, Any]) -> str:
    a = rec["alert"]
    doc = json.dumps([a.get("status"), a.get("labels"), a.get("annotations")], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def merge(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Records of several JSONL files, duplicates (same status, labels, annotations) dropped, first kept.
    Conflicting duplicates (same alert, different expectation) raise."""
    seen: dict[str, dict[str, Any]] = {}
    out = []
    for p in paths:
        for rec in read_jsonl(p):
            if "alert" not in rec or "expect" not in rec:
                raise ValueError(f"{p}: record without alert/expect")
            k = record_key(rec)
            if k in seen:
                a, b = seen[k]["expect"], rec["expect"]
                if (a.get("lambda_function"), a.get("parameters")) != (b.get("lambda_function"), b.get("parameters")):
                    raise ValueError(f"{p}: conflicting expectations for the same alert {rec['alert']['labels']}")
                continue
            seen[k] = rec
            out.append(rec)
    return out


@dataclass
class Split:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    info: dict[str, Any]


def _alertname(rec: dict[str, Any]) -> str:
    return rec.get("meta", {}).get("alertname") or rec["alert"]["labels"]["alertname"]


def _group(rec: dict[str, Any]) -> str:
    exp = rec["expect"]
    fam = rec.get("meta", {}).get("family", "")
    return f"{fam}|{exp.get('lambda_function')}"


def split(records: list[dict[str, Any]], seed: int = 0, *, by: str = "name", val_frac: float = 0.1,
          test_frac: float = 0.15) -> Split:
    """Deterministic split.

    ``by="random"``: shuffled records. ``by="name"``: alert names and annotation templates are split
    into train / val / test groups (stratified by family), and a record goes to the first of test, val
    whose names or templates it uses, else to train — so test (and val) hold alert names and templates
    the model never saw in training."""
    rng = random.Random(seed)
    if by == "random":
        idx = list(range(len(records)))
        rng.shuffle(idx)
        n_test, n_val = int(len(idx) * test_frac), int(len(idx) * val_frac)
        test = [records[i] for i in idx[:n_test]]
        val = [records[i] for i in idx[n_test:n_test + n_val]]
        train = [records[i] for i in idx[n_test + n_val:]]
        info = {"by": by, "seed": seed}
    elif by == "name":
        fam_names: dict[str, set[str]] = {}
        fam_tmpl: dict[str, set[str]] = {}
        for rec in records:
            fam = rec.get("meta", {}).get("family", "")
            fam_names.setdefault(fam, set()).add(_alertname(rec))
            t = rec.get("meta", {}).get("template")
            if t and not t.endswith(":none"):
                fam_tmpl.setdefault(fam.split("-")[0], set()).add(t)

        def pick(groups: dict[str, set[str]], frac_t: float, frac_v: float) -> tuple[set[str], set[str]]:
            t_set, v_set = set(), set()
            for _g, items in sorted(groups.items()):
                items_l = sorted(items)
                rng.shuffle(items_l)
                if len(items_l) < 3:
                    continue
                nt = max(1, round(len(items_l) * frac_t))
                nv = max(1, round(len(items_l) * frac_v))
                t_set.update(items_l[:nt])
                v_set.update(items_l[nt:nt + nv])
            return t_set, v_set

        test_names, val_names = pick(fam_names, test_frac, val_frac)
        test_tmpl, val_tmpl = pick(fam_tmpl, 0.15, 0.1)
        train, val, test = [], [], []
        for rec in records:
            nm, t = _alertname(rec), rec.get("meta", {}).get("template")
            if nm in test_names or t in test_tmpl:
                test.append(rec)
            elif nm in val_names or t in val_tmpl:
                val.append(rec)
            else:
                train.append(rec)
        # names used by both a held-out and a train family (e.g. a shared generic name) stay in train only
        train_names = {_alertname(r) for r in train}
        test = [r for r in test if _alertname(r) not in train_names]
        val = [r for r in val if _alertname(r) not in train_names]
        info = {"by": by, "seed": seed, "held_out_names": {"test": len(test_names), "val": len(val_names)},
                "held_out_templates": {"test": sorted(test_tmpl), "val": sorted(val_tmpl)}}
    else:
        raise ValueError(f"split by {by!r}: choose 'random' or 'name'")
    info["sizes"] = {"train": len(train), "val": len(val), "test": len(test)}
    return Split(train, val, test, info)
