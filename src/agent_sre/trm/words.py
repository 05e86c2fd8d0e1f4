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
FLUX_PREFIX = ["Flux", "Flux", "Flux", "", "", "Gotk", "FluxCD", "Flux"]
GENERIC_FLUX_SUBJECT = ["Reconciliation", "Reconcile", "Reconciler", "Resource", "Object", "Sync", "Controller"]
FAIL_VERBS = ["Failed", "Failing", "Failure", "Fails", "Error", "Errors", "Errored", "Stalled", "NotReady",
              "Degraded", "Stuck", "OutOfSync", "Unhealthy", "Broken", "TimedOut", "Timeout", "Unready",
              "NotSynced", "SyncFailed", "Problem", "Issue"]
CRASH_PREFIX = ["Kube", "Kube", "K8s", "", "", "Kubernetes"]
CRASH_SUBJECT = ["Pod", "Pod", "Container", "", "Workload", "Deployment?"]
CRASH_COND = ["CrashLooping", "CrashLoopBackOff", "CrashLoopBackoff", "CrashLoop", "Crashing", "InCrashLoop",
              "CrashLoopDetected", "Crashlooping", "RestartLoop", "CrashLoops", "KeepsCrashing",
              "RestartingTooOften", "FrequentlyRestarting"]
VOLUME_PREFIX = ["Kube", "Kube", "", "", "K8s"]
VOLUME_SUBJECT = ["PersistentVolume", "PersistentVolumeClaim", "PVC", "Pvc", "Volume", "VolumeClaim", "Pv",
                  "Storage"]
VOLUME_COND = ["FillingUp", "FillingUpCritical", "AlmostFull", "Full", "UsageHigh", "SpaceLow", "LowSpace",
               "UsageCritical", "InodesFillingUp", "RunningOutOfSpace", "NearlyFull", "OutOfSpace",
               "SpaceFillingUp", "UsageAbove90", "CapacityLow", "FreeSpaceLow", "DiskPressure"]
DOWN_COND = ["Down", "ServiceDown", "Unavailable", "NotUp", "Unreachable", "InstanceDown", "ServerDown",
             "Absent", "IsDown", "NotResponding", "NotRunning", "Offline", "NoTargetsUp"]
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
# Each template: (key, text). Its id is named by its text (generator.template_id); the by-template split
# holds some out.

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
                          "TooHigh", "High", "Dropped", "Limit", "LimitHit", "Lag", "Invalid",
                          "Rejected", "Truncated", "Duplicates", "Stale", "Timeout", "Overloaded", "Empty",
                          "Large", "Exceeded", "Saturated", "Increasing", "Spiking", "Drift", "Unstable",
                          "Flapping", "Growing", "Stuck", "Conflict", "Mismatch", "Errored", "Warnings"]),
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


# =========================================================================== real-world shapes
# Word lists for the alert shapes real rule sets deliver (kube-prometheus, kube-prometheus-stack,
# community collections, homelab GitOps repositories): Flux through kube-state-metrics'
# custom-resource-state, the Flux Operator and notification-controller events; Prometheus
# self-monitoring; crash loops outside Kubernetes; application exporters. Written for this project.

KSM_FLUX_GROUPS = {"Kustomization": "kustomize.toolkit.fluxcd.io", "HelmRelease": "helm.toolkit.fluxcd.io",
                   "GitRepository": "source.toolkit.fluxcd.io", "OCIRepository": "source.toolkit.fluxcd.io",
                   "HelmRepository": "source.toolkit.fluxcd.io", "HelmChart": "source.toolkit.fluxcd.io",
                   "Bucket": "source.toolkit.fluxcd.io", "ImageRepository": "image.toolkit.fluxcd.io",
                   "ImagePolicy": "image.toolkit.fluxcd.io", "ImageUpdateAutomation": "image.toolkit.fluxcd.io",
                   "Receiver": "notification.toolkit.fluxcd.io", "ResourceSet": "fluxcd.controlplane.io",
                   "FluxInstance": "fluxcd.controlplane.io"}
FLUX_NOFN_KINDS = ["HelmRepository", "OCIRepository", "Bucket", "HelmChart", "ImageRepository", "ImagePolicy",
                   "ImageUpdateAutomation", "Receiver", "ResourceSet"]
