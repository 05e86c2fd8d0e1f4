"""Alert storms, generated, each with the outcome a careful operator would want.

Six kinds (``KINDS``), as they happen in clusters run with Flux and kube-prometheus:

* ``gitrepo``: a GitRepository cannot fetch; the Kustomizations built from it (some through a
  ``dependsOn`` chain) fail after it. One reconcile of the GitRepository; the rest held.
* ``node``: a node goes NotReady (or unreachable); pods on it fail. No function fixes a node: one
  escalation; no pod on it is restarted. Pods on other nodes that fail meanwhile are restarted.
* ``helmrepo``: a HelmRepository fails (no function for it); its HelmReleases (and HelmCharts)
  fail. One escalation.
* ``rollout``: the new ReplicaSet of one Deployment crash-loops right after a rollout (a bad image
  or config): restarting pods does not help. One escalation.
* ``control``: unrelated crash loops and a Kustomization failing for its own reason at the same
  time: every one is acted on, none held.
* ``volumes``: a wave of volumes filling up: each gets its read-only check, none held.

Variation: sizes (up to 25 dependents), label shapes (``gotk_*`` metrics; kube-state-metrics
custom-resource state with ``customresource_*`` labels; the Flux Operator's ``flux_resource_info``),
pod alerts with or without ``node`` and ``pod_template_hash``, messages that name the source or only
say it is not ready, and timing (roots usually, not always, first).

``deliveries`` plays a storm the way Alertmanager sends it: grouped by alertname and namespace, a
group's first webhook ``group_wait`` after its first alert, then, at each ``group_interval`` tick
where the group changed, the whole group again (resolved members once, then dropped).

Deterministic: ``generate(kind, seed)`` is a pure function of its arguments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..alerts import label_fingerprint

KINDS = ("gitrepo", "node", "helmrepo", "rollout", "control", "volumes")
# Kinds whose incident has one escalation and no trigger, and kinds with no incident at all.
ESCALATING = ("node", "helmrepo", "rollout")

_T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_APPS = ("webshop checkout cart search catalog orders payments ledger billing invoices auth sso keycloak "
         "gitea drone grafana loki tempo mimir thanos postgres redis rabbitmq kafka "
         "nats minio harbor immich jellyfin nextcloud paperless vaultwarden home-assistant mosquitto zigbee "
         "frigate traefik ingress-nginx cert-manager external-dns cloudflared metallb longhorn velero "
         "podinfo echo whoami api gateway frontend backend worker scheduler notifier mailer renderer "
         "thumbnailer indexer crawler exporter collector reporter uptime-kuma ntfy n8n wiki docs").split()
_NAMESPACES = ("default apps shop media home monitoring observability databases data auth security "
               "ingress networking storage backup team-a team-b staging prod dev tools ci platform").split()
_NODES = ("worker-{i} node-{i} k8s-worker-{i} nuc-{i} pi-{i} agent-{i} ip-10-0-{i}-{j}.eu-west-1.compute.internal "
          "talos-{c}-{i} kube-node-{i}").split()
_REPOS = ("flux-system fleet-infra platform apps infra homelab cluster-config gitops k8s-manifests "
          "home-ops deployments").split()
_HELMREPOS = ("bitnami prometheus-community grafana jetstack ingress-nginx traefik podinfo "
              "hashicorp longhorn metallb external-secrets cilium").split()
_CLONE_ERRORS = (
    "failed to checkout and determine revision: unable to clone '{url}': authentication required",
    "failed to checkout and determine revision: unable to clone '{url}': context deadline exceeded",
    "failed to checkout and determine revision: unable to clone '{url}': couldn't find remote ref \"refs/heads/main\"",
    "failed to checkout and determine revision: unable to list remote for '{url}': dial tcp: lookup github.com: i/o timeout",
)
_INDEX_ERRORS = (
    "failed to fetch Helm repository index: failed to cache index to temporary file: failed to fetch {url}/index.yaml : 404 Not Found",
    "failed to fetch Helm repository index: failed to cache index to temporary file: Get \"{url}/index.yaml\": dial tcp: i/o timeout",
    "failed to fetch Helm repository index: failed to cache index to temporary file: unexpected status code 503",
)
_OWN_KS_ERRORS = (
    "kustomize build failed: accumulating resources: accumulation err='accumulating resources from './{app}': missing Resource metadata'",
    "Deployment/{ns}/{app} dry-run failed: Deployment.apps \"{app}\" is invalid: spec.template.spec.containers[0].image: Required value",
    "Service/{ns}/{app} dry-run failed: Service \"{app}\" is invalid: spec.ports[0].port: Invalid value: 0",
    "kustomization path not found: stat /tmp/kustomization-1234/clusters/prod/{app}: no such file or directory",
)


@dataclass
class StormAlert:
    """One alert of a storm, with the truth about it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    at: float  # seconds after the storm starts when Alertmanager receives it
    truth: str  # root | symptom | lead | unrelated
    incident: str | None = None  # the incident it belongs to (None: unrelated)
    expect: tuple[str, dict[str, str]] | None = None  # the one trigger it should get, if any
    on_down_node: bool = False  # a pod on the down node: restarting it is forbidden
    resolve_at: float | None = None
    starts: str = ""
    cause: "StormAlert | None" = field(default=None, repr=False)  # its direct cause, when that has an alert

    @property
    def fingerprint(self) -> str:
        return label_fingerprint(self.labels)

    def alert_doc(self, status: str = "firing", ends: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
        return {"status": status, "labels": dict(self.labels), "annotations": dict(self.annotations),
                "startsAt": self.starts, "endsAt": ends, "fingerprint": self.fingerprint,
                "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=up"}


@dataclass
class Scenario:
    name: str
    kind: str
    seed: int
    alerts: list[StormAlert]
    escalations: int  # escalations the incident should produce (0 or 1)
    notes: list[str] = field(default_factory=list)

    @property
    def ideal_triggers(self) -> list[tuple[str, dict[str, str]]]:
        return [a.expect for a in self.alerts if a.expect is not None]

    def by_fp(self) -> dict[str, StormAlert]:
        return {a.fingerprint: a for a in self.alerts}


# ---------------------------------------------------------------------------------------- pieces

def _hash(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_SAFE) for _ in range(n))


