"""The safety gate: fixed checks, outside every model, that decide whether a decision may run.

Models only propose. The gate enforces: catalog functions only; never on resolved alerts; the
target must appear in the alert's labels (no model may invent one); namespaces where mutating
actions are denied. Mode says what "allowed" means: execute, dry_run (the functions send nothing
that writes), or suggest (decide and report, never trigger).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from . import catalog
from .alerts import Alert
from .decision import Decision

Mode = Literal["execute", "dry_run", "suggest"]

# Pods and workloads in these namespaces are never restarted by default; a Flux reconcile request
# (an annotation asking Flux to do what it does anyway) is harmless there and stays allowed.
DEFAULT_DENY_MUTATING = ("kube-system", "flux-system")
HARMLESS_IN_DENIED = ("flux-reconcile-kustomization", "flux-reconcile-gitrepository", "flux-reconcile-helmrelease")


class Verdict(BaseModel):
    allowed: bool
    reason: str
    mode: Mode = "dry_run"


class Gate:
    def __init__(self, dry_run: bool = True, suggest_only: bool = False,
                 deny_namespaces: tuple[str, ...] = DEFAULT_DENY_MUTATING):
        self.mode: Mode = "suggest" if suggest_only else ("dry_run" if dry_run else "execute")
        self.deny_namespaces = deny_namespaces

    def check(self, alert: Alert, decision: Decision, step_index: int = 0,
              parameters: dict[str, Any] | None = None) -> Verdict:
        if not alert.firing:
            return Verdict(allowed=False, reason="alert is resolved", mode=self.mode)
        if not decision.plan or step_index >= len(decision.plan):
            return Verdict(allowed=False, reason="no such plan step", mode=self.mode)
        step = decision.plan[step_index]
        params = parameters if parameters is not None else step.parameters
        try:
            spec = catalog.get(step.lambda_function)
            params = catalog.validate_parameters(spec.name, params)
        except (catalog.UnknownFunction, catalog.InvalidParameters) as e:
            return Verdict(allowed=False, reason=str(e), mode=self.mode)
        # Step 0 targets must be named by the alert; later steps take theirs from an observed result.
        if step_index == 0:
            values = alert.label_values()
            for key in spec.target_keys:
                v = params.get(key)
                if v is not None and v not in values:
                    return Verdict(allowed=False, mode=self.mode,
                                   reason=f"{key}={v!r} does not appear in the alert's labels")
        ns = params.get("namespace")
        if spec.mutating and ns in self.deny_namespaces and spec.name not in HARMLESS_IN_DENIED:
            return Verdict(allowed=False, mode=self.mode,
                           reason=f"{spec.name} is not allowed in namespace {ns}")
        return Verdict(allowed=True, reason="passed", mode=self.mode)
