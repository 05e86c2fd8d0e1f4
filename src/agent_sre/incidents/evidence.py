"""What one alert says about its place in an incident, read from the alert alone.

``facts(alert)`` turns labels and annotations into ``Facts``: what the alert is about (a node, a
Flux object, a pod, a workload, a volume), and what it points at upstream (the node a pod runs on,
the ReplicaSet a pod belongs to, the source or dependency a Flux object names). Nothing here asks
the cluster; ``correlate`` combines the facts of all firing alerts, optionally confirmed through
``cluster.ClusterFacts``.

Label shapes read (the ones Prometheus setups produce for these objects):

* Flux: ``gotk_*`` metrics (``kind``, ``name``, ``exported_namespace``), kube-state-metrics
  custom-resource state (``customresource_kind``, ``name``, ``exported_namespace``,
  ``source_name`` / ``chart_source_name``), Flux Operator ``flux_resource_info`` (``kind``,
  ``name``, ``exported_namespace``, ``reason``, ``source_name``). The ``namespace`` label of these is
  usually the exporter's, so the object's namespace is read from ``exported_namespace`` first.
* Nodes: ``node`` on the alert of a node condition (``KubeNodeNotReady``, ``KubeNodeUnreachable``).
  Such alerts often carry ``pod`` / ``namespace`` of the exporter too; the alert's name decides.
* Pods: ``pod``, ``namespace``; the node from ``node`` when the rule joined it in; the ReplicaSet from
  ``pod_template_hash`` / ``label_pod_template_hash`` or from the pod's generated name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from ..alert_words import words  # ``KubeNodeNotReady`` → [kube, node, not, ready]
from ..alerts import Alert, label_fingerprint

# Flux kinds: what can fail upstream of what.
SOURCES = ("GitRepository", "OCIRepository", "Bucket", "HelmRepository", "HelmChart")
APPLIERS = ("Kustomization", "HelmRelease")
FLUX_KINDS = SOURCES + APPLIERS
# Which source kinds an object of each kind can be built from (HelmRelease: through its HelmChart).
UPSTREAM_KINDS: dict[str, tuple[str, ...]] = {
    "Kustomization": ("GitRepository", "OCIRepository", "Bucket", "Kustomization"),
    "HelmRelease": ("HelmRepository", "HelmChart", "GitRepository", "OCIRepository", "Bucket", "HelmRelease"),
    "HelmChart": ("HelmRepository", "GitRepository", "Bucket"),
}

_KIND_WORDS = {  # alertname / text words → Flux kind
    "gitrepository": "GitRepository", "gitrepo": "GitRepository", "ocirepository": "OCIRepository",
    "bucket": "Bucket", "helmrepository": "HelmRepository", "helmrepo": "HelmRepository",
    "helmchart": "HelmChart", "kustomization": "Kustomization", "helmrelease": "HelmRelease",
}
_FLUX_NAME_HINTS = ("flux", "gotk", "reconcil", "gitops")

_NODE_KEYS = ("node", "kubernetes_node", "exported_node", "nodename", "kubernetes_io_hostname")
_HASH_KEYS = ("pod_template_hash", "label_pod_template_hash", "pod-template-hash")
# StatefulSet and DaemonSet pods carry their revision instead (a bad rollout of those, too)
_REVISION_KEYS = ("controller_revision_hash", "label_controller_revision_hash", "controller-revision-hash")
_MESSAGE_KEYS = ("message", "description", "summary")
# Kubernetes' generated-name alphabet (no vowels, no 0/1/3): <deployment>-<hash>-<5 chars>.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_RS_POD = re.compile(rf"^(?P<rs>(?P<deploy>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<hash>[{_SAFE}]{{5,10}}))-[{_SAFE}]{{5}}$")

_OUTAGE = re.compile(r"not ?ready|unreachable|\bdown\b|\blost\b|offline|unavailable|not responding", re.I)
# "<Kind> '<ns>/<name>'", "<Kind>/<ns>/<name>", "<Kind> <ns>/<name>", "<Kind> '<name>'" in a message.
_REF = re.compile(r"\b(?P<kind>GitRepository|OCIRepository|Bucket|HelmRepository|HelmChart|Kustomization|HelmRelease)"
                  r"(?:\.[a-z.]+)?[\s/:]*['\"]?(?P<ref>[a-z0-9][-a-z0-9.]*(?:/[a-z0-9][-a-z0-9.]*)?)['\"]?")
_DEP = re.compile(r"\bdependency\s+['\"](?P<ref>[a-z0-9][-a-z0-9.]*(?:/[a-z0-9][-a-z0-9.]*)?)['\"]", re.I)
# The message says the trouble is upstream without naming it (kustomize-controller, helm-controller).
_UPSTREAM_HINT = re.compile(r"source (?:artifact )?(?:is )?not (?:ready|found)|artifact not found|source not ready|"
                            r"sourcenotready|artifactfailed|dependenc(?:y|ies) .*not|dependencynotready|"
                            r"helmchart .*not ready|chart pull error|failed to fetch helm repository", re.I)


def started_at(value: str | None) -> float | None:
    """An alert's startsAt as epoch seconds (None when absent or Alertmanager's zero time)."""
    if not value or value.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Ref:
    """An object an alert is about or points at. ``kind``: ``node``, a Flux kind, ``source`` (a Flux
    source of unknown kind), ``flux`` (a Flux object of unknown kind), ``replicaset``, ``deployment``."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Facts:
    fp: str  # the alert's fingerprint: its identity among the firing alerts
    alertname: str
    subject: str  # node | flux | pod | workload | volume | other
    ident: Ref | None = None  # what the alert is about
    flux_kind: str | None = None
    outage: bool = False  # a node alert that says the node is down, NotReady or unreachable
    node: str | None = None  # pod: the node it runs on, when a label says so
    replicaset: Ref | None = None  # pod: its ReplicaSet (pod-template-hash or generated name)
    deployment: str | None = None  # pod: the Deployment owning that ReplicaSet; workload alert: its name
    upstream: tuple[Ref, ...] = ()  # sources / dependencies named by labels or the message
    upstream_hint: bool = False  # the message says the trouble is upstream, without naming it
    own_cause: bool = False  # the message names a failure of the object itself (build, health check...)
    started: float | None = None  # startsAt as epoch seconds
    labels: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_source(self) -> bool:
        return self.subject == "flux" and self.flux_kind in SOURCES

    @property
    def dependent(self) -> bool:
        """Could be a symptom of something upstream: a pod (its node, its rollout) or a Flux object
        built from a source (a Kustomization, a HelmRelease, a HelmChart)."""
        return self.subject == "pod" or (self.subject == "flux" and self.flux_kind in UPSTREAM_KINDS) \
            or (self.subject == "flux" and self.flux_kind is None and bool(self.upstream or self.upstream_hint))


