"""Varied training alerts generated from the runbook and the catalog, shaped like the alerts real
rule sets deliver.

``generate`` draws records from families of alert shapes (``MIX``):

* actionable shapes, each also drawn in the variants that need no action: Flux objects seen through
  kube-state-metrics' custom-resource-state (17–21 labels, the object's namespace in
  ``exported_namespace``, kube-state-metrics' own pod in ``namespace``/``pod``), the Flux Operator,
  notification-controller events, the controllers' own ``gotk_*`` metrics and plain labels;
  crash-looping pods, volumes running full and Prometheus's own target missing, with the scrape
  labels of the exporter they come from (``exporters``);
* suspended Flux objects (a ``suspended`` label, the alert's name, or only its text say so);
* hard negatives that share words or labels with the actionable ones: Prometheus self-monitoring
  with the Prometheus pod's labels, targets down for other jobs, Flux look-alikes and kinds without
  a function, pods that are unwell without crash-looping, crash loops of systemd units, Docker
  containers and processes, volumes that are pending or failed and node filesystems filling up,
  certificates and secrets not ready;
* ordinary no-action alerts: application exporters, nodes, workloads, heartbeats.

Annotations come in the styles real rule sets use (``STYLES``): kube-prometheus (generic summary,
templated description, runbook URL), the community collection (title plus instance, description
ending in a dump of every label), homelab (one templated summary), the older ``message`` key, or
none. The expected decision of every actionable variant is computed by the runbook itself
(``records.runbook_expect``: the case that matches, the labels each parameter is read from), so the
data follows the runbook and the catalog; an alert carrying a runbook alert name always gets the
runbook's answer.

Deterministic: the same runbook, ``n`` and ``seed`` give the same records, byte for byte once written.
Every draw comes from one ``random.Random(seed)`` in a fixed order, so reordering draws (or the word
lists in ``words``) changes the data.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import runbook as rb
from ..alerts import label_fingerprint
from . import exporters as ex
from . import namegen as ng
from . import words as w
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
    custom: list[rb.Entry] = field(default_factory=list)  # the operator's own entries: generated generically

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
            elif fns[0] == "pod-restart" and f.crash is None and _reads(e, "pod"):
                f.crash = e
            elif fns[0] == "pod-check-status" and f.down is None:
                f.down = e
            elif fns[0] == "check-pvc-status" and f.volume is None and _reads(e, "persistentvolumeclaim"):
                f.volume = e
            else:
                f.custom.append(e)
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
        f.custom = [e for e in f.custom if e is not f.dispatch_entry and e not in f.kind_entry.values()]
        return f


def _reads(entry: rb.Entry, key: str) -> bool:
    """Whether the entry's first plan step reads a parameter from label ``key``."""
    step = next((c.plan[0] for c in entry.when if c.plan), None)
    return step is not None and any(key in src.labels for src in step.parameters.values())


# --------------------------------------------------------------------------- annotation styles


class _Ctx(dict):
    """Template context: a missing key renders empty, as Prometheus renders a missing label."""

    def __missing__(self, key: str) -> str:
        return ""


def _fmt(text: str, ctx: dict[str, Any]) -> str:
    return string.Formatter().vformat(text, (), _Ctx(ctx))


def template_id(text: str) -> str:
    """An annotation template's id, named by its text: a sentence that several families share (the same
    words on a Prometheus target and on any other job's) is one template, so the by-template split holds it
    out of training for every family at once, never for one label only."""
    return "tmpl:" + hashlib.sha1(text.encode()).hexdigest()[:10]


def title_words(alertname: str) -> str:
    ws = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", alertname)
    return " ".join([ws[0].capitalize()] + [x.lower() for x in ws[1:]]) if ws else alertname


# style -> weight: kube-prometheus, community collection, homelab, older `message` key, none.
STYLES = [("kp", 28), ("community", 30), ("homelab", 27), ("message", 6), ("bare", 9)]
KP_AREAS = {"flux": "flux", "crash": "kubernetes", "volume": "kubernetes", "down": "general", "prom": "prometheus",
            "pod": "kubernetes", "node": "node", "none": "general"}


