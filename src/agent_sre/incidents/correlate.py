"""The deterministic correlator: which firing alerts are symptoms of which.

``correlate(facts)`` looks at every firing alert at once and gives each a ``Role``:

* ``alone``: related to nothing else firing; decided on its own, as without this layer;
* ``root``: other alerts are its symptoms; decided on its own (acts when a function fits, else one
  escalation for the whole incident);
* ``lead``: speaks for an incident whose cause has no alert of its own (the new ReplicaSet of a bad
  rollout): one escalation, no action;
* ``symptom``: held, recorded as a symptom of its root, while the root fires.

Evidence, strongest first:

1. the same object twice (two alert rules about one GitRepository, one node): the later alert is a
   symptom of the earlier;
2. a pod whose ``node`` is down (a node alert saying NotReady/unreachable); with no ``node`` label,
   the cluster's answer (``ClusterFacts.pod``), else the timing: it started after a node went down;
3. a Flux object whose source or dependency is failing: named by a label (``source_name``), by its
   message (``Source 'GitRepository/flux-system/apps' not found``, ``dependency 'flux-system/infra'
   is not ready``) or by the cluster (``spec.sourceRef``, ``spec.dependsOn``); with no name at all,
   the one failing source it could be built from, unless its message names a failure of its own;
4. pods of one ReplicaSet (``pod-template-hash``, or the pod's generated name) failing together, or
   with an alert on their Deployment: a rollout, not a set of independent crashes.

An alert is never held for sharing only a namespace or a moment with others: unrelated alerts stay
``alone``. The function is pure: same facts (and cluster answers), same roles.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Protocol

from .evidence import SOURCES, UPSTREAM_KINDS, Facts, Ref, words

# A pod alert with no node label is taken for a symptom of a down node only if it started no earlier
# than this before the node alert (seconds): crash loops that were there before are not the node's.
NODE_SLACK_S = 600.0


@dataclass(frozen=True)
class PodInfo:
    node: str | None
    owner: Ref | None  # the ReplicaSet (or other controller) that owns the pod


class ClusterFacts(Protocol):
    """What the Kubernetes API can confirm. Each call answers None when it cannot tell (object
    gone, API unreachable, no permission): the correlator then falls back on the alerts alone."""

    def pod(self, namespace: str, name: str) -> PodInfo | None: ...

    def flux_refs(self, kind: str, namespace: str, name: str) -> tuple[Ref, ...] | None: ...


@dataclass(frozen=True)
class Role:
    role: str  # alone | root | lead | symptom
    root: str | None = None  # symptom: the fingerprint of its root
    incident: str | None = None  # root, lead, symptom: the incident's id
    reason: str = ""
    confirmed: bool = False  # the link was confirmed by the cluster's own references

    @property
    def held(self) -> bool:
        return self.role == "symptom"


def _compatible(ref_kind: str, target: Facts, dependent_kind: str | None) -> bool:
    kind = target.flux_kind
    if kind is not None and (ref_kind not in ("flux", "source", kind) or (ref_kind == "source" and kind not in SOURCES)):
        return False
    allowed = UPSTREAM_KINDS.get(dependent_kind or "", ())
    return kind is None or not allowed or kind in allowed


def _maybe_source(f: Facts) -> bool:
    return f.subject == "flux" and (f.is_source or (f.flux_kind is None and "source" in words(f.alertname)))


def _order(f: Facts) -> tuple[float, str]:
    return (f.started if f.started is not None else float("inf"), f.fp)


def correlate(facts: Iterable[Facts], cluster: ClusterFacts | None = None,
              node_slack_s: float = NODE_SLACK_S) -> dict[str, Role]:
    fs = sorted(facts, key=_order)
    by_fp = {f.fp: f for f in fs}
    parent: dict[str, tuple[str, str, bool]] = {}  # fp → (parent fp, why, confirmed)

    # 1. the same object named by two alerts: the later one is a symptom of the first
    first_of: dict[tuple[str, str, str], Facts] = {}
    for f in fs:
        if f.ident is None or f.subject in ("other", "volume"):
            continue
        key = (f.ident.kind if f.subject != "flux" else "flux", f.ident.namespace, f.ident.name)
        if key in first_of:
            parent[f.fp] = (first_of[key].fp, f"the same {f.ident} as {first_of[key].alertname}", False)
        else:
            first_of[key] = f

    outages: dict[str, Facts] = {}
    for f in fs:
        if f.outage and f.ident is not None and f.fp not in parent:
            outages.setdefault(f.ident.name, f)
    flux_by_obj: dict[tuple[str, str], list[Facts]] = {}
    for f in fs:
        if f.subject == "flux" and f.ident is not None and f.fp not in parent:
            flux_by_obj.setdefault((f.ident.namespace, f.ident.name), []).append(f)
    workloads = {(f.ident.namespace, f.ident.name): f for f in fs
                 if f.subject == "workload" and f.ident is not None and f.fp not in parent}
    pod_owner: dict[str, Ref | None] = {}
    unnamed: list[Facts] = []

    for f in fs:
        if f.fp in parent:
            continue
        if f.subject == "pod" and f.ident is not None:
            node, confirmed = f.node, False
            owner = f.replicaset
            if cluster is not None and (node is None or owner is None):
                info = cluster.pod(f.ident.namespace, f.ident.name)
                if info is not None:
                    if node is None and info.node:
                        node, confirmed = info.node, True
                    owner = owner or info.owner
            pod_owner[f.fp] = owner
            if node is not None and node in outages:
                parent[f.fp] = (outages[node].fp, f"pod {f.ident.name} runs on node {node}, which is down", confirmed)
            elif node is None and outages:
                near = [o for o in outages.values() if f.started is None or o.started is None
                        or f.started >= o.started - node_slack_s]
                if near:
                    o = near[0]
                    parent[f.fp] = (o.fp, f"pod {f.ident.name} has no node label and started failing as node "
                                          f"{o.ident.name if o.ident else '?'} went down", False)
        elif f.subject == "flux" and f.dependent and f.ident is not None:
            link = _flux_parent(f, flux_by_obj, cluster)
            if isinstance(link, tuple):
                parent[f.fp] = link
            elif link:
                unnamed.append(f)
    # 3b. Flux objects that name no upstream: the one failing source they could be built from.
    # Candidates that are themselves symptoms (HelmCharts of a failing HelmRepository) count as
    # their root, so one failing repository with its charts is still one candidate.
    sources = [c for c in fs if _maybe_source(c) and c.ident is not None]
    for f in sorted(unnamed, key=lambda f: f.flux_kind not in SOURCES):  # sources (HelmCharts) first
        link = _unnamed_source(f, sources, parent)
        if link is not None:
            parent[f.fp] = link

    # 4. rollouts: pods of one ReplicaSet failing together, or with an alert on their Deployment
    groups: dict[Ref, list[Facts]] = {}
    for f in fs:
        if f.subject == "pod" and f.fp not in parent and pod_owner.get(f.fp) is not None:
            groups.setdefault(pod_owner[f.fp], []).append(f)  # type: ignore[index]
    leads: dict[str, str] = {}  # lead fp → incident id
    for rs, members in groups.items():
        deploy = members[0].deployment
        w = workloads.get((rs.namespace, deploy)) if deploy else None
        if w is None and len(members) < 2:
            continue
        if w is not None:
            head, why = w, f"pod of ReplicaSet {rs.name}, whose Deployment {deploy} is alerting"
        else:
            head, why = members[0], f"{len(members)} pods of ReplicaSet {rs.name} fail together (a rollout)"
            leads[head.fp] = f"rollout:{rs.namespace}/{rs.name}"
        for m in members:
            if m.fp != head.fp:
                parent[m.fp] = (head.fp, why, False)

    # resolve chains to the ultimate root (a dependency's source, a node's first alert)
    roles: dict[str, Role] = {}
    for f in fs:
        if f.fp not in parent:
            continue
        seen, cur, reasons, confirmed = {f.fp}, f.fp, [], True
        while cur in parent:
            nxt, why, conf = parent[cur]
            if nxt in seen:
                break
            reasons.append(why)
            confirmed = confirmed and conf
            seen.add(nxt)
            cur = nxt
        if cur == f.fp:
            continue
        root = by_fp[cur]
        incident = leads.get(cur, cur)
        roles[f.fp] = Role("symptom", root=cur, incident=incident,
                           reason=f"symptom of {root.alertname} ({root.ident or root.fp}): " + "; ".join(reasons),
                           confirmed=confirmed)
    symptoms = Counter(r.root for r in roles.values())  # one pass: thousands of firing alerts in a storm
    for f in fs:
        if f.fp in roles:
            continue
        n = symptoms.get(f.fp, 0)
        if f.fp in leads:
            roles[f.fp] = Role("lead", incident=leads[f.fp],
                               reason=f"speaks for {n + 1} alerts of one incident ({leads[f.fp]}) whose cause has "
                                      f"no alert of its own; no function can fix it")
        elif n:
            roles[f.fp] = Role("root", incident=f.fp, reason=f"root of an incident with {n} symptom(s)")
        else:
            roles[f.fp] = Role("alone", reason="no related alert is firing")
    return roles


def _flux_parent(f: Facts, flux_by_obj: dict[tuple[str, str], list[Facts]],
                 cluster: ClusterFacts | None) -> tuple[str, str, bool] | bool:
    """The failing object ``f`` names as its source or dependency; False when it names one that is
    not failing or fails on its own account; True when it names nothing (try the unnamed rule)."""
    assert f.ident is not None
    refs, confirmed = f.upstream, False
    if cluster is not None:
        known = cluster.flux_refs(f.flux_kind or "", f.ident.namespace, f.ident.name) if f.flux_kind else None
        if known is not None:
            refs, confirmed = tuple(known), True
    for r in refs:
        if r.namespace:
            found = flux_by_obj.get((r.namespace, r.name), [])
        else:  # named without a namespace: the dependent's own first, then any namespace
            found = flux_by_obj.get((f.ident.namespace, r.name), []) or \
                [c for (ns, name), cs in sorted(flux_by_obj.items()) if name == r.name for c in cs]
        # a source before an applier of the same name (flux-system/flux-system is both)
        for cand in sorted(found, key=lambda c: c.flux_kind not in SOURCES):
            if cand.fp != f.fp and _compatible(r.kind, cand, f.flux_kind):
                how = "the cluster's sourceRef/dependsOn" if confirmed else "its labels or message"
                return cand.fp, f"{f.ident} names {r} ({how}), which is failing", confirmed
    # A HelmChart is the helm-controller's own intermediate object, rarely alerted on: naming one
    # that is not failing says nothing against its HelmRepository being the cause.
    return not [r for r in refs if r.kind != "HelmChart"] and not f.own_cause


def _ultimate(fp: str, parent: dict[str, tuple[str, str, bool]]) -> str:
    seen = {fp}
    while fp in parent and parent[fp][0] not in seen:
        fp = parent[fp][0]
        seen.add(fp)
    return fp


def _unnamed_source(f: Facts, sources: list[Facts],
                    parent: dict[str, tuple[str, str, bool]]) -> tuple[str, str, bool] | None:
    assert f.ident is not None
    cands = [c for c in sources if c.fp != f.fp and _compatible("flux", c, f.flux_kind)
             and not (f.flux_kind in SOURCES and c.flux_kind == f.flux_kind) and _ultimate(c.fp, parent) != f.fp]
    by_fp = {c.fp: c for c in sources}
    for pool in ([c for c in cands if c.ident and c.ident.namespace == f.ident.namespace], cands):
        roots = {_ultimate(c.fp, parent) for c in pool}
        if len(roots) == 1:
            c = by_fp[roots.pop()]
            why = "its message says the source is not ready" if f.upstream_hint else "it names no source"
            return c.fp, f"{f.ident}: {why}, and {c.ident} is the one failing source it can be built from", False
    return None
