"""`agent-sre`: decide for alerts, run the services, build data, train and evaluate the TRM.

Every command reads its settings (environment variables) through ``agent_sre.settings`` before it
does anything: a value that cannot be used stops it with exit code 2 and a message naming the
variable. Its ``--help`` lists every setting it honours, from ``settings.COMMANDS``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from . import settings as cfg
from .alerts import Alert, IntakeError, parse_json_bytes

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="agent-sre: auto-remediation for Kubernetes alerts.")
dataset_app = typer.Typer(no_args_is_help=True, help="Build training data for the TRM.")
app.add_typer(dataset_app, name="dataset")
keys_app = typer.Typer(no_args_is_help=True, help="Keys that sign triggers, results and the audit log.")
app.add_typer(keys_app, name="keys")


def settings_help(command: str, only: set[str] | None = None) -> str:
    """The epilog of ``command``'s --help: every setting it honours, its default and meaning."""
    rows = [r for r in cfg.describe(cfg.COMMANDS[command]) if only is None or r[0] in only]
    width = max(len(var) for var, _, _ in rows)
    lines = [f"[bold]Settings[/] (environment; empty means unset, an unusable value stops {command}):"]
    for var, default, desc in rows:
        # "unset" says nothing new where the description already tells what an unset value means
        shown = "" if default == "unset" and ("default" in desc or "unset" in desc) else f" [dim](default: {escape(default)})[/]"
        lines.append(f"  [cyan]{var:<{width}}[/]  {escape(desc)}{shown}")
    return "\n".join(lines)


def load_settings(command: str) -> None:
    """Read every settings group of ``command`` now, so a bad value stops it before it starts."""
    for group in cfg.COMMANDS[command]:
        _settings(group)


def _settings(group):
    try:
        return cfg.load(group)
    except cfg.SettingsError as e:
        _fail(str(e))


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _decision_line(alert: Alert, d) -> str:
    doc = {"alertname": alert.name, "status": alert.status, **d.model_dump(mode="json")}
    return json.dumps(doc)


@app.command(epilog=settings_help("select"))
def select(
    alert: Optional[str] = typer.Argument(None, help="alert or webhook JSON; '-' reads stdin"),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="JSONL: one alert, webhook payload or dataset "
                                                                  "record (dataset collect/generate) per line"),
    strategy: str = typer.Option("chain", help="annotations | trm | llm | rules | chain"),
) -> None:
    """Print the decision for each alert as one JSON line."""
    from .chain.chain import Chain

    load_settings("select")
    chain = Chain(strategy=strategy)
    sources: list[bytes] = []
    if file is not None:
        sources = [ln.encode() for ln in file.read_text().splitlines() if ln.strip()]
    elif alert == "-":
        sources = [sys.stdin.buffer.read()]
    elif alert:
        sources = [alert.encode()]
    else:
        raise typer.BadParameter("give an alert JSON, '-' for stdin, or --file")
    parsed: list[list[Alert] | str] = []
    for raw in sources:
        try:
            parsed.append(_alerts_in(raw))
        except IntakeError as e:
            parsed.append(str(e))
    flat = [a for p in parsed if not isinstance(p, str) for a in p]
    decisions = iter(chain.decide_many(flat)) if flat else iter(())
    bad = 0
    for p in parsed:
        if isinstance(p, str):
            bad += 1
            print(json.dumps({"lambda_function": None, "parameters": {}, "method": "none", "error": p}))
            continue
        for a in p:
            print(_decision_line(a, next(decisions)))
    if bad:
        raise typer.Exit(2)


def _alerts_in(raw: bytes) -> list[Alert]:
    """The alerts of one input: an alert, a webhook, a list, or a dataset record's alert."""
    from .alerts import parse_payload
    from .collect.sources import record_alert

    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return parse_json_bytes(raw)  # says what is wrong with it
    inner = record_alert(doc)
    return parse_payload(inner) if inner is not None else parse_json_bytes(raw)


