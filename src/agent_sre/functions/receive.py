"""The point of action: what a trigger must pass before a handler may touch the cluster.

In order, the first failure answers (a ``signing.Refused`` with its HTTP status and reason):

1. authenticity: signed by a key of ``AGENT_PUBLIC_KEYS`` (401 ``unsigned``, ``unknown-key``,
   ``bad-signature``) and fresh (403 ``stale``, ``future``);
2. the event: a trigger (400 ``wrong-type``), data an object whose function and correlation id
   agree with the extensions (400 ``malformed``), a function served here (404
   ``unknown-function``), valid parameters (422 ``invalid-parameters``), a boolean ``dry_run``;
3. the policy (``POLICY_PATH``, the file the agent's gate reads), again: the function enabled,
   the namespace not denied and allowed for what it does, a mode that lets it run (403
   ``policy``). A valid signature never overrides it. The trigger can only make a run *more*
   careful: it is dry-run when the trigger, ``DRY_RUN``, the policy's mode for the function or
   the local mode says so;
4. the id: one answered before gets that answer and nothing is done again; the same id with
   other content is 403 ``replayed``;
5. the handler, which checks the live state of its target (an unhealthy pod, a Flux object not
   Ready) and answers ``noop`` with the reason when there is nothing to fix.

The answer is a result event signed with ``FUNCTION_SIGNING_KEY``. Every refusal is counted
(``agent_sre_function_rejected_events_total{reason}``) and, with an audit log, recorded. The
HTTP app and the embedded broker both go through ``Receiver.receive``. Refusals are recorded at
most once a second per reason (``audit.Throttle``), so unauthenticated senders cannot fill the log.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import catalog, ce
from ..audit import Audit, Throttle
from ..ce import CloudEvent
from ..events import TRIGGER, result_event
from ..policy import Policy
from ..settings import FunctionSettings, SettingsError, parse_flag
from ..signing import Refused, Trust, content_digest
from . import metrics
from .runner import IdReused, Runner

log = logging.getLogger(__name__)


class Receiver:
    """``trust``: the functions' key and the agent keys they accept (None only in the local
    mode without keys: unsigned triggers are then accepted, and everything is a dry run);
    ``dry_run_only``: never write (the local mode and the embedded broker)."""

    def __init__(self, runner: Runner, *, trust: Trust | None, policy: Policy, served: list[str],
                 audit: Audit | None = None, dry_run_only: bool = False):
        if trust is None and not dry_run_only:
            raise ValueError("a receiver without keys can only dry-run")
        self.runner = runner
        self.trust = trust
        self.policy = policy
        self.served = served
        self.audit = audit
        self.dry_run_only = dry_run_only
        self._refusals = Throttle()

    def receive(self, event: CloudEvent, settings: FunctionSettings | None = None) -> tuple[CloudEvent, dict[str, Any]]:
        """The (signed) result event for ``event`` and its data; raises Refused."""
        try:
            return self._receive(event, settings)
        except Refused as e:
            self._refused(event, e)
            raise

    def _receive(self, event: CloudEvent, settings: FunctionSettings | None) -> tuple[CloudEvent, dict[str, Any]]:
        try:
            if self.trust is not None:
                self.trust.verify(event)
            data = ce.data_of(event)
        except ce.CloudEventError as e:
            raise Refused(400, "malformed", str(e)) from None
        if event.get_type() != TRIGGER:
            raise Refused(400, "wrong-type", f"expected type {TRIGGER}, got {event.get_type()!r}")
        if not isinstance(data, dict):
            raise Refused(400, "malformed", "trigger data must be a JSON object")
        attrs = event.get_attributes()
        name = data.get("lambda_function") or attrs.get("lambdafunction")
        for ext, key in (("lambdafunction", "lambda_function"), ("correlationid", "correlation_id")):
            if attrs.get(ext) and data.get(key) and attrs[ext] != data[key]:
                raise Refused(400, "malformed", f"extension {ext}={attrs[ext]!r} disagrees with "
                              f"data.{key}={data[key]!r}")
        if not name or name not in self.served:
            why = "no lambda_function given" if not name else (
                f"unknown function {name!r}" if name not in catalog.function_names()
                else f"this service serves only {', '.join(self.served)}")
            raise Refused(404, "unknown-function", why)
        params = data.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise Refused(422, "invalid-parameters", "parameters must be a JSON object")
        try:
            clean = catalog.validate_parameters(name, params or {})
            # A trigger that does not say is treated as dry-run (the safe side); one that says
            # something other than a boolean is refused, never executed.
            asked = True if data.get("dry_run") is None else parse_flag(data["dry_run"], "dry_run")
        except catalog.InvalidParameters as e:
            raise Refused(422, "invalid-parameters", str(e)) from None
        except SettingsError as e:
            raise Refused(400, "malformed", str(e)) from None
        dry_run = self._policy(name, clean) or asked or self.dry_run_only
        try:
            result = self.runner.run(name, clean, dry_run=dry_run, event_id=event.get_id(),
                                     correlation_id=data.get("correlation_id") or attrs.get("correlationid"),
                                     settings=settings, digest=content_digest(event))
        except IdReused as e:
            raise Refused(403, "replayed", str(e)) from None
        except catalog.UnknownFunction as e:
            raise Refused(404, "unknown-function", str(e)) from None
        except catalog.InvalidParameters as e:
            raise Refused(422, "invalid-parameters", str(e)) from None
        reply = result_event(event, result)
        if self.trust is not None:
            reply = self.trust.sign(reply)
        self._record("result", event, {"status": result["status"], "dry_run": result["dry_run"],
                                       "target": result.get("target"), "message": result.get("message")})
        return reply, result

    def _policy(self, name: str, params: dict[str, Any]) -> bool:
        """Refused(403) where the policy forbids the run; else whether it must be a dry run."""
        spec = catalog.get(name)
        off = self.policy.disabled_reason(name)
        if off:
            raise Refused(403, "policy", off)
        why = self.policy.namespace_refusal(spec, params.get("namespace"))
        if why:
            raise Refused(403, "policy", why)
        mode = self.policy.mode_for(name)
        if mode == "suggest":
            raise Refused(403, "policy", f"the policy's mode for {name} is suggest: nothing runs")
        return mode != "execute"

    def _refused(self, event: CloudEvent, e: Refused) -> None:
        metrics.REJECTED.labels(e.reason).inc()
        log.warning("refused %s %s (%s): %s", event.get_type(), event.get_id(), e.reason, e.message)
        skipped = self._refusals.allow(e.reason)
        if skipped is not None:
            self._record("refused", event, {"status": e.status, "reason": e.reason, "message": e.message,
                                            "not_recorded_since": skipped})

    def _record(self, kind: str, event: CloudEvent, doc: dict[str, Any]) -> None:
        if self.audit is None:
            return
        attrs = event.get_attributes()
        doc = {"id": event.get_id(), "type": event.get_type(), "source": event.get_source(),
               "lambdafunction": attrs.get("lambdafunction"), "keyid": attrs.get("signaturekeyid"), **doc}
        try:
            self.audit.append(kind, doc, correlation_id=attrs.get("correlationid"))
        except OSError as err:  # the audit must not decide whether a refusal is answered
            log.error("functions' audit log write failed: %s", err)