def _first(labels: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


def _text(alert: Alert) -> str:
    return " ".join(alert.annotations.get(k, "") for k in _MESSAGE_KEYS)


def _flux_kind(alert: Alert, ws: list[str]) -> str | None:
    for key in ("kind", "customresource_kind", "exported_kind"):
        v = alert.labels.get(key)
        if v in FLUX_KINDS:
            return v
    joined = "".join(ws)
    for word, kind in sorted(_KIND_WORDS.items(), key=lambda kv: -len(kv[0])):
        if word in joined:
            return kind
    return None


def _is_flux(alert: Alert, ws: list[str], kind: str | None) -> bool:
    if alert.labels.get("customresource_group", "").endswith("toolkit.fluxcd.io"):
        return True
    if alert.labels.get("kind") in FLUX_KINDS or alert.labels.get("customresource_kind") in FLUX_KINDS:
        return True
    name = alert.name.lower()
    # a Flux kind in the alert's name (GitRepositoryNotReady) or a Flux rule (FluxSourceNotReady),
    # about a named object
    return bool(alert.labels.get("name") or alert.labels.get("customresource_name")) and (
        kind is not None or any(h in name for h in _FLUX_NAME_HINTS))


def _ref(text: str, default_ns: str, kind: str | None) -> Ref:
    ns, _, name = text.rpartition("/")
    return Ref(kind or "flux", ns or default_ns, name)


def _flux_upstream(alert: Alert, ns: str, kind: str | None) -> tuple[tuple[Ref, ...], bool, bool]:
    """Sources and dependencies the alert names (labels first, then the message), whether the
    message points upstream without a name, and whether it names a failure of its own."""
    refs: list[Ref] = []
    label_src = alert.labels.get("source_name") or alert.labels.get("chart_source_name") \
        or alert.labels.get("sourceref_name") or alert.labels.get("chart_ref_name")
    if label_src and kind in UPSTREAM_KINDS:
        src_kind = alert.labels.get("source_kind") or alert.labels.get("chart_source_kind")
        # A label gives the name only (a sourceRef may point to another namespace): "" = any namespace.
        src_ns = alert.labels.get("source_namespace") or alert.labels.get("chart_source_namespace") or ""
        refs.append(Ref(src_kind if src_kind in FLUX_KINDS else "source", src_ns, label_src))
    text = " ".join(alert.annotations.get(k, "") for k in ("message", "description"))
    own_name = alert.labels.get("name") or alert.labels.get("customresource_name")
    for m in _REF.finditer(text):
        r = _ref(m["ref"], ns, m["kind"])
        if not (r.name == own_name and r.namespace == ns and (kind is None or r.kind == kind)):
            refs.append(r)
    for m in _DEP.finditer(text):
        refs.append(_ref(m["ref"], ns, "flux"))
    hint = bool(_UPSTREAM_HINT.search(text)) or alert.labels.get("reason") in (
        "ArtifactFailed", "SourceNotReady", "DependencyNotReady")
    own = bool(text.strip()) and not hint and not refs and kind in UPSTREAM_KINDS
    seen: dict[tuple[str, str, str], Ref] = {}
    for r in refs:
        seen.setdefault((r.kind, r.namespace, r.name), r)
    return tuple(seen.values()), hint, own


def facts(alert: Alert) -> Facts:
    labels = alert.labels
    fp = alert.fingerprint or label_fingerprint(labels)
    ws = words(alert.name)
    t = started_at(alert.startsAt)
    base = dict(fp=fp, alertname=alert.name, started=t, labels=labels)

    node_label = _first(labels, _NODE_KEYS)
    # KubeNodeNotReady, KubeNodeUnreachable, NodeDown; also rules named after the condition they
    # test (KubernetesNodeReady: ``kube_node_status_condition{condition="Ready",status="true"} == 0``).
    if "node" in ws and node_label and (_OUTAGE.search(" ".join(ws)) or "ready" in ws
                                        or labels.get("condition") == "Ready"):
        return Facts(subject="node", ident=Ref("node", "", node_label), outage=True, **base)

    kind = _flux_kind(alert, ws)
    if _is_flux(alert, ws, kind):
        ns = labels.get("exported_namespace") or labels.get("customresource_namespace") or labels.get("namespace") or ""
        name = labels.get("name") or labels.get("customresource_name") or labels.get("exported_name") or ""
        ups, hint, own = _flux_upstream(alert, ns, kind)
        return Facts(subject="flux", ident=Ref(kind or "flux", ns, name) if name else None, flux_kind=kind,
                     upstream=ups, upstream_hint=hint, own_cause=own, **base)

    if labels.get("persistentvolumeclaim"):
        return Facts(subject="volume", ident=Ref("persistentvolumeclaim", labels.get("namespace", ""),
                                                 labels["persistentvolumeclaim"]), **base)

    pod = labels.get("pod") or labels.get("exported_pod")
    ns = labels.get("namespace") or labels.get("exported_namespace") or ""
    if labels.get("deployment") and not pod:
        return Facts(subject="workload", ident=Ref("deployment", ns, labels["deployment"]),
                     deployment=labels["deployment"], **base)
    if pod and "node" not in ws[:2]:
        rs, deploy = None, None
        h = _first(labels, _HASH_KEYS)
        m = _RS_POD.match(pod)
        if m and (h is None or m["hash"] == h):
            rs, deploy = Ref("replicaset", ns, m["rs"]), m["deploy"]
        elif h:
            cut = pod.find(f"-{h}-")
            deploy = pod[:cut] if cut > 0 else None
            rs = Ref("replicaset", ns, f"{deploy}-{h}" if deploy else h)
        elif (rev := _first(labels, _REVISION_KEYS)):
            rs = Ref("revision", ns, rev)
        return Facts(subject="pod", ident=Ref("pod", ns, pod), node=node_label, replicaset=rs, deployment=deploy,
                     **base)
    if node_label and "node" in ws:
        return Facts(subject="node", ident=Ref("node", "", node_label), **base)
    return Facts(subject="other", **base)