# Reasons a Flux object reports (Ready condition / events). Failures ask for a reconcile.
FLUX_FAIL_REASONS = {
    "Kustomization": ["ReconciliationFailed", "BuildFailed", "ArtifactFailed", "PruneFailed"],
    "HelmRelease": ["UpgradeFailed", "InstallFailed", "ReconciliationFailed", "RollbackFailed", "TestFailed",
                    "ArtifactFailed", "ChartNotFound"],
    "GitRepository": ["GitOperationFailed", "ArtifactFailed", "AuthenticationFailed", "ReconciliationFailed",
                      "StorageOperationFailed"],
}
FLUX_CONTROLLERS = {"Kustomization": "kustomize-controller", "HelmRelease": "helm-controller",
                    "GitRepository": "source-controller"}

SUSPEND_WORDS = ["Suspended", "Suspended", "SuspendedTooLong", "IsSuspended", "Paused", "SuspensionActive",
                 "StillSuspended", "LeftSuspended"]
SUSPEND_TEXT = [
    "{kind} {namespace}/{name} is suspended; Flux will not reconcile it until it is resumed.",
    "Reconciliation of {name} is paused (spec.suspend: true) since {hours}h.",
    "{kind} {name} in {namespace} has been suspended for more than {hours} hours.",
    "The {kind_l} {name} is suspended and not ready: {reason}.",
    "{name} ({namespace}) stays suspended; resume it with flux resume {kind_l} {name} -n {namespace}.",
    "suspend: true on {kind} {namespace}/{name}; its last reconciliation failed.",
    "Flux object {name} is not being reconciled because it is suspended.",
]
FLUX_PROGRESS_WORDS = ["InProgress", "Progressing", "Reconciling", "Pending", "Waiting"]

# Flux alerts from the community / homelab rule sets (composed, never copied).
FLUX_SENTENCES = [
    "{kind} {namespace}/{name} is not ready: {reason}.",
    "Flux {kind_l} {name} in namespace {namespace} has been failing to reconcile for 15 minutes.",
    "The {kind} {name} ({namespace}) reports Ready={ready}.",
    "{kind} '{name}' in '{namespace}' cannot be reconciled.",
    "Reconciliation of {kind} {name} failed in namespace {namespace}",
    "{name} has been in a failed state for more than 10 minutes ({reason})",
    "Flux resource {namespace}/{name} of kind {kind} is not ready",
    "{kind} {name} failed: {reason}",
    "GitOps sync failing for {namespace}/{name}",
]
FLUX_SUMMARIES = ["Flux resource is not ready.", "Flux reconciliation failure", "A Flux object failed to reconcile.",
                  "Flux {kind_l} not ready", "Reconciliation failing"]
FLUX_EVENT_TEXT = [
    "kustomize build failed: accumulating resources from '{path}': missing file",
    "Helm upgrade failed for release {namespace}/{name} with chart {name}@{version}: context deadline exceeded",
    "install retries exhausted",
    "failed to checkout and determine revision: unable to clone '{url}': authentication required",
    "{reason}: {name}",
    "reconciliation failed: {reason} for {namespace}/{name}",
    "Helm install failed for release {namespace}/{name} with chart {name}@{version}: timed out waiting for the condition",
]

