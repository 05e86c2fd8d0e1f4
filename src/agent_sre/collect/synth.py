"""The alerts an alerting rule fires, synthesised from the rule alone.

``synthesize(rule)`` returns one ``SynthAlert`` per distinct alert the rule can deliver to
agent-sre, built as Prometheus builds a real one:

* labels: those the expression leaves (``promql.infer_labels(expr, scrape=True)``: the series'
  own labels and the scrape target's, minus what aggregations drop), then the rule's labels
  (expanded, overriding), then ``alertname``, then any external labels not already set;
* values: a matcher's value where the expression fixes one (``kind="HelmRelease"``), else a
  realistic placeholder for the label key and exporter (``exporters``: the object's namespace for
  kube-state-metrics, the exporter pod's for node-exporter, ...), always one that the
  expression's matchers accept (``reason!="ContainerCreating"`` gets ``CrashLoopBackOff``);
* one alert per value of a dispatch label (``kind``, ``customresource_kind``) the expression
  allows: ``kind=~"GitRepository|HelmRepository"`` gives two alerts; a Flux metric with no kind
  matcher gives one per ``exporters.FLUX_KINDS``;
* annotations expanded from their templates with the expression's labels and an example
  ``$value`` read from the rule's threshold (``templates.render``). An annotation that cannot be
  expanded without a live Prometheus is left out, and ``notes`` says so.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Iterable

from ..alerts import Alert
from .exporters import FIXED_VALUES, FLUX_GROUPS, FLUX_KINDS, Family, family_of, series_labels
from .promql import KNOWN_METRICS, Inferred, PromQLError, infer_labels
from .rules import AlertRule
from .templates import TemplateError, render

DISPATCH = ("kind", "customresource_kind")
MAX_VARIANTS = 6

# Placeholder values per label key for labels that describe the monitored object.
_OBJECT_VALUES: dict[str, str] = {
    "namespace": "media", "exported_namespace": "media", "deployment": "sonarr", "statefulset": "postgres",
    "daemonset": "promtail", "replicaset": "sonarr-7d9c5f6b8", "job_name": "restic-backup-28391040",
    "cronjob": "restic-backup", "horizontalpodautoscaler": "sonarr", "poddisruptionbudget": "postgres",
    "persistentvolumeclaim": "data-postgres-0", "persistentvolume": "pvc-3f2a9c1e-8b7d-4e21-9c3f-5a6b7c8d9e0f",
    "volumename": "pvc-3f2a9c1e-8b7d-4e21-9c3f-5a6b7c8d9e0f", "storageclass": "longhorn",
    "node": "worker-2", "uid": "0d6c1f9a-4b2e-4f7a-9c8e-2a1b3c4d5e6f", "container": "sonarr",
    "image": "ghcr.io/home-operations/sonarr:4.0.14", "id": "/kubepods/burstable/pod0d6c1f9a",
    "cluster": "homelab", "kind": "Kustomization", "customresource_kind": "Kustomization",
    "customresource_group": "kustomize.toolkit.fluxcd.io", "customresource_version": "v1",
    "name": "sonarr", "instance": "10.42.2.23:9100", "job": "app", "service": "sonarr",
    "endpoint": "http-metrics", "code": "500", "verb": "GET", "method": "GET", "resource": "pods",
    "host": "example.org", "target": "https://example.org", "url": "https://example.org",
    "device": "/dev/sda1", "severity": "warning", "owner_name": "sonarr-7d9c5f6b8",
    "created_by_name": "sonarr-7d9c5f6b8", "host_ip": "192.168.1.22", "pod_ip": "10.42.2.31",
    "phase": "Failed", "reason": "Error", "condition": "Ready", "status": "false", "type": "Ready",
    "ready": "False", "suspended": "false", "source_name": "flux-system", "chart_name": "app-template",
    "revision": "main@sha1:3b1f9c2d", "controller": "prometheus", "integration": "webhook",
}

# Object names per Flux kind, as homelab repositories name them.
_FLUX_NAMES = {"Kustomization": "apps", "HelmRelease": "podinfo", "GitRepository": "flux-system",
               "HelmRepository": "bitnami", "OCIRepository": "app-template", "FluxInstance": "flux"}

# Values tried, in order, when a matcher refuses the first choice.
_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "reason": ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
               "OOMKilled", "Error", "ContainerCreating", "Evicted", "ReconciliationFailed", "BuildFailed",
               "HealthCheckFailed", "Progressing"),
    "phase": ("Failed", "Pending", "Unknown", "Lost", "Running", "Succeeded", "Bound"),
    "state": ("failed", "activating", "inactive", "active", "deactivating"),
    "ready": ("False", "Unknown", "True", "false", "true"),
    "suspended": ("false", "False", "true", "True"),
    "status": ("false", "False", "Unknown", "unknown", "true", "True"),
    "condition": ("Ready", "false", "False", "true", "True", "DiskPressure", "MemoryPressure", "Unknown"),
    "type": ("Ready", "service", "Stalled", "Reconciling"),
    "fstype": ("ext4", "xfs", "btrfs", "zfs", "nfs"),
    "mountpoint": ("/", "/var/lib/longhorn", "/boot"),
    "mode": ("idle", "iowait", "system", "user"),
    "code": ("500", "503", "429", "404", "200"),
}


@dataclass(frozen=True)
class SynthAlert:
    """One synthesised alert of ``rule``; ``variant`` holds the dispatch labels that tell it from its
    siblings (empty when the rule fires one shape), ``notes`` what could not be done faithfully."""

    rule: AlertRule
    alert: Alert
    variant: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- values


def _accepts(value: str, matchers: list[tuple[str, str]]) -> bool:
    for op, want in matchers:
        try:
            if op == "=" and value != want:
                return False
            if op == "!=" and value == want:
                return False
            if op == "=~" and not re.fullmatch(want, value):
                return False
            if op == "!~" and re.fullmatch(want, value):
                return False
        except re.error:
            continue  # a regex Python cannot read: do not let it veto
    return True


def _regex_example(pattern: str) -> str | None:
    """A string a simple regex (literals, alternation, ``.*``/``.+``, groups) matches."""
    first = pattern
    while True:  # the first alternative at the top level
        depth, cut = 0, None
        for i, ch in enumerate(first):
            if ch == "\\":
                continue
            depth += ch == "("
            depth -= ch == ")"
            if ch == "|" and depth == 0:
                cut = i
                break
        if cut is None:
            break
        first = first[:cut]
    s = re.sub(r"\((?:\?:)?([^()|]*)(?:\|[^()]*)?\)", r"\1", first)
    s = s.replace(".+", "x").replace(".*", "").replace("^", "").replace("$", "")
    s = re.sub(r"\\(.)", r"\1", s)
    try:
        return s if re.fullmatch(pattern, s) else None
    except re.error:
        return None


def _choose(label: str, first: str, matchers: list[tuple[str, str]]) -> tuple[str, str | None]:
    """A value for ``label`` that the expression's matchers accept; (value, note if none does)."""
    if _accepts(first, matchers):
        return first, None
    candidates = [w for op, w in matchers if op == "=" and w]
    for op, w in matchers:
        if op == "=~":
            candidates += [a for a in w.split("|") if re.fullmatch(r"[A-Za-z0-9_.:/\-]+", a)]
            ex = _regex_example(w)
            if ex:
                candidates.append(ex)
    candidates += list(_ALTERNATIVES.get(label, ()))
    candidates += [first + "-2", "x"]
    for c in candidates:
        if c and _accepts(c, matchers):
            return c, None
    return first, f"no placeholder for {label} satisfies {matchers}"


