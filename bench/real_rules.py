"""What agent-sre decides for the alerts a real rule set fires, scored against hand-written labels.

    .venv/bin/python bench/real_rules.py /work/corpus                        # packaged TRM, TF-IDF, chain
    .venv/bin/python bench/real_rules.py RULES_DIR --model runs/x/model --data data/training.jsonl
    .venv/bin/python bench/real_rules.py RULES_DIR --json out.json --methods trm

Reads every rule file under RULES_DIR (Prometheus rule files, PrometheusRule manifests), synthesises
the alerts each alerting rule fires as Alertmanager would deliver them (``real_synth``), runs each
method on them and compares with ``--labels`` (default ``bench/realworld/labels.yaml``: one entry per
rule of the public corpus described in its header, keyed by source file, group and alert name). Rules
without a label are decided and counted, not scored. Nothing here trains on the rules.

Figures, per method: actionable alerts decided exactly (function and parameters), no-action alerts
left alone, wrong remediations raw and those that would pass the gate (confidence >= the stage
threshold, then the stateless gate checks), abstentions, calibration (ECE, reliability bins over the
model's own answers); all of it raw (one row per synthesised alert), de-duplicated by alert name +
expression + labels that decide the case, per source, and for the rules marked ``borderline``
separately (they are not in the headline figures).

Methods: ``trm`` (an exported TRM, default the packaged one; ``--model``), ``tfidf`` (TF-IDF + logistic
regression fit on ``--data``, the TRM's training JSONL), ``chain`` (``Chain()``, what ``agent-sre
select`` runs), ``rules`` (the runbook alone).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402

import baselines as bl  # noqa: E402
import real_synth as synth  # noqa: E402
from agent_sre import catalog  # noqa: E402
from agent_sre.alerts import Alert  # noqa: E402
from agent_sre.collect.rules import RuleFileError, load_rules, rule_files  # noqa: E402
from agent_sre.trm.evaluate import normalise_parameters  # noqa: E402

LABELS = Path(__file__).resolve().parent / "realworld" / "labels.yaml"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- labels


def source_of(rel: Path) -> str:
    """``owner__repo/[@commit/]path`` (the corpus layout) → ``owner/repo:path``; else the path."""
    parts = rel.parts
    if len(parts) > 1 and "__" in parts[0]:
        owner, repo = parts[0].split("__", 1)
        rest = parts[2:] if parts[1].startswith("@") else parts[1:]
        return f"{owner}/{repo}:{Path(*rest)}"
    return str(rel)


def load_labels(path: Path) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    doc = yaml.safe_load(path.read_text())
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in doc["rules"]:
        out[(e["source"], e["group"], e["alert"])].append(e)
    return out


def _holds(when: dict[str, Any], labels: dict[str, str]) -> bool:
    for k, cond in when.items():
        v = labels.get(k)
        if cond == "present":
            ok = bool(v)
        elif cond == "absent":
            ok = not v
        elif isinstance(cond, list):
            ok = v in cond
        elif isinstance(cond, dict) and "regex" in cond:
            ok = v is not None and re.fullmatch(cond["regex"], v) is not None
        else:
            raise ValueError(f"unknown condition {cond!r}")
        if not ok:
            return False
    return True


def expected(entry: dict[str, Any], labels: dict[str, str]) -> tuple[str | None, dict[str, Any], str]:
    """(function or None, parameters, the case that decided) for an alert of a labelled rule."""
    case_id = "expect"
    exp = entry.get("expect")
    for i, case in enumerate(entry.get("cases") or []):
        if _holds(case.get("when") or {}, labels):
            exp, case_id = case["expect"], f"case{i}"
            break
    if exp in (None, "none"):
        return None, {}, case_id
    fn = exp["function"]
    required = set(catalog.get(fn).required_parameters())
    params: dict[str, Any] = {}
    for p, src in exp["parameters"].items():
        if isinstance(src, str) and src.startswith("="):
            params[p] = src[1:]
            continue
        keys = src if isinstance(src, list) else [src]
        v = next((labels[k] for k in keys if labels.get(k)), None)
        if v is None:
            if p in required:
                return None, {}, case_id + ":missing"
            continue
        params[p] = v
    return fn, normalise_parameters(fn, params), case_id


# --------------------------------------------------------------------------- cases


def build_cases(rules_dir: Path, labels: dict) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    files = rule_files([rules_dir])
    cases: list[dict[str, Any]] = []
    seen_key: Counter = Counter()
    info = {"files": 0, "unreadable": 0, "rules": 0, "unlabelled_rules": 0}
    for f in files:
        rel = f.relative_to(rules_dir) if f != rules_dir else Path(f.name)
        if "tools" in rel.parts:
            continue
        try:
            rules = load_rules(f)
        except (RuleFileError, UnicodeDecodeError):
            info["unreadable"] += 1
            continue
        if not rules:
            continue
        info["files"] += 1
        src = source_of(rel)
        for rule in rules:
            info["rules"] += 1
            key = (src, rule.group, rule.alert)
            entries = labels.get(key) or []
            entry = entries[seen_key[key]] if seen_key[key] < len(entries) else None
            seen_key[key] += 1
            if entry is None:
                info["unlabelled_rules"] += 1
            built = synth.rule_alerts(rule)
            for alert in synth.variants(built, (entry or {}).get("cases")):
                c = {"alert": alert, "source": src, "repo": src.split(":")[0], "group": rule.group,
                     "rule": rule.alert, "expr": rule.expr, "labelled": entry is not None,
                     "borderline": bool(entry and entry.get("borderline"))}
                if entry is not None:
                    fn, params, case_id = expected(entry, alert["labels"])
                    c.update(expect_fn=fn, expect_params=params, case=case_id)
                cases.append(c)
    return cases, info


# --------------------------------------------------------------------------- scoring


def _gate_passes(alert: dict[str, Any], p: bl.Pred, threshold: float, gate: Any) -> bool:
    from agent_sre.decision import Method, validated

    if p.fn is None or p.confidence < threshold:
        return False
    d = validated(p.fn, p.params, method=Method.TRM, confidence=min(1.0, max(0.0, p.confidence)))
    return gate.check(Alert.model_validate(alert), d).allowed


def score(cases: list[dict[str, Any]], preds: list[bl.Pred], threshold: float) -> dict[str, Any]:
    from agent_sre.gate import Gate

    gate = Gate()
    rows = []
    for c, p in zip(cases, preds):
        want = c["expect_fn"]
        right_fn = p.fn == want
        exact = right_fn and (want is None or normalise_parameters(want, p.params) == c["expect_params"])
        wrong = p.fn is not None and not exact
        rows.append({**{k: c[k] for k in ("repo", "rule", "expr", "borderline", "case")},
                     "alertname": c["alert"]["labels"]["alertname"], "want": want, "got": p.fn,
                     "params": p.params, "want_params": c["expect_params"], "conf": p.confidence,
                     "abstained": p.abstained, "exact": exact, "wrong": wrong,
                     "wrong_passed": wrong and _gate_passes(c["alert"], p, threshold, gate),
                     "acted": p.fn is not None and not p.abstained and p.confidence >= threshold,
                     "n_labels": len(c["alert"]["labels"]),
                     "dedup": (c["alert"]["labels"]["alertname"], c["expr"], c["case"], want,
                               json.dumps(c["expect_params"], sort_keys=True) if want else "")})
    return rows


def summarise(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    act = [r for r in rows if r["want"]]
    idle = [r for r in rows if not r["want"]]
    stage_exact = [r for r in act if r["exact"] and r["acted"]]
    ece, bins = bl.reliability([r["conf"] for r in rows], [r["exact"] for r in rows])
    return {
        "n": len(rows),
        "actionable": len(act), "actionable_exact": sum(r["exact"] for r in act),
        "actionable_exact_at_threshold": len(stage_exact),
        "no_action": len(idle), "no_action_idle": sum(r["got"] is None for r in idle),
        "wrong_raw": sum(r["wrong"] for r in rows),
        "wrong_at_threshold": sum(r["wrong"] and r["conf"] >= threshold for r in rows),
        "wrong_passing_gate": sum(r["wrong_passed"] for r in rows),
        "abstained": sum(r["abstained"] or r["conf"] < threshold for r in rows),
        "ece": ece, "reliability": bins,
        "mean_conf_wrong": (sum(r["conf"] for r in rows if r["wrong"]) / max(1, sum(r["wrong"] for r in rows))),
    }


def report(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    main = [r for r in rows if not r["borderline"]]
    dedup: dict[tuple, dict[str, Any]] = {}
    for r in main:
        dedup.setdefault(r["dedup"], r)
    per_source: dict[str, Any] = {}
    for repo in sorted({r["repo"] for r in main}):
        per_source[repo] = summarise([r for r in main if r["repo"] == repo], threshold)
    return {"raw": summarise(main, threshold), "dedup": summarise(list(dedup.values()), threshold),
            "borderline": summarise([r for r in rows if r["borderline"]], threshold), "per_source": per_source,
            "errors": [{k: r[k] for k in ("repo", "alertname", "case", "want", "got", "params", "want_params",
                                          "conf", "wrong_passed", "n_labels")}
                       for r in main if not r["exact"]]}


def _line(name: str, s: dict[str, Any]) -> str:
    return (f"{name:<22} actionable {s['actionable_exact']:>3}/{s['actionable']:<3} "
            f"(at thr {s['actionable_exact_at_threshold']:>3})  idle {s['no_action_idle']:>4}/{s['no_action']:<4}  "
            f"wrong raw {s['wrong_raw']:>3}  @thr {s['wrong_at_threshold']:>3}  past gate {s['wrong_passing_gate']:>3}  "
            f"abstain {s['abstained']:>4}  ECE {s['ece']:.3f}")


# --------------------------------------------------------------------------- methods


def make_method(name: str, args: argparse.Namespace, train: list[dict[str, Any]] | None) -> bl.BenchMethod:
    if name == "trm":
        from agent_sre.trm.infer import default_model_path

        return bl.TRMMethod(args.model or default_model_path(), name="trm")
    if name == "tfidf":
        if not train:
            raise SystemExit("tfidf needs --data (the TRM's training JSONL)")
        m = bl.TfidfLR(seed=0)
        m.fit(train)
        return m
    if name == "chain":
        return bl.ChainMethod(args.model)
    if name == "rules":
        return bl.RulesMethod()
    raise SystemExit(f"unknown method {name!r}")


def stage_threshold(m: bl.BenchMethod, explicit: float | None) -> float:
    """The threshold a method is judged at: ``explicit``, else the TRM's own (recorded with the model,
    as its chain stage uses it), else 0.9."""
    if explicit is not None:
        return explicit
    if isinstance(m, bl.TRMMethod):
        return m.base.threshold()
    return 0.9


def run(args: argparse.Namespace) -> dict[str, Any]:
    labels = load_labels(args.labels) if args.labels and args.labels.is_file() else {}
    cases, info = build_cases(args.rules_dir, labels)
    scored = [c for c in cases if c["labelled"]]
    log(f"{info['rules']} rules in {info['files']} files ({info['unreadable']} unreadable), "
        f"{len(cases)} alerts, {len(scored)} labelled ({sum(1 for c in scored if c['expect_fn'])} actionable)")
    train = None
    if args.data:
        from agent_sre.trm.records import merge

        train = merge([args.data])
        if args.train_split:
            from agent_sre.trm.records import split

            from agent_sre.trm import artifact
            from agent_sre.trm.infer import default_model_path

            # the split the TRM was trained on (its export records the seed), so both fit the same alerts
            sp = artifact.read(args.model or default_model_path()).extra.get("split") or {}
            train = split(train, seed=int(sp.get("seed", 0)), by=sp.get("by", "name")).train
    out: dict[str, Any] = {"info": {**info, "alerts": len(cases), "labelled_alerts": len(scored)},
                           "methods": {}}
    for name in args.methods.split(","):
        m = make_method(name, args, train)
        t0 = time.perf_counter()
        preds: list[bl.Pred] = []
        for i in range(0, len(cases), 256):
            preds.extend(m.predict_batch([c["alert"] for c in cases[i:i + 256]]))
        dt = time.perf_counter() - t0
        thr = stage_threshold(m, args.threshold)
        rows = score(scored, [p for c, p in zip(cases, preds) if c["labelled"]], thr)
        rep = report(rows, thr)
        unl = [p for c, p in zip(cases, preds) if not c["labelled"]]
        rep["unlabelled"] = {"n": len(unl), "remediate": sum(p.fn is not None and p.confidence >= thr for p in unl)}
        rep["seconds"] = dt
        rep["threshold"] = thr
        out["methods"][name] = rep
        print(f"{name}: threshold {thr}")
        print(_line(name, rep["raw"]))
        print(_line(name + " (dedup)", rep["dedup"]))
        if args.verbose:
            for e in rep["errors"]:
                print("   ", e)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rules_dir", type=Path, help="directory of rule files (searched recursively)")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--model", type=Path, default=None, help="TRM export (default: the packaged model)")
    ap.add_argument("--data", type=Path, default=None, help="training JSONL for the TF-IDF baseline")
    ap.add_argument("--train-split", action="store_true",
                    help="fit TF-IDF on the training split of --data only (as the TRM is trained)")
    ap.add_argument("--methods", default="trm,chain")
    ap.add_argument("--threshold", type=float, default=None,
                    help="stage threshold for every method (default: the TRM's own, 0.9 for the others)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("-v", "--verbose", action="store_true", help="print every mis-decided alert")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