# Prometheus self-monitoring: what goes wrong inside a Prometheus that is up (none), and the
# label each problem adds to the identity labels.
PROM_SELF_PROBLEMS = [
    ("RuleFailures", "rule_group"), ("RuleEvaluationFailures", "rule_group"), ("MissingRuleEvaluations", "rule_group"),
    ("RuleGroupEvaluationSlow", "rule_group"), ("KubernetesListWatchFailures", None), ("SDRefreshFailure", "mechanism"),
    ("TargetSyncFailure", "scrape_job"), ("TargetLimitHit", "scrape_job"), ("ScrapeSampleLimitHit", "scrape_job"),
    ("LabelLimitHit", "scrape_job"), ("ScrapeBodySizeLimitHit", "scrape_job"),
    ("NotificationQueueRunningFull", None), ("ErrorSendingAlertsToSomeAlertmanagers", "alertmanager"),
    ("ErrorSendingAlertsToAnyAlertmanager", None), ("NotConnectedToAlertmanagers", None),
    ("TSDBCompactionsFailing", None), ("TSDBReloadsFailing", None), ("TsdbWalCorruptions", None),
    ("TsdbCheckpointCreationFailures", None), ("RemoteWriteBehind", "remote_name"), ("RemoteWriteDesiredShards", "remote_name"),
    ("RemoteStorageFailures", "remote_name"), ("BadConfig", None), ("ConfigurationReloadFailure", None),
    ("NotIngestingSamples", None), ("HighQueryLoad", None), ("DuplicateTimestamps", None), ("OutOfOrderTimestamps", None),
    ("TooManyRestarts", None), ("LargeScrape", "scrape_job"), ("TargetScrapeDuplicate", "scrape_job"),
    ("SlowRuleEvaluation", "rule_group"), ("HighScrapeDuration", "scrape_job"),
]
PROM_SELF_TEXT = [
    "Prometheus {namespace}/{pod} has failed to evaluate {value} rules in the last 5m.",
    "Prometheus {namespace}/{pod} is missing rule evaluations due to slow rule group evaluation.",
    "Kubernetes service discovery of Prometheus {namespace}/{pod} is failing list and watch requests.",
    "{value} targets in Prometheus {namespace}/{pod} have failed to sync because invalid configuration was supplied.",
    "Alert notification queue of Prometheus {namespace}/{pod} is running full.",
    "Prometheus {namespace}/{pod} has detected {value} compaction failures over the last 3h.",
    "Prometheus {namespace}/{pod} remote write is {value}s behind.",
    "Prometheus {namespace}/{pod} has dropped {value} samples with out-of-order timestamps.",
    "Prometheus {pod} configuration reload has failed",
    "Prometheus {namespace}/{pod} is not ingesting samples.",
    "Prometheus has restarted more than twice in the last 15 minutes. It might be crashlooping.",
    "Prometheus encountered {value} TSDB WAL corruptions",
]
# Components of a Prometheus that is up whose problems read like "target down" at a glance.
PROM_TARGETISH = ["Target", "Targets", "Scrape", "ScrapeTarget", "Job", "Instance", "TargetScrape", "Scrapes"]
PROM_DOWN_TEXT = [
    "{value}% of the {job}/{job} targets in {namespace} namespace are down.",
    "A Prometheus target has disappeared. An exporter might be crashed.",
    "Prometheus {namespace}/{pod} is not reachable from the monitoring of the monitoring.",
    "The Prometheus job {job} in {namespace} has had no target up for 5 minutes.",
    "Prometheus server {pod} is down",
    "{job} target {instance} is missing",
]
TARGET_DOWN_NAMES = ["TargetDown", "TargetMissing", "TargetsDown", "ScrapeTargetDown", "TargetUnreachable",
                     "TargetDownCritical", "JobTargetsDown", "ServiceMonitorTargetDown"]

# Pods that are unwell without crash-looping (no action): not ready, waiting, OOM, throttled ...
# (condition, extra label, sentence kind in POD_OTHER_TEXT)
POD_OTHER = [("NotReady", None, "notready"), ("NotHealthy", None, "notready"), ("ContainerWaiting", "reason", "waiting"),
             ("Pending", "phase", "pending"), ("OomKilled", "reason", "oom"), ("ContainerOomKiller", "reason", "oom"),
             ("CPUThrottlingHigh", None, "throttle"), ("ImagePullBackOff", "reason", "waiting"),
             ("VolumeReadOnly", None, "readonly"), ("Evicted", "reason", "pending"),
             ("ContainerTerminated", "reason", "oom"), ("InitContainerFailing", "reason", "waiting"),
             ("HighMemoryUsage", None, "throttle"), ("Unschedulable", None, "pending"),
             ("StuckTerminating", None, "notready"), ("ReadinessProbeFailing", None, "notready")]
WAITING_REASONS = ["ImagePullBackOff", "ErrImagePull", "ContainerCreating", "CreateContainerConfigError",
                   "CreateContainerError", "InvalidImageName", "PodInitializing"]