def target_down_name(r: random.Random, lead: str) -> str:
    """A name for `up == 0` aggregated by job (TargetDown, KubeJobMissing...). Prometheus's own target
    down and its minimal pair for another job draw from this one distribution."""
    return r.choice(w.TARGET_DOWN_NAMES) if r.random() < 0.7 else style_name(
        [r.choice(["", "Kube", lead]), r.choice(["Target", "Job", "Scrape"]), r.choice(["Down", "Missing"])], r)


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

    def severity(self, labels: dict[str, str], *, info: float = 0.07) -> None:
        r = self.r.random()
        labels.setdefault("severity", "warning" if r < 0.56 else "critical" if r < 0.91
                          else "info" if r < 0.91 + info else "none")

    def finish(self, labels: dict[str, str], *, info: float = 0.07, custom: float = 0.12,
               ext: bool = True) -> dict[str, str]:
        """Severity, external labels and (rarely) a user's own routing label, on a real-shaped alert."""
        self.severity(labels, info=info)
        if ext:
            for k, v in ex.external(self.r).items():
                labels.setdefault(k, v)
        if self.r.random() < custom:
            key = self.r.choice(["team", "env", "priority", "receiver"])
            labels.setdefault(key, NOISE[key](self.r))
        return labels

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
        return ann, template_id(text)

    def styled(self, family: str, sentences: list[str], summaries: list[str], labels: dict[str, str],
               ctx: dict[str, Any], *, area: str | None = None) -> tuple[dict[str, str], str, str]:
        """Annotations in one of the real-world ``STYLES``: (annotations, template id, style)."""
        r = self.r
        style = r.choices([s for s, _ in STYLES], weights=[wt for _, wt in STYLES])[0]
        i = r.randrange(len(sentences))
        full = _Ctx({**labels, **ctx})
        full.setdefault("value", f"{r.uniform(1, 99):.4g}")
        sentence = _fmt(sentences[i], full)
        name = labels["alertname"]
        ann: dict[str, str] = {}
        if style == "kp":
            ann["summary"] = _fmt(r.choice(summaries), full) if summaries else sentence
            if r.random() < 0.4:  # the mixins' trailing clause, empty without a cluster label
                sentence = sentence.rstrip(".") + f" on cluster {labels.get('cluster', '')}."
            ann["description"] = sentence
            ann["runbook_url"] = (f"https://runbooks.prometheus-operator.dev/runbooks/{area or KP_AREAS.get(family, family)}/"
                                  f"{name.lower()}")
        elif style == "community":
            ann["summary"] = f"{title_words(name)} (instance {labels.get('instance', '<no value>')})"
            dump = " ".join(f"{k}:{v}" for k, v in sorted(labels.items()))
            ann["description"] = f"{sentence}\n  VALUE = {full['value']}\n  LABELS = map[{dump}]"
        elif style == "homelab":
            ann["summary"] = sentence
            if r.random() < 0.25 and labels.get("reason"):
                ann["description"] = f"Reason: {labels['reason']}"
            elif r.random() < 0.1:
                ann["runbook_url"] = f"https://github.com/{ng.syllable_name(r)}/home-ops/blob/main/docs/{name}.md"
        elif style == "message":
            ann["message"] = sentence
        else:
            return {}, f"{family}:none", style
        return ann, template_id(sentences[i]), style

    def record(self, labels: dict[str, str], annotations: dict[str, str], expect: dict[str, Any], *,
               family: str, template: str, style: str, status: str = "firing") -> dict[str, Any]:
        r = self.r
        starts = f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z"
        alert = {
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts,
            "endsAt": starts if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph?g0.expr=" + labels["alertname"],
            "fingerprint": label_fingerprint(labels),
        }
        if status != "firing":
            expect = no_action_expect()
        elif self.f.book.entry_for(labels["alertname"]) is not None:
            # The operator's runbook names this alert: its answer is the answer.
            expect = runbook_expect(self.f.book, labels)
        return {"alert": alert, "expect": expect,
                "meta": {"template": template, "alertname": labels["alertname"], "family": family, "style": style,
                         "source": "generate"}}

    def not_runbook_name(self, make: Callable[[], str]) -> str:
        """A name drawn by ``make`` that is no runbook alert name (for answers the runbook would not give)."""
        for _ in range(20):
            name = make()
            if self.f.book.entry_for(name) is None:
                return name
        return make() + "Alert"

    # -- flux: shared pieces ---------------------------------------------------------------------
    def flux_target(self) -> tuple[str, str]:
        r = self.r
        app = ng.app(r)
        ns = "flux-system" if r.random() < 0.12 else ng.namespace(r, app)
        name = r.choice(["flux-system", "apps", "infra", "cluster"]) if ns == "flux-system" and r.random() < 0.5 else app
        return name, ns

    def flux_name(self, kind: str | None, *, specific: bool | None = None, verb: str | None = None) -> tuple[str, bool]:
        """An alert name for a failing Flux object: kind-specific (HelmRelease...Failed) or generic."""
        r = self.r
        specific = (kind is not None and r.random() < 0.55) if specific is None else specific
        verb = verb or r.choice(FAIL_VERBS)
        prefix = r.choice(FLUX_PREFIX)
        if specific and kind in FLUX_KIND_WORDS:
            parts = [prefix, r.choice(FLUX_KIND_WORDS[kind]), r.choice(FLUX_KIND_MIDDLE[kind]), verb]
        elif specific:
            parts = [prefix or "Flux", kind or "", verb]
        else:
            subj = r.choice(GENERIC_FLUX_SUBJECT)
            if not prefix and subj not in ("Reconciliation", "Reconcile", "Reconciler"):
                prefix = "Flux"
            parts = [prefix, subj, verb]
        return style_name(parts, r), specific

    def flux_expect(self, labels: dict[str, str], kind: str | None, specific: bool) -> dict[str, Any]:
        f = self.f
        if kind is not None and kind not in f.kind_fn:
            return no_action_expect()
        entry = f.kind_entry[kind] if specific and kind in f.kind_entry else f.dispatch_entry
        return runbook_expect(f.book, labels, entry=entry)

    def flux_ctx(self, kind: str, name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
        r = self.r
        return {"kind": kind, "kind_l": kind.lower(), "name": name, "namespace": ns,
                "ready": labels.get("ready", "False"), "hours": r.randint(2, 96),
                "reason": labels.get("reason") or r.choice(["artifact not found", "health check failed",
                                                            "timeout waiting", "install retries exhausted",
                                                            "authentication required", "build failed"])}

    def flux_kind(self, nofn: float) -> str:
        r = self.r
        if r.random() < nofn:
            return r.choice(w.FLUX_NOFN_KINDS)
        return r.choices(["Kustomization", "HelmRelease", "GitRepository"], weights=[40, 40, 20])[0]

    def suspended_value(self, style: str) -> str | None:
        """``suspended`` as each exporter writes it: KSM true/false or absent, the Operator True/False."""
        r = self.r.random()
        if style == "ksm":
            return "true" if r < 0.22 else "false" if r < 0.65 else None
        return "True" if r < 0.22 else "False"

    # -- flux: kube-state-metrics custom-resource-state ------------------------------------------
    def flux_ksm(self) -> dict[str, Any]:
        r = self.r
        kind = self.flux_kind(nofn=0.14)
        name, ns = self.flux_target()
        labels: dict[str, str] = {"customresource_group": w.KSM_FLUX_GROUPS[kind], "customresource_kind": kind,
                                  "customresource_version": r.choice(["v1", "v1", "v2", "v1beta2", "v2beta2"]),
                                  "name": name, "exported_namespace": ns,
                                  "ready": "False" if r.random() < 0.75 else "Unknown"}
        susp = self.suspended_value("ksm")
        if susp is not None:
            labels["suspended"] = susp
        sha = "".join(r.choice("0123456789abcdef") for _ in range(40))
        if kind == "Kustomization":
            labels["source_name"] = r.choice(["flux-system", "flux-system", name, "home-ops", "cluster"])
            labels["revision"] = r.choice([f"refs/heads/main@sha1:{sha}", f"main@sha1:{sha}", f"sha256:{sha}"])
        elif kind == "HelmRelease":
            chart = name if r.random() < 0.6 else r.choice(["app-template", "common", ng.app(r)])
            labels["chart_name"] = chart
            labels["chart_app_version"] = f"{r.randint(0, 12)}.{r.randint(0, 30)}.{r.randint(0, 9)}"
            labels[r.choice(["chart_source_name", "chart_ref_name"])] = r.choice(["bjw-s", "app-template", chart,
                                                                                  ng.syllable_name(r)])
            labels["revision"] = f"{r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}"
        elif kind in ("GitRepository", "OCIRepository", "HelmRepository", "Bucket"):
            repo = ng.syllable_name(r)
            labels["url"] = r.choice([f"https://github.com/{repo}/{name}.git", f"ssh://git@github.com/{repo}/home-ops",
                                      f"oci://ghcr.io/{repo}/charts", f"https://{repo}.github.io/charts"])
            if r.random() < 0.7:
                labels["revision"] = f"main@sha1:{sha}"
        if r.random() < 0.12:
            labels[r.choice(["department", "ownedBy", "branch", "tier"])] = r.choice(["platform", "home", "main", "apps"])
        labels.update(ex.ksm(r, honor=False))
        alertname, specific = self.flux_name(kind)
        labels["alertname"] = alertname
        self.finish(labels)
        ctx = self.flux_ctx(kind, name, ns, labels)
        ann, tmpl, style = self.styled("flux", w.FLUX_SENTENCES, w.FLUX_SUMMARIES, labels, ctx, area="flux")
        return self.record(labels, ann, self.flux_expect(labels, kind, specific), family="flux-ksm", template=tmpl,
                           style=f"{style}:ksm-crs:{'suspended' if susp in ('true', 'True') else kind}")

    # -- flux: the Flux Operator's flux_resource_info ----------------------------------------------
    def flux_operator(self) -> dict[str, Any]:
        r = self.r
        kind = self.flux_kind(nofn=0.14)
        name, ns = self.flux_target()
        aggregated = r.random() < 0.35
        labels: dict[str, str] = {"kind": kind, "name": name, "exported_namespace": ns}
        susp = None
        if not aggregated:
            susp = self.suspended_value("operator")
            reasons = w.FLUX_FAIL_REASONS.get(kind, ["ReconciliationFailed", "ArtifactFailed"])
            labels.update(uid=ex.replicaset_pod(r, "x")[2:] + f"-{ng.rand_str(r, 4)}", ready=r.choice(["False", "False", "Unknown"]),
                          reason=r.choice(reasons), suspended=susp)
            if kind == "Kustomization":
                labels.update(source_name="flux-system", path=f"./kubernetes/apps/{ns}/{name}")
            elif kind == "GitRepository":
                labels.update(url=f"https://github.com/{ng.syllable_name(r)}/home-ops", ref="refs/heads/main")
            if r.random() < 0.7:
                labels["revision"] = f"main@sha1:{''.join(r.choice('0123456789abcdef') for _ in range(40))}"
            labels.update(ex.flux_operator(r))
        alertname, specific = self.flux_name(kind, specific=r.random() < 0.3)
        labels["alertname"] = alertname
        self.finish(labels)
        ctx = self.flux_ctx(kind, name, ns, labels)
        ann, tmpl, style = self.styled("flux", w.FLUX_SENTENCES, w.FLUX_SUMMARIES, labels, ctx, area="flux")
        return self.record(labels, ann, self.flux_expect(labels, kind, specific), family="flux-operator",
                           template=tmpl, style=f"{style}:operator:{'aggregated' if aggregated else susp}")

    # -- flux: notification-controller events sent to Alertmanager -------------------------------
    def flux_event(self) -> dict[str, Any]:
        """A failure event posted by notification-controller's Alertmanager provider (set up with
        eventSeverity error: informational events are not alerts, and are not generated)."""
        r = self.r
        kind = self.flux_kind(nofn=0.12)
        name, ns = self.flux_target()
        reason = r.choice(w.FLUX_FAIL_REASONS.get(kind, ["ReconciliationFailed", "ArtifactFailed"]))
        alertname = f"Flux{kind}{reason}" if r.random() < 0.8 else f"{kind}{reason}"
        labels = {"alertname": alertname, "severity": "error", "reason": reason, "kind": kind,
                  "name": name, "namespace": ns,
                  "reportingcontroller": w.FLUX_CONTROLLERS.get(kind, "source-controller")}
        if r.random() < 0.5:
            labels["revision"] = f"main@sha1:{''.join(r.choice('0123456789abcdef') for _ in range(12))}"
        if r.random() < 0.3:
            labels[r.choice(["cluster", "env"])] = r.choice(["home", "prod", "staging", "main"])
        ctx = {"namespace": ns, "name": name, "dep": ng.app(r), "path": f"./apps/{name}", "url": f"https://github.com/x/{name}",
               "version": f"{r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}", "reason": reason,
               "sha": "".join(r.choice("0123456789abcdef") for _ in range(12))}
        i = r.randrange(len(w.FLUX_EVENT_TEXT))
        ann = {"message": _fmt(w.FLUX_EVENT_TEXT[i], ctx)}
        if r.random() < 0.3:
            ann["summary"] = f"{kind} {ns}/{name}"
        expect = (runbook_expect(self.f.book, labels, entry=self.f.kind_entry[kind]) if kind in self.f.kind_fn
                  else no_action_expect())
        return self.record(labels, ann, expect, family="flux-event", template=template_id(w.FLUX_EVENT_TEXT[i]),
                           style="event:error")

    # -- flux: suspended objects named or described as such, and progressing ones (no action) ------
    def flux_suspended(self) -> dict[str, Any]:
        r = self.r
        kind = self.flux_kind(nofn=0.1)
        name, ns = self.flux_target()
        how = r.choices(["named", "text", "progress", "cronjob"], weights=[35, 30, 25, 10])[0]
        if how == "cronjob":
            app = ng.app(r)
            labels = {"cronjob": app, "namespace": ns, **ex.ksm(r)}
            alertname = style_name([r.choice(["Kubernetes", "Kube", ""]), r.choice(["Cronjob", "CronJob"]),
                                    r.choice(w.SUSPEND_WORDS)], r)
            ctx = {"kind": "CronJob", "kind_l": "cronjob", "name": app, "namespace": ns, "hours": r.randint(2, 48)}
        else:
            labels = {"kind": kind, "name": name, "exported_namespace": ns}
            if how in ("progress", "named") and r.random() < 0.5:  # un-aggregated: the operator's own labels
                labels.update(uid=f"{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}", **ex.flux_operator(r))
                if r.random() < 0.6:
                    labels["revision"] = f"main@sha1:{''.join(r.choice('0123456789abcdef') for _ in range(40))}"
            if how == "progress":
                labels.update(ready="Unknown", reason=r.choice(["Progressing", "ProgressingWithRetry", "DependencyNotReady"]),
                              suspended="False")
                alertname = self.not_runbook_name(lambda: style_name(
                    [r.choice(["Flux", "Flux", ""]), r.choice(["Reconciliation", "Resource", kind]),
                     r.choice(w.FLUX_PROGRESS_WORDS)], r))
                labels["severity"] = "info" if r.random() < 0.7 else "warning"
            elif how == "named":
                alertname = style_name([r.choice(["Flux", "Flux", ""]),
                                        r.choice(["Reconciliation", "Resource", kind, r.choice(FLUX_KIND_WORDS.get(kind, [kind]))]),
                                        r.choice(w.SUSPEND_WORDS)], r)
                if r.random() < 0.4:
                    labels["suspended"] = r.choice(["True", "true"])
            else:  # a failure alert, the suspension only in its text
                alertname = self.not_runbook_name(lambda: self.flux_name(kind)[0])
                if r.random() < 0.4:
                    labels.update(ex.flux_operator(r) if r.random() < 0.5 else ex.ksm(r, honor=False))
            ctx = self.flux_ctx(kind, name, ns, labels)
        labels["alertname"] = alertname
        self.finish(labels)
        if how == "text":
            i = r.randrange(len(w.SUSPEND_TEXT))
            text = _fmt(w.SUSPEND_TEXT[i], ctx)
            ann = r.choice([{"summary": text}, {"description": text, "summary": f"{kind} {name} not ready"},
                            {"message": text}])
            tmpl = template_id(w.SUSPEND_TEXT[i])
        else:
            ann, tmpl, _ = self.styled("flux-suspended", w.SUSPEND_TEXT, ["Flux resource suspended"], labels, ctx,
                                       area="flux")
        return self.record(labels, ann, no_action_expect(), family="flux-suspended", template=tmpl, style=how)

    # -- flux: look-alikes and objects without a function (no action) ----------------------------
    def flux_lookalike(self) -> dict[str, Any]:
        r = self.r
        if r.random() < 0.2:  # absent(flux_instance_info{...}): only the selector's equality labels survive
            labels = {"name": "flux", "exported_namespace": "flux-system"} if r.random() < 0.6 else (
                {"namespace": "flux-system"} if r.random() < 0.5 else {})
            alertname = style_name(["Flux", r.choice(["Instance", "Component", "Operator", "Controller", "Distribution"]),
                                    r.choice(["Absent", "Missing", "Gone", "NotFound"])], r)
        elif r.random() < 0.5:
            labels = {"kind": "FluxInstance", "name": "flux", "exported_namespace": "flux-system",
                      "ready": r.choice(["False", "Unknown"])}
            if r.random() < 0.6:
                labels.update(ex.flux_operator(r))
            alertname = r.choice(w.FLUX_LOOKALIKES[:3]) if r.random() < 0.5 else style_name(
                ["Flux", r.choice(["Instance", "Operator", "Distribution"]), r.choice(FAIL_VERBS + ["Absent"])], r)
        else:
            comp = r.choice(["source-controller", "kustomize-controller", "helm-controller", "notification-controller",
                             "image-reflector-controller", "image-automation-controller", "flux-operator"])
            labels = {"namespace": "flux-system"}
            if r.random() < 0.6:
                labels.update(ex.flux_controller(r, comp))
            elif r.random() < 0.5:
                labels["job"] = comp
            alertname = r.choice(w.FLUX_LOOKALIKES) if r.random() < 0.5 else style_name(
                ["Flux", r.choice(["Component", "Controller", "Image", "Receiver", comp.split("-")[0].capitalize()]),
                 r.choice(["Absent", "Down", "Restarting", "HighMemory", "Missing", "NotReady", "Errors"])], r)
        labels["alertname"] = alertname
        self.finish(labels)
        ctx = {"kind": labels.get("kind", "Controller"), "kind_l": "controller", "name": labels.get("name", "flux"),
               "namespace": "flux-system"}
        ann, tmpl, style = self.styled("flux-other", w.FLUX_SENTENCES[:5], ["Flux component problem"], labels, ctx,
                                       area="flux")
        return self.record(labels, ann, no_action_expect(), family="flux-other", template=tmpl, style=style)

    # -- flux: the plain and legacy shapes ---------------------------------------------------------
    def flux_labels(self, name: str, ns: str, kind: str | None, style: str, *,
                    object_kind: str | None = None) -> dict[str, str]:
        """Labels of a Flux alert; ``kind`` is the kind label it keeps (None: the rule dropped it),
        ``object_kind`` the object's kind all the same: the controller whose metrics fired follows it."""
        r = self.r
        if style == "gotk":
            ctrl = {"GitRepository": "source-controller", "HelmRelease": "helm-controller"}.get(
                object_kind or kind or "", "kustomize-controller")
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
            if r.random() < 0.3:
                lab.update(type="Ready", status="False")
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
        elif style == "legacy":  # `max by (namespace, name, kind)`: the controller's namespace only
            lab = {"name": name, "namespace": "flux-system"}
            if kind:
                lab["kind"] = kind
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
        style = r.choice(["gotk", "gotk", "plain", "plain", "ksm", "legacy"] if r.random() < 0.2 else
                         ["gotk", "gotk", "plain", "plain", "ksm"])
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
        labels = {"alertname": alertname, **self.flux_labels(name, ns, label_kind, style, object_kind=kind)}
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
        shape = r.choices(["ksm", "aggregated", "plain"], weights=[40, 25, 35])[0]
        if shape == "ksm":  # a kube-state-metrics series: the object's namespace/pod, KSM's job/service
            labels.update(container=container, uid=f"{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}-{ng.rand_str(r, 4)}",
                          **ex.ksm(r))
            if r.random() < 0.6:
                labels["reason"] = "CrashLoopBackOff"
            self.finish(labels)
        elif shape == "aggregated":
            if r.random() < 0.6:
                labels["container"] = container
            if r.random() < 0.5:
                labels["job"] = "kube-state-metrics"
            self.finish(labels)
        else:
            if r.random() < 0.85:
                labels["container"] = container
            if r.random() < 0.8:
                labels["job"] = r.choice(["kube-state-metrics", "kubernetes-pods", "kube-state-metrics"])
            if r.random() < 0.4:
                labels["instance"] = ng.instance(r, 8080)
            if r.random() < 0.3:
                labels["reason"] = "CrashLoopBackOff"
            self.noise(labels)
        missing = r.random() < 0.06
        if missing:
            labels.pop("pod")
        ctx = {"namespace": ns, "pod": pod, "container": container, "n": r.randint(3, 40), "app": app}
        if shape == "plain" or r.random() < 0.3:
            ann, tmpl = self.annotate("crash", ctx)
            style = shape
        else:
            ann, tmpl, style = self.styled("crash", [t for _, t in ANNOT["crash"]], ["Pod is crash looping."],
                                           labels, {**ctx, "value": ctx["n"]}, area="kubernetes")
        expect = runbook_expect(self.f.book, labels, entry=self.f.crash)
        return self.record(labels, ann, expect, family="crash", template=tmpl,
                           style="missing" if missing else f"{shape}:{style}")

    # -- volume ----------------------------------------------------------------------------------
    def volume(self) -> dict[str, Any]:
        r = self.r
        app = ng.app(r)
        ns = ng.namespace(r, app)
        pvc = ng.pvc(r, app)
        parts = [r.choice(VOLUME_PREFIX), r.choice(VOLUME_SUBJECT), r.choice(VOLUME_COND)]
        alertname = style_name(parts, r)
        labels = {"alertname": alertname, "persistentvolumeclaim": pvc}
        shape = r.choice(["kubelet", "kubelet", "plain"])
        if r.random() < 0.94:
            labels["namespace"] = ns
        else:
            labels["exported_namespace"] = ns
        if shape == "kubelet":
            labels.update(ex.kubelet(r))
            self.finish(labels)
        else:
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
        missing = r.random() < 0.06
        if missing:
            labels.pop("persistentvolumeclaim")
            if r.random() < 0.5:
                labels["persistentvolume"] = f"pvc-{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}"
        used = r.randint(85, 99)
        ctx = {"pvc": pvc, "namespace": ns, "pct": 100 - used, "used": used}
        if shape == "plain" or r.random() < 0.3:
            ann, tmpl = self.annotate("volume", ctx)
            style = shape
        else:
            ann, tmpl, style = self.styled("volume", [t for _, t in ANNOT["volume"]], ["PersistentVolume is filling up."],
                                           labels, {**ctx, "value": ctx["pct"]}, area="kubernetes")
        expect = runbook_expect(self.f.book, labels, entry=self.f.volume)
        return self.record(labels, ann, expect, family="volume", template=tmpl,
                           style="missing" if missing else f"{shape}:{style}")

    # -- Prometheus down / its own target missing ------------------------------------------------
    def down_subject(self) -> str:
        """The first word of the runbook's down alert: PrometheusServiceDown -> Prometheus."""
        return re.findall(r"[A-Z][a-z]+", self.f.down.alert)[0]

    def down(self) -> dict[str, Any]:
        r = self.r
        entry = self.f.down
        shape = r.choices(["classic", "targetdown", "scraped"], weights=[30, 35, 35])[0]
        subject = self.down_subject()
        sl = subject.lower()
        if shape == "targetdown":  # `count by (job, namespace, service) (up == 0)`: no pod
            rel = ex.release(r)
            job = ex.prometheus_job(r, rel)
            ns = ex.mon_ns(r)
            labels = {"alertname": target_down_name(r, "Prometheus"), "job": job, "namespace": ns,
                      "service": job if job != "prometheus" else f"{rel}-prometheus"}
            self.finish(labels)
        elif shape == "scraped":  # `up == 0` keeping the Prometheus pod's scrape labels
            cond = r.choice(["TargetMissing", "Down", "InstanceDown", "NotUp", "Unreachable", "TargetDown", "Absent"])
            labels = {"alertname": style_name([subject, r.choice(["", "", "Server", "Instance"]), cond], r),
                      **ex.prometheus(r)}
            self.finish(labels)
        else:
            cond = r.choice(DOWN_COND)
            parts = [r.choice(["", "", "", "Kube"]), subject, r.choice(["", "", "", "Server", "Instance", "Service"]), cond]
            ns = r.choice(ng.MONITORING_NAMESPACES + [ng.namespace(r)])
            labels = {"alertname": style_name(parts, r), "namespace": ns}
            if r.random() < 0.85:
                labels["job"] = r.choice([sl, f"{sl}-k8s", f"kube-prometheus-stack-{sl}", f"{ns}/{sl}", f"{sl}-server"])
            if r.random() < 0.35:
                labels["pod"] = f"{sl}-{r.choice(['kube-prometheus-stack', 'k8s', 'main', 'server'])}-{r.randint(0, 1)}"
            if r.random() < 0.35:
                labels["instance"] = ng.instance(r, 9090)
            if r.random() < 0.3:
                labels["service"] = f"{sl}-operated"
            self.noise(labels)
        ns = labels.get("namespace", "")
        ctx = {"subject": subject, "subject_l": sl, "namespace": ns, "instance": labels.get("instance", "unknown"),
               "job": labels.get("job", sl)}
        if shape == "classic":
            ann, tmpl = self.annotate("down", ctx)
            style = shape
        else:
            ann, tmpl, style = self.styled("down", w.PROM_DOWN_TEXT, ["One or more targets are unreachable.",
                                                                      "Prometheus target missing."],
                                           labels, ctx, area="general")
        expect = runbook_expect(self.f.book, labels, entry=entry)
        return self.record(labels, ann, expect, family="down", template=tmpl, style=f"{shape}:{style}")

    # -- hard negatives: Prometheus self-monitoring, other targets down, operators -----------------
    def prom_self(self) -> dict[str, Any]:
        r = self.r
        labels = ex.prometheus(r)
        x = r.random()
        comp, prob = COMPOSED_CONDS["prometheus-other"]
        if x < 0.3:
            problem, extra = r.choice(w.PROM_SELF_PROBLEMS)
        elif x < 0.7:  # the hard ones: a target/scrape component with a problem that is not "down"
            # Half of them with a problem word never seen elsewhere: only a "down" word asks for the check.
            word = r.choice(prob) if r.random() < 0.5 else "".join(
                r.choice("bcdfghklmnprstvz") + r.choice("aeiou") for _ in range(r.choice((2, 3)))).capitalize()
            problem, extra = r.choice(w.PROM_TARGETISH) + word, "scrape_job"
        else:
            problem, extra = r.choice(comp) + r.choice(prob), None
        labels["alertname"] = style_name([r.choice(["Prometheus", "Prometheus", "Prometheus", "Prom"]), problem], r)
        if extra == "rule_group":
            labels["rule_group"] = (f"/etc/prometheus/rules/prometheus-{ex.release(r)}-prometheus-rulefiles-0/"
                                    f"{labels['namespace']}-{ng.app(r)}-{ng.rand_str(r, 8)}.yaml;{ng.app(r)}.rules")
        elif extra == "scrape_job":
            labels["scrape_job"] = r.choice([f"serviceMonitor/{ng.namespace(r)}/{ng.app(r)}/0",
                                             f"podMonitor/{ng.namespace(r)}/{ng.app(r)}/0", ng.app(r)])
        elif extra == "alertmanager":
            labels["alertmanager"] = f"http://{ng.instance(r, 9093)}/api/v2/alerts"
        elif extra == "remote_name":
            labels.update(remote_name=ng.rand_str(r, 6), url=f"https://{ng.app(r)}.example.com/api/v1/push")
        elif extra == "mechanism":
            labels["mechanism"] = r.choice(["kubernetes", "dns", "file", "http"])
        if r.random() < 0.25:  # aggregated by the mixin's own labels
            labels = {k: v for k, v in labels.items() if k in ("alertname", "job", "namespace", "pod", "rule_group",
                                                                 "scrape_job", "alertmanager")}
        self.finish(labels)
        ctx = {"value": r.randint(1, 500)}
        ann, tmpl, style = self.styled("prom", w.PROM_SELF_TEXT, ["Prometheus is failing rule evaluations.",
                                                                  "Prometheus has issues.", "Prometheus problem"],
                                       labels, ctx, area="prometheus")
        return self.record(labels, ann, no_action_expect(), family="prom-self", template=tmpl, style=style)

    def down_twin(self) -> dict[str, Any]:
        """A "down" alert's minimal pair: the same alert names and shapes (``TargetDown`` aggregated by
        job, ``PrometheusTargetMissing`` keeping the target's scrape labels) for a job that is not
        Prometheus, so that the job, pod and container values are all that tells them apart. Public
        rule sets fire such alerts for every scrape job; only Prometheus's own is the runbook's."""
        r = self.r
        rel = ex.release(r)
        job = ex.not_prometheus_job(r, rel)
        ns = r.choices([ex.mon_ns(r), ng.namespace(r), "kube-system"], weights=[60, 30, 10])[0]
        subject = self.down_subject()
        if r.random() < 0.5:  # `count by (job, namespace, service) (up == 0)`
            shape = "targetdown"
            labels = {"alertname": target_down_name(r, subject), "job": job, "namespace": ns, "service": job}
        else:  # `up == 0` keeping the target's own scrape labels, as Prometheus's would
            shape = "scraped"
            # With the subject in front the name must still be about a target (PrometheusTargetMissing).
            lead = r.choice([subject, subject, ""])
            cond = r.choice(["TargetMissing", "TargetDown", "TargetAbsent", "TargetUnreachable"] +
                            ([] if lead else ["InstanceDown", "JobDown", "EndpointDown"]))
            base = job.removeprefix(f"{rel}-")
            labels = {"alertname": style_name([lead, cond], r), "job": job,
                      "namespace": ns, "instance": ng.instance(r, r.choice([8080, 9100, 9115, 9091, 3000, 8443])),
                      "pod": ex.replicaset_pod(r, base) if r.random() < 0.7 else f"{base}-{r.randint(0, 2)}",
                      "endpoint": r.choice(["http-metrics", "metrics", "http", "web"]), "service": job}
            if r.random() < 0.7:
                labels["container"] = base
        self.finish(labels)
        ctx = {"value": r.randint(1, 100), "subject": "Target", "cond_l": "down", "job": job, "namespace": ns,
               "instance": labels.get("instance", "unknown")}
        # Only the sentences that do not say Prometheus itself is down.
        ann, tmpl, style = self.styled("down", [w.PROM_DOWN_TEXT[i] for i in (0, 1, 5)],
                                       ["One or more targets are unreachable.", "Prometheus target missing."],
                                       labels, ctx, area="general")
        return self.record(labels, ann, no_action_expect(), family="down-twin", template=tmpl,
                           style=f"{shape}:{style}")

    def target_other(self) -> dict[str, Any]:
        """Targets down that are not Prometheus, and Prometheus alerts that name no namespace."""
        r = self.r
        how = r.choices(["other-job", "job-only", "operator"], weights=[45, 25, 30])[0]
        if how == "other-job":
            job = ex.not_prometheus_job(r)
            # Exporters mostly run beside Prometheus: the namespace says nothing, the job does.
            labels = {"alertname": r.choice(w.TARGET_DOWN_NAMES), "job": job, "namespace": r.choices(
                [ex.mon_ns(r), ng.namespace(r), "kube-system"], weights=[70, 20, 10])[0], "service": job}
            if r.random() < 0.3:  # `up == 0` un-aggregated: the target's pod too
                labels.update(pod=ex.replicaset_pod(r, job), instance=ng.instance(r), endpoint="http-metrics")
        elif how == "job-only":  # absent(up{job="prometheus"}) and friends: nothing to target
            labels = {"alertname": self.not_runbook_name(lambda: style_name(
                ["Prometheus", r.choice(["Job", "AllTargets", "Targets", "Self", "Scrape", ""]),
                 r.choice(["Missing", "Absent", "Down", "Gone"])], r)),
                "job": r.choice(["prometheus", ex.prometheus_job(r)])}
            if r.random() < 0.3:
                labels["instance"] = ng.instance(r, 9090)
        else:
            name = r.choice(w.OPERATOR_NAMES)
            if name.startswith("Alertmanager") or name.startswith("ConfigReloader"):
                labels = {"alertname": name, **ex.alertmanager(r)}
                if r.random() < 0.5:  # aggregated to namespace, service
                    labels = {k: v for k, v in labels.items() if k in ("alertname", "namespace", "service")}
            else:
                labels = {"alertname": name, "controller": r.choice(["prometheus", "alertmanager", "thanos"]),
                          "namespace": ex.mon_ns(r)}
        self.finish(labels)
        ctx = {"value": r.randint(1, 100), "subject": "Target", "cond_l": "down", "where": labels.get("job", "")}
        ann, tmpl, style = self.styled("target", w.PROM_DOWN_TEXT[:2] + w.EXPORTER_TEXT[:3],
                                       ["One or more targets are unreachable.", "Operator errors"], labels, ctx,
                                       area="general")
        return self.record(labels, ann, no_action_expect(), family="target-other", template=tmpl, style=f"{how}:{style}")

    # -- hard negatives: pods unwell without a crash loop ------------------------------------------
    def pod_other(self) -> dict[str, Any]:
        r = self.r
        app = ng.app(r)
        ns = ng.namespace(r, app)
        pod, _ = ng.pod(r, app)
        cond, extra, text = r.choice(w.POD_OTHER)
        alertname = style_name([r.choice(["Kube", "Kubernetes", "K8s", "", "Kube"]),
                                r.choice(["Pod", "Container", "Pod", ""]), cond], r)
        shape = r.choice(["ksm", "aggregated", "cadvisor"])
        labels: dict[str, str] = {"pod": pod, "namespace": ns}
        if shape == "ksm":
            labels.update(container=app, uid=f"{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}", **ex.ksm(r))
        elif shape == "cadvisor":
            labels.update(container=app, image=f"ghcr.io/{ng.syllable_name(r)}/{app}:v{r.randint(1, 9)}", **ex.kubelet(r, cadvisor=True))
        else:
            if r.random() < 0.6:
                labels["job"] = "kube-state-metrics"
        if extra == "reason":
            labels["reason"] = (r.choice(w.WAITING_REASONS) if "Waiting" in cond or "Pull" in cond
                                else r.choice(["OOMKilled", "Error", "Evicted", "ContainerCannotRun"]))
        elif extra == "phase":
            labels["phase"] = r.choice(["Pending", "Unknown", "Failed"])
        labels["alertname"] = alertname
        self.finish(labels)
        ctx = {"container": app, "reason": labels.get("reason", "")}
        ann, tmpl, style = self.styled(f"pod-{text}", w.POD_OTHER_TEXT[text], ["Pod has been in a non-ready state for more than 15 minutes.",
                                                                 "Pod container waiting longer than 1 hour",
                                                                 "Processes experience elevated CPU throttling."],
                                       labels, ctx, area="kubernetes")
        return self.record(labels, ann, no_action_expect(), family="pod-other", template=tmpl, style=f"{shape}:{style}")

    # -- hard negatives: crash loops of systemd units, Docker containers, processes ----------------
    def crash_other(self) -> dict[str, Any]:
        r = self.r
        how = r.choices(["systemd", "docker", "process"], weights=[45, 30, 25])[0]
        app = ng.app(r)
        if how == "systemd":
            unit = r.choice(w.SYSTEMD_UNITS).format(app=app, pool=r.choice(["tank", "data", "rpool", "backup"]))
            labels = {"name": unit, **ex.node_exporter(r)}
            if r.random() < 0.6:
                labels.update(state=r.choice(["failed", "activating", "inactive"]), type=r.choice(["simple", "oneshot", "notify"]))
            if r.random() < 0.25:
                labels["job"] = "systemd-exporter"
            alertname = style_name([r.choice(w.SYSTEMD_SUBJECTS), r.choice(w.SYSTEMD_CONDS)], r)
            subject = "systemd"
        elif how == "docker":
            labels = {"name": app, "image": f"{r.choice(['ghcr.io', 'docker.io', 'lscr.io'])}/{ng.syllable_name(r)}/{app}:{r.randint(1, 9)}.{r.randint(0, 20)}",
                      "id": "/docker/" + "".join(r.choice("0123456789abcdef") for _ in range(64)),
                      "instance": f"{r.choice(['nas', 'docker-host', 'unraid', ng.node(r)])}:8080", "job": "cadvisor"}
            alertname = style_name([r.choice(w.DOCKER_SUBJECTS), r.choice(w.DOCKER_CONDS)], r)
            subject = "container"
        else:
            prod, exporter, _keys = r.choice(w.EXPORTER_PRODUCTS)
            labels = {**(ex.prometheus(r) if prod == "Prometheus" else ex.app_exporter(r, exporter))}
            if r.random() < 0.3:
                labels["groupname"] = app
                exporter = "process-exporter"
            alertname = style_name([r.choice([prod, prod, "Process", "ProcessExporter"]), r.choice(w.PROCESS_CONDS)], r)
            subject = prod
        labels["alertname"] = alertname
        self.finish(labels)
        ctx = {"unit": labels.get("name", app), "subject": subject, "value": r.randint(2, 30)}
        ann, tmpl, style = self.styled(f"crash-{how}", w.CRASH_OTHER_TEXT[how], ["Service crash looping", "Container killed",
                                                                           "Process restarting"], labels, ctx, area="node")
        return self.record(labels, ann, no_action_expect(), family="crash-other", template=tmpl, style=f"{how}:{style}")

    # -- hard negatives: volumes pending/failed, node filesystems and other things filling up ------
    def storage_other(self) -> dict[str, Any]:
        r = self.r
        app = ng.app(r)
        ns = ng.namespace(r, app)
        how = r.choices(["pvc", "fs", "filling"], weights=[40, 35, 25])[0]
        if how == "pvc":
            cond, kind = r.choice(w.PVC_OTHER)
            alertname = style_name([r.choice(["Kube", "Kubernetes", ""]), cond], r)
            if kind == "pvc":
                labels = {"persistentvolumeclaim": ng.pvc(r, app), "namespace": ns, "phase": "Pending", **ex.ksm(r)}
            elif kind == "pv":
                labels = {"persistentvolume": f"pvc-{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}-{ng.rand_str(r, 4)}",
                          "phase": r.choice(["Failed", "Pending"]), **ex.ksm(r)}
            elif kind == "volsync":
                labels = {"obj_name": app, "obj_namespace": ns, "role": r.choice(["source", "destination"]),
                          "method": r.choice(["restic", "rclone", "syncthing"]), **ex.app_exporter(r, "volsync")}
            else:
                labels = {"volume": f"pvc-{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}", "pvc": ng.pvc(r, app),
                          "pvc_namespace": ns, "node": ng.node(r), **ex.app_exporter(r, "longhorn-manager")}
            sentences = [f"The PVC {{persistentvolumeclaim}} is in status {{phase}}", "Volume {volume} is degraded",
                         "Persistent volume {persistentvolume} is in status {phase}", "{obj_name} is out of sync"]
        elif how == "fs":
            alertname = r.choice(w.FILESYSTEM_NAMES)
            mp = r.choice(["/", "/var", "/var/lib/longhorn", "/mnt/data", "/boot/efi",
                           f"/var/lib/kubelet/pods/{ng.rand_str(r, 8)}-{ng.rand_str(r, 4)}/volumes/kubernetes.io~csi/pvc-{ng.rand_str(r, 8)}/mount"])
            labels = {"device": r.choice(["/dev/sda2", "/dev/nvme0n1p2", "/dev/mapper/vg-root", "tank/data", "/dev/md0"]),
                      "fstype": r.choice(["ext4", "xfs", "zfs", "btrfs"]), "mountpoint": mp, **ex.node_exporter(r)}
            sentences = w.FS_TEXT
        else:
            alertname = r.choice(w.FILLING_OTHER)
            prod, exporter, keys = r.choice(w.EXPORTER_PRODUCTS)
            labels = ex.app_exporter(r, exporter)
            for k in keys[:2]:
                labels[k] = ng.app(r) if r.random() < 0.5 else ng.rand_str(r, 5)
            sentences = w.FS_TEXT[2:] + w.EXPORTER_TEXT[:2]
        labels["alertname"] = alertname
        self.finish(labels)
        ctx = {"subject": alertname[:5], "cond_l": "filling up", "where": labels.get("instance", "")}
        ann, tmpl, style = self.styled("storage-other", sentences, ["Filesystem is predicted to run out of space.",
                                                                     "PVC pending", "Volume problem"], labels, ctx,
                                       area="node")
        return self.record(labels, ann, no_action_expect(), family="storage-other", template=tmpl, style=f"{how}:{style}")

    # -- ordinary no-action: application exporters ------------------------------------------------
    def exporter_alert(self) -> dict[str, Any]:
        r = self.r
        prod, exporter, keys = r.choice(w.EXPORTER_PRODUCTS)
        cond = r.choice(w.EXPORTER_CONDS)
        alertname = style_name([prod, r.choice(["", "", "", "Instance", "Server", "Node", "Cluster", "Exporter"]), cond], r)
        if r.random() < 0.25:  # `by (instance)` / `by (job)`
            labels = {r.choice(["instance", "job"]): ng.instance(r) if r.random() < 0.5 else exporter}
        else:
            labels = ex.app_exporter(r, exporter)
        for k in keys:
            if r.random() < 0.7:
                labels[k] = ng.app(r) if r.random() < 0.5 else ng.namespace(r) if "namespace" in k else ng.rand_str(r, r.randint(3, 8))
        labels["alertname"] = alertname
        self.finish(labels, info=0.04)
        words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", cond)
        ctx = {"subject": prod, "subject_l": prod.lower(), "cond_l": " ".join(x.lower() for x in words),
               "where": labels.get("instance", labels.get("job", "")), "value": f"{r.uniform(0, 100):.1f}"}
        ann, tmpl, style = self.styled("exporter", w.EXPORTER_TEXT, ["{subject} {cond_l}"], labels, ctx, area="general")
        return self.record(labels, ann, no_action_expect(), family="exporter", template=tmpl, style=style)

    # -- the operator's own runbook entries --------------------------------------------------------
    def label_value(self, key: str, app: str, ns: str) -> str:
        r = self.r
        if "namespace" in key:
            return ns
        if key in ("pod", "exported_pod"):
            return ng.pod(r, app)[0]
        if key == "persistentvolumeclaim":
            return ng.pvc(r, app)
        if key == "node":
            return ng.node(r)
        if key == "instance":
            return ng.instance(r)
        return app

    def custom(self) -> dict[str, Any]:
        """An alert of one of the operator's own entries (not a shape the generator knows): the
        entry's name (or a light variant), the labels a case matches and its parameters read, with
        scrape labels and annotations around them; the answer is the runbook's."""
        r, f = self.r, self.f
        e = r.choice(f.custom)
        case = r.choice(e.when)
        app, ns = ng.app(r), ng.namespace(r)
        labels: dict[str, str] = {}
        shape = r.choice(["ksm", "exporter", "plain"])
        if shape == "ksm":
            labels.update(ex.ksm(r))
        elif shape == "exporter":
            labels.update(ex.app_exporter(r, f"{app}-exporter"))
        for step in case.plan[:1]:
            for src in step.parameters.values():
                if src.labels:
                    key = src.labels[0] if r.random() < 0.8 else r.choice(src.labels)
                    labels[key] = self.label_value(key, app, ns)
        for key, want in case.match.items():
            vals = [v for v in (want if isinstance(want, list) else [want]) if v]
            if vals:
                labels[key] = r.choice(vals)
            elif key in labels:  # the case wants the label absent
                del labels[key]
        name = r.choice(e.names)
        if r.random() < 0.35:  # a variant of the name, as another rule file would write it
            name = style_name([r.choice(["", "", "Kube", "K8s", "App"]), name,
                               r.choice(["", "Critical", "Warning", "Alert", ""])], r)
        labels["alertname"] = name
        self.finish(labels)
        ctx = {"app": app, "namespace": ns}
        sentences = [s for s in (e.description, "{alertname} is firing for {app} in {namespace}",
                                 "{app} ({namespace}): " + title_words(e.alert).lower()) if s]
        ann, tmpl, style = self.styled(f"custom-{e.alert}", sentences, [e.description or title_words(e.alert)],
                                       labels, ctx)
        expect = runbook_expect(f.book, labels, entry=e)
        return self.record(labels, ann, expect, family=f"custom-{e.alert}", template=tmpl, style=f"{shape}:{style}")

    # -- heartbeat and no-action families --------------------------------------------------------
    def heartbeat(self) -> dict[str, Any]:
        r = self.r
        names = [n for e in self.f.heartbeat for n in e.names] + HEARTBEAT_NAMES + w.HEARTBEAT_MORE
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
            if r.random() < 0.4:
                lab.update(ex.node_exporter(r, k8s=True))
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
            if r.random() < 0.5:
                lab = ex.prometheus(r)
            else:
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


# family -> weight. About 30% of the records need an action (real rule sets: ~3%; the model is
# calibrated at a realistic rate separately), and half of the rest are hard negatives.
MIX = [("flux_ksm", 5), ("flux_operator", 4), ("flux_event", 2), ("flux", 5), ("crash", 9), ("volume", 7),
       ("down", 7), ("flux_suspended", 3), ("flux_lookalike", 2.5), ("prom_self", 9), ("target_other", 4), ("down_twin", 4),
       ("pod_other", 5), ("crash_other", 6), ("storage_other", 4), ("exporter_alert", 14), ("heartbeat", 2),
       ("none", 12)]
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
    mix = list(MIX)
    if facts.custom:  # the operator's entries: about 2.5% of the records each
        mix.append(("custom", min(15.0, 2.5 * len(facts.custom))))
    names, weights = zip(*mix)
    makers: list[Callable[[], dict[str, Any]]] = [getattr(gen, name) for name in names]
    out = []
    for _ in range(n):
        rec = rng.choices(makers, weights=weights)[0]()
        if rng.random() < RESOLVED_SHARE:
            rec["alert"]["status"] = "resolved"
            rec["alert"]["endsAt"] = rec["alert"]["startsAt"]
            rec["expect"] = no_action_expect()
            rec["meta"]["style"] += ":resolved"
        rec["meta"]["seed"] = seed
        out.append(rec)
    return out
