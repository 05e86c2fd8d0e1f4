"""How much the recipe's headline figures move from one training run (seed) to another.

    .venv/bin/python bench/spread.py runs/spread/s0 runs/spread/s1 runs/spread/s2
    .venv/bin/python bench/spread.py runs/spread/s* --rules-dir RULES_DIR     # + the real-rules figures

Each RUN_DIR is an ``agent-sre train --output-dir``: its ``metrics.json`` and its export (``model/``, or
``export/``). Per run, and as mean / min / max over the runs, a markdown table of:

* held-out test split (from ``metrics.json``): exact (function and parameters), wrong remediations that
  pass the gate at the model's threshold (of those allowed), the same on validation. Each run is
  tested on its own split (``train --seed`` seeds the split too), named by its seed and size. With
  ``--data`` (the runs' training file) the gate figures are measured again through this checkout's
  gate and packaged policy, so runs trained before a policy change are judged by today's gate;
* the public dev set: ``score.py --strategy trm --json`` run in this checkout with ``MODEL_PATH`` set to
  the run's export: actionable alerts decided exactly, wrong remediations;
* with ``--rules-dir``: the alerts real rule sets fire (``real_rules.py``, its labels): actionable alerts
  decided exactly at the stage threshold, wrong remediations past the gate (raw rows).

Nothing is trained or written here; runs are only read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines as bl  # noqa: E402
import real_rules as rr  # noqa: E402

SCORE = Path("/work/shared/eval/score.py")

# (key, column header, how a value prints)
COLUMNS = [
    ("split_seed", "split seed", str),
    ("test_n", "test: n", lambda v: f"{v:g}"),
    ("test_exact", "held-out exact", lambda v: f"{100 * v:.2f}%"),
    ("test_wrong_gate", "test: wrong past gate", lambda v: f"{v:g}"),
    ("test_allowed", "test: allowed", lambda v: f"{v:g}"),
    ("val_wrong_gate", "validation: wrong past gate", lambda v: f"{v:g}"),
    ("public_actionable", "public: actionable exact", lambda v: f"{v:g}"),
    ("public_wrong", "public: wrong", lambda v: f"{v:g}"),
    ("real_actionable", "real rules: actionable exact at threshold", lambda v: f"{v:g}"),
    ("real_wrong_gate", "real rules: wrong past gate", lambda v: f"{v:g}"),
]

DESCRIBE = {"split_seed", "test_n"}  # say which alerts a row is about; not summarised


def export_of(run: Path) -> Path:
    for name in ("model", "export"):
        if (run / name / "config.json").is_file():
            return run / name
    raise SystemExit(f"{run}: no export (model/ or export/ with a config.json)")


def held_out(run: Path) -> dict[str, Any]:
    """The held-out figures; the split is the run's own (``train --seed`` seeds it too), so runs with
    other seeds are tested on other alerts."""
    m = json.loads((run / "metrics.json").read_text())
    split = json.loads((run / "split.json").read_text()) if (run / "split.json").is_file() else {}
    t, gate = m["test"], m["test"]["through_gate"]
    return {"split_seed": split.get("seed", "?"), "test_n": t["n"], "test_exact": t["exact"],
            "test_wrong_gate": gate["wrong_allowed"], "test_allowed": gate["allowed"],
            "val_wrong_gate": m["validation"]["chosen"]["wrong_allowed"]}


def regate(run: Path, export: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The held-out gate figures again, through this checkout's gate and packaged policy (the ones
    in ``metrics.json`` are the gate's at training time): the run's own split of ``records`` (the
    labelled records of ``--data``, read once for every run)."""
    from agent_sre.trm.evaluate import decision_rows, safety
    from agent_sre.trm.infer import load_predictor
    from agent_sre.trm.records import split as split_records

    m = json.loads((run / "metrics.json").read_text())
    split = json.loads((run / "split.json").read_text())
    sp = split_records(records, seed=split["seed"], by=split.get("by", "name"))
    if len(sp.test) != m["test"]["n"]:
        raise SystemExit(f"{run}: --data gives a test split of {len(sp.test)} alerts, the run had {m['test']['n']}")
    pred, thr = load_predictor(export), m["validation"]["threshold"]
    t, v = safety(decision_rows(pred, sp.test), thr), safety(decision_rows(pred, sp.val), thr)
    return {"test_wrong_gate": t["wrong_allowed"], "test_allowed": t["allowed"], "val_wrong_gate": v["wrong_allowed"]}


