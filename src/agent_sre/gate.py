"""The safety gate: fixed checks, outside every model, that decide whether a decision may run.

Models only propose. The gate enforces, in this order (the first failing check is the reason):

1. never on resolved alerts; the plan step exists; catalog functions only; the function is
   enabled in the policy; parameters are valid Kubernetes names/selectors; a model's (TRM, LLM)
   decision never for an informational alert (``severity`` in the policy's
   ``informational_severities``: ``info``, ``none``);
2. the target comes from the alert: at step 0 every target parameter must appear in the alert's
   labels (for a selector, every ``key=value`` term must be a label of the alert, key and value:
   the key as written, or as Prometheus and kube-state-metrics spell it; ``!=`` terms are
   refused) and, for decisions that read labels without a reviewed mapping (the models and the
   rule author's annotations; the policy's ``provenance``), under a label that names that kind of
   object; a model's (TRM, LLM) Flux reconcile must not be one the alert's own words contradict
   (it says its object is suspended or being reconciled, or it has no kind label and its words
   name another kind, or name none and the proposal is not a Kustomization:
   agent_sre.alert_words); at later steps the target must be one the previous step observed (its
   result), in the same namespace as the step before;
3. namespaces: ``deny`` (nothing), ``deny_mutating`` (nothing that writes, except the harmless
   Flux reconcile requests), ``allow`` (if set, mutating actions only there);
4. mutating functions need confidence >= the function's threshold, else escalate;
5. with a state store: dedup (fingerprint + startsAt + step), storm breaker, loop breaker,
   cooldown per (function, target), budgets per target and global — checked and reserved in one
   atomic step (see state.py).

``mode`` says what "allowed" means: execute, dry_run (functions write nothing), or suggest
(decide and report, never trigger). Every refusal carries a ``code`` and a readable ``reason``.

The mode of a mutating step is the strictest of the policy's (global, then per function) and,
with ``autonomy`` (the closed loop's per-class modes, see agent_sre.loop.autonomy), its alert
class's: the mode it earned where the policy says execute, or the one an operator pinned. The
policy's stays the ceiling: a class can only make a step stricter (dry-run stays dry-run). A step a person
``approved`` skips its class's mode, never the ceiling nor any other check; its verdict is
``approvable`` when the class alone held it back, so a person's approval could let it run.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from . import alert_words, catalog
from .alerts import Alert, label_fingerprint
from .decision import Decision, Method
from .policy import Policy, default as default_policy, strictest
from .state import Action, Limits, StateStore

Mode = Literal["execute", "dry_run", "suggest"]
# The methods whose decisions are proposals, not the operator's word (runbook, annotations).
_MODELS = (Method.TRM, Method.LLM)
# The labels that say which kind of object an alert is about (gotk_* metrics; kube-state-metrics).
_KIND_LABELS = ("kind", "customresource_kind")


class Verdict(BaseModel):
    allowed: bool
    reason: str
    mode: Mode = "dry_run"
    # ok | resolved | no_step | invalid | disabled | target | namespace | low_confidence |
    # duplicate | storm | loop | cooldown | budget_target | budget_global | informational (a model's
    # decision on an informational alert) | deferred (the incident desk holds the alert for its
    # settle window; the verdict comes after it)
    code: str = "ok"
    target: str | None = None
    # For a duplicate: what was reserved the first time ({function, target, params, mode, ts}).
    prior: dict[str, Any] | None = None
    # The alert class whose earned mode applied (mutating steps with autonomy), and whether that
    # mode alone made the step a suggestion (a person's approval could let it run).
    alert_class: str | None = None
    approvable: bool = False

    @property
    def duplicate(self) -> bool:
        return self.code == "duplicate"


def _keys_holding(alert: Alert, value: Any) -> list[str]:
    """The alert's label keys whose value is ``value``: where a parameter was taken from."""
    return [k for k, v in alert.labels.items() if v == value]