def _exporter_name(metric: str | None) -> str:
    head = (metric or "app").split("_", 1)[0].lower() or "app"
    return f"{head}-exporter"


def _target_value(label: str, metrics: list[str], labels: dict[str, str]) -> str | None:
    """The scrape target's value for ``label``, from the first metric whose exporter sets it and
    does not let the series' own label win (honor_labels). A generic exporter's pod, service and
    container are named after its job (``up``) or its metrics' prefix."""
    for m in metrics or [None]:
        fam: Family = family_of(m)
        if label not in fam.target:
            continue
        own = set(series_labels(m)) | set(KNOWN_METRICS.get(m or "", ()))
        if fam.honor_labels and label in own and label not in ("job", "instance"):
            continue
        value = fam.target[label]
        if fam.key == "exporter":
            base = labels.get("job") if m == "up" and label != "job" else (_exporter_name(m) if m and m != "up" else None)
            value = value.replace("app-exporter", base or "app-exporter")
        return value
    return None


def _family_value(label: str, metrics: list[str]) -> str | None:
    for m in metrics:
        fam = family_of(m)
        if label == "name" and fam.name_value:
            return fam.name_value
        if label in fam.values:
            return fam.values[label]
    return None


def _placeholder(label: str, labels: dict[str, str], metrics: list[str]) -> str:
    if label == "pod":
        if labels.get("deployment"):
            return f"{labels['deployment']}-7d9c5f6b8-x2kqp"
        if labels.get("statefulset"):
            return f"{labels['statefulset']}-0"
        if labels.get("daemonset"):
            return f"{labels['daemonset']}-x7k2p"
        if labels.get("job_name"):
            return f"{labels['job_name']}-x7k2p"
        return "sonarr-7d9c5f6b8-x2kqp"
    if label == "container":
        return next((labels[k] for k in ("deployment", "statefulset", "daemonset") if labels.get(k)), "sonarr")
    if label == "name" and labels.get("kind", labels.get("customresource_kind")) in _FLUX_NAMES:
        return _FLUX_NAMES[labels.get("kind", labels.get("customresource_kind", ""))]
    if label == "reason" and labels.get("ready") in ("Unknown", "True"):
        return "Progressing" if labels["ready"] == "Unknown" else "ReconciliationSucceeded"
    if label == "customresource_group":
        return FLUX_GROUPS.get(labels.get("customresource_kind", ""), "source.toolkit.fluxcd.io")
    return (_family_value(label, metrics) or _OBJECT_VALUES.get(label)
            or (f"{label[len('exported_'):]}-1" if label.startswith("exported_") else f"{label}-1"))