def _serve(command: str, build, host: str | None, port: int | None) -> None:
    """Build ``command``'s app with ``build()`` (settings errors stop it here, before it listens),
    then serve it on ``host``/``port`` (default: HOST/PORT) with READ_TIMEOUT_SECONDS for a request's
    head (``http_body.serve``). SIGTERM stops it gracefully: no new connections, requests in
    flight answered, then the app's shutdown (the agent leaves pending work in its outbox)."""
    import logging

    from .http_body import serve as serve_http

    load_settings(command)
    server = _settings(cfg.ServerSettings)
    # agent-sre's own lines (one structured line per decision and per result) at LOG_LEVEL.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("agent_sre")
    root.addHandler(handler)
    root.setLevel(server.log_level.upper())
    try:
        asgi = build()
    except cfg.SettingsError as e:
        _fail(str(e))
    serve_http(asgi, host or server.host, port or server.port, server.log_level, server.read_timeout_seconds)


HOST = typer.Option(None, "--host", help="address to listen on (default: HOST)")
PORT = typer.Option(None, "--port", help="port to listen on (default: PORT)")


@app.command(epilog=settings_help("serve"))
def serve(host: Optional[str] = HOST, port: Optional[int] = PORT) -> None:
    """Run the agent's HTTP service: Alertmanager webhooks and CloudEvents in, triggers out."""
    from .server import app_from_env

    _serve("serve", app_from_env, host, port)


@app.command(epilog=settings_help("demo"))
def demo(
    file: Optional[Path] = typer.Option(None, help="webhook or alerts JSON to use instead of the samples"),
    json_out: bool = typer.Option(False, "--json", help="print JSON lines instead of the report"),
) -> None:
    """The whole flow on sample alerts, embedded: no cluster, no network, nothing kept."""
    from .demo import run_demo

    load_settings("demo")
    run_demo(file, json_out=json_out)


@app.command(epilog=settings_help("preview"))
def preview(
    sources: list[str] = typer.Argument(None, help="rule files, PrometheusRule manifests or directories of "
                                                   "them; '-' reads stdin (e.g. kubectl kustomize output); "
                                                   "*.jsonl: dataset records (dataset collect/generate)"),
    prometheus_url: Optional[str] = typer.Option(None, "--prometheus-url",
                                                 help="the rules this Prometheus has loaded (/api/v1/rules)"),
    alertmanager_url: Optional[str] = typer.Option(None, "--alertmanager-url",
                                                   help="the alerts this Alertmanager would deliver now "
                                                        "(/api/v2/alerts)"),
    external_label: list[str] = typer.Option([], "--external-label",
                                             help="NAME=VALUE on every synthesised alert, like Prometheus' "
                                                  "external labels (repeat)"),
    strategy: str = typer.Option("chain", help="annotations | trm | llm | rules | chain"),
    json_out: bool = typer.Option(False, "--json", help="one JSON line per alert instead of the table"),
) -> None:
    """What agent-sre would do for every alert of a rule set, or for the alerts firing now: the
    chain and the gate in suggest mode; nothing is sent, nothing is written."""
    from .chain.chain import Chain
    from . import preview as pv

    load_settings("preview")
    if not sources and not prometheus_url and not alertmanager_url:
        raise typer.BadParameter("give rule files or directories, '-' for stdin, --prometheus-url or "
                                 "--alertmanager-url")
    externals = {}
    for item in external_label:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--external-label {item!r}: expected NAME=VALUE")
        externals[name] = value
    datasets = [s for s in sources or [] if s.endswith(".jsonl")]
    rules, problems = pv.rules_from_paths([s for s in sources or [] if s not in datasets])
    recorded: list[Alert] = []
    for path in datasets:  # dataset records (dataset collect/generate): preview their alerts
        for n, line in enumerate(Path(path).read_text().splitlines(), 1):
            try:
                recorded += _alerts_in(line.encode()) if line.strip() else []
            except IntakeError as e:
                problems.append(f"{path}:{n}: {e}")
    try:
        if prometheus_url:
            rules += pv.rules_from_prometheus(prometheus_url)
        alerts = pv.alerts_from_alertmanager(alertmanager_url) if alertmanager_url else []
        chain = Chain(strategy=strategy)
        gate = pv.suggest_gate()
    except (pv.PreviewError, cfg.SettingsError) as e:
        _fail(str(e))
    for p in problems:
        typer.echo(f"warning: skipped {' '.join(p.split())}", err=True)
    rows = pv.preview_rules(rules, chain=chain, gate=gate, external_labels=externals or None)
    rows += pv.preview_alerts(alerts, chain=chain, gate=gate,
                              sources=[alertmanager_url or ""] * len(alerts), groups=[""] * len(alerts))
    if recorded:
        rows += pv.preview_alerts(recorded, chain=chain, gate=gate, sources=["dataset"] * len(recorded),
                                  groups=[""] * len(recorded))
    if json_out:
        for r in rows:
            typer.echo(json.dumps(r.to_json()))
        return
    pv.print_report(rows, rules=len(rules) if rules else None)


