"""Alerts as they arrive: Alertmanager webhooks (version 4), alerts as Alertmanager's v2 API lists
them (``GET /api/v2/alerts``), and alert CloudEvents, split per alert.

Everything that enters agent-sre becomes a list of ``Alert``.  Parsing errors raise
``IntakeError`` with a reason a person can act on; the HTTP layer turns that into a 4xx.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ALERT_FIRED = "io.homelab.prometheus.alert.fired"
ALERT_RESOLVED = "io.homelab.prometheus.alert.resolved"
ALERT_TYPES = (ALERT_FIRED, ALERT_RESOLVED)


class IntakeError(ValueError):
    """Input that cannot be turned into alerts; the message says why."""


def _str_map(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError("must be an object of string keys and values")
    out = {}
    for k, val in v.items():
        if not isinstance(k, str):
            raise ValueError("keys must be strings")
        if isinstance(val, (dict, list)):
            raise ValueError(f"value of {k!r} must be a string, not {type(val).__name__}")
        out[k] = "" if val is None else str(val)
    return out


class Alert(BaseModel):
    """One Prometheus alert, as Alertmanager describes it."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None

    @field_validator("labels", "annotations", mode="before")
    @classmethod
    def _maps(cls, v: Any) -> dict[str, str]:
        return _str_map(v)

    @model_validator(mode="before")
    @classmethod
    def _v2_status(cls, v: Any) -> Any:
        """Alertmanager's v2 API gives ``status`` as ``{state, silencedBy, inhibitedBy}``: an alert it
        lists is firing (active, suppressed or unprocessed) unless its ``endsAt`` has passed."""
        if isinstance(v, dict) and isinstance(v.get("status"), dict):
            ends = _time(v.get("endsAt"))
            v = {**v, "status": "resolved" if ends is not None and ends <= datetime.now(timezone.utc) else "firing"}
        return v

    @field_validator("labels")
    @classmethod
    def _has_name(cls, v: dict[str, str]) -> dict[str, str]:
        if not v.get("alertname"):
            raise ValueError("labels.alertname is required")
        return v

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    def key(self) -> str:
        """Identity of this alert occurrence: fingerprint (or a label hash) plus startsAt."""
        return f"{self.fingerprint or label_fingerprint(self.labels)}@{self.startsAt or ''}"

    def label_values(self) -> set[str]:
        return set(self.labels.values())


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable stand-in for Alertmanager's fingerprint when the sender gave none."""
    doc = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


class AlertmanagerWebhook(BaseModel):
    """Alertmanager webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: str = "4"
    groupKey: str | None = None
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"] = "firing"
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str | None = None
    alerts: list[Alert] = Field(min_length=1)

    @field_validator("groupLabels", "commonLabels", "commonAnnotations", mode="before")
    @classmethod
    def _maps(cls, v: Any) -> dict[str, str]:
        return _str_map(v)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        if str(v) != "4":
            raise ValueError(f"unsupported Alertmanager webhook version {v!r} (expected \"4\")")
        return "4"


def _explain(e: ValidationError, what: str) -> IntakeError:
    parts = []
    for err in e.errors()[:5]:
        loc = ".".join(str(x) for x in err["loc"]) or what
        parts.append(f"{loc}: {err['msg']}")
    return IntakeError(f"invalid {what}: " + "; ".join(parts))


def _as_alert(doc: dict[str, Any], default_status: str | None = None) -> Alert:
    """One alert in any of the shapes we accept: an Alertmanager alert, or the origin project's
    flattened CloudEvent data ``{alertname, status, labels, annotations, ...}``."""
    d = dict(doc)
    labels = d.get("labels")
    if labels is None and "alertname" in d:
        labels = {}
    if isinstance(labels, dict) and "alertname" not in labels and isinstance(d.get("alertname"), str):
        labels = {**labels, "alertname": d["alertname"]}
    if isinstance(labels, dict) and isinstance(d.get("commonLabels"), dict):
        labels = {**d["commonLabels"], **labels}
    if labels is not None:
        d["labels"] = labels
    if not d.get("annotations") and isinstance(d.get("commonAnnotations"), dict):
        d["annotations"] = d["commonAnnotations"]
    if "status" not in d and default_status:
        d["status"] = default_status
    try:
        return Alert.model_validate(d)
    except ValidationError as e:
        raise _explain(e, "alert") from None


def parse_payload(doc: Any, default_status: str | None = None) -> list[Alert]:
    """Alerts from a decoded JSON document: a webhook group, a single alert, or a list of alerts."""
    if isinstance(doc, list):
        if not doc:
            raise IntakeError("empty list of alerts")
        if not all(isinstance(item, dict) for item in doc):
            raise IntakeError("a list of alerts must hold JSON objects (alerts or Alertmanager webhooks)")
        return [a for item in doc for a in parse_payload(item, default_status)]
    if not isinstance(doc, dict):
        raise IntakeError(f"expected a JSON object with alerts, got {type(doc).__name__}")
    if "alerts" in doc:
        try:
            hook = AlertmanagerWebhook.model_validate(doc)
        except ValidationError as e:
            raise _explain(e, "Alertmanager webhook") from None
        out = []
        for a in hook.alerts:
            # Alertmanager puts group-wide labels in every alert already; merge defensively for
            # senders that only fill commonLabels.
            labels = {**hook.commonLabels, **a.labels}
            annotations = {**hook.commonAnnotations, **a.annotations}
            out.append(a.model_copy(update={"labels": labels, "annotations": annotations}))
        return out
    if "labels" in doc or "alertname" in doc:
        return [_as_alert(doc, default_status)]
    raise IntakeError("JSON object has neither 'alerts' (Alertmanager webhook) nor 'labels' (one alert)")


def parse_json_bytes(body: bytes, default_status: str | None = None) -> list[Alert]:
    if not body or not body.strip():
        raise IntakeError("empty body")
    try:
        doc = json.loads(body)
    except RecursionError:
        raise IntakeError("body is not usable JSON: nested too deeply") from None
    except ValueError as e:  # not UTF-8, not JSON, or a number too long to convert
        raise IntakeError(f"body is not valid JSON: {e}") from None
    return parse_payload(doc, default_status)


def status_from_event_type(ce_type: str) -> str:
    if ce_type == ALERT_FIRED:
        return "firing"
    if ce_type == ALERT_RESOLVED:
        return "resolved"
    raise IntakeError(f"unsupported CloudEvent type {ce_type!r}; accepted: {', '.join(ALERT_TYPES)}")