def _pick(rng: random.Random, pool: tuple[str, ...] | list[str], k: int) -> list[str]:
    """k distinct names from the pool, with numbered variants when it runs out."""
    names = list(dict.fromkeys(pool))
    rng.shuffle(names)
    out = names[:k]
    i = 2
    while len(out) < k:
        cand = f"{rng.choice(names)}-{i}"
        if cand not in out:
            out.append(cand)
        i += 1
    return out


def _node(rng: random.Random) -> str:
    return rng.choice(_NODES).format(i=rng.randint(1, 9), j=rng.randint(2, 250), c=_hash(rng, 3))


def _noise(rng: random.Random, job: str, ns: str | None = None) -> dict[str, str]:
    out = {"severity": rng.choice(["warning", "critical", "warning"]), "job": job}
    if rng.random() < 0.5:
        out["prometheus"] = "monitoring/kube-prometheus-stack-prometheus"
    if ns is not None:
        out["namespace"] = ns
    return out


class _Flux:
    """One label shape for every Flux alert of a storm."""

    def __init__(self, rng: random.Random, shape: str | None = None):
        self.rng = rng
        self.shape = shape or rng.choice(["gotk", "ksm", "operator"])
        self.alertname = {"gotk": rng.choice(["FluxReconciliationFailure", "ReconciliationFailure"]),
                          "ksm": "FluxReconciliationFailure", "operator": "FluxResourceNotReady"}[self.shape]
        self.messages = self.shape != "gotk" and rng.random() < 0.7

    def labels(self, kind: str, ns: str, name: str, source: str | None = None, source_kind: str | None = None,
               reason: str = "") -> dict[str, str]:
        rng = self.rng
        if self.shape == "gotk":
            out = {"alertname": self.alertname, "kind": kind, "name": name, "exported_namespace": ns}
            if rng.random() < 0.3:
                out.update(_noise(rng, "kustomize-controller", "flux-system"))
            return out
        if self.shape == "ksm":
            group = {"Kustomization": "kustomize.toolkit.fluxcd.io", "HelmRelease": "helm.toolkit.fluxcd.io"}.get(
                kind, "source.toolkit.fluxcd.io")
            out = {"alertname": self.alertname, "customresource_group": group, "customresource_kind": kind,
                   "customresource_version": "v1" if kind != "HelmRelease" else "v2", "name": name,
                   "exported_namespace": ns, "ready": "False", "suspended": "false",
                   **_noise(rng, "kube-state-metrics", "monitoring")}
            if source and kind == "Kustomization":
                out["source_name"] = source
            if source and kind == "HelmRelease":
                out["chart_source_name"] = source
            return out
        out = {"alertname": self.alertname, "kind": kind, "name": name, "exported_namespace": ns, "ready": "False",
               "suspended": "False", **_noise(rng, "flux-operator", "flux-system")}
        if reason:
            out["reason"] = reason
        if source and kind in ("Kustomization", "HelmRelease"):
            out["source_name"] = source
        return out

    def annotations(self, kind: str, ns: str, name: str, message: str | None) -> dict[str, str]:
        ann = {"summary": f"{kind} {ns}/{name} reconciliation has been failing for more than ten minutes."}
        if message and self.messages:
            ann[self.rng.choice(["message", "description"])] = message
        return ann


