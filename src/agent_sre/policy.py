"""The safety policy: one YAML file (the ``POLICY_PATH`` setting, or the packaged ``data/policy.yaml``).

Everything the gate enforces that an operator may tune lives here: the mode (execute, dry_run,
suggest), per-function switches, confidence thresholds and cooldowns, namespace lists, dedup
window, budgets, storm and loop breakers, and how alert classes earn autonomy. Unknown keys are errors: a typo must not silently
loosen the policy.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import catalog, yaml_config

Mode = Literal["execute", "dry_run", "suggest"]
# Higher is more restrictive; the effective mode is the most restrictive that applies.
_STRICTNESS = {"execute": 0, "dry_run": 1, "suggest": 2}


def strictest(*modes: Mode | None) -> Mode:
    given = [m for m in modes if m]
    return max(given, key=_STRICTNESS.__getitem__) if given else "dry_run"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionPolicy(_Strict):
    enabled: bool | None = None
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    cooldown_seconds: float | None = Field(default=None, ge=0)
    mode: Mode | None = None


class Defaults(_Strict):
    # Off unless written down: a policy file without a ``defaults`` block must not switch on every
    # function it does not name (fail closed, like the packaged file).
    enabled: bool = False
    min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    cooldown_seconds: float = Field(default=300, ge=0)


class Namespaces(_Strict):
    allow: list[str] = Field(default_factory=list)
    deny_mutating: list[str] = Field(default_factory=lambda: ["kube-system", "flux-system"])
    harmless: list[str] = Field(default_factory=lambda: [
        "flux-reconcile-kustomization", "flux-reconcile-gitrepository", "flux-reconcile-helmrelease"])
    deny: list[str] = Field(default_factory=list)


class Budget(_Strict):
    per_target_per_hour: int = Field(default=3, ge=0)
    global_per_hour: int = Field(default=30, ge=0)


class Storm(_Strict):
    distinct_targets: int = Field(default=20, ge=1)
    window_seconds: float = Field(default=300, gt=0)


class Loop(_Strict):
    max_returns: int = Field(default=3, ge=1)
    window_seconds: float = Field(default=86400, gt=0)


class Autonomy(_Strict):
    """Earned autonomy per alert class (see agent_sre.loop.autonomy): a class starts in suggest and
    moves to execute after ``promote_after`` verified outcomes in a row; any failed, ineffective
    or rejected one sends it back to suggest. The policy's mode stays the ceiling."""

    enabled: bool = True
    promote_after: int = Field(default=3, ge=1)