@app.command("serve-reasoning", epilog=settings_help("serve-reasoning"))
def serve_reasoning(host: Optional[str] = HOST, port: Optional[int] = PORT) -> None:
    """Run trm-reasoning, the TRM as an HTTP service."""
    from .reasoning.service import create_app

    _serve("serve-reasoning", lambda: create_app(model_dir=_settings(cfg.TRMSettings).model_path), host, port)


@app.command("serve-function", epilog=settings_help("serve-function"))
def serve_function(host: Optional[str] = HOST, port: Optional[int] = PORT) -> None:
    """Run the remediation functions' CloudEvents service (all of them, or FUNCTION)."""
    from .functions.app import app_from_env

    _serve("serve-function", app_from_env, host, port)


# ------------------------------------------------------------------ audit and outbox


def _existing(path: Path, what: str, variables: str) -> Path:
    if not path.exists():
        _fail(f"no {what} at {path}: point {variables} at the agent's state", code=1)
    return path


@app.command(epilog=settings_help("history", only={"STATE_DIR", "AUDIT_LOG"}))
def history(
    alertname: Optional[str] = typer.Option(None, "--alertname", "-a", help="only this alert"),
    correlation_id: Optional[str] = typer.Option(None, "--correlation-id", "-c", help="id or its prefix"),
    since: Optional[str] = typer.Option(None, help="30m, 2h, 1d or an ISO 8601 time"),
    kind: list[str] = typer.Option([], "--kind", "-k", help="alert, decision, incident, event, delivery, result, "
                                                            "dead_letter, suppressed, verify, outcome, approval, autonomy"),
    verify: bool = typer.Option(False, "--verify", help="check the keyed chain and the signed checkpoint; exit 1 "
                                                        "if tampered"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="with --verify: check the head against "
                                             "this checkpoint (the JSON of an `audit checkpoint` log line) instead "
                                             "of the file beside the log"),
    json_out: bool = typer.Option(False, "--json", help="one JSON record per line"),
    log: Optional[Path] = typer.Option(None, "--log", help="the audit log (default: AUDIT_LOG)"),
) -> None:
    """Read the audit log: what came in, what was decided, what the gate said, what was sent."""
    from . import audit

    path = log or _settings(cfg.StateSettings).audit_path
    if not audit.rotated(path):  # the live file may be missing just after a rotation
        _existing(path, "audit log", "--log, AUDIT_LOG or STATE_DIR")
    if verify:
        key, ring = _audit_keys()
        cp = None
        if checkpoint:
            try:
                cp = json.loads(checkpoint[checkpoint.index("{"):])
            except ValueError:
                raise typer.BadParameter("--checkpoint: give the JSON object of an `audit checkpoint` line") from None
        # With the signer's public keys at hand a signed checkpoint is required: without one,
        # records dropped from the end cannot be told from records never written.
        res = audit.verify(path, key=key, ring=ring, checkpoint=cp, require_checkpoint=len(ring) > 0)
        typer.echo(f"{path}: {res.summary()}")
        raise typer.Exit(0 if res.ok else 1)
    try:
        since_ts = audit.parse_since(since)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if not json_out:
        typer.echo(f"audit log {path}")
    for rec in audit.history(path, alertname=alertname, correlation_id=correlation_id, since=since_ts,
                             kinds=kind or None):
        typer.echo(json.dumps(rec, sort_keys=True) if json_out else _history_line(rec))