def _pod_alert(rng: random.Random, ns: str, pod: str, container: str, node: str | None, hash_: str | None,
               alertname: str) -> tuple[dict[str, str], dict[str, str]]:
    labels = {"alertname": alertname, "namespace": ns, "pod": pod, "container": container,
              **{k: v for k, v in _noise(rng, "kube-state-metrics").items() if k != "namespace"}}
    if alertname == "KubePodCrashLooping":
        labels["reason"] = "CrashLoopBackOff"
    if node:
        labels["node"] = node
    if hash_:
        labels[rng.choice(["pod_template_hash", "label_pod_template_hash"])] = hash_
    ann = {"summary": "Pod is crash looping.",
           "description": f"Pod {ns}/{pod} ({container}) is in waiting state (reason: \"CrashLoopBackOff\")."}
    return labels, ann


def _workload_pod(rng: random.Random, app: str, kind: str | None = None) -> tuple[str, str | None]:
    """A pod name for a workload: Deployment (generated name with a ReplicaSet hash), StatefulSet
    (ordinal) or DaemonSet (one generated suffix). Returns (pod, ReplicaSet hash or None)."""
    kind = kind or rng.choices(["deployment", "statefulset", "daemonset"], [0.75, 0.15, 0.1])[0]
    if kind == "deployment":
        h = _hash(rng, rng.choice([9, 10, 10, 8]))
        return f"{app}-{h}-{_hash(rng, 5)}", h
    if kind == "statefulset":
        return f"{app}-{rng.randint(0, 2)}", None
    return f"{app}-{_hash(rng, 5)}", None


