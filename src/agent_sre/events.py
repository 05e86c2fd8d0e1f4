"""The CloudEvents of agent-sre: remediation triggers and escalations (the agent's), result events
(the functions'), and what the closed loop says (outcomes, approvals, autonomy changes).

Event ids are derived from the decision (alert occurrence + function + parameters + plan step),
so a redelivered trigger carries the same id and a function that remembers ids acts once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .alerts import Alert
from .ce import CloudEvent, make_event
from .decision import Decision, PlanStep

TRIGGER = "io.homelab.agent-sre.lambda.trigger"
COMPLETED = "io.homelab.agent-sre.lambda.completed"
FAILED = "io.homelab.agent-sre.lambda.failed"
ESCALATION = "io.homelab.agent-sre.escalation"
RESULT_TYPES = (COMPLETED, FAILED)
# The closed loop (agent_sre.loop): a remediation's verified effect, a person's approval, a class's mode.
OUTCOME = "io.homelab.agent-sre.outcome"
APPROVAL_REQUESTED = "io.homelab.agent-sre.approval.requested"
APPROVAL_RESOLVED = "io.homelab.agent-sre.approval.resolved"
AUTONOMY_CHANGED = "io.homelab.agent-sre.autonomy.changed"
LOOP_TYPES = (OUTCOME, APPROVAL_REQUESTED, APPROVAL_RESOLVED, AUTONOMY_CHANGED)
SOURCE = "/agent-sre/remediation"
ESCALATION_SOURCE = "/agent-sre/gate"
LOOP_SOURCE = "/agent-sre/loop"


def _digest(*parts: Any) -> str:
    doc = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


def correlation_id(alert: Alert) -> str:
    """One id per alert occurrence, shared by every step of its plan and by the results."""
    return _digest("alert", alert.key())[:32]


def trigger_id(alert: Alert, step: PlanStep, index: int) -> str:
    return _digest("trigger", alert.key(), step.lambda_function, step.parameters, index)[:32]


def alert_doc(alert: Alert) -> dict[str, Any]:
    return alert.model_dump(mode="json", exclude_none=True)


def trigger_event(
    alert: Alert,
    decision: Decision,
    *,
    step_index: int = 0,
    parameters: dict[str, Any] | None = None,
    dry_run: bool = True,
) -> CloudEvent:
    """The trigger for plan step ``step_index`` (parameters override for steps fed by a result)."""
    step = decision.plan[step_index]
    params = parameters if parameters is not None else step.parameters
    concrete = step.model_copy(update={"parameters": params})
    corr = correlation_id(alert)
    data = {
        "lambda_function": step.lambda_function,
        "parameters": params,
        "plan": [s.model_dump(mode="json") for s in decision.plan],
        "step": step_index,
        "alert": alert_doc(alert),
        "reasoning": decision.reasoning,
        "confidence": decision.confidence,
        "method": decision.method.value,
        "triggered_by": f"agent-sre/{decision.method.value}",
        "correlation_id": corr,
        "dry_run": dry_run,
    }
    return make_event(
        TRIGGER,
        SOURCE,
        data,
        id=trigger_id(alert, concrete, step_index),
        subject=alert.name,
        # Knative Triggers filter on attributes, so the function name travels as an extension.
        extensions={"lambdafunction": step.lambda_function, "correlationid": corr},
    )


def escalation_event(alert: Alert, decision: Decision, reason: str, code: str,
                     incident: dict[str, Any] | None = None, shared: bool = False) -> CloudEvent:
    """An escalation whose id depends on the alert occurrence and *why* (``code``: step + refusal
    code), not on the reason's wording (which carries counts and ages), so re-sent alerts do not
    multiply escalations. ``incident``: for the one escalation of an incident (code
    ``incident:<id>``), its id and members, the alert being its root or lead. ``shared``: the id
    depends on ``code`` alone, so every alert escalated for the same cause (one storm-breaker
    episode) makes one event."""
    corr = correlation_id(alert)
    data = {
        "reason": reason,
        "alert": alert_doc(alert),
        "decision": decision.model_dump(mode="json"),
        "correlation_id": corr,
        "code": code,
    }
    if incident is not None:
        data["incident"] = incident
    eid = hashlib.sha256(json.dumps(["escalation", "" if shared else alert.key(), code]).encode()).hexdigest()[:32]
    return make_event(
        ESCALATION,
        ESCALATION_SOURCE,
        data,
        id=eid,
        subject=alert.name,
        extensions={"correlationid": corr},
    )


def escalation_reason(code: str) -> str:
    """An escalation's ``code`` without its plan step (``1:cooldown`` → ``cooldown``,
    ``outcome:failed`` stays, ``incident:<id>`` → ``incident``): what a metric or a route groups by."""
    step, _, rest = str(code).partition(":")
    if step in ("incident", "storm"):  # one escalation per incident / breaker episode: the id is not a reason
        return step
    return rest if step.isdigit() and rest else str(code) or "unknown"


def result_id(trigger_id: str) -> str:
    """A result's id follows from its trigger's, so a replayed reply carries the same id."""
    return _digest("result", trigger_id)[:32]


def result_event(trigger: CloudEvent, result: dict[str, Any]) -> CloudEvent:
    """A function's answer to ``trigger``: ``completed`` (success/noop) or ``failed`` (error/refused),
    from ``/agent-sre/functions/<name>``, about ``subject`` kind/namespace/name of its target;
    data is ``result`` plus the correlation and trigger ids."""
    attrs = trigger.get_attributes()
    asked = trigger.get_data() if isinstance(trigger.get_data(), dict) else {}
    fn = result.get("function") or attrs.get("lambdafunction") or "unknown"
    corr = attrs.get("correlationid") or asked.get("correlation_id")
    target = result.get("target")
    subject = None
    if isinstance(target, dict) and target.get("name"):
        subject = "/".join(str(target[k]) for k in ("kind", "namespace", "name") if target.get(k))
    return make_event(
        COMPLETED if result.get("status") in ("success", "noop") else FAILED,
        f"/agent-sre/functions/{fn}",
        {**result, "correlation_id": corr, "trigger_id": trigger.get_id()},
        id=result_id(trigger.get_id()),
        subject=subject,
        extensions={"lambdafunction": fn, "correlationid": corr},
    )


def loop_event(type: str, data: dict[str, Any], *, key: Any, subject: str | None = None,
               correlation: str | None = None) -> CloudEvent:
    """A closed-loop event (``LOOP_TYPES``); its id follows from ``key`` (what it is about), so
    saying the same thing twice yields the same id and the outbox sends it once."""
    return make_event(type, LOOP_SOURCE, data, id=_digest(type, key)[:32], subject=subject,
                      extensions={"correlationid": correlation})