def _audit_keys():
    """(HMAC key, public keys of checkpoint signers) from AUDIT_HMAC_KEY, AGENT_PUBLIC_KEYS,
    AGENT_SIGNING_KEY and FUNCTION_PUBLIC_KEYS (a functions' audit log is signed by their key)."""
    from . import audit, signing

    keys = _settings(cfg.AgentKeySettings)
    try:
        hmac_key = audit.load_key(keys.audit_hmac_key) if keys.audit_hmac_key else None
        rings = [signing.ring_setting(var, spec) for var, spec in (("AGENT_PUBLIC_KEYS", keys.agent_public_keys),
                 ("FUNCTION_PUBLIC_KEYS", keys.function_public_keys)) if spec]
        if keys.agent_signing_key:
            rings.append(signing.KeyRing([signing.key_setting("AGENT_SIGNING_KEY", keys.agent_signing_key).public]))
    except (OSError, ValueError) as e:
        _fail(str(e))
    return hmac_key, signing.KeyRing().union(*rings)


def _history_line(rec: dict) -> str:
    d = rec.get("data") or {}
    if rec["kind"] == "decision":
        dec, v = d.get("decision") or {}, d.get("verdict") or {}
        what = f"{dec.get('lambda_function') or 'no action'} {dec.get('parameters') or ''} by {dec.get('method')}"
        if v:
            what += f" | gate: {'allowed' if v.get('allowed') else 'refused'} ({v.get('mode')}) {v.get('reason')}"
    elif rec["kind"] in ("event", "delivery", "dead_letter"):
        what = f"{d.get('type', '').rsplit('.', 1)[-1]} {d.get('lambdafunction') or ''} id={str(d.get('id'))[:12]}"
        what += "".join(f" {k}={d[k]}" for k in ("attempts", "error", "reason") if k in d)
    elif rec["kind"] == "alert":
        a = d.get("alert") or {}
        what = f"{a.get('status')} " + ",".join(f"{k}={v}" for k, v in sorted((a.get("labels") or {}).items())
                                                 if k != "alertname")
    elif rec["kind"] == "result":
        req = (d.get("details") or {}).get("request")
        what = (f"{d.get('function') or '-'} {d.get('status')}{' (dry-run)' if d.get('dry_run') else ''}: "
                f"{d.get('message') or ''}")
        if req:
            what += f" | {'sent' if req.get('sent') else 'would send'} {req.get('method')} {req.get('path')}"
            what += f" {json.dumps(req.get('body'), sort_keys=True)}" if req.get("body") is not None else ""
    elif rec["kind"] == "outcome":
        what = f"{d.get('outcome')} {d.get('function')} on {d.get('target') or '-'}: {d.get('reason')}"
    elif rec["kind"] == "approval":
        what = (f"{d.get('status')} {d.get('id')} {d.get('function')} {d.get('parameters')}"
                + (f" by {d['by']}" if d.get("by") else "") + (f": {d['note']}" if d.get("note") else ""))
    elif rec["kind"] == "autonomy":
        what = f"{d.get('alert_class')} {d.get('from')} -> {d.get('to')} ({d.get('why')})"
    elif rec["kind"] == "suppressed":
        what = str(d.get("reason"))
    elif rec["kind"] == "verify":
        from datetime import datetime, timezone

        until = datetime.fromtimestamp(float(d.get("deadline") or 0), timezone.utc).isoformat(timespec="seconds")
        what = (f"watching the alert after {d.get('function')} on {d.get('target')} until {until} "
                f"({(d.get('window') or {}).get('seconds', 0):.0f}s decay window)")
    else:
        what = f"{d.get('status')} {d.get('message') or ''}"
    return (f"{rec.get('time', '')}  {rec['kind']:<11} {rec.get('alertname') or '-':<28} "
            f"{str(rec.get('correlation_id') or '')[:12]:<12}  {what}")


@app.command(epilog=settings_help("outbox", only={"STATE_DIR", "OUTBOX_DB"}))
def outbox(
    state: Optional[str] = typer.Option(None, help="list events in this state: pending, delivered, dead"),
    requeue_dead: bool = typer.Option(False, "--requeue-dead", help="give dead letters another round of retries"),
    db: Optional[Path] = typer.Option(None, "--db", help="the outbox database (default: OUTBOX_DB)"),
) -> None:
    """Inspect the durable outbox: counts, lag, dead letters."""
    from . import outbox as ob

    path = _existing(db or _settings(cfg.StateSettings).outbox_path, "outbox", "--db, OUTBOX_DB or STATE_DIR")
    box = ob.Outbox(path)
    if requeue_dead:
        typer.echo(f"requeued {box.requeue_dead()} dead letter(s)")
    typer.echo(json.dumps(box.stats(), indent=2))
    if state:
        for e in box.events(state):
            typer.echo(json.dumps(e))