def _restart(a_labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    return "pod-restart", {"name": a_labels["pod"], "namespace": a_labels["namespace"], "type": "pod"}


# ---------------------------------------------------------------------------------------- kinds

def _timing(rng: random.Random, n: int, spread: float, root_late: bool) -> tuple[float, list[float]]:
    """The root's arrival and its symptoms': symptoms follow the root over ``spread`` seconds; a late
    root arrives after the first symptoms (another group, a longer ``for:``)."""
    offs = sorted(round(rng.uniform(0.0, spread), 2) for _ in range(n))
    if not root_late:
        return 0.0, [round(0.3 + o, 2) for o in offs]
    first = 0.0
    return round(first + rng.uniform(0.5, min(spread, 4.0) + 0.5), 2), [round(first + o, 2) for o in offs]


def _gitrepo(rng: random.Random, sid: str) -> tuple[list[StormAlert], int, list[str]]:
    flux = _Flux(rng)
    ns = rng.choice(["flux-system"] * 4 + ["gitops", "flux-apps"])
    repo = rng.choice(_REPOS)
    url = f"https://github.com/{rng.choice(['acme', 'homelab', 'ops-team', 'jdoe'])}/{repo}"
    n = rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 25])
    late = rng.random() < 0.25
    root_at, offs = _timing(rng, n, rng.choice([2.0, 4.0, 6.0]), late)
    inc = f"{sid}:gitrepo"
    root_name = flux.alertname if rng.random() < 0.7 else "FluxGitRepositoryOutOfSync"
    rl = flux.labels("GitRepository", ns, repo, reason="GitOperationFailed")
    rl["alertname"] = root_name
    msg = rng.choice(_CLONE_ERRORS).format(url=url)
    root = StormAlert(rl, flux.annotations("GitRepository", ns, repo, msg), root_at, "root", inc,
                      expect=("flux-reconcile-gitrepository", {"name": repo, "namespace": ns}))
    out = [root]
    names = _pick(rng, ["infra-controllers", "infra-configs", "apps", "monitoring", "flux-system", "crds",
                        "databases", "ingress", "storage", "secrets", *_APPS], n)
    infra = names[0]
    for i, (name, at) in enumerate(zip(names, offs)):
        kns = ns if i == 0 or rng.random() < 0.8 else rng.choice(_NAMESPACES)
        dep = i > 0 and rng.random() < 0.25
        if dep:
            message = rng.choice([f"dependency '{ns}/{infra}' is not ready",
                                  "Dependencies do not meet ready condition, retrying in 30s"])
        else:
            message = rng.choice(["Source artifact not found, retrying in 30s",
                                  f"Source 'GitRepository/{ns}/{repo}' is not ready",
                                  f"GitRepository '{ns}/{repo}' is not ready: {msg}",
                                  "Source is not ready, artifact not found, retrying in 30s"])
        lab = flux.labels("Kustomization", kns, name, source=repo if kns == ns else None,
                          reason="DependencyNotReady" if dep else "ArtifactFailed")
        if kns != ns and flux.shape == "ksm":
            lab["source_name"] = repo  # cross-namespace sourceRef: the namespace is in the message only
        out.append(StormAlert(lab, flux.annotations("Kustomization", kns, name, message), at, "symptom", inc,
                              cause=out[1] if dep else root))
    return out, 0, [f"flux shape {flux.shape}, {n} Kustomizations, root {'late' if late else 'first'}"]


def _helmrepo(rng: random.Random, sid: str) -> tuple[list[StormAlert], int, list[str]]:
    flux = _Flux(rng)
    ns = rng.choice(["flux-system"] * 3 + ["helm-repos"])
    repo = rng.choice(_HELMREPOS)
    url = f"https://charts.{repo}.io" if rng.random() < 0.5 else f"https://{repo}.github.io/helm-charts"
    n = rng.choice([2, 3, 4, 5, 6, 8, 10, 14, 20])
    late = rng.random() < 0.25
    root_at, offs = _timing(rng, n, rng.choice([2.0, 4.0, 6.0]), late)
    inc = f"{sid}:helmrepo"
    rl = flux.labels("HelmRepository", ns, repo, reason="Failed")
    msg = rng.choice(_INDEX_ERRORS).format(url=url)
    root = StormAlert(rl, flux.annotations("HelmRepository", ns, repo, msg), root_at, "root", inc)
    out = [root]
    apps = _pick(rng, _APPS, n)
    with_charts = flux.shape == "gotk" and rng.random() < 0.3
    for app, at in zip(apps, offs):
        hns = rng.choice(_NAMESPACES + ["flux-system"])
        message = rng.choice([f"HelmChart '{ns}/{hns}-{app}' is not ready: {msg}",
                              f"HelmChart '{ns}/{hns}-{app}' is not ready",
                              f"HelmRepository '{ns}/{repo}' is not ready"])
        out.append(StormAlert(flux.labels("HelmRelease", hns, app, source=repo, reason="SourceNotReady"),
                              flux.annotations("HelmRelease", hns, app, message), at, "symptom", inc, cause=root))
        if with_charts and rng.random() < 0.5:
            out.append(StormAlert(flux.labels("HelmChart", ns, f"{hns}-{app}"),
                                  flux.annotations("HelmChart", ns, f"{hns}-{app}", None),
                                  round(at + 0.2, 2), "symptom", inc, cause=root))
    return out, 1, [f"flux shape {flux.shape}, {n} HelmReleases{' + HelmCharts' if with_charts else ''}, "
                    f"root {'late' if late else 'first'}"]