def _names_kind(key: str, fragments: tuple[str, ...]) -> bool:
    """``pod`` names a pod in ``pod``, ``pod_name``, ``exported_pod``; a generic fragment such as
    ``name`` only matches the key itself (``job_name`` does not name a Flux object)."""
    key = key.lower()
    tokens = set(re.split(r"[_.\-]", key))
    return any(key == f or (f != "name" and f in tokens) for f in fragments)


_TERM = re.compile(r"^(?P<key>[^=!]+?)(?P<op>==|!=|=)(?P<value>.*)$")


def label_spellings(key: str) -> tuple[str, ...]:
    """How a Kubernetes label key can appear among an alert's labels: as written, as a Prometheus
    label name (``app.kubernetes.io/name`` → ``app_kubernetes_io_name``), and as kube-state-metrics
    exports object labels (``label_app_kubernetes_io_name``)."""
    prom = re.sub(r"[^a-zA-Z0-9_]", "_", key)
    return tuple(dict.fromkeys((key, prom, f"label_{prom}")))


def target_of(params: dict[str, Any]) -> str:
    """The object an action is about, as ``namespace/name`` (or ``namespace/selector``)."""
    ns = params.get("namespace") or ""
    what = params.get("name") or params.get("selector") or ""
    return f"{ns}/{what}" if ns else str(what)


class Autonomy(Protocol):
    def mode_for(self, alert: Alert, function: str) -> tuple[str, Mode, bool]:
        """(the alert class of ``function`` acting on ``alert``, its mode, whether an operator pinned it)."""


