"""Stage 4: rules derived from the runbook (exact alert names and aliases, label cases)."""

from __future__ import annotations

from .. import runbook as rb
from ..alerts import Alert
from ..decision import Decision, Method, no_action, validated
from .base import Abstain


class RuleStage:
    name = "rules"

    def __init__(self, book: rb.Runbook | None = None):
        self.book = book or rb.load()

    def __call__(self, alert: Alert) -> Decision:
        found = self.book.case_for(alert)
        if found is None:
            entry = self.book.entry_for(alert.name)
            raise Abstain(f"runbook entry {entry.alert}: no case matches the alert's labels" if entry
                          else f"no runbook entry for {alert.name}")
        entry, case = found
        if not case.plan:
            d = no_action(f"runbook: {entry.alert} needs no remediation ({entry.description})")
            return d.model_copy(update={"method": Method.RULES})
        first = case.plan[0]
        params, missing = rb.resolve_step(first, alert)
        if missing:
            raise Abstain(f"runbook entry {entry.alert}: alert lacks labels for {', '.join(missing)}")
        plan = [{"lambda_function": first.function, "parameters": params}]
        for step in case.plan[1:]:
            later, _ = rb.resolve_step(step, alert)
            plan.append({"lambda_function": step.function, "parameters": later,
                         "from_previous": step.from_previous})
        sources = ", ".join(f"{k}={v}" for k, v in params.items())
        return validated(
            first.function,
            params,
            method=Method.RULES,
            reasoning=f"runbook {entry.alert}: {entry.description} ({sources})",
            confidence=1.0,
            plan=plan,
        )