def _node_kind(rng: random.Random, sid: str) -> tuple[list[StormAlert], int, list[str]]:
    node = _node(rng)
    others = [_node(rng) for _ in range(3)]
    others = [o for o in others if o != node] or [node + "-b"]
    n = rng.choice([3, 4, 5, 6, 8, 10, 12, 15])
    node_labels = rng.choice([1.0, 1.0, 0.5, 0.0])  # share of pod alerts whose rule joins in the node
    late = rng.random() < 0.25
    root_at, offs = _timing(rng, n, rng.choice([2.0, 4.0, 6.0]), late)
    inc = f"{sid}:node"
    name = rng.choice(["KubeNodeNotReady", "KubeNodeNotReady", "KubeNodeUnreachable"])
    rl = {"alertname": name, "node": node, **_noise(rng, "kube-state-metrics", "monitoring")}
    if name == "KubeNodeNotReady":
        rl.update({"condition": "Ready", "status": "true"})
        rl["pod"] = f"kube-prometheus-stack-kube-state-metrics-{_hash(rng, 10)}-{_hash(rng, 5)}"
        summ = f"{node} has been unready for more than 15 minutes."
    else:
        rl.update({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})
        summ = f"{node} is unreachable and some workloads may be rescheduled."
    root = StormAlert(rl, {"summary": "Node is not ready.", "description": summ}, root_at, "root", inc)
    out = [root]
    if rng.random() < 0.2:  # both node rules fire for the same node
        rl2 = {"alertname": "KubeNodeUnreachable" if name == "KubeNodeNotReady" else "KubeNodeNotReady",
               "node": node, **_noise(rng, "kube-state-metrics", "monitoring")}
        out.append(StormAlert(rl2, {"summary": f"{node} is not ready."}, round(root_at + rng.uniform(0.2, 2.0), 2),
                              "symptom", inc, cause=root))
    apps = _pick(rng, _APPS, n)
    alertname = rng.choice(["KubePodCrashLooping", "KubePodCrashLooping", "PodCrashLoopBackOff"])
    for app, at in zip(apps, offs):
        pns = rng.choice(_NAMESPACES)
        pod, h = _workload_pod(rng, app)
        lab, ann = _pod_alert(rng, pns, pod, app, node if rng.random() < node_labels else None,
                              h if h and rng.random() < 0.3 else None, alertname)
        out.append(StormAlert(lab, ann, at, "symptom", inc, on_down_node=True, cause=root))
    if rng.random() < 0.35:  # unrelated crash loops on healthy nodes meanwhile
        for app in _pick(rng, [a for a in _APPS if a not in apps], rng.randint(1, 3)):
            pns = rng.choice(_NAMESPACES)
            pod, h = _workload_pod(rng, app)
            lab, ann = _pod_alert(rng, pns, pod, app, rng.choice(others), None, alertname)
            out.append(StormAlert(lab, ann, round(rng.uniform(0, 6), 2), "unrelated", expect=_restart(lab)))
    return out, 1, [f"{n} pods on {node}, node labels {node_labels:.0%}, root {'late' if late else 'first'}"]


