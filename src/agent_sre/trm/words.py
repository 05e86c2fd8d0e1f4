"""Word lists for generated alerts: the synonym sets alert names are composed from, how the parts
are joined (``style_name``), annotation templates, the families of alerts that need no action, and
noise labels.

Changing a list changes every generated dataset (the generator draws from them with a seeded RNG), so
a model trained on the old data no longer matches the new data's distribution. Template ids are their
position in ``ANNOT[family]``; the by-name split holds some ids out, so append rather than reorder.
"""

from __future__ import annotations

import random
import re

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

# --------------------------------------------------------------------------- noise labels
# Labels real alerts carry that say nothing about the remediation: label key -> draw a value.

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

