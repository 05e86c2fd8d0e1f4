"""CloudEvents on HTTP, through the CNCF `cloudevents` SDK (2.x core API), in one place.

Every module that sends or receives CloudEvents goes through these helpers, so the wire format
(binary mode out, binary or structured mode in) is decided once.
"""

from __future__ import annotations

from typing import Any, Mapping

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

__all__ = ["CloudEvent", "make_event", "to_binary", "to_structured", "from_http", "CloudEventError"]

_FORMAT = JSONFormat()


class CloudEventError(ValueError):
    """A request that is not a valid CloudEvent; the message says why."""


def make_event(
    type: str,
    source: str,
    data: Any,
    *,
    id: str | None = None,
    subject: str | None = None,
    extensions: Mapping[str, str] | None = None,
) -> CloudEvent:
    attrs: dict[str, Any] = {"type": type, "source": source, "datacontenttype": "application/json"}
    if id:
        attrs["id"] = id
    if subject:
        attrs["subject"] = subject
    for k, v in (extensions or {}).items():
        if v is not None:
            attrs[k] = str(v)
    return CloudEvent(attributes=attrs, data=data)


def to_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    msg = ce_http.to_binary_event(event, _FORMAT)
    return dict(msg.headers), msg.body


def to_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    msg = ce_http.to_structured_event(event, _FORMAT)
    return dict(msg.headers), msg.body


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    return "ce-type" in lower or lower.get("content-type", "").startswith("application/cloudevents")


def from_http(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Parse a binary- or structured-mode CloudEvent; raise CloudEventError with the reason."""
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("content-type", "").startswith("application/cloudevents-batch"):
        raise CloudEventError("batched CloudEvents are not accepted; send one event per request")
    try:
        ev = ce_http.from_http(ce_http.HTTPMessage(headers=lower, body=body), _FORMAT)
    except Exception as e:  # the SDK raises several exception types for bad input
        raise CloudEventError(f"not a valid CloudEvent: {e}") from None
    return ev


def data_of(event: CloudEvent) -> Any:
    """Event data as JSON: dict/list, with bytes or str bodies decoded as JSON when possible."""
    import json

    data = event.get_data()
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8", errors="strict") if data else ""
        except UnicodeDecodeError as e:
            raise CloudEventError(f"CloudEvent data is not UTF-8 JSON: {e}") from None
    if isinstance(data, str):
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except RecursionError:
            raise CloudEventError("CloudEvent data is not usable JSON: nested too deeply") from None
        except ValueError as e:  # not JSON, or a number too long to convert
            raise CloudEventError(f"CloudEvent data is not JSON: {e}") from None
    return data