_CMP = re.compile(r"(>=|<=|==|!=|>|<)\s*(?:bool\s+)?\(?\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])")


def _top_level(expr: str) -> str:
    """``expr`` with everything inside brackets, braces, parentheses and strings blanked out."""
    out, depth, quote = [], 0, ""
    for ch in expr:
        if quote:
            out.append(" ")
            quote = "" if ch == quote else quote
            continue
        if ch in "\"'`":
            quote = ch
            out.append(" ")
        elif ch in "([{":
            depth += 1
            out.append(" ")
        elif ch in ")]}":
            depth -= 1
            out.append(" ")
        else:
            out.append(ch if depth == 0 else " ")
    return "".join(out)


def _example_value(expr: str) -> float:
    """``$value`` of a firing alert: past the threshold of the expression's first top-level
    comparison with a number (the value of ``a > 0.9 and b`` is ``a``'s)."""
    top = _top_level(expr)
    for m in _CMP.finditer(top):
        n = float(expr[m.start(2):m.end(2)])
        op = m.group(1)
        if op in (">", ">="):
            return (n + 1) / 2 if 0 < n < 1 else (n * 1.5 if n > 0 else n + 1)
        if op in ("<", "<="):
            return n / 2 if n > 0 else n - 1
        return n if op == "==" else n + 1
    return 1.0