POD_OTHER_TEXT = {
    "notready": ["Pod {namespace}/{pod} has been in a non-ready state for longer than 15 minutes.",
                 "Kubernetes pod {namespace}/{pod} is not healthy", "{pod} in {namespace} is not ready"],
    "waiting": ["Pod {namespace}/{pod} container {container} has been in waiting state ({reason}) for longer than 1 hour.",
                "Container {container} of {pod} cannot start: {reason}"],
    "oom": ["{container} in pod {pod} was OOM killed {value} times", "Container {container} ({namespace}/{pod}) terminated: {reason}"],
    "throttle": ["{value}% throttling of CPU in namespace {namespace} for container {container} in pod {pod}.",
                 "Memory of {pod} is at {value}% of its limit"],
    "readonly": ["Volume of pod {pod} in {namespace} is mounted read-only"],
    "pending": ["Pod {pod} is pending: {reason}", "Pod {namespace}/{pod} cannot be scheduled"],
}

# Crash loops outside Kubernetes: systemd units, Docker containers, processes (no action).
SYSTEMD_SUBJECTS = ["NodeSystemdService", "SystemdService", "HostSystemdService", "SystemdUnit", "Systemd",
                    "HostService", "NodeService", "Unit"]
SYSTEMD_CONDS = ["CrashLooping", "Crashlooping", "Crashed", "Failed", "Inactive", "Restarting", "RestartLoop",
                 "FlappingRestarts", "KeepsCrashing", "NotRunning", "Down"]
SYSTEMD_UNITS = ["k3s.service", "k3s-agent.service", "kubelet.service", "containerd.service", "docker.service",
                 "zfs-scrub@{pool}.service", "smartd.service", "nut-monitor.service", "tailscaled.service",
                 "chronyd.service", "systemd-resolved.service", "nfs-server.service", "{app}.service",
                 "backup-{app}.timer", "mnt-{pool}.mount", "certbot-renew.timer", "rclone-{app}.service"]
DOCKER_SUBJECTS = ["Container", "Docker", "DockerContainer", "Cadvisor", "ContainerInstance"]
DOCKER_CONDS = ["Killed", "Absent", "Restarting", "CrashLooping", "Crashed", "Exited", "Down", "Unhealthy",
                "HighCpuUtilization", "HighMemoryUsage", "VolumeUsage", "HighThrottleRate"]
PROCESS_CONDS = ["TooManyRestarts", "Restarted", "ProcessRestarting", "ProcessRestarts", "RestartsHigh",
                 "ProcessCrashed", "Restarting", "ProcessDown", "UptimeLow", "RecentlyRestarted"]
CRASH_OTHER_TEXT = {
    "systemd": ["Systemd service {unit} has been restarting frequently on {instance}.",
                "Service {unit} on host {instance} crashed.", "Systemd unit {unit} is in state {state}"],
    "docker": ["A container has disappeared ({name} on {instance})", "Container {name} restarted {value} times on {instance}",
               "Docker container {name} ({image}) is unhealthy"],
    "process": ["{subject} has restarted more than 2 times in the last 15 minutes. It might be crashlooping.",
                "Process {groupname} restarted {value} times", "{subject} on {instance} restarted"],
}

# Volumes that are not running full, and node filesystems that are (no action).
PVC_OTHER = [("PersistentvolumeclaimPending", "pvc"), ("PersistentVolumeClaimPending", "pvc"),
             ("PvcPending", "pvc"), ("PersistentVolumeErrors", "pv"), ("PersistentVolumeFailed", "pv"),
             ("VolumeOutOfSync", "volsync"), ("VolSyncVolumeOutOfSync", "volsync"), ("VolumeDegraded", "longhorn"),
             ("LonghornVolumeDegraded", "longhorn"), ("LonghornVolumeFaulted", "longhorn"),
             ("VolumeAttachFailed", "pv"), ("PvcResizeFailed", "pvc"), ("VolumeSnapshotFailed", "pvc")]
FILESYSTEM_NAMES = ["NodeFilesystemSpaceFillingUp", "NodeFilesystemAlmostOutOfSpace", "HostOutOfDiskSpace",
                    "HostDiskWillFillIn24Hours", "NodeFilesystemFilesFillingUp", "HostOutOfInodes",
                    "NodeDiskFull", "FilesystemFillingUp", "HostFilesystemFull", "DiskSpaceLow"]
FILLING_OTHER = ["JvmMemoryFillingUp", "ElasticsearchDiskOutOfSpace", "PostgresqlDiskFillingUp", "MinioDiskFull",
                 "CephClusterNearFull", "ZfsPoolFillingUp", "RedisMemoryFull", "KafkaTopicFillingUp",
                 "LokiChunkStoreFull", "MysqlBinlogFillingUp", "ContainerVolumeUsage", "HostSwapIsFillingUp"]
