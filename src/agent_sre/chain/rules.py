"""Stage 2, the runbook: the operator's word, asked before any model.

An alert the runbook names (its alertname or an alias) is decided here, whatever a model would
say: the first case whose ``match`` holds gives the plan; a case with an empty plan means the
alert needs nothing; no matching case, or an alert without a label a parameter needs, gives no
action with the reason, so a person is told (the agent escalates it) and no model guesses. Only
alerts the runbook does not name are left to the models (the stage abstains).

The runbook file (``RUNBOOK_PATH``, else the packaged one) is read again when it changes, so a new
entry takes effect with the next alert; an edit that does not load is logged and the last good
runbook stays in force.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import runbook as rb
from ..alerts import Alert
from ..decision import Decision, Method, no_action, validated
from .base import Abstain

log = logging.getLogger(__name__)


def _no_action(reason: str) -> Decision:
    return no_action(reason).model_copy(update={"method": Method.RULES})


class RuleStage:
    name = "rules"

    def __init__(self, book: rb.Runbook | None = None, path: str | Path | None = None):
        # A book given by the caller is fixed; otherwise follow the file (a bad file fails here,
        # at start-up).
        self._path = None if book is not None else Path(path) if path else rb.default_path()
        self._book = book or rb.load(self._path)
        self._bad: tuple[str, str] | None = None

    @property
    def book(self) -> rb.Runbook:
        if self._path is not None:
            try:
                self._book = rb.load(self._path)  # cached per modification time
                self._bad = None
            except (OSError, ValueError) as e:
                why = (str(self._path), str(e))
                if why != self._bad:
                    log.error("runbook %s does not load (%s); keeping the last good runbook", self._path, e)
                    self._bad = why
        return self._book

    def __call__(self, alert: Alert) -> Decision:
        book = self.book
        entry = book.entry_for(alert.name)
        if entry is None:
            raise Abstain(f"no runbook entry for {alert.name}")
        found = book.case_for(alert)
        if found is None:
            return _no_action(f"runbook {entry.alert}: no case matches the alert's labels; "
                              "escalate to a human")
        _, case = found
        if not case.plan:
            return _no_action(f"runbook: {entry.alert} needs no remediation ({entry.description})")
        first = case.plan[0]
        params, missing = rb.resolve_step(first, alert)
        if missing:
            return _no_action(f"runbook {entry.alert}: the alert lacks labels for {', '.join(missing)}; "
                              "escalate to a human")
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
