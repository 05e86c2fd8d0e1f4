"""Varied training alerts generated from the runbook and the catalog.

``generate`` composes alert-name variants from synonym sets, label-key variants (gotk
``exported_namespace``, kube-state-metrics ``customresource_*``), annotation templates, noise labels,
missing labels, resolved alerts and a broad family of alerts that need no action, including hard
negatives sharing label keys with actionable ones. The expected decision of every actionable variant
is computed by the runbook itself (``records.runbook_expect``: the case that matches, the labels each
parameter is read from), so the data follows the runbook and the catalog.

Deterministic: the same runbook, ``n`` and ``seed`` give the same records, byte for byte once written.
Every draw comes from one ``random.Random(seed)`` in a fixed order, so reordering draws (or the word
lists in ``words``) changes the data.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import runbook as rb
from ..alerts import label_fingerprint
from . import namegen as ng
from .records import no_action_expect, runbook_expect
from .words import (ANNOT, COMPOSED_CONDS, CRASH_COND, CRASH_PREFIX, CRASH_SUBJECT, DOWN_COND, FAIL_VERBS,
                    FLUX_KIND_MIDDLE, FLUX_KIND_WORDS, FLUX_PREFIX, GENERIC_FLUX_SUBJECT, HEARTBEAT_NAMES,
                    NOISE, NONE_FAMILIES, NONE_WEIGHTS, SEVERITIES, UNSUPPORTED_KINDS, VOLUME_COND,
                    VOLUME_PREFIX, VOLUME_SUBJECT, style_name)

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
                if runbook_expect(book, {"name": "x", "namespace": "y"}, entry=e)["lambda_function"] == fn:
                    f.kind_entry[kind] = e
                    break
            else:
                if f.dispatch_entry and runbook_expect(book, {"name": "x", "namespace": "y"},
                                                       entry=f.dispatch_entry)["lambda_function"] == fn:
                    f.kind_entry[kind] = f.dispatch_entry
        return f


# --------------------------------------------------------------------------- the generator


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
            expect = runbook_expect(f.book, labels, entry=entry)
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
        expect = runbook_expect(self.f.book, labels, entry=self.f.crash)
        return self.record(labels, ann, expect, family="crash", template=tmpl,
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
        expect = runbook_expect(self.f.book, labels, entry=self.f.volume)
        return self.record(labels, ann, expect, family="volume", template=tmpl,
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
        expect = runbook_expect(self.f.book, labels, entry=entry)
        return self.record(labels, ann, expect, family="down", template=tmpl, style="prom")

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