def _rollout(rng: random.Random, sid: str) -> tuple[list[StormAlert], int, list[str]]:
    app = rng.choice(_APPS)
    ns = rng.choice(_NAMESPACES)
    h = _hash(rng, rng.choice([9, 10]))
    n = rng.choice([2, 2, 3, 3, 4, 5, 6, 8])
    inc = f"{sid}:rollout"
    alertname = rng.choice(["KubePodCrashLooping", "KubePodCrashLooping", "PodCrashLoopBackOff"])
    hash_label = rng.random() < 0.4
    nodes = [_node(rng) for _ in range(3)]
    with_nodes = rng.random() < 0.5
    offs = sorted(round(rng.uniform(0.0, rng.choice([1.0, 3.0, 5.0])), 2) for _ in range(n))
    out = []
    for i, at in enumerate(offs):
        pod = f"{app}-{h}-{_hash(rng, 5)}"
        lab, ann = _pod_alert(rng, ns, pod, app, rng.choice(nodes) if with_nodes else None,
                              h if hash_label else None, alertname)
        out.append(StormAlert(lab, ann, at, "lead" if i == 0 else "symptom", inc))
    with_deploy = rng.random() < 0.4
    if with_deploy:
        dn = rng.choice(["KubeDeploymentRolloutStuck", "KubeDeploymentReplicasMismatch"])
        dl = {"alertname": dn, "namespace": ns, "deployment": app, **_noise(rng, "kube-state-metrics")}
        if dn == "KubeDeploymentRolloutStuck":
            dl.update({"condition": "Progressing", "reason": "ProgressDeadlineExceeded"})
        droot = StormAlert(dl, {"summary": f"Deployment {ns}/{app} rollout is not progressing."},
                           round(max(0.0, max(offs) + rng.uniform(-1.0, 2.0)), 2), "root", inc)
        for a in out:
            a.truth, a.cause = "symptom", droot
        out.append(droot)
    if rng.random() < 0.3:  # an old, unrelated crash loop in the same namespace
        other = rng.choice([a for a in _APPS if a != app])
        pod, oh = _workload_pod(rng, other, "deployment")
        lab, ann = _pod_alert(rng, ns, pod, other, rng.choice(nodes) if with_nodes else None, None, alertname)
        out.append(StormAlert(lab, ann, round(rng.uniform(0, 3), 2), "unrelated", expect=_restart(lab)))
    return out, 1, [f"{n} pods of {ns}/{app}-{h}, hash label {hash_label}, deployment alert {with_deploy}"]


def _control(rng: random.Random, sid: str) -> tuple[list[StormAlert], int, list[str]]:
    k = rng.choice([2, 3, 4, 5, 6])
    nodes = [_node(rng) for _ in range(4)]
    with_nodes = rng.random() < 0.5
    alertname = rng.choice(["KubePodCrashLooping", "PodCrashLoopBackOff"])
    out = []
    for app in _pick(rng, _APPS, k):
        ns = rng.choice(_NAMESPACES)
        pod, h = _workload_pod(rng, app)
        lab, ann = _pod_alert(rng, ns, pod, app, rng.choice(nodes) if with_nodes else None,
                              h if h and rng.random() < 0.3 else None, alertname)
        out.append(StormAlert(lab, ann, round(rng.uniform(0, 4), 2), "unrelated", expect=_restart(lab)))
    flux = _Flux(rng)
    ks_ns = rng.choice(["flux-system", "flux-system", rng.choice(_NAMESPACES)])
    ks = rng.choice(["apps", "infra-configs", "monitoring", rng.choice(_APPS)])
    app = rng.choice(_APPS)
    message = rng.choice(_OWN_KS_ERRORS).format(app=app, ns=rng.choice(_NAMESPACES))
    lab = flux.labels("Kustomization", ks_ns, ks, source=rng.choice(_REPOS), reason="ReconciliationFailed")
    out.append(StormAlert(lab, flux.annotations("Kustomization", ks_ns, ks, message), round(rng.uniform(0, 4), 2),
                          "unrelated", expect=("flux-reconcile-kustomization", {"name": ks, "namespace": ks_ns})))
    return out, 0, [f"{k} crash loops + Kustomization {ks_ns}/{ks} (flux shape {flux.shape})"]


def _volumes(rng: random.Random, sid: str) -> tuple[list[StormAlert], int, list[str]]:
    n = rng.choice([3, 4, 5, 6, 8, 10, 12])
    alertname = rng.choice(["KubePersistentVolumeFillingUp", "PersistentVolumeFillingUpCritical"])
    out = []
    seen = set()
    for app in _pick(rng, _APPS, n):
        ns = rng.choice(_NAMESPACES)
        claim = rng.choice([f"data-{app}-0", f"{app}-data", f"{app}", f"storage-{app}-{rng.randint(0, 2)}"])
        if (ns, claim) in seen:
            continue
        seen.add((ns, claim))
        lab = {"alertname": alertname, "namespace": ns, "persistentvolumeclaim": claim,
               **{k: v for k, v in _noise(rng, "kubelet").items() if k != "namespace"}}
        ann = {"summary": "PersistentVolume is filling up.",
               "description": f"The PersistentVolume claimed by {claim} in Namespace {ns} is only "
                              f"{rng.randint(1, 14)}% free."}
        out.append(StormAlert(lab, ann, round(rng.uniform(0, 5), 2), "unrelated",
                              expect=("check-pvc-status", {"name": claim, "namespace": ns})))
    return out, 0, [f"{len(out)} volumes"]


