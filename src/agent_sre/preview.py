"""`agent-sre preview`: what agent-sre would do for every alert of a rule set, or for the alerts
firing now, with nothing sent and nothing written.

``preview_rules(rules)`` synthesises the alerts each rule fires (``collect.synth``) and
``preview_alerts(alerts)`` takes alerts as they are; both run the chain as configured (the same
stages ``serve`` would build) and the safety gate in suggest mode without a state store: no
trigger, no outbox, no audit record, no cooldown or budget is touched. Each alert becomes one
``PreviewRow`` whose ``outcome`` says what a person would see:

* ``remediate`` — a remediation the gate lets through (it would run, in dry-run or for real);
* ``escalate``  — no remediation: a stage decided none fits, or the policy refused it
  (disabled function, protected namespace); a person is told;
* ``uncertain`` — no stage was sure: every stage abstained, or the gate refused a proposal for
  low confidence or a target the alert does not back; a person is told, and a runbook entry for
  the alert would settle it;
* ``silent``    — the runbook says the alert needs nothing (a heartbeat such as Watchdog).

Sources: rule files and PrometheusRule manifests (``rules_from_paths``; ``-`` reads stdin, e.g.
``kubectl kustomize``'s output), a running Prometheus (``rules_from_prometheus``, its
``/api/v1/rules``) and a running Alertmanager (``alerts_from_alertmanager``, its
``/api/v2/alerts``, the alerts it would deliver now: active, not silenced, not inhibited).

From Python (what a benchmark calls)::

    from agent_sre.preview import preview_rules, rules_from_paths, totals
    rules, problems = rules_from_paths(["path/to/rules"])
    rows = preview_rules(rules)      # one PreviewRow per synthesised alert, in rule order
    rows[0].to_json()                # alertname, rule_group, source, variant, labels, lambda_function, ...
    totals(rows)                     # {"remediate": ..., "escalate": ..., "uncertain": ..., "silent": ...}

Pass ``chain=Chain([...])`` to preview with other stages (e.g. one model alone).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import httpx

from . import runbook
from .alerts import Alert, IntakeError, parse_payload
from .collect.rules import AlertRule, RuleFileError, parse_rules, rule_files, rules_from_api
from .collect.synth import synthesize
from .decision import Decision, Method
from .gate import Gate, Verdict

BATCH = 64
OUTCOMES = ("remediate", "escalate", "uncertain", "silent")
# Gate refusals that say the proposal itself was doubtful (rather than forbidden by policy).
_DOUBT = ("low_confidence", "target")

STAGE_NAMES = {Method.STATIC: "annotations", Method.TRM: "trm", Method.LLM: "llm", Method.RULES: "runbook",
               Method.NONE: "none"}


class PreviewError(RuntimeError):
    """A source could not be read (unreachable URL, not a rules answer); the message says which."""


@dataclass
class PreviewRow:
    """One alert and what agent-sre would do with it."""

    alert: Alert
    decision: Decision
    verdict: Verdict | None
    outcome: str
    source: str = ""
    rule_group: str = ""
    variant: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def stage(self) -> str:
        return STAGE_NAMES.get(self.decision.method, self.decision.method.value)

    def to_json(self) -> dict[str, Any]:
        d, v = self.decision, self.verdict
        return {
            "alertname": self.alert.name, "rule_group": self.rule_group, "source": self.source,
            "variant": self.variant, "labels": self.alert.labels,
            "lambda_function": d.lambda_function, "parameters": d.parameters, "method": d.method.value,
            # Nothing decided (every stage abstained): no confidence to report, as the table's "-".
            "stage": self.stage, "confidence": None if d.method == Method.NONE else round(d.confidence, 4),
            "gate": None if v is None else {"allowed": v.allowed, "code": v.code, "reason": v.reason},
            "outcome": self.outcome, "reasoning": d.reasoning, "fallthrough": d.fallthrough,
            "notes": self.notes,
        }


def outcome_of(alert: Alert, decision: Decision, verdict: Verdict | None, book: runbook.Runbook | None) -> str:
    """Which of ``OUTCOMES`` a decision and its gate verdict amount to (see the module docstring)."""
    if decision.action:
        if verdict is not None and verdict.allowed:
            return "remediate"
        return "uncertain" if verdict is not None and verdict.code in _DOUBT else "escalate"
    if book is not None:
        hit = book.case_for(alert)
        if hit is not None and not hit[1].plan:
            return "silent"
    if decision.method == Method.NONE and decision.fallthrough:
        return "uncertain"
    return "escalate"


def suggest_gate() -> Gate:
    """The gate with the configured policy (``POLICY_PATH``) in suggest mode, without a state store:
    it checks everything and reserves nothing."""
    from . import policy

    return Gate(policy=policy.configured(), suggest_only=True, state=None)


def _runbook() -> runbook.Runbook | None:
    try:
        return runbook.load()
    except (OSError, ValueError):
        return None


def preview_alerts(alerts: Sequence[Alert], *, chain: Any = None, gate: Gate | None = None,
                   sources: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                   variants: Sequence[dict[str, str]] | None = None,
                   notes: Sequence[Sequence[str]] | None = None) -> list[PreviewRow]:
    """Decide and gate ``alerts`` (one batch through the chain); one row each, in order."""
    if chain is None:
        from .chain.chain import Chain

        chain = Chain()
    gate = gate or suggest_gate()
    book = _runbook()
    # Batches the size the agent sees under load, so each stage call stays within its time budget.
    decisions: list[Decision] = []
    for i in range(0, len(alerts), BATCH):
        decisions += chain.decide_many(list(alerts[i:i + BATCH]))
    rows = []
    for i, (a, d) in enumerate(zip(alerts, decisions)):
        verdict = gate.check(a, d) if d.action else None
        rows.append(PreviewRow(a, d, verdict, outcome_of(a, d, verdict, book),
                               source=sources[i] if sources else "", rule_group=groups[i] if groups else "",
                               variant=dict(variants[i]) if variants else {},
                               notes=list(notes[i]) if notes else []))
    return rows


def preview_rules(rules: Iterable[AlertRule], *, chain: Any = None, gate: Gate | None = None,
                  external_labels: dict[str, str] | None = None) -> list[PreviewRow]:
    """Synthesise every alert the rules fire and preview them (``preview_alerts``)."""
    synth = [s for r in rules for s in synthesize(r, external_labels)]
    return preview_alerts([s.alert for s in synth], chain=chain, gate=gate,
                          sources=[s.rule.source for s in synth], groups=[s.rule.group for s in synth],
                          variants=[s.variant for s in synth], notes=[list(s.notes) for s in synth])


def totals(rows: Iterable[PreviewRow]) -> dict[str, int]:
    out = {k: 0 for k in OUTCOMES}
    for r in rows:
        out[r.outcome] += 1
    return out


# --------------------------------------------------------------------------- sources


def rules_from_paths(paths: Sequence[str | Path]) -> tuple[list[AlertRule], list[str]]:
    """(rules, problems): every alerting rule in the files and directories given (``-`` reads
    stdin). A file that is not a rule file is reported in ``problems`` and skipped."""
    rules: list[AlertRule] = []
    problems: list[str] = []
    files: list[Path] = []
    for p in paths:
        if str(p) == "-":
            try:
                rules += parse_rules(sys.stdin.read(), "<stdin>")
            except RuleFileError as e:
                problems.append(str(e))
            continue
        if not Path(p).exists():
            problems.append(f"{p}: no such file or directory")
            continue
        files += rule_files([p])
    for f in files:
        try:
            rules += parse_rules(f.read_text(errors="replace"), str(f))
        except RuleFileError as e:
            problems.append(str(e))
    return rules, problems


def _get_json(url: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    try:
        r = httpx.get(url, params=params, timeout=timeout)
        r.raise_for_status()
        return r.json()
    except (httpx.HTTPError, ValueError) as e:
        raise PreviewError(f"GET {url}: {e}") from None


def rules_from_prometheus(url: str, timeout: float = 10.0) -> list[AlertRule]:
    """The alerting rules a running Prometheus has loaded (``GET /api/v1/rules?type=alert``)."""
    base = url.rstrip("/")
    doc = _get_json(f"{base}/api/v1/rules", {"type": "alert"}, timeout)
    try:
        return rules_from_api(doc, base)
    except RuleFileError as e:
        raise PreviewError(str(e)) from None


def alerts_from_alertmanager(url: str, timeout: float = 10.0) -> list[Alert]:
    """The alerts Alertmanager would deliver now (``GET /api/v2/alerts``: active, not silenced,
    not inhibited), parsed as the intake parses them."""
    base = url.rstrip("/")
    doc = _get_json(f"{base}/api/v2/alerts", {"active": "true", "silenced": "false", "inhibited": "false"},
                    timeout)
    if not isinstance(doc, list):
        raise PreviewError(f"GET {base}/api/v2/alerts: expected a list of alerts")
    if not doc:
        return []
    try:
        return parse_payload(doc)
    except IntakeError as e:
        raise PreviewError(f"GET {base}/api/v2/alerts: {e}") from None


# --------------------------------------------------------------------------- report


def _decision_text(row: PreviewRow) -> str:
    d = row.decision
    if not d.action:
        return "no action"
    params = ", ".join(f"{k}={v}" for k, v in d.parameters.items())
    more = f" +{len(d.plan) - 1} step" if len(d.plan) > 1 else ""
    return f"{d.lambda_function}({params}){more}"


def totals_line(rows: Sequence[PreviewRow], rules: int | None = None) -> str:
    t = totals(rows)
    where = f" from {rules} rules" if rules is not None else ""
    return f"{len(rows)} alerts{where}: " + " · ".join(f"{k} {t[k]}" for k in OUTCOMES)


def print_report(rows: Sequence[PreviewRow], rules: int | None = None, console: Any = None) -> None:
    """The rows as a table (rule, decision, stage, confidence, gate verdict, outcome) and totals."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    colour = {"remediate": "green", "escalate": "yellow", "uncertain": "magenta", "silent": "dim"}
    table = Table(show_lines=False, pad_edge=False)
    for col in ("rule", "group", "decision", "stage", "conf.", "gate", "outcome"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r.alert.name + "".join(f" [dim]{k}={v}[/]" for k, v in r.variant.items())
        gate = "-" if r.verdict is None else ("allowed" if r.verdict.allowed else f"refused: {r.verdict.code}")
        conf = "-" if r.decision.method == Method.NONE else f"{r.decision.confidence:.2f}"
        table.add_row(name, r.rule_group or "-", _decision_text(r), r.stage, conf,
                      gate, f"[{colour[r.outcome]}]{r.outcome}[/]")
    console.print(table)
    noted = sum(1 for r in rows if r.notes)
    if noted:
        console.print(f"[dim]{noted} alert(s) could not be synthesised exactly (see the notes in --json)[/]")
    console.print(totals_line(rows, rules), markup=False)