class Gate:
    def __init__(self, dry_run: bool | None = None, suggest_only: bool = False,
                 deny_namespaces: tuple[str, ...] | None = None, *,
                 policy: Policy | None = None, state: StateStore | None = None,
                 autonomy: Autonomy | None = None):
        policy = policy or default_policy()
        if dry_run is not None and policy.mode != "suggest":
            policy = policy.with_overrides(mode="dry_run" if dry_run else "execute")
        if suggest_only:
            policy = policy.with_overrides(mode="suggest")
        if deny_namespaces is not None:
            policy = policy.with_overrides(namespaces={"deny_mutating": list(deny_namespaces)})
        self.policy = policy
        self.state = state
        self.autonomy = autonomy

    @property
    def mode(self) -> Mode:
        return self.policy.mode

    @property
    def deny_namespaces(self) -> tuple[str, ...]:
        return tuple(self.policy.namespaces.deny_mutating)

    def _no(self, code: str, reason: str, mode: Mode, target: str | None = None) -> Verdict:
        return Verdict(allowed=False, reason=reason, mode=mode, code=code, target=target)

    def check(self, alert: Alert, decision: Decision, step_index: int = 0,
              parameters: dict[str, Any] | None = None, *, observed: dict[str, Any] | None = None,
              previous: dict[str, Any] | None = None, approved: bool = False) -> Verdict:
        """Decide whether plan step ``step_index`` of ``decision`` may run for ``alert``.

        For a later step, ``observed`` is the previous step's result and ``previous`` the previous
        step's parameters; the step's target must come from them. ``approved``: a person approved
        this step's suggestion (its class's mode no longer holds it back; everything else does)."""
        mode: Mode = self.policy.mode
        if not alert.firing:
            return self._no("resolved", "alert is resolved", mode)
        if not decision.plan or not 0 <= step_index < len(decision.plan):
            return self._no("no_step", "no such plan step", mode)
        step = decision.plan[step_index]
        params = parameters if parameters is not None else step.parameters
        try:
            spec = catalog.get(step.lambda_function)
            params = catalog.validate_parameters(spec.name, params)
        except (catalog.UnknownFunction, catalog.InvalidParameters) as e:
            return self._no("invalid", str(e), mode)
        mode = strictest(mode, self.policy.mode_for(spec.name))
        ceiling, alert_class = mode, None
        if spec.mutating and self.autonomy is not None and self.policy.autonomy.enabled:
            alert_class, earned, pinned = self.autonomy.mode_for(alert, spec.name)
            # Earned modes matter where the policy would execute; a pin applies under any ceiling.
            if not approved and (pinned or ceiling == "execute"):
                mode = strictest(mode, earned)
        approvable = mode == "suggest" and ceiling != "suggest"
        target = target_of(params)
        off = self.policy.disabled_reason(spec.name)
        if off:
            return self._no("disabled", off, mode, target)
        sev = self.policy.informational(alert.labels) if decision.method in _MODELS else None
        if sev:
            return self._no("informational", f"severity={sev} marks the alert informational: models do not "
                            f"remediate it (policy informational_severities); escalating instead", mode, target)

        why = (self._target_from_alert(alert, spec, params) if step_index == 0
               else self._target_from_result(decision, step_index, params, observed, previous))
        if not why and step_index == 0 and self._check_provenance(decision):
            why = self._target_label_kind(alert, spec, params)
        if not why and step_index == 0 and decision.method in _MODELS and spec.kind in alert_words.FLUX_KINDS:
            why = self._flux_words(alert, spec, params)
        if why:
            return self._no("target", why, mode, target)

        why = self.policy.namespace_refusal(spec, params.get("namespace"))
        if why:
            return self._no("namespace", why, mode, target)
        if spec.mutating:
            need = self.policy.min_confidence(spec.name)
            if decision.confidence < need:
                return self._no("low_confidence", f"confidence {decision.confidence:.2f} below {need:.2f} "
                                f"required for {spec.name}; escalating instead", mode, target)

        if self.state is not None:
            action = Action(alert_key=alert.key(), fingerprint=alert.fingerprint or label_fingerprint(alert.labels),
                            step=step_index, function=spec.name, target=target, params=params,
                            mutating=spec.mutating, mode=mode, approved=approved)
            got = self.state.reserve(action, self.limits(spec.name))
            if not got.ok:
                v = self._no(got.code, got.reason, mode, target)
                v.alert_class, v.approvable = alert_class, approvable
                if got.prior is not None:
                    v.prior = got.prior
                return v
        return Verdict(allowed=True, reason="approved by a person" if approved else "passed", mode=mode, code="ok",
                       target=target, alert_class=alert_class, approvable=approvable)

    def limits(self, function: str) -> Limits:
        p = self.policy
        return Limits(dedup_seconds=p.dedup_seconds, cooldown_seconds=p.cooldown(function),
                      per_target_per_hour=p.budget.per_target_per_hour, global_per_hour=p.budget.global_per_hour,
                      storm_targets=p.storm.distinct_targets, storm_window_seconds=p.storm.window_seconds,
                      loop_max_returns=p.loop.max_returns, loop_window_seconds=p.loop.window_seconds)

    def record_failure(self, params: dict[str, Any]) -> None:
        """A remediation failed on this target: it counts towards the storm breaker."""
        if self.state is not None:
            self.state.signal(target_of(params))

    # ------------------------------------------------------------------ target provenance
    @staticmethod
    def _target_from_alert(alert: Alert, spec: catalog.FunctionSpec, params: dict[str, Any]) -> str | None:
        values = alert.label_values()
        for key in spec.target_keys:
            v = params.get(key)
            if v is None:
                continue
            if key == "selector":
                for term in str(v).split(","):
                    m = _TERM.match(term.strip())
                    if not m:
                        return f"selector term {term!r} is not key=value"
                    k, op, val = m["key"].strip(), m["op"], m["value"].strip()
                    if op == "!=":
                        return f"selector term {term!r}: '!=' widens the selection; only key=value terms"
                    if not val or all(alert.labels.get(key) != val for key in label_spellings(k)):
                        return (f"selector term {k}={val} is not backed by the alert's labels (no label "
                                f"{' or '.join(label_spellings(k))} with that value)")
            elif v not in values:
                return f"{key}={v!r} does not appear in the alert's labels"
        return None

    def _check_provenance(self, decision: Decision) -> bool:
        """``models`` (the default): every decision that reads names from labels without a reviewed
        mapping, the models' and the rule authors' annotations; ``all``: the runbook's rules too."""
        how = self.policy.provenance
        return how == "all" or (how == "models" and decision.method in (Method.TRM, Method.LLM, Method.STATIC))

    @staticmethod
    def _target_label_kind(alert: Alert, spec: catalog.FunctionSpec, params: dict[str, Any]) -> str | None:
        """The right string from the wrong label is still the wrong target: the name must sit under
        a label that names that kind of object, and a kind-specific function must agree with the
        alert's own ``kind`` label."""
        for key in _KIND_LABELS:
            k = alert.labels.get(key)
            if spec.kind and k and k.lower() != spec.kind.lower():
                return f"the alert is about a {k} ({key}={k}); {spec.name} acts on a {spec.kind}"
        ns = params.get("namespace")
        if ns is not None:
            keys = _keys_holding(alert, ns)
            if not any(_names_kind(k, ("namespace",)) for k in keys):
                return (f"namespace={ns!r} comes from label(s) {', '.join(sorted(keys))}, none of which names a "
                        "namespace")
        allowed = spec.labels_for_name(params)
        name = params.get("name")
        if allowed is None or name is None:
            return None
        keys = _keys_holding(alert, name)
        if not any(_names_kind(k, allowed) for k in keys):
            return (f"name={name!r} comes from label(s) {', '.join(sorted(keys))}, none of which names what "
                    f"{spec.name} acts on (expected a label like {', '.join(allowed)})")
        return None

    @staticmethod
    def _flux_words(alert: Alert, spec: catalog.FunctionSpec, params: dict[str, Any]) -> str | None:
        """A Flux reconcile the alert's own words do not back: it says its object is suspended or
        being reconciled already, or, without a kind label, its words name another kind, or name no
        kind and the proposal is not a Kustomization (see agent_sre.alert_words)."""
        if alert_words.says_suspended(alert.labels):
            return (f"the alert says its object is suspended (its name, or suspended=true); {spec.name} would "
                    "reconcile an object someone stopped on purpose")
        if alert_words.says_progressing(alert.labels):
            return (f"the alert says its object is being reconciled (its name, or reason=Progressing…); "
                    f"{spec.name} would only repeat what its controller is doing")
        if any(alert.labels.get(key) for key in _KIND_LABELS):
            return None
        named = alert_words.flux_kinds_named(alert.labels, alert.annotations)
        if named and spec.kind not in named:
            return (f"the alert has no kind label and its words name {' and '.join(sorted(named))}, not "
                    f"{spec.kind}: {spec.name} would act on a guessed kind")
        # Nothing names a kind: the runbook reads such an alert as its Kustomization's. Another kind
        # needs a word for it, or a name taken from a label that names the kind (``helmrelease``).
        if not named and spec.kind != "Kustomization":
            specific = tuple(f for f in (spec.labels_for_name(params) or ()) if f != "name")
            if not any(_names_kind(k, specific) for k in _keys_holding(alert, params.get("name"))):
                return (f"the alert has no kind label and nothing in it names a {spec.kind}; a Flux alert "
                        f"that names no kind is read as its Kustomization's: {spec.name} would act on a "
                        "guessed kind")
        return None

    @staticmethod
    def _target_from_result(decision: Decision, index: int, params: dict[str, Any],
                            observed: dict[str, Any] | None, previous: dict[str, Any] | None) -> str | None:
        step = decision.plan[index]
        for k, v in step.parameters.items():
            if params.get(k) != v:
                return f"step {index}: {k}={params.get(k)!r} differs from the plan's {v!r}"
        if not step.from_previous:
            return None
        if observed is None:
            return f"step {index} takes its target from the previous step's result, and there is none"
        prev = previous if previous is not None else decision.plan[index - 1].parameters
        if prev.get("namespace") and params.get("namespace") != prev.get("namespace"):
            return (f"step {index}: namespace {params.get('namespace')!r} differs from the previous step's "
                    f"{prev.get('namespace')!r}")
        seen = (observed.get("details") or {}).get("unhealthy") or []
        want = {k: params.get(k) for k in step.from_previous}
        if not any(isinstance(s, dict) and all(s.get(k) == v for k, v in want.items()) for s in seen):
            return f"step {index}: target {want} is not among the objects the previous step observed"
        return None