_BUILDERS = {"gitrepo": _gitrepo, "node": _node_kind, "helmrepo": _helmrepo, "rollout": _rollout,
             "control": _control, "volumes": _volumes}


def generate(kind: str, seed: int) -> Scenario:
    if kind not in _BUILDERS:
        raise ValueError(f"unknown storm kind {kind!r}; choose from {', '.join(KINDS)}")
    rng = random.Random(f"{kind}:{seed}")
    sid = f"{kind}-{seed}"
    alerts, escalations, notes = _BUILDERS[kind](rng, sid)
    t0 = _T0 + timedelta(hours=seed % 5000, minutes=KINDS.index(kind) * 7)
    for a in alerts:
        a.starts = (t0 + timedelta(seconds=a.at)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    alerts.sort(key=lambda a: a.at)
    return Scenario(name=sid, kind=kind, seed=seed, alerts=alerts, escalations=escalations, notes=notes)


def storm_set(seed: int = 0, per_kind: dict[str, int] | None = None) -> list[Scenario]:
    """A benchmark set: by default 16 storms (3 of each incident kind, 2 of each control)."""
    per_kind = per_kind or {"gitrepo": 3, "node": 3, "helmrepo": 3, "rollout": 3, "control": 2, "volumes": 2}
    return [generate(k, seed * 1000 + i) for k, n in per_kind.items() for i in range(n)]


# ---------------------------------------------------------------------------------------- delivery

@dataclass
class Delivery:
    at: float
    payload: dict[str, Any]


def deliveries(scn: Scenario, group_wait: float = 1.0, group_interval: float = 2.0,
               receiver: str = "agent-sre", time_scale: float = 1.0) -> list[Delivery]:
    """The webhooks Alertmanager sends for ``scn`` (grouped by alertname and namespace), at the
    storm's instants times ``time_scale`` (Alertmanager's intervals too)."""
    group_wait, group_interval = group_wait * time_scale, group_interval * time_scale
    events = sorted([(a.at * time_scale, 0, i) for i, a in enumerate(scn.alerts)]
                    + [(a.resolve_at * time_scale, 1, i) for i, a in enumerate(scn.alerts) if a.resolve_at is not None])
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for t, what, i in events:
        a = scn.alerts[i]
        key = (a.labels["alertname"], a.labels.get("namespace", ""))
        g = groups.setdefault(key, {"first": t, "changes": [], "members": []})
        g["changes"].append((t, what, i))
    out: list[Delivery] = []
    for key, g in groups.items():
        changes = sorted(g["changes"])
        tick = g["first"] + group_wait
        active: dict[int, str] = {}
        ci = 0
        while ci < len(changes):
            changed = False
            resolved_now = []
            while ci < len(changes) and changes[ci][0] <= tick:
                _, what, i = changes[ci]
                if what == 0:
                    active[i] = "firing"
                else:
                    active.pop(i, None)
                    resolved_now.append(i)
                changed = True
                ci += 1
            if changed and (active or resolved_now):
                alerts = [scn.alerts[i].alert_doc() for i in sorted(active, key=lambda j: scn.alerts[j].at)]
                alerts += [scn.alerts[i].alert_doc("resolved", scn.alerts[i].starts) for i in resolved_now]
                out.append(Delivery(round(tick, 3), _webhook(key, alerts, receiver)))
            tick += group_interval
    out.sort(key=lambda d: d.at)
    return out


def _webhook(key: tuple[str, str], alerts: list[dict[str, Any]], receiver: str) -> dict[str, Any]:
    common = dict(alerts[0]["labels"])
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    group_labels = {"alertname": key[0], **({"namespace": key[1]} if key[1] else {})}
    return {"version": "4", "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}",
            "truncatedAlerts": 0, "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "receiver": receiver, "groupLabels": group_labels, "commonLabels": common, "commonAnnotations": {},
            "externalURL": "http://alertmanager.monitoring:9093", "alerts": alerts}
