"""Where trigger events go: a Knative broker over HTTP (BROKER_URL), or the in-process broker of the
embedded default, which hands triggers straight to the remediation functions in dry-run."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

import urllib3

from . import ce, signing
from .ce import CloudEvent
from .events import TRIGGER, result_event

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker did not accept the event (network error or non-2xx); safe to retry."""


class Broker(Protocol):
    def send(self, event: CloudEvent) -> CloudEvent | None:
        """Deliver ``event``; return a reply event if the receiver answered with one."""


class HTTPBroker:
    """Binary-mode POST with the cloudevents SDK. A receiver may reply with a CloudEvent (Knative
    reply semantics, e.g. BROKER_URL pointing straight at a function service); it is returned.

    Sent with urllib3 (already here as the Kubernetes client's transport), not httpx: delivery is
    the agent's busiest loop, one POST per event, and a urllib3 POST measured about half the CPU
    of an httpx one on this machine (0.43 against 0.87 ms per POST to a loopback sink). ``maxsize`` keep-alive connections,
    one per delivery thread; no automatic retries, since the outbox owns retrying."""

    def __init__(self, url: str, timeout: float = 5.0, maxsize: int = 8):
        self.url = url
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=maxsize, retries=False,
                                        timeout=urllib3.Timeout(total=timeout))

    def send(self, event: CloudEvent) -> CloudEvent | None:
        headers, body = ce.to_binary(event)
        try:
            r = self.pool.request("POST", self.url, headers=headers, body=body)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise BrokerError(f"broker {self.url} unreachable: {e}") from e
        if r.status >= 300:
            raise BrokerError(f"broker {self.url} answered {r.status}: {r.data[:200].decode('utf-8', 'replace')}")
        if r.data and ce.is_cloudevent(r.headers):
            try:
                return ce.from_http(dict(r.headers), r.data)
            except ce.CloudEventError as e:
                log.warning("ignoring malformed reply from %s: %s", self.url, e)
        return None

    def close(self) -> None:
        self.pool.clear()


class InProcessBroker:
    """The embedded default: no cluster, no network. Triggers go to the remediation functions in
    dry-run, through the same checks as over HTTP (``functions.receive.Receiver``): the agent signs
    with ``agent_trust``'s key, the functions verify it and sign their results with a key of their
    own, which ``agent_trust`` accepts. Both key pairs are made for this broker and live in memory.
    The last ``KEEP`` events and replies are kept so the demo can show what happened (``total``
    counts them all: a long-running `serve` without a broker must not keep every one)."""

    KEEP = 1000

    def __init__(self) -> None:
        self.sent: deque[CloudEvent] = deque(maxlen=self.KEEP)
        self.replies: deque[CloudEvent] = deque(maxlen=self.KEEP)
        self.total = 0
        self.agent_trust, self._function_trust = signing.pair()
        self._receiver: Any = None

    def _functions(self) -> Any:
        if self._receiver is None:
            from . import policy
            from .functions.receive import Receiver
            from .functions.registry import handlers
            from .functions.runner import default_runner

            runner = default_runner()
            # Whatever the trigger says, the embedded broker never lets a write through.
            self._receiver = Receiver(runner, trust=self._function_trust, served=sorted(handlers()),
                                      policy=policy.load(runner.settings.policy_path, dry_run=True),
                                      dry_run_only=True)
        return self._receiver

    def send(self, event: CloudEvent) -> CloudEvent | None:
        self.sent.append(event)
        self.total += 1
        if event.get_type() != TRIGGER:
            return None
        try:
            reply, _ = self._functions().receive(event)
        except signing.Refused as e:
            # Over HTTP this is a 4xx and the broker's dead letter; here the demo shows the reason.
            data = ce.data_of(event) if isinstance(ce.data_of(event), dict) else {}
            reply = self._function_trust.sign(result_event(event, {
                "function": data.get("lambda_function") or event.get_attributes().get("lambdafunction"),
                "status": "refused", "action": "validate", "target": {}, "dry_run": True,
                "message": f"{e.reason}: {e.message}", "details": {"http_status": e.status}}))
        self.replies.append(reply)
        return reply

    def close(self) -> None:
        pass


def from_url(url: str | None) -> Broker:
    """``BROKER_URL``'s broker, or the in-process one when it is unset."""
    return HTTPBroker(url) if url else InProcessBroker()
