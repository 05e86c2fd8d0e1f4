"""What the LLM is told: a system turn, the task and the alert as compact text, and the tools.

The system turn is exactly the sentence FunctionGemma's formatting guide puts before the function
declarations ("You are a model that can do function calling with the following functions"); the
server's chat template appends the declarations to it, so nothing else may go there. Ollama's
FunctionGemma template adds wording of its own; other servers (llama.cpp, vLLM) add nothing, and
without that sentence the model rarely calls. The task and the alert go in the user turn.

Tool names are offered without hyphens (``pod_restart`` for ``pod-restart``): some servers'
FunctionGemma parsers only match ``call:NAME`` when NAME is a word. ``catalog_name`` maps an
offered name back; every answer is still validated against the catalog.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import catalog
from ..alerts import Alert

SYSTEM_PROMPT = "You are a model that can do function calling with the following functions"

TASK = (
    "Choose the remediation for one Prometheus alert from a Kubernetes homelab. "
    "Call exactly one of the functions when it fits the alert, copying argument values verbatim from "
    "the alert's labels (object name and its namespace; for Flux objects the object's namespace is the "
    "exported_namespace label when present). Prefer the read-only check functions when the cause is "
    "unclear. If no function fits, do not call any function and answer with one short sentence. "
    "Never invent names or namespaces that are not in the alert."
)

MAX_VALUE = 200
MAX_TEXT = 1500


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
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{TASK}\n\n{alert_text(alert)}"}]


def offered_name(function: str) -> str:
    """The name a catalog function is offered under: a word, no hyphens."""
    return function.replace("-", "_")


def catalog_name(name: str) -> str:
    """The catalog function an answered name stands for (``pod_restart`` → ``pod-restart``); the
    name unchanged when none does (the caller then refuses it)."""
    names = catalog.function_names()
    if name in names:
        return name
    for fn in names:
        if offered_name(fn) == name:
            return fn
    return name


def tools() -> list[dict[str, Any]]:
    """One tool per catalog function, under its offered name (allowed values are in the
    descriptions as well as in ``enum``: some renderers drop ``enum``)."""
    out = []
    for t in catalog.tool_schemas():
        t = copy.deepcopy(t)
        t["function"]["name"] = offered_name(t["function"]["name"])
        out.append(t)
    return out