class Policy(_Strict):
    version: int = 1
    mode: Mode = "dry_run"
    defaults: Defaults = Field(default_factory=Defaults)
    functions: dict[str, FunctionPolicy] = Field(default_factory=dict)
    namespaces: Namespaces = Field(default_factory=Namespaces)
    dedup_seconds: float = Field(default=7 * 86400, gt=0)
    budget: Budget = Field(default_factory=Budget)
    storm: Storm = Field(default_factory=Storm)
    loop: Loop = Field(default_factory=Loop)
    autonomy: Autonomy = Field(default_factory=Autonomy)
    # Target provenance: the name must come from a label that names that kind of object (a pod name
    # from `pod`, a claim from `persistentvolumeclaim`...), the namespace from a namespace label, and
    # a Flux function must agree with the alert's `kind`. models: decisions that read labels without
    # a reviewed mapping (TRM, LLM and the rule authors' annotations); all: the runbook's rules too.
    provenance: Literal["models", "all", "off"] = "models"
    # Alerts whose `severity` label is one of these are informational (kube-prometheus' `info`, the
    # heartbeat's `none`): a model (TRM, LLM) never remediates them; the operator's runbook entries
    # and rule annotations still may. [] turns it off.
    informational_severities: list[str] = Field(default_factory=lambda: ["info", "none"])

    @field_validator("informational_severities")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:  # compared case-insensitively: kept in one spelling
        return [s.strip().lower() for s in v]

    def informational(self, alert_labels: dict[str, str]) -> str | None:
        """The alert's severity when it is one of ``informational_severities`` (case-insensitive)."""
        sev = (alert_labels.get("severity") or "").strip().lower()
        return sev if sev and sev in self.informational_severities else None

    @model_validator(mode="after")
    def _known_functions(self) -> "Policy":
        known = set(catalog.function_names())
        for name in list(self.functions) + list(self.namespaces.harmless):
            if name not in known:
                raise ValueError(f"policy names unknown function {name!r}; known: {', '.join(sorted(known))}")
        return self

    # ------------------------------------------------------------------ per function
    def _fn(self, name: str) -> FunctionPolicy:
        return self.functions.get(name) or FunctionPolicy()

    def enabled(self, name: str) -> bool:
        v = self._fn(name).enabled
        return self.defaults.enabled if v is None else v

    def disabled_reason(self, name: str) -> str | None:
        """Why ``name`` may not run at all (None: it is enabled). The gate and the functions both
        give this reason, so an operator reads why a function is off the same way in both."""
        if self.enabled(name):
            return None
        if self._fn(name).enabled is False:
            return f"{name} is disabled by the policy"
        return f"{name} is not enabled by the policy (not enabled: true under functions, and defaults.enabled is false)"

    def min_confidence(self, name: str) -> float:
        v = self._fn(name).min_confidence
        return self.defaults.min_confidence if v is None else v

    def cooldown(self, name: str) -> float:
        v = self._fn(name).cooldown_seconds
        return self.defaults.cooldown_seconds if v is None else v

    def mode_for(self, name: str) -> Mode:
        return strictest(self.mode, self._fn(name).mode)

    def namespace_refusal(self, spec: catalog.FunctionSpec, namespace: str | None) -> str | None:
        """Why ``spec`` may not run in ``namespace`` (None: it may). The gate and the functions
        both ask this, so the agent and the point of action read the namespace lists one way."""
        nsp = self.namespaces
        if namespace in nsp.deny:
            return f"namespace {namespace} is denied by the policy"
        if spec.mutating and spec.name not in nsp.harmless:
            if namespace in nsp.deny_mutating:
                return f"{spec.name} is not allowed in namespace {namespace}"
            if nsp.allow and namespace not in nsp.allow:
                return f"{spec.name}: namespace {namespace} is not in the policy's allow list"
        return None

    def with_overrides(self, **changes: Any) -> "Policy":
        """A copy with top-level fields replaced (nested models may be given as dicts)."""
        doc = self.model_dump()
        for k, v in changes.items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = {**doc[k], **v}
            else:
                doc[k] = v
        return Policy.model_validate(doc)


class PolicyError(ValueError):
    pass


def default_policy_text() -> str:
    return (resources.files("agent_sre") / "data" / "policy.yaml").read_text()


_DEFAULT: Policy | None = None


def default() -> Policy:
    """The packaged policy (cached), without the DRY_RUN override."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = parse(default_policy_text(), "packaged policy.yaml")
    return _DEFAULT


def parse(text: str, origin: str = "policy") -> Policy:
    try:
        doc = yaml_config.load(text) or {}
    except yaml_config.YAMLError as e:
        raise PolicyError(f"{origin}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{origin}: expected a mapping at the top level")
    try:
        return Policy.model_validate(doc)
    except ValidationError as e:
        why = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'policy'}: {err['msg']}" for err in e.errors()[:5])
        raise PolicyError(f"{origin}: {why}") from None


def load(path: str | os.PathLike | None = None, dry_run: bool | None = None) -> Policy:
    """The policy from ``path`` (else the packaged default); ``dry_run`` (the ``DRY_RUN`` setting),
    when given, replaces the mode (true: dry_run, false: execute) unless the policy says suggest."""
    policy = parse(Path(path).read_text(), str(path)) if path else default()
    if dry_run is not None and policy.mode != "suggest":
        policy = policy.with_overrides(mode="dry_run" if dry_run else "execute")
    return policy


def configured(env: Mapping[str, str] | None = None, dry_run: bool | None = None) -> Policy:
    """``load`` of the file the ``POLICY_PATH`` setting names (else the packaged policy); a file
    that does not load raises ``SettingsError`` naming the setting."""
    from .settings import PolicySettings, SettingsError
    from .settings import load as load_settings

    path = load_settings(PolicySettings, env).policy_path
    try:
        return load(path, dry_run=dry_run)
    except (OSError, PolicyError) as e:
        raise SettingsError(f"POLICY_PATH={str(path)!r}: {e}") from None
