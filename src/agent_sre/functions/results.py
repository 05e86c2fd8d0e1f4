"""Result CloudEvents: what a remediation function answers to a trigger.

type ``io.homelab.agent-sre.lambda.completed`` (success/noop) or ``.failed`` (error/refused),
source ``/agent-sre/functions/<name>``, extensions ``lambdafunction`` and ``correlationid``,
data ``{status, action, target, message, details, dry_run, correlation_id, trigger_id}``.
The event id is derived from the trigger id, so a replayed reply carries the same id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event
from cloudevents.core.v1.event import CloudEvent

TRIGGER = "io.homelab.agent-sre.lambda.trigger"
COMPLETED = "io.homelab.agent-sre.lambda.completed"
FAILED = "io.homelab.agent-sre.lambda.failed"
STATUSES = ("success", "error", "noop", "refused")


def source_of(function: str) -> str:
    return f"/agent-sre/functions/{function}"


def event_type_for(status: str) -> str:
    return COMPLETED if status in ("success", "noop") else FAILED


def result_id(trigger_id: str) -> str:
    doc = json.dumps(["result", trigger_id], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:32]


def result_data(result: dict[str, Any], *, correlation_id: str | None, trigger_id: str | None) -> dict[str, Any]:
    return {**result, "correlation_id": correlation_id, "trigger_id": trigger_id}


def result_event(function: str, result: dict[str, Any], *, trigger_id: str | None,
                 correlation_id: str | None) -> CloudEvent:
    attrs: dict[str, Any] = {
        "type": event_type_for(result.get("status", "error")),
        "source": source_of(function or "unknown"),
        "datacontenttype": "application/json",
        "lambdafunction": function or "unknown",
    }
    if trigger_id:
        attrs["id"] = result_id(trigger_id)
    if correlation_id:
        attrs["correlationid"] = correlation_id
    target = result.get("target") or {}
    if isinstance(target, dict) and target.get("name"):
        attrs["subject"] = "/".join(str(target[k]) for k in ("kind", "namespace", "name") if target.get(k))
    return CloudEvent(attrs, result_data(result, correlation_id=correlation_id, trigger_id=trigger_id))


def to_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    msg = to_binary_event(event)
    return dict(msg.headers), msg.body


def from_http(headers: dict[str, str], body: bytes) -> CloudEvent:
    """Binary or structured mode. Raises ValueError (or a cloudevents error) when malformed."""
    return from_http_event(HTTPMessage(headers={k.lower(): v for k, v in headers.items()}, body=body))
