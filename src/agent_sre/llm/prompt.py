"""What the LLM is told: a system prompt with the task, and the alert as compact text."""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..alerts import Alert

SYSTEM_PROMPT = (
    "You choose the remediation for one Prometheus alert from a Kubernetes homelab. "
    "Call exactly one of the provided functions when it fits the alert, copying argument values "
    "verbatim from the alert's labels (object name and its namespace; for Flux objects the object's "
    "namespace is the exported_namespace label when present). Prefer the read-only check functions when the "
    "cause is unclear. If no function fits, do not call any function and answer with one short sentence. "
    "Never invent names or namespaces that are not in the alert."
)

MAX_VALUE = 200
MAX_TEXT = 1500
_SKIP_ANNOTATIONS = ("lambda_function", "lambda_parameters", "runbook_url")


def _clip(v: str, n: int = MAX_VALUE) -> str:
    v = " ".join(str(v).split())
    return v if len(v) <= n else v[: n - 1] + "…"


def alert_text(alert: Alert) -> str:
    """``alert: Name (firing)`` + ``labels: k=v, ...`` + one line per useful annotation, bounded."""
    labels = ", ".join(f"{k}={_clip(v)}" for k, v in sorted(alert.labels.items()) if k != "alertname")
    lines = [f"alert: {alert.name} ({alert.status})", f"labels: {labels or '(none)'}"]
    for k in ("summary", "description", "message"):
        if alert.annotations.get(k):
            lines.append(f"{k}: {_clip(alert.annotations[k], 400)}")
    text = "\n".join(lines)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def messages(alert: Alert) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": alert_text(alert)}]


def tools() -> list[dict[str, Any]]:
    """One tool per catalog function (allowed values are in the descriptions as well as in ``enum``)."""
    return catalog.tool_schemas()