def _label_replace(labels: dict[str, str], dst: str, replacement: str, src: str, regex: str) -> None:
    """PromQL's label_replace on one label set: ``$1``/``${1}``/``$name`` refer to the groups."""
    try:
        m = re.fullmatch(regex, labels.get(src, ""))
    except re.error:
        return
    if not m:
        return
    value = re.sub(r"\$(?:\{(\w+)\}|(\w+))",
                   lambda g: (m.group(int(k)) if (k := g.group(1) or g.group(2)).isdigit() else m.group(k)) or "",
                   replacement)
    if value:
        labels[dst] = value
    else:
        labels.pop(dst, None)


# --------------------------------------------------------------------------- alerts


def _variants(inf: Inferred | None, names: set[str], by_label: dict[str, list[tuple[str, str]]]) -> list[dict[str, str]]:
    if inf is None:
        return [{}]
    fixed = inf.values()
    flux = any(m.startswith(("gotk_", "flux_")) for m in inf.metrics)
    axes: list[list[tuple[str, str]]] = []
    for label in DISPATCH:
        if label not in names:
            continue
        pinned = [w for op, w in by_label.get(label, []) if op == "="]
        options = pinned[:1] or fixed.get(label) or (list(FLUX_KINDS) if flux else [])
        options = [o for o in options if _accepts(o, by_label.get(label, []))]
        if options:
            axes.append([(label, o) for o in options])
    return [dict(combo) for combo in itertools.islice(itertools.product(*axes), MAX_VARIANTS)] or [{}]


def synthesize(rule: AlertRule, external_labels: dict[str, str] | None = None) -> list[SynthAlert]:
    """The alerts ``rule`` fires (see the module docstring)."""
    notes: list[str] = []
    try:
        inf: Inferred | None = infer_labels(rule.expr, scrape=True)
    except PromQLError as e:
        inf = None
        notes.append(f"expression not understood ({e}); only the rule's labels are used")
    names = set(inf.labels) if inf else set()
    metrics = list(inf.metrics) if inf else []
    by_label: dict[str, list[tuple[str, str]]] = {}
    for label, op, value in (inf.matchers if inf else []):
        by_label.setdefault(label, []).append((op, value))
    for m in metrics:
        for label, value in FIXED_VALUES.get(m, {}).items():
            by_label.setdefault(label, []).insert(0, ("=", value))
    value = _example_value(rule.expr)
    out = []
    for variant in _variants(inf, names, by_label):
        vnotes = list(notes)
        series: dict[str, str] = dict(variant)
        # Object labels first: pod names are derived from the workload labels.
        for label in sorted(names - set(series), key=lambda k: (k in ("pod", "container", "customresource_group"), k)):
            fixed = [w for op, w in by_label.get(label, []) if op == "=" and w]
            first = fixed[0] if fixed else (_target_value(label, metrics, series) or _placeholder(label, series, metrics))
            chosen, note = _choose(label, first, by_label.get(label, []))
            series[label] = chosen
            if note:
                vnotes.append(note)
        for dst, replacement, src, regex in (inf.copies if inf else []):
            if dst in names:
                _label_replace(series, dst, replacement, src, regex)
        labels = dict(series)
        for k, v in rule.labels.items():
            try:
                labels[k] = render(v, series, value, external_labels)
            except TemplateError as e:
                vnotes.append(f"label {k} left out: {e}")
        labels["alertname"] = rule.alert
        for k, v in (external_labels or {}).items():
            labels.setdefault(k, v)
        annotations = {}
        for k, v in rule.annotations.items():
            try:
                annotations[k] = render(v, series, value, external_labels)
            except TemplateError as e:
                vnotes.append(f"annotation {k} left out: {e}")
        # Alertmanager delivers labels sorted by name.
        alert = Alert(status="firing", labels=dict(sorted(labels.items())), annotations=annotations)
        out.append(SynthAlert(rule, alert, variant, tuple(vnotes)))
    return out


def synthesize_all(rules: Iterable[AlertRule], external_labels: dict[str, str] | None = None) -> list[SynthAlert]:
    return [s for r in rules for s in synthesize(r, external_labels)]


__all__ = ["SynthAlert", "synthesize", "synthesize_all"]
