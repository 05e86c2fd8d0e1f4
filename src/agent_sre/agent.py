"""The pipeline: alerts → decisions → gate → trigger events → results (→ next plan step).

One path for every alert and every result, on an ``Outbox``:

* alerts are committed to its inbox before anything else; each decision's events are enqueued in
  the same transaction that marks its alerts done, and the plan of every trigger is saved with
  them (so every result finds its alert and decision);
* a result event finds its plan, runs the next step through ``_step`` (the same gate → duplicate
  → refuse → suggest → trigger sequence as step 0), and is recorded with the events that follow
  from it in one transaction. A restart (even after kill -9) resumes where it stopped and never
  sends a second event id.

With a closed loop (``loop``, agent_sre.loop) the agent also asks it, on the same paths, about
each alert (suppressed inside a decay window? resolved: verified?), each step the gate held back
for its class (an approval request), and each result (an outcome, or a watch on the alert);
what it says is committed with what caused it. People's approvals come back through
``run_approved`` and the loop's own findings through ``emit``.

Delivery is the one thing that differs:

* background (``agent-sre serve``, an outbox on disk): a ``Worker`` thread sends with retries;
* inline (no outbox given: the embedded demo, tests): a temporary outbox, and the events of a
  call are sent before it returns, in order, replies handled at once, their results and the
  later steps added to the call's outcomes.

Every event is signed with the agent's key as it is sent (each attempt: a retry is fresh), and a
result event drives nothing until its signature, by a key the agent trusts for the functions,
and its freshness are checked (``handle_result`` raises ``signing.Refused`` otherwise).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from . import ce, runbook
from .alerts import Alert, label_fingerprint
from .audit import Audit, Throttle
from .broker import Broker, InProcessBroker
from .catalog import validate_parameters
from .ce import CloudEvent
from .chain.chain import Chain
from .decision import Decision, InvalidProposal
from .events import (ESCALATION, RESULT_TYPES, TRIGGER, correlation_id, escalation_event, escalation_reason,
                     trigger_event)
from .gate import Gate, Verdict
from .metrics import Metrics
from .outbox import Outbox, Retry, Worker
from .signing import KeyRing, Refused, SigningKey, Trust, verify

if TYPE_CHECKING:
    from .incidents.desk import Change, Desk, Step
    from .loop import Loop

log = logging.getLogger(__name__)


_NO_PLAN = "no-plan"  # _on_reply: a verified result that no saved plan waits for (a one-step plan)


@dataclass
class Outcome:
    """Everything that happened to one alert, for the HTTP answer, the CLI and the demo."""

    alert: Alert
    decision: Decision
    verdict: Verdict | None = None  # step 0
    events: list[CloudEvent] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)  # later plan steps
    suppressed: str | None = None  # why the closed loop held this alert back (a decay window)
    incident: dict[str, Any] | None = None  # what the incident desk made of it (role, root, state)

    def summary(self) -> dict[str, Any]:
        return {
            "alertname": self.alert.name,
            "status": self.alert.status,
            "correlation_id": correlation_id(self.alert),
            "decision": self.decision.model_dump(mode="json"),
            "verdict": self.verdict.model_dump(mode="json") if self.verdict else None,
            "events": [{"id": e.get_id(), "type": e.get_type(),
                        "lambdafunction": e.get_attributes().get("lambdafunction")} for e in self.events],
            "results": self.results,
            "error": self.error,
            "suppressed": self.suppressed,
            "incident": self.incident,
        }

    def merge(self, later: "Outcome") -> None:
        """Add what a result of this alert's plan led to (inline delivery)."""
        self.results += later.results
        self.verdicts += later.verdicts
        self.events += later.events
        self.error = self.error or later.error


def fingerprint(alert: Alert) -> str:
    return alert.fingerprint or label_fingerprint(alert.labels)


def needs_nothing(alert: Alert) -> bool:
    """The runbook's case for this alert has an empty plan (a heartbeat such as Watchdog)."""
    try:
        found = runbook.load().case_for(alert)
    except (OSError, ValueError):
        return False
    return found is not None and not found[1].plan