FS_TEXT = [
    "Filesystem on {device} at {instance} has only {value}% available space left and is filling up.",
    "Disk is almost full (< 10% left) on {mountpoint}",
    "Filesystem {mountpoint} on {instance} is predicted to run out of space within the next 24 hours.",
    "{subject} storage is {value}% full",
]

# Application exporters: products, the exporter that watches them and conditions (own words).
EXPORTER_PRODUCTS = [
    ("Postgresql", "postgres-exporter", ["datname", "server"]), ("Mysql", "mysqld-exporter", ["schema"]),
    ("Redis", "redis-exporter", ["addr"]), ("Mongodb", "mongodb-exporter", ["rs_nm"]),
    ("Rabbitmq", "rabbitmq-exporter", ["queue", "vhost"]), ("Kafka", "kafka-exporter", ["topic", "consumergroup"]),
    ("Elasticsearch", "elasticsearch-exporter", ["cluster", "es_node"]), ("Nginx", "nginx-exporter", ["host"]),
    ("Traefik", "traefik", ["service", "entrypoint"]), ("Haproxy", "haproxy-exporter", ["backend", "server"]),
    ("Minio", "minio", ["server", "disk"]), ("Ceph", "ceph-mgr", ["ceph_daemon", "pool_id"]),
    ("Loki", "loki", ["route", "tenant"]), ("Thanos", "thanos-query", ["grpc_method"]),
    ("Etcd", "etcd", ["grpc_service"]), ("CoreDNS", "coredns", ["server", "zone"]),
    ("Blackbox", "blackbox-exporter", ["target", "module"]), ("Smart", "smartctl-exporter", ["device", "model_name"]),
    ("Ups", "nut-exporter", ["ups"]), ("Zfs", "zfs-exporter", ["pool"]), ("Unifi", "unpoller", ["site_name", "name"]),
    ("Pihole", "pihole-exporter", ["hostname"]), ("Adguard", "adguard-exporter", ["server"]),
    ("Opnsense", "opnsense-exporter", ["gateway"]), ("Proxmox", "pve-exporter", ["id", "name"]),
    ("Jenkins", "jenkins", ["jenkins_job"]), ("Gitlab", "gitlab", ["controller"]), ("Argocd", "argocd-metrics", ["name", "dest_namespace"]),
    ("CertManager", "cert-manager", ["name", "exported_namespace", "issuer_name"]),
    ("ExternalSecret", "external-secrets", ["name", "condition"]), ("Velero", "velero", ["schedule"]),
    ("Longhorn", "longhorn-manager", ["volume", "node"]), ("Cilium", "cilium-agent", ["reason"]),
    ("Istio", "istiod", ["destination_service"]), ("Envoy", "envoy", ["envoy_cluster_name"]),
    ("Grafana", "grafana", ["handler"]), ("Vault", "vault", ["mount_point"]), ("Consul", "consul-exporter", ["service_name"]),
    ("Nats", "nats-exporter", ["server_id"]), ("Memcached", "memcached-exporter", []), ("Clickhouse", "clickhouse", ["table"]),
    ("Cassandra", "cassandra-exporter", ["keyspace"]), ("Zookeeper", "zookeeper", []), ("Windows", "windows-exporter", ["name", "volume"]),
    ("Snmp", "snmp-exporter", ["ifName", "ifDescr"]), ("Speedtest", "speedtest-exporter", []),
    ("Frigate", "frigate", ["camera_name"]), ("Mosquitto", "mosquitto-exporter", []), ("Zigbee2mqtt", "zigbee2mqtt", ["device"]),
    ("Immich", "immich", []), ("Jellyfin", "jellyfin", []), ("Sonarr", "exportarr", ["url"]), ("Sabnzbd", "exportarr", []),
    ("Smokeping", "smokeping-prober", ["host"]), ("Gatus", "gatus", ["name", "group"]), ("Dnsdist", "dnsdist", []),
    ("Hadoop", "jmx-exporter", ["name"]), ("Jvm", "jmx-exporter", ["area", "pool"]), ("Sidekiq", "sidekiq", ["queue"]),
    ("Php", "php-fpm-exporter", ["pool"]), ("Apache", "apache-exporter", []), ("Caddy", "caddy", ["server"]),
    ("Aws", "cloudwatch-exporter", ["load_balancer", "target_group"]), ("Digitalocean", "digitalocean-exporter", ["name"]),
    ("Juniper", "junos-exporter", ["target"]), ("Mikrotik", "mikrotik-exporter", ["name"]),
    ("Kopia", "kopia", ["snapshot_path"]), ("Restic", "restic-exporter", ["snapshot_hash"]),
    ("Game", "gameserver-exporter", ["server", "map"]), ("Opentelemetry", "otel-collector", ["exporter"]),
    ("Tempo", "tempo", ["tenant"]), ("Mimir", "mimir", ["route"]), ("Kyverno", "kyverno", ["policy_name"]),
]
EXPORTER_CONDS = [
    "Down", "Down", "Unavailable", "NotUp", "Unreachable", "HighLatency", "LatencyHigh", "HighErrorRate", "Errors",
    "TooManyConnections", "ReplicationLag", "ReplicationBroken", "SlowQueries", "HighMemoryUsage", "HighCpuUsage",
    "DiskFull", "DiskFillingUp", "OutOfSpace", "QueueFull", "QueueTooLong", "ConsumerLag", "NotHealthy", "Unhealthy",
    "Degraded", "Failed", "Failure", "Failing", "SyncFailed", "SyncError", "NotSynced", "OutOfSync", "NotReady",
    "Restarted", "Restarting", "TooManyRestarts", "Stale", "Missing", "Absent",
    "ConfigReloadFailed", "ReconcileErrors", "BackupFailed", "SnapshotFailed", "CertificateExpiring",
    "TemperatureHigh", "OnBattery", "LowBattery", "PoolDegraded", "ClusterRed", "ClusterYellow", "Deadlocks",
    "RejectedConnections", "SplitBrain", "LeaderChanges", "NoLeader", "RateLimited", "Throttled", "Timeouts",
    "5xxErrors", "4xxErrors", "SslCertExpiring", "ProbeFailed", "SlowProbe", "PacketLoss", "HighRtt",
    "InstanceDown", "ServiceDown", "JobFailed", "LastBuildFailed", "TasksFailing", "DiskUsageHigh", "StorageFull",
]
EXPORTER_TEXT = [
    "{subject} instance {instance}: {cond_l}",
    "{subject} on {instance} reports {cond_l} (current value {value})",
    "{subject} {cond_l} for more than 5 minutes",
    "The {subject_l} exporter reports {cond_l} on {where}",
    "{subject} {where}: {cond_l}",
    "{cond_l} detected on {subject_l} ({value})",
]
HEARTBEAT_MORE = ["Watchdog", "InfoInhibitor", "DeadMansSwitch", "NodeUnderMaintenance", "MassiveAlertStorm",
                  "AlertGroupExceedsMaxAlerts", "PrometheusAlertmanagerE2eDeadManSwitch", "AlwaysOn",
                  "MaintenanceMode", "InhibitInfoAlerts"]
