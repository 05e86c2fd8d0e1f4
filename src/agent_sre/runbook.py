"""The runbook as data: alerts → plans, with the label each parameter is read from.

Loaded from YAML (the packaged ``data/runbook.yaml`` by default, or the ``RUNBOOK_PATH`` setting) and checked
against the catalog when loaded, so a typo in a function or parameter name fails at start-up, not
at 3 a.m.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import catalog, yaml_config
from .alerts import Alert
from .settings import RunbookSettings
from .settings import load as load_settings


class ParamSource(BaseModel):
    """Where one parameter comes from: the first present label of ``labels``, or a constant."""

    model_config = ConfigDict(extra="forbid")
    labels: list[str] = Field(default_factory=list)
    value: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {"labels": v}
        if isinstance(v, str):
            return {"labels": [v]}
        return v

    def resolve(self, labels: dict[str, str]) -> tuple[str | None, str | None]:
        """(value, label key it came from); the key is None for constants."""
        if self.value is not None:
            return self.value, None
        for k in self.labels:
            if labels.get(k):
                return labels[k], k
        return None, None


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    function: str
    parameters: dict[str, ParamSource] = Field(default_factory=dict)
    from_previous: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "Step":
        spec = catalog.get(self.function)
        known = set(spec.parameter_names())
        unknown = (set(self.parameters) | set(self.from_previous)) - known
        if unknown:
            raise ValueError(f"{self.function} has no parameter(s) {sorted(unknown)}; it takes {sorted(known)}")
        return self


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: dict[str, list[str | None] | str | None] = Field(default_factory=dict)
    plan: list[Step] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        for key, want in self.match.items():
            allowed = want if isinstance(want, list) else [want]
            have = labels.get(key)
            if not any((a is None and not have) or (a is not None and have == a) for a in allowed):
                return False
        return True


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    when: list[Case]

    @property
    def names(self) -> list[str]:
        return [self.alert, *self.aliases]


class Runbook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: int = 1
    alerts: list[Entry]

    @model_validator(mode="after")
    def _unique(self) -> "Runbook":
        seen: dict[str, str] = {}
        for e in self.alerts:
            for n in e.names:
                if n in seen:
                    raise ValueError(f"alert name {n!r} appears in two entries ({seen[n]} and {e.alert})")
                seen[n] = e.alert
        return self

    def entry_for(self, alertname: str) -> Entry | None:
        for e in self.alerts:
            if alertname in e.names:
                return e
        return None

    def case_for(self, alert: Alert | dict[str, str]) -> tuple[Entry, Case] | None:
        """The runbook's answer to "which case fits this alert?": the entry naming the alert and its
        first case whose ``match`` holds for the labels, or None. The one place this is decided
        (the rules stage, the agent's heartbeat check and the training data all ask here)."""
        labels = alert.labels if isinstance(alert, Alert) else alert
        entry = self.entry_for(labels.get("alertname", ""))
        if entry is None:
            return None
        case = next((c for c in entry.when if c.matches(labels)), None)
        return (entry, case) if case is not None else None

    def functions(self) -> set[str]:
        return {s.function for e in self.alerts for c in e.when for s in c.plan}


def default_path() -> Path:
    """``RUNBOOK_PATH``, else the packaged runbook."""
    packaged = Path(str(resources.files("agent_sre") / "data" / "runbook.yaml"))
    return load_settings(RunbookSettings).runbook_path or packaged


def parse(text: str) -> Runbook:
    try:
        doc = yaml_config.load(text)
    except yaml_config.YAMLError as e:  # a ValueError, as every other reason a runbook does not load
        raise ValueError(f"runbook is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("runbook must be a YAML mapping with an 'alerts' list")
    return Runbook.model_validate(doc)


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Runbook:
    return parse(Path(path).read_text())


def load(path: str | Path | None = None) -> Runbook:
    p = Path(path) if path else default_path()
    return _load_cached(str(p), p.stat().st_mtime)


def resolve_step(step: Step, alert: Alert) -> tuple[dict[str, str], list[str]]:
    """Parameters of ``step`` for ``alert`` and the names of those the alert could not supply."""
    params: dict[str, str] = {}
    missing: list[str] = []
    required = set(catalog.get(step.function).required_parameters())
    for name, src in step.parameters.items():
        value, _ = src.resolve(alert.labels)
        if value is None:
            if name in required:
                missing.append(name)
        else:
            params[name] = value
    return params, missing