class Agent:
    def __init__(self, chain: Chain | None = None, broker: Broker | None = None, gate: Gate | None = None,
                 dry_run: bool = True, *, outbox: Outbox | None = None, audit: Audit | None = None,
                 retry: Retry | None = None, delivery_concurrency: int = 4, poll_s: float = 0.5,
                 trust: Trust | None = None, own_keys: KeyRing | None = None,
                 loop: "Loop | None" = None, metrics: Metrics | None = None,
                 incidents: "Desk | None" = None, clock: Callable[[], float] = time.time):
        """``trust``: the agent's signing key and the functions' public keys (default: the
        embedded broker's pair; with another broker, a fresh key and no trusted function, so no
        result is accepted). ``own_keys``: earlier agent public keys, accepted on dead letters.
        ``loop``: the closed loop (agent_sre.loop), fed by this agent's alerts and results and
        consulted by its gate. ``incidents``: the incident desk between chain and gate (None: every
        alert on its own); ``clock``: its time."""
        self.chain = chain or Chain()
        self.broker = broker or InProcessBroker()
        self.trust = trust or getattr(self.broker, "agent_trust", None) or Trust(SigningKey.generate(), KeyRing())
        mine = KeyRing([self.trust.key.public]) if self.trust.key is not None else KeyRing()
        # Dead letters are events the broker gave up on: the agent's own triggers and the functions' results.
        self.dead_letter_keys = self.trust.peers.union(mine, *([own_keys] if own_keys else []))
        self.gate = gate or Gate(dry_run=dry_run)
        self.inline = outbox is None
        self.outbox = outbox or Outbox.temporary()
        self.audit = audit
        self._refusals = Throttle()
        self.metrics = metrics or (loop.metrics if loop is not None else Metrics())
        self.loop = loop
        if loop is not None:  # the loop is fed by this agent and feeds its gate
            loop.bind(self)
            self.gate.autonomy = loop.autonomy
        self.worker = Worker(self.outbox, send=self._send, on_reply=self._on_reply, resume=self._resume,
                             on_dead=self._on_dead, on_delivered=self._on_delivered, retry=retry,
                             concurrency=0 if self.inline else delivery_concurrency, poll_s=poll_s)
        # Inline there is no worker to take a deferred alert up again, so nothing waits: the
        # desk's settle and release windows are 0.
        self.incidents = incidents
        self.clock = clock
        self.feeds: list[Any] = []  # started and stopped with the agent (Alertmanager's API reader)
        self._released: list[tuple[int, str]] = []
        if incidents is not None and self.inline:
            incidents.settle_s = incidents.release_s = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Agent":
        if self.incidents is not None and not self.inline:
            self._restore_incidents()
        for stage in self.chain.stages:
            warm = getattr(stage, "warm", None)
            if warm is not None:
                warm()
        if not self.inline:
            self.worker.start()
        if self.loop is not None:
            self.loop.start()
        for feed in self.feeds:
            feed.start()
        return self

    def stop(self) -> None:
        for feed in self.feeds:
            feed.stop()
        if self.loop is not None:
            self.loop.stop()
        self.worker.stop()

    # ------------------------------------------------------------------ audit
    def _record(self, items: list[tuple[str, dict[str, Any], str | None, str | None]]) -> None:
        if self.audit is None or not items:
            return
        try:
            self.audit.append_many(items)
        except OSError as e:  # the audit must not stop remediation, but it must be loud
            log.error("audit log write failed: %s", e)

    @staticmethod
    def _ev_doc(ev: CloudEvent) -> dict[str, Any]:
        a = ev.get_attributes()
        data = ce.data_of(ev) or {}
        doc = {"id": ev.get_id(), "type": ev.get_type(), "lambdafunction": a.get("lambdafunction")}
        for k in ("parameters", "step", "dry_run", "reason", "code"):
            if k in data:
                doc[k] = data[k]
        return doc

    # ------------------------------------------------------------------ alerts in
    def handle_alerts(self, alerts: list[Alert]) -> list[Outcome]:
        ids = self.outbox.accept(alerts)  # committed: from here on the alerts cannot be lost
        try:  # held (leases renewed) until decided and committed, or failed
            self._record([("alert", {"inbox_id": i, "alert": a.model_dump(mode="json", exclude_none=True)},
                           correlation_id(a), a.name) for i, a in zip(ids, alerts)])
            outs = self._process(ids, alerts)
        finally:
            self.outbox.let_go("inbox", ids)
        self._deliver(outs)
        return outs

    def _process(self, ids: list[int], alerts: list[Alert], *, received: bool = True) -> list[Outcome]:
        """Decide ``alerts`` (inbox rows ``ids``) and commit what follows. ``received``: just arrived
        (they update the incident view); False for rows taken up again (a settle window ran out,
        a restart)."""
        later: list[Outcome] = []  # alerts outside this batch the incident desk decided meanwhile
        try:
            t0 = time.perf_counter()
            decisions = self._decide(alerts, received)
            took = time.perf_counter() - t0
            done, waiting = list(ids), []
            # The closed loop looks at each alert once: a resolved one closes its verification, a
            # firing one inside a decay window (or the agent's own escalation) is held back.
            looked = [self.loop.intake(a) if self.loop is not None else ([], None) for a in alerts]
            if self.incidents is None:
                outs = [self._act(a, d, lk) for a, d, lk in zip(alerts, decisions, looked)]
            else:
                # A suppressed alert skips the desk: settling it would only delay the same answer
                # (and it is our own remediation's target, already watched).
                desk = [k for k, (_, why) in enumerate(looked) if why is None]
                steps, changes = self.incidents.plan([(alerts[k], decisions[k]) for k in desk], self.clock(),
                                                     fresh=received, rows=[ids[k] for k in desk])
                step_of = dict(zip(desk, steps))
                outs = [self._incident_step(a, d, step_of[k], looked[k]) if k in step_of
                        else self._act(a, d, looked[k]) for k, (a, d) in enumerate(zip(alerts, decisions))]
                waiting = [(ids[k], outs[k]) for k, st in step_of.items() if st.what == "defer"]
                done = [i for k, i in enumerate(ids) if k not in step_of or step_of[k].what != "defer"]
                later, extra_done = self._changes(changes)
                done += extra_done
            # Every plan a trigger went out for is saved: its results (after a restart too) find
            # their alert and decision, and a multi-step plan its next step.
            fresh = set(self.outbox.finish(done, [e for o in outs for e in o.events], self._plans(outs)))
            for i, o in waiting:
                self.outbox.defer(i, float((o.incident or {}).get("until") or 0))
        except Exception as e:  # noqa: BLE001 - left pending: the worker retries them
            log.exception("processing %d alerts failed; they stay in the inbox", len(alerts))
            for i in ids:
                try:
                    self.outbox.fail_alert(i, f"{type(e).__name__}: {e}")
                except Exception:  # noqa: BLE001
                    pass
            return [Outcome(a, Decision(reasoning="processing failed; will be retried"), error=str(e))
                    for a in alerts]
        rec = []
        for o in outs + later:
            if o.incident is not None and o.incident.get("quiet"):
                continue  # a re-sent alert held again: recorded the first time
            corr, name = correlation_id(o.alert), o.alert.name
            self.metrics.decision_seconds.observe(took)
            doc = {"decision": o.decision.model_dump(mode="json"),
                   "verdict": o.verdict.model_dump(mode="json") if o.verdict else None}
            if o.incident is not None:
                doc["incident"] = o.incident
            # a decision is final (acted, held, escalated); waiting is an incident record
            waits = o.incident is not None and o.incident.get("step") in ("defer", "release", "drop")
            rec.append(("incident" if waits else "decision", doc, corr, name))
            rec += [("event", self._ev_doc(e), corr, name) for e in o.events if e.get_id() in fresh]
            self._count(o.events, fresh)
            log.info("decision %s", _line({
                "event": "decision", "alertname": name, "status": o.alert.status, "correlation_id": corr,
                "stage": o.decision.method.value, "function": o.decision.lambda_function,
                "parameters": o.decision.parameters, "confidence": round(o.decision.confidence, 4),
                "why": o.decision.reasoning, "verdict": o.verdict.code if o.verdict else None,
                "mode": o.verdict.mode if o.verdict else None, "suppressed": o.suppressed,
                "incident": (o.incident or {}).get("step"),
                "events": [e.get_type().rsplit(".", 1)[-1] for e in o.events], "seconds": round(took, 4)}))
        self._record(rec)
        if self._released:
            rows, self._released = self._released, []
            self._resume(rows)
        return outs

    def _decide(self, alerts: list[Alert], received: bool) -> list[Decision]:
        """The chain's decisions; an alert taken up after its settle window keeps the decision it
        got when it arrived (the chain decides an alert alone: asking again would give the same)."""
        known = [None if received or self.incidents is None else self.incidents.decision_for(a) for a in alerts]
        todo = [a for a, d in zip(alerts, known) if d is None]
        fresh = iter(self.chain.decide_many(todo) if todo else [])
        return [d if d is not None else next(fresh) for d in known]

    @staticmethod
    def _plans(outs: list[Outcome]) -> list[tuple[str, str, str]]:
        return [(correlation_id(o.alert), o.alert.model_dump_json(exclude_none=True), o.decision.model_dump_json())
                for o in outs if any(e.get_type() == TRIGGER for e in o.events)]

    def _count(self, events: list[CloudEvent], fresh: set[str]) -> None:
        """Metrics of newly enqueued triggers and escalations."""
        for e in events:
            if e.get_id() not in fresh:
                continue
            data = ce.data_of(e) or {}
            if e.get_type() == TRIGGER:
                self.metrics.triggers.labels(data.get("lambda_function") or "unknown",
                                             "dry_run" if data.get("dry_run") else "execute").inc()
            elif e.get_type() == ESCALATION:
                self.metrics.escalations.labels(escalation_reason(data.get("code") or "")).inc()

    def _resume(self, rows: list[tuple[int, str]]) -> None:
        """Alerts accepted by a process that died before deciding: decide them now."""
        alerts, ids = [], []
        for i, doc in rows:
            try:
                alerts.append(Alert.model_validate_json(doc))
                ids.append(i)
            except ValueError as e:
                self.outbox.fail_alert(i, f"stored alert unreadable: {e}", max_attempts=1)
        if alerts:
            log.info("taking up %d accepted alerts", len(alerts))
            self._deliver(self._process(ids, alerts, received=False))

    def _act(self, alert: Alert, decision: Decision, looked: tuple[list[CloudEvent], str | None]) -> Outcome:
        """``looked``: what the closed loop said of the alert (``Loop.intake``: its events, and why it
        is suppressed)."""
        out = Outcome(alert, decision, events=list(looked[0]), suppressed=looked[1])
        if out.suppressed:
            return out  # inside a decay window (or the agent's own escalation): nothing more
        if decision.action:
            self._step(out, 0)
        elif alert.firing and not needs_nothing(alert):
            # Nothing in the catalog fits: a person should look.
            out.events.append(escalation_event(alert, decision, decision.reasoning or "no remediation fits",
                                               "no_action"))
        return out

    # ------------------------------------------------------------------ incidents
    def _incident_step(self, alert: Alert, decision: Decision, step: "Step",
                       looked: tuple[list[CloudEvent], str | None]) -> Outcome:
        """What the incident desk said about one alert of the batch, as an Outcome."""
        role = step.role
        doc: dict[str, Any] = {"step": step.what, "role": role.role if role else None, "reason": step.reason}
        if role is not None and role.incident:
            doc["incident"] = role.incident
        if step.what == "decide":
            out = self._act(alert, decision, looked)
            out.incident = doc if role is not None and role.role != "alone" else None
            return out
        if step.what == "hold":
            root = step.root
            doc.update(root=fingerprint(root) if root else (role.root if role else None),
                       root_alert=root.name if root else None, quiet=step.quiet)
            held = decision.model_copy(update={"reasoning": f"held: {step.reason}"
                                               + (f" (proposed: {decision.reasoning})" if decision.reasoning else "")})
            return Outcome(alert, held, incident=doc)
        if step.what == "escalate":
            members = [{"alertname": m.name, "fingerprint": fingerprint(m), "labels": m.labels} for m in step.members]
            doc["members"] = len(members)
            reason = f"one escalation for incident {step.incident}: {step.reason}"
            ev = escalation_event(alert, decision, reason, f"incident:{step.incident}",
                                  incident={"id": step.incident, "role": role.role if role else None,
                                            "members": members})
            return Outcome(alert, decision, events=[ev], incident=doc)
        if step.what == "defer":
            doc["until"] = step.until
            # The answer still says which mode the gate is in; its verdict on the alert comes when
            # the settle window ends.
            return Outcome(alert, decision, incident=doc,
                           verdict=Verdict(allowed=False, code="deferred", mode=self.gate.mode,
                                           reason=f"deferred: {step.reason}"))
        return Outcome(alert, decision, incident=doc)

    def _changes(self, changes: list["Change"]) -> tuple[list[Outcome], list[int]]:
        """Alerts outside the batch: a waiting one turned out to be a symptom (its inbox row is done,
        held), or a held one's root resolved (it goes back to the inbox, decided on its own after
        the release window). Returns outcomes to record and inbox rows now done."""
        outs, done = [], []
        for c in changes:
            if c.what == "hold":
                doc = {"step": "hold", "role": "symptom", "reason": c.reason,
                       "root": fingerprint(c.root) if c.root else None, "root_alert": c.root.name if c.root else None}
                outs.append(Outcome(c.alert, Decision(reasoning=f"held: {c.reason}"), incident=doc))
                if c.row is not None:
                    done.append(c.row)
            elif c.what == "release" and self.incidents is not None:
                row = self.outbox.accept([c.alert])[0]
                self.outbox.defer(row, c.until or 0.0)
                self.incidents.waiting(fingerprint(c.alert), row)
                if self.inline:  # no worker to take it up: decide it now
                    self._released.append((row, c.alert.model_dump_json(exclude_none=True)))
                outs.append(Outcome(c.alert, Decision(reasoning=f"released: {c.reason}"),
                                    incident={"step": "release", "reason": c.reason, "until": c.until}))
        return outs, done

    def sync_incidents(self, alerts: list[Alert]) -> None:
        """Alertmanager's list of active alerts (its v2 API): the view learns of roots and
        resolutions it has no webhook for yet; waiting alerts that turn out to be symptoms are held,
        symptoms of a resolved root released."""
        if self.incidents is None:
            return
        later, done = self._changes(self.incidents.sync(alerts, self.clock()))
        if done:
            self.outbox.finish(done, [], [])
        self._record([("decision" if (o.incident or {}).get("step") == "hold" else "incident",
                       {"decision": o.decision.model_dump(mode="json"), "verdict": None, "incident": o.incident},
                       correlation_id(o.alert), o.alert.name) for o in later])

    def _restore_incidents(self, hours: float = 24.0) -> None:
        """After a restart: the incident view from the inbox's recent alerts."""
        assert self.incidents is not None
        rows = []
        for i, doc, received, done in self.outbox.recent_alerts(self.clock() - hours * 3600):
            try:
                rows.append((i, Alert.model_validate_json(doc), received, done))
            except ValueError:
                continue
        self.incidents.restore(rows)

    # ------------------------------------------------------------------ one plan step
    def _step(self, out: Outcome, index: int, params: dict[str, Any] | None = None,
              observed: dict[str, Any] | None = None, approved: bool = False) -> None:
        """Plan step ``index`` of ``out.decision``: step 0 with the decided parameters, step n with
        those taken from ``observed`` (the result of step n-1). The gate checks it; then a
        duplicate re-enqueues the trigger it reserved the first time (a no-op if it is queued
        already, the repair if a crash came between the reservation and the commit), a refusal
        or suggest mode escalates (or, when only its class's mode held it back, asks for a
        person's approval), and an allowed step adds its trigger. ``approved``: a person approved
        it. Events go to ``out.events``; the caller commits them with what caused them."""
        alert, decision = out.alert, out.decision
        verdict = self.gate.check(alert, decision, step_index=index, parameters=params, observed=observed,
                                  previous=decision.plan[index - 1].parameters if index else None,
                                  approved=approved)
        self.metrics.verdicts.labels(verdict.code, verdict.mode).inc()
        if index == 0:
            out.verdict = verdict
        else:
            out.verdicts.append(verdict)
        where = f" step {index}" if index else ""
        if not (verdict.allowed or verdict.duplicate):
            if verdict.code == "storm":
                # One escalation per storm-breaker episode, not one per refused alert: the breaker
                # says something bigger is wrong; every refusal is still in the audit log.
                episode = int(self.clock() // self.gate.policy.storm.window_seconds)
                out.events.append(escalation_event(alert, decision, f"storm breaker open{where}: {verdict.reason}; "
                                                   "further refusals in this window are in the audit log",
                                                   f"storm:{episode}", shared=True))
                return
            out.events.append(escalation_event(alert, decision, f"gate refused{where}: {verdict.reason}",
                                               f"{index}:{verdict.code}"))
            return
        step = decision.plan[index]  # the gate found it
        params = step.parameters if params is None else params
        if verdict.duplicate:
            prior = verdict.prior or {}
            same = (prior.get("function"), prior.get("params")) == (step.lambda_function, params)
            if same and prior.get("mode") != "suggest":
                out.events.append(trigger_event(alert, decision, step_index=index, parameters=params,
                                                dry_run=prior.get("mode") != "execute"))
            elif same and verdict.approvable and self.loop is not None:  # still waiting: the same request
                out.events += self.loop.request_approval(alert, decision, index, params, observed, verdict)
        elif verdict.mode == "suggest" and verdict.approvable and self.loop is not None:
            out.events += self.loop.request_approval(alert, decision, index, params, observed, verdict)
        elif verdict.mode == "suggest":
            # Decide and report, never trigger: the suggestion goes out as an escalation.
            out.events.append(escalation_event(alert, decision, f"suggest-only: would run{where} "
                                               f"{step.lambda_function}({params})", f"{index}:suggest"))
        else:
            # A step after a dry-run step stays dry-run.
            dry_run = verdict.mode == "dry_run" or bool((observed or {}).get("dry_run"))
            out.events.append(trigger_event(alert, decision, step_index=index, parameters=params,
                                            dry_run=dry_run))

    # ------------------------------------------------------------------ delivery
    def _deliver(self, outs: list[Outcome]) -> None:
        """Background: wake the worker. Inline: send the events of ``outs`` now (and, through the
        replies, those of later steps), adding what the replies led to into ``outs``."""
        if not self.inline:
            self.worker.kick()
            return
        ids = [e.get_id() for o in outs for e in o.events]
        if not ids:
            return
        by_corr = {correlation_id(o.alert): o for o in outs}
        for sent in self.worker.deliver(self.outbox.claim_events(len(ids), ids)):
            o = by_corr.get(sent.event.get_attributes().get("correlationid"))
            if o is None:
                continue
            if sent.error is not None:
                o.error = sent.error
            if isinstance(sent.handled, Outcome):
                o.merge(sent.handled)
            elif sent.handled is _NO_PLAN:
                o.results.append(ce.data_of(sent.reply) or {})  # the (verified) result of a one-step plan

    # ------------------------------------------------------------------ worker callbacks
    def _send(self, event: CloudEvent) -> CloudEvent | None:
        return self.broker.send(self.trust.sign(event))  # signed now: each attempt carries its own time

    def _on_reply(self, reply: CloudEvent) -> Any:
        """The Outcome a result led to, ``_NO_PLAN`` for a verified result no plan waits for,
        None for anything else (a refused result included)."""
        if reply.get_type() in RESULT_TYPES:
            try:
                out = self.handle_result(reply)
            except Refused as e:  # recorded by handle_result; the trigger itself was delivered
                log.warning("reply %s refused (%s): %s", reply.get_id(), e.reason, e.message)
                return None
            return _NO_PLAN if out is None else out
        return None

    def _on_dead(self, event: CloudEvent, error: str, attempts: int) -> None:
        data = ce.data_of(event) or {}
        self._record([("dead_letter", {**self._ev_doc(event), "error": error, "attempts": attempts},
                       data.get("correlation_id"), event.get_attributes().get("subject"))])

    def _on_delivered(self, done: list[tuple[CloudEvent, int]]) -> None:
        self._record([("delivery", {"id": ev.get_id(), "type": ev.get_type(), "attempts": n},
                       ev.get_attributes().get("correlationid"), ev.get_attributes().get("subject"))
                      for ev, n in done])
        if self.loop is not None:
            self.loop.delivered([ev for ev, _ in done])

    # ------------------------------------------------------------------ results in
    def _plan(self, corr: str | None) -> tuple[Alert, Decision] | None:
        row = self.outbox.get_plan(corr) if corr else None
        if row is None:
            return None
        return Alert.model_validate_json(row[0]), Decision.model_validate_json(row[1])

    def authenticate(self, event: CloudEvent, *, dead_letter: bool = False) -> None:
        """Raise Refused unless ``event`` is signed by a key trusted for it: a result by the
        functions' (and fresh), a dead letter by the functions' or the agent's own (any age: the
        broker may give up long after the event was signed). The refusal is recorded."""
        try:
            if dead_letter:
                verify(event, self.dead_letter_keys, max_age_s=None)
            else:
                self.trust.verify(event)
        except Refused as e:
            skipped = self._refusals.allow(e.reason)
            if skipped is not None:
                a = event.get_attributes()
                self._record([("refused", {"id": event.get_id(), "type": event.get_type(),
                                           "source": event.get_source(), "status": e.status, "reason": e.reason,
                                           "message": e.message, "keyid": a.get("signaturekeyid"),
                                           "dead_letter": dead_letter, "not_recorded_since": skipped},
                               a.get("correlationid"), None)])
            raise

    def handle_result(self, event: CloudEvent) -> Outcome | None:
        """A function's result event (from the broker): once its signature is checked (Refused
        otherwise), record it and run the next step if due."""
        self.authenticate(event)
        data = ce.data_of(event) or {}
        if not isinstance(data, dict):
            data = {}
        corr = data.get("correlation_id")  # from the signed data, never from an unsigned extension
        found = self._plan(corr)
        self.metrics.results.labels(str(data.get("function") or "unknown"), str(data.get("status"))).inc()
        if found is None:
            log.warning("result %s", _line({"event": "result", "known": False, "correlation_id": corr,
                                             "function": data.get("function"), "status": data.get("status"),
                                             "message": data.get("message")}))
            self._record([("result", {"id": event.get_id(), "type": event.get_type(), "known": False, **data},
                           corr, None)])
            return None
        out = Outcome(*found, results=[data])
        if self.outbox.has_result(event.get_id()):
            return out  # delivered twice: handled the first time
        if data.get("status") == "error":
            tgt = data.get("target") if isinstance(data.get("target"), dict) else {}
            self.gate.record_failure(tgt or out.decision.parameters)
        nxt = self._next_step(out.decision, data)
        if nxt is not None:
            self._step(out, nxt[0], nxt[1], observed=data)
        if self.loop is not None:
            out.events += self.loop.result(out.alert, out.decision, data)
        log.info("result %s", _line({
            "event": "result", "alertname": out.alert.name, "correlation_id": corr, "function": data.get("function"),
            "status": data.get("status"), "dry_run": data.get("dry_run"), "message": data.get("message"),
            "request": (data.get("details") or {}).get("request"), "next": nxt[0] if nxt else None}))
        if self.outbox.record_result(event.get_id(), corr, data, out.events):
            self._record([("result", {"id": event.get_id(), "type": event.get_type(), **data}, corr,
                           out.alert.name)] + [("event", self._ev_doc(e), corr, out.alert.name) for e in out.events])
            self._count(out.events, {e.get_id() for e in out.events})
            self._deliver([out])
        return out

    @staticmethod
    def _next_step(decision: Decision, result: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The step after the one ``result`` answers, if the result calls for it."""
        fns = [result.get(k) for k in ("function", "lambda_function", "action")]
        idx = next((i for i, s in enumerate(decision.plan) if s.lambda_function in fns), None)
        if idx is None or idx + 1 >= len(decision.plan):
            return None
        if result.get("status") not in ("success", "noop"):
            return None
        step = decision.plan[idx + 1]
        details = result.get("details") or {}
        if step.when == "unhealthy" and details.get("healthy", True):
            return None
        params = dict(step.parameters)
        if step.from_previous:
            targets = details.get("unhealthy") or []
            if not targets:
                return None
            first = targets[0]
            params.update({k: first.get(k) for k in step.from_previous if first.get(k)})
        try:
            params = validate_parameters(step.lambda_function, params)
        except (ValueError, InvalidProposal):
            return None
        return idx + 1, params

    # ------------------------------------------------------------------ the closed loop's way in
    def run_approved(self, alert: Alert, decision: Decision, index: int, params: dict[str, Any],
                     observed: dict[str, Any] | None) -> Outcome:
        """A person approved plan step ``index``: it passes through the gate again (its class's
        mode lifted, nothing else) and its events are returned for ``emit``."""
        out = Outcome(alert, decision)
        self._step(out, index, params, observed=observed, approved=True)
        return out

    def emit(self, events: list[CloudEvent], out: Outcome | None = None) -> None:
        """Commit and send events made outside an alert's or a result's own processing (an
        approval, the loop's sweep); with ``out``, its plan is saved for the results to come."""
        if not events:
            return
        fresh = set(self.outbox.finish([], events, self._plans([out]) if out is not None else []))
        self._record([("event", self._ev_doc(e), e.get_attributes().get("correlationid"),
                       e.get_attributes().get("subject")) for e in events if e.get_id() in fresh])
        self._count(events, fresh)
        if not self.inline:
            self.worker.kick()
        elif out is not None:
            self._deliver([out])
        else:
            ids = [e.get_id() for e in events]
            self.worker.deliver(self.outbox.claim_events(len(ids), ids))


def _line(doc: dict[str, Any]) -> str:
    """One structured log line (JSON, keys sorted)."""
    return json.dumps(doc, sort_keys=True, default=str)