def public(export: Path, score: Path) -> dict[str, Any]:
    """score.py decides through this checkout's ``agent-sre select``; its exit status only says whether
    its own target was met, so the JSON line is what counts."""
    env = {**os.environ, "MODEL_PATH": str(export.resolve()), "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.run([sys.executable, str(score), "--strategy", "trm", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"score.py gave no figures for {export}:\n{p.stdout[-1000:]}{p.stderr[-1000:]}")
    s = json.loads(lines[-1])
    return {"public_actionable": s["actionable"][0], "public_n": s["actionable"][1],
            "public_wrong": s["wrong_action"]}


def real(export: Path, scored: list[dict[str, Any]]) -> dict[str, Any]:
    m = bl.TRMMethod(export, name="trm")
    thr = rr.stage_threshold(m, None)
    preds = [p for i in range(0, len(scored), 256) for p in m.predict_batch([c["alert"] for c in scored[i:i + 256]])]
    raw = rr.report(rr.score(scored, preds, thr), thr)["raw"]
    return {"real_actionable": raw["actionable_exact_at_threshold"], "real_n": raw["actionable"],
            "real_wrong_gate": raw["wrong_passing_gate"]}


def table(rows: list[dict[str, Any]]) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    out = ["| run | " + " | ".join(h for _, h, _ in cols) + " |", "| --- |" + " --- |" * len(cols)]
    for r in rows:
        out.append(f"| {r['run']} | " + " | ".join(f(r[k]) for k, _, f in cols) + " |")
    if len(rows) > 1:
        for name, agg in (("mean", statistics.fmean), ("min", min), ("max", max)):
            out.append(f"| **{name}** | " + " | ".join("" if k in DESCRIBE else f(agg([r[k] for r in rows]))
                                                      for k, _, f in cols) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="training output directories (agent-sre train --output-dir)")
    ap.add_argument("--score", type=Path, default=SCORE, help="the public dev set's score.py")
    ap.add_argument("--rules-dir", type=Path, default=None, help="rule files for real_rules.py (skipped without)")
    ap.add_argument("--labels", type=Path, default=rr.LABELS)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--data", type=Path, action="append", default=None,
                    help="the runs' training data: re-measure the held-out gate figures through this "
                         "checkout's gate and policy instead of reading them from metrics.json")
    args = ap.parse_args(argv)

    records = None
    if args.data:
        from agent_sre.trm.records import labelled, merge

        records = labelled(merge(args.data))
    scored = None
    if args.rules_dir:
        cases, _ = rr.build_cases(args.rules_dir, rr.load_labels(args.labels))
        scored = [c for c in cases if c["labelled"]]
    rows = []
    for run in args.runs:
        export = export_of(run)
        row: dict[str, Any] = {"run": run.name, **held_out(run)}
        if records is not None:
            row.update(regate(run, export, records))
        if args.score.is_file():
            row.update(public(export, args.score))
        else:
            rr.log(f"no {args.score}: public dev set skipped")
        if scored is not None:
            row.update(real(export, scored))
        rr.log(f"{run}: {row}")
        rows.append(row)
    first = rows[0]
    notes = [f"{len(rows)} run(s)"]
    if len({r["split_seed"] for r in rows}) > 1:
        notes.append("held-out figures are on each run's own split")
    if "public_n" in first:
        notes.append(f"public dev set: {first['public_n']} actionable alerts (score.py --strategy trm)")
    if "real_n" in first:
        notes.append(f"real rules: {first['real_n']} actionable alerts")
    print(table(rows))
    print("\n" + "; ".join(notes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