OPERATOR_NAMES = ["PrometheusOperatorReconcileErrors", "PrometheusOperatorSyncFailed", "PrometheusOperatorNotReady",
                  "PrometheusOperatorRejectedResources", "PrometheusOperatorListErrors", "PrometheusOperatorWatchErrors",
                  "PrometheusOperatorNodeLookupErrors", "ConfigReloaderSidecarErrors", "AlertmanagerFailedReload",
                  "AlertmanagerMembersInconsistent", "AlertmanagerFailedToSendAlerts", "AlertmanagerClusterDown",
                  "AlertmanagerClusterCrashlooping", "AlertmanagerConfigInconsistent", "PrometheusAlertmanagerJobMissing",
                  "AlertmanagerClusterFailedToSendAlerts", "GrafanaRequestsFailing", "KubeStateMetricsListErrors",
                  "KubeStateMetricsWatchErrors", "KubeStateMetricsShardingMismatch"]
FLUX_LOOKALIKES = ["FluxInstanceNotReady", "FluxInstanceAbsent", "FluxComponentAbsent", "FluxImageIssue",
                   "FluxControllerDown", "FluxOperatorDown", "FluxImageAutomationFailing", "FluxReceiverNotReady",
                   "FluxNotificationFailing", "FluxSourceControllerHighMemory", "FluxReconcileDurationHigh",
                   "FluxResourceSetNotReady", "FluxControllerRestarting"]