# ------------------------------------------------------------------ the closed loop


@app.command(epilog=settings_help("outcomes", only={"STATE_DIR", "STATE_DB", "REDIS_URL", "POLICY_PATH"}))
def outcomes(
    json_out: bool = typer.Option(False, "--json", help="the ledger and recent outcomes as JSON"),
    limit: int = typer.Option(20, help="recent outcomes shown"),
    db: Optional[Path] = typer.Option(None, "--db", help="the state database (default: STATE_DB)"),
) -> None:
    """The outcome ledger per alert class: attempts, verified, ineffective, failed, mode."""
    from .loop.autonomy import mode_of, why
    from .loop.store import RedisLoopStore, SQLiteLoopStore
    from . import policy

    st = _settings(cfg.StateSettings)
    try:
        n = policy.configured().autonomy.promote_after
    except cfg.SettingsError as e:
        _fail(str(e))
    if st.redis_url and db is None:
        store = RedisLoopStore(st.redis_url)
    else:
        store = SQLiteLoopStore(_existing(db or st.state_path, "state database", "--db, STATE_DB or STATE_DIR"))
    rows = []
    for c in store.classes():
        mode, pinned = mode_of(c, n)
        rows.append({**c.model_dump(mode="json"), "mode": mode, "pinned": pinned, "why": why(c, n)})
    recent = [o.model_dump(mode="json") for o in store.outcomes(limit=limit)]
    if json_out:
        typer.echo(json.dumps({"classes": rows, "outcomes": recent}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"outcomes per alert class (execute after {n} verified in a row)")
    for col in ("class", "mode", "attempts", "verified", "ineffective", "failed", "unverified", "rejected",
                "in a row", "last"):
        t.add_column(col)
    for r in rows:
        last = r["last"] or {}
        t.add_row(r["alert_class"], r["mode"] + (" (pinned)" if r["pinned"] else ""), *(str(r[k]) for k in (
            "attempts", "verified", "ineffective", "failed", "unverified", "rejected", "streak")),
                  escape(f"{last.get('outcome', '-')}: {last.get('reason', '')}"[:80]))
    Console(width=200).print(t)
    if not rows:
        typer.echo("no outcomes recorded yet")


def _client() -> tuple[str, dict[str, str]]:
    c = _settings(cfg.ClientSettings)
    return c.agent_url.rstrip("/"), ({"Authorization": f"Bearer {c.auth_token}"} if c.auth_token else {})


def _call(method: str, path: str, body: dict | None = None) -> dict:
    import httpx

    url, headers = _client()
    try:
        r = httpx.request(method, url + path, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as e:
        _fail(f"cannot reach the agent at {url} (AGENT_URL): {e}", code=1)
    try:
        doc = r.json()
    except ValueError:
        doc = {"error": r.text[:300]}
    if r.status_code >= 300:
        why = doc.get("error") or doc.get("detail") or doc
        _fail(f"{r.status_code}: {why}", code=1)
    return doc


def _who() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command(epilog=settings_help("approve"))
def approve(
    approval_id: str = typer.Argument(..., help="the approval request's id (in the message, on /ui)"),
    reason: Optional[str] = typer.Option(None, "--reason", help="why (kept in the audit log)"),
) -> None:
    """Approve a suggested remediation: it passes through the gate again, then runs."""
    a = _call("POST", f"/api/approvals/{approval_id}/approve", {"by": _who(), "reason": reason})
    typer.echo(f"{a['id']}: {a['status']}" + (f" ({a['note']})" if a.get("note") else "")
               + f" — {a['function']} {json.dumps(a['parameters'], sort_keys=True)} for {a['alertname']}")
    if a["status"] != "approved":
        raise typer.Exit(1)


@app.command(epilog=settings_help("reject"))
def reject(
    approval_id: str = typer.Argument(..., help="the approval request's id"),
    reason: str = typer.Option(..., "--reason", help="why not (kept in the audit log and the ledger)"),
) -> None:
    """Reject a suggested remediation; its alert class goes back to asking."""
    a = _call("POST", f"/api/approvals/{approval_id}/reject", {"by": _who(), "reason": reason})
    typer.echo(f"{a['id']}: {a['status']} — {a['function']} for {a['alertname']}: {a.get('note')}")


@app.command(epilog=settings_help("pin"))
def pin(
    alert_class: str = typer.Argument(..., help="ALERT/FUNCTION, e.g. PodCrashLoopBackOff/pod-restart"),
    mode: str = typer.Argument(..., help="execute | dry_run | suggest | auto (unpin: back to its earned mode)"),
) -> None:
    """Pin an alert class to a mode (the policy's mode stays the ceiling)."""
    if mode not in ("execute", "dry_run", "suggest", "auto"):
        raise typer.BadParameter("mode: execute, dry_run, suggest or auto")
    c = _call("POST", "/api/autonomy", {"alert_class": alert_class, "mode": None if mode == "auto" else mode,
                                        "by": _who()})
    typer.echo(f"{c['alert_class']}: {c.get('mode')}" + (" (pinned)" if c.get("pinned") else "")
               + f" — {c.get('why', '')}")


@keys_app.command("generate")
def keys_generate(
    out: Path = typer.Option(..., "--out", help="folder to write the key set and its Secret manifests to"),
    previous: Optional[Path] = typer.Option(None, "--previous", help="the folder of the set in use: rotate from it "
                                            "(its public keys stay valid beside the new ones; the audit key is kept)"),
) -> None:
    """Write a key set (agent, functions, audit HMAC) and the Kubernetes Secrets that carry it."""
    from . import keys

    if out.exists() and any(out.iterdir()):
        _fail(f"{out} is not empty: keys are never overwritten; choose a new folder", code=1)
    try:
        written = keys.generate(out, previous)
    except (OSError, ValueError) as e:
        _fail(f"--previous {previous}: {e}", code=1)
    for name, path in written.items():
        typer.echo(f"{name:<24} {path}")
    typer.echo("\nIn the pods (mounted Secrets):")
    for s in keys.SECRETS:
        typer.echo(f"  {s.setting}={s.value}   (Secret {s.name})")
    steps = ["kubectl apply -f " + str(written["secrets-public.yaml"]),
             "restart the agent and the functions (they read keys at start)",
             "kubectl apply -f " + str(written["secrets-signing.yaml"]),
             "restart them again"]
    if previous:
        steps.append(f"after {cfg.AgentKeySettings.model_fields['trigger_max_age_s'].default:g}s and once no dead letter "
                     f"signed with the old key is expected: kubectl apply -f {written['secrets-public-final.yaml']}")
    typer.echo("\n" + ("Rotation" if previous else "Install") + ":\n" +
               "\n".join(f"  {i}. {step}" for i, step in enumerate(steps, 1)))


# ------------------------------------------------------------------ TRM training


@app.command()
def train(
    training_data: list[Path] = typer.Option([], "--training-data", help="JSONL records (repeat to merge)"),
    output_dir: Path = typer.Option(Path("runs/trm"), "--output-dir"),
    export: Optional[Path] = typer.Option(None, "--export",
                                          help="where to write the exported model (default OUTPUT_DIR/model); "
                                               "without --training-data: re-export OUTPUT_DIR's checkpoint there"),
    preset: str = typer.Option("cpu", help="cpu (trains on 2 CPU cores in minutes) | paper (the paper's network "
                                          "and recipe, GPU) | tiny (tests)"),
    seed: int = typer.Option(0),
    epochs: Optional[int] = typer.Option(None, help="default: the preset's"),
    lr: Optional[float] = typer.Option(None, help="default: the preset's"),
    batch_size: Optional[int] = typer.Option(None, help="default: the preset's"),
    device: str = typer.Option("auto", help="auto | cpu | cuda (bf16 autocast on CUDA)"),
    threads: int = typer.Option(1, help="torch CPU threads"),
    mask_padding: bool = typer.Option(False, help="attention ignores padding and batches are cut to their longest "
                                                  "alert (about 2x faster inference; off in the shipped model)"),
    select: bool = typer.Option(True, help="keep the epoch (of the second half) that lets the fewest wrong "
                                           "remediations through the gate on validation, then decides most right"),
    calibrate_threshold: bool = typer.Option(False, help="record the lowest stage threshold (>= 0.9) at which no "
                                                         "wrong remediation passes the gate on validation"),
    members: Optional[int] = typer.Option(None, help="models to train (other seeds); at inference their average "
                                                     "answers, as sure as the least sure of them "
                                                     "(default: the preset's: cpu 2)"),
    resume: bool = typer.Option(False, help="continue from OUTPUT_DIR/run/checkpoint.pt"),
    split_by: str = typer.Option("name", help="held-out split: name (alert names + templates never seen) | random"),
    outcome_weight: int = typer.Option(1, min=1, help="repeat examples labelled by real outcomes (dataset collect: "
                                                      "verified, ineffective, rejected) this many times"),
) -> None:
    """Train the TRM, select and check it on validation, evaluate it on the held-out split and export it
    (safetensors + ONNX graph + config + tokenizer). Records without an expectation (collected, not
    labelled yet) are skipped."""
    from .trm.config import _PRESETS
    from .trm.evaluate import format_report
    from .trm.recipe import format_summary, reexport, train_from_jsonl

    if not training_data:
        if export is None:
            raise typer.BadParameter("give --training-data to train, or --export to re-export a checkpoint")
        typer.echo(f"exported {reexport(output_dir, export)}")
        return
    if preset not in _PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}; choose from {sorted(_PRESETS)}")
    m = train_from_jsonl([str(p) for p in training_data], output_dir, preset=preset, seed=seed, epochs=epochs,
                         lr=lr, batch_size=batch_size, device=device, num_threads=threads, resume=resume,
                         model_overrides={"mask_padding": True} if mask_padding else None,
                         split_by=split_by, export_dir=export, outcome_weight=outcome_weight, progress=True,
                         select=select, calibrate_threshold=calibrate_threshold, members=members)
    model_dir = export or output_dir / "model"
    typer.echo(format_report(m["test"], f"held-out by {split_by}"))
    typer.echo(f"model: {model_dir} ({m['model']['members']} × {m['model']['params']:,} parameters, preset {preset}, "
               f"seed {seed}); metrics and plots in {output_dir}")
    typer.echo(format_summary(m, model_dir))


@app.command()
def evaluate(
    data: list[Path] = typer.Option(..., "--data", help="JSONL records {alert, expect} (repeat to merge)"),
    model: Optional[Path] = typer.Option(None, "--model", help="exported model (default: MODEL_PATH or packaged)"),
    held_out: bool = typer.Option(False, help="evaluate only the held-out test part of --data's split"),
    seed: Optional[int] = typer.Option(None, help="split seed (with --held-out; default: the one the model "
                                                  "was trained with)"),
    split_by: Optional[str] = typer.Option(None, help="name | random (default: the model's)"),
    output_dir: Path = typer.Option(Path("runs/eval"), "--output-dir", help="where the PNGs and metrics go"),
    threshold: Optional[float] = typer.Option(None, help="abstention threshold (default: the model's)"),
) -> None:
    """Function accuracy, exact parameters, no-action precision, confusion, calibration; PNG plots."""
    from .trm.records import labelled, merge, split
    from .trm.evaluate import (evaluate_records, format_report, format_tables, gate_view, plot_confusion,
                                plot_reliability)
    from .trm.infer import default_model_path, load_predictor

    path = model or default_model_path()
    if path is None:
        raise typer.BadParameter("no model: give --model or set MODEL_PATH")
    pred = load_predictor(path)  # as served: ONNX Runtime when the export has its graph
    records = labelled(merge([str(p) for p in data]))
    if held_out:  # the split the model was trained with, unless told otherwise
        trained = pred.meta.get("split") or {}
        seed = seed if seed is not None else int(trained.get("seed", 0))
        records = split(records, seed=seed, by=split_by or trained.get("by", "name")).test
    thr = threshold if threshold is not None else float(pred.meta.get("threshold", 0.9))
    m = evaluate_records(pred, records, threshold=thr)
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(m, output_dir / "confusion.png")
    plot_reliability(m, output_dir / "reliability.png")
    g = gate_view(pred, records, threshold=thr)
    m["through_gate"] = g
    (output_dir / "metrics.json").write_text(json.dumps(m, indent=2, default=str))
    typer.echo(format_report(m, str(data[0].name) + (" (held-out)" if held_out else "")))
    typer.echo(f"  through the gate: {g['allowed']} remediations allowed, {g['wrong_allowed']} of them wrong; "
               f"the gate stopped {g['wrong_stopped_by_gate']} wrong and {g['right_stopped_by_gate']} right ones")
    for w in g["wrong_examples"]:  # name the wrong remediations that would reach the cluster (the first 20)
        typer.echo(f"    wrong, allowed: {w['alertname']} -> {w['got']} {json.dumps(w['params'], sort_keys=True)}")
    typer.echo(format_tables(m))
    typer.echo(f"plots: {output_dir / 'confusion.png'}, {output_dir / 'reliability.png'}")


# ------------------------------------------------------------------ dataset


@dataset_app.command("runbook")
def dataset_runbook(output: Path = typer.Option(Path("data/runbook_test_dataset.jsonl"), "--output", "-o")) -> None:
    """One canonical example per runbook case."""
    from .trm.records import write_runbook_dataset

    n = write_runbook_dataset(output)
    typer.echo(f"wrote {n} examples to {output}")


def _write_jsonl(path: Path, records) -> int:
    from .trm.records import write_jsonl

    return write_jsonl(path, records)


@dataset_app.command("generate")
def dataset_generate(
    output: Path = typer.Option(Path("data/training.jsonl"), "--output", "-o"),
    n: int = typer.Option(20000, "--n", help="number of examples"),
    seed: int = typer.Option(0),
    runbook_path: Optional[Path] = typer.Option(None, "--runbook", help="runbook YAML (default: RUNBOOK_PATH or "
                                                                         "the packaged runbook)"),
) -> None:
    """Expand the runbook into varied training alerts (combine with collected data via `merge`)."""
    from . import runbook
    from .trm.generator import generate

    if runbook_path is not None and not runbook_path.is_file():
        raise typer.BadParameter(f"no runbook at {runbook_path}")
    import yaml

    try:
        book = runbook.load(runbook_path)
    except (ValueError, yaml.YAMLError) as e:  # schema or YAML error: name the file
        raise typer.BadParameter(f"{runbook_path or 'runbook'}: {e}") from None
    records = generate(book, n=n, seed=seed)
    typer.echo(f"wrote {_write_jsonl(output, records)} examples to {output} (seed {seed})")


@dataset_app.command("merge")
def dataset_merge(
    inputs: list[Path] = typer.Argument(..., help="JSONL files to combine"),
    output: Path = typer.Option(Path("data/merged.jsonl"), "--output", "-o"),
) -> None:
    """Combine dataset sources (deduplicated)."""
    from .trm.records import merge

    typer.echo(f"wrote {_write_jsonl(output, merge(inputs))} examples to {output}")


@dataset_app.command("collect", epilog=settings_help("dataset collect"))
def dataset_collect(
    rules: list[Path] = typer.Option([], "--rules", help="directories of rule files / PrometheusRules"),
    prometheus_url: Optional[str] = typer.Option(None, help="default: PROMETHEUS_URL"),
    alertmanager_url: Optional[str] = typer.Option(None, help="default: ALERTMANAGER_URL"),
    audit_log: Optional[Path] = typer.Option(None, help="default: AUDIT_LOG"),
    output: Path = typer.Option(Path("data/collected.jsonl"), "--output", "-o"),
) -> None:
    """Gather rules, active alerts and recorded outcomes from files and live systems."""
    from .collect import collect

    env = _settings(cfg.CollectSettings)
    records = collect(rules, prometheus_url or env.prometheus_url, alertmanager_url or env.alertmanager_url,
                      audit_log or env.audit_log)
    typer.echo(f"wrote {_write_jsonl(output, records)} records to {output}")


def main() -> None:  # pragma: no cover
    app()
