"""`agent-sre demo`: sample alerts through the whole embedded flow, shown as a report."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from .agent import Agent, Outcome
from .alerts import parse_json_bytes
from .broker import InProcessBroker
from .chain.chain import Chain


def sample_payload() -> bytes:
    return (resources.files("agent_sre") / "data" / "demo_alerts.json").read_bytes()


def _render(console: Console, o: Outcome) -> None:
    a, d = o.alert, o.decision
    labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()) if k != "alertname")
    lines = [f"[bold]in[/]       {a.name} ({a.status})  {labels}"]
    if d.action:
        params = ", ".join(f"{k}={v}" for k, v in d.parameters.items())
        lines.append(f"[bold]decided[/]  {d.lambda_function}({params})  by [cyan]{d.method.value}[/]"
                     f"  confidence {d.confidence:.2f}")
        if len(d.plan) > 1:
            lines.append("[bold]plan[/]     " + " → ".join(
                s.lambda_function + (f" (if {s.when})" if s.when else "") for s in d.plan))
    else:
        lines.append(f"[bold]decided[/]  no action  ({d.method.value})")
    lines.append(f"[bold]why[/]      {d.reasoning}")
    for r in d.fallthrough:
        lines.append(f"[dim]  passed: {r}[/]")
    if o.verdict is not None:
        colour = "green" if o.verdict.allowed else "red"
        lines.append(f"[bold]gate[/]     [{colour}]{'allowed' if o.verdict.allowed else 'refused'}[/]"
                     f" ({o.verdict.mode}): {o.verdict.reason}")
    for ev in o.events:
        lines.append(f"[bold]event[/]    {ev.get_type()}  id={ev.get_id()[:12]}…"
                     + (f"  → {ev.get_attributes().get('lambdafunction')}" if ev.get_attributes().get("lambdafunction") else ""))
    for r in o.results:
        lines.append(f"[bold]result[/]   {r.get('status')}: {r.get('message')}")
        req = (r.get("details") or {}).get("request")
        if req:
            lines.append(f"[bold]would send[/] {json.dumps(req)}")
    if o.error:
        lines.append(f"[red]error[/]    {o.error}")
    console.print(Panel("\n".join(lines), expand=True))


def run_demo(file: Path | None = None, json_out: bool = False) -> list[Outcome]:
    body = file.read_bytes() if file else sample_payload()
    alerts = parse_json_bytes(body)
    broker = InProcessBroker()
    agent = Agent(chain=Chain(), broker=broker, dry_run=True)
    outcomes = agent.handle_alerts(alerts)
    if json_out:
        for o in outcomes:
            print(json.dumps(o.summary()))
        return outcomes
    console = Console()
    console.rule("agent-sre demo: embedded broker, remediation functions in dry-run, no cluster")
    for o in outcomes:
        _render(console, o)
    acted = sum(1 for o in outcomes if any(e.get_type().endswith("lambda.trigger") for e in o.events))
    console.rule(f"{len(outcomes)} alerts, {acted} remediations triggered (dry-run), "
                 f"{broker.total} events through the in-process broker")
    return outcomes
