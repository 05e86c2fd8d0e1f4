"""Evaluating a TRM predictor on labelled records: metrics, report text, plots, and what would pass the gate.

Metrics (``evaluate_records``):

* ``function_accuracy`` — predicted function (None = no action, ``invalid`` = rejected output) equals
  the expected one, over all records;
* ``param_exact`` — over actionable records whose function is right, parameters equal (after catalog
  normalisation); ``exact`` — function and parameters right, over all records;
* no-action precision / recall (no action = positive class) and ``remediations_on_no_action``: how
  many no-action or resolved alerts got a remediation (must be 0), shown separately for resolved;
* ``confusion`` — expected × predicted function counts; calibration table and ECE of the confidence
  against exact correctness; at the stage threshold, coverage and accuracy of what is not abstained.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .. import catalog

NONE = "none"
INVALID = "invalid"


def normalise_parameters(fn: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the catalog normalises them (defaults filled), for comparing answers."""
    if not fn:
        return {}
    try:
        return catalog.validate_parameters(fn, params)
    except Exception:
        return dict(params)


def evaluate_records(predictor: Any, records: list[dict[str, Any]], *, threshold: float = 0.9,
                     batch_size: int = 256, n_bins: int = 10) -> dict[str, Any]:
    preds = []
    for i in range(0, len(records), batch_size):
        preds.extend(predictor.predict_batch([r["alert"] for r in records[i:i + batch_size]]))
    rows = []
    for r, p in zip(records, preds):
        exp = r["expect"]
        want_fn = exp.get("lambda_function") or NONE
        if p.decision is None:
            got_fn, got_params = INVALID, {}
        else:
            got_fn = p.decision.lambda_function or NONE
            got_params = dict(p.decision.parameters)
        want_params = normalise_parameters(exp.get("lambda_function"), exp.get("parameters") or {})
        fn_ok = got_fn == want_fn
        params_ok = fn_ok and (want_fn == NONE or got_params == want_params)
        rows.append({"want": want_fn, "got": got_fn, "fn_ok": fn_ok, "ok": params_ok, "conf": float(p.confidence),
                     "steps": p.iterations, "resolved": r["alert"].get("status", "firing") != "firing",
                     "alertname": r["alert"]["labels"].get("alertname"), "got_params": got_params,
                     "want_params": want_params})
    return summarise(rows, threshold=threshold, n_bins=n_bins)


def summarise(rows: list[dict[str, Any]], *, threshold: float, n_bins: int = 10) -> dict[str, Any]:
    n = len(rows)
    act = [x for x in rows if x["want"] != NONE]
    act_fn_ok = [x for x in act if x["fn_ok"]]
    idle = [x for x in rows if x["want"] == NONE]
    pred_idle = [x for x in rows if x["got"] == NONE]
    remed_on_idle = [x for x in idle if x["got"] not in (NONE, INVALID)]
    wrong_remed = [x for x in rows if x["got"] not in (NONE, INVALID) and not x["ok"]]
    labels = [NONE, *catalog.function_names(), INVALID]
    confusion = {w: {g: 0 for g in labels} for w in labels}
    for x in rows:
        confusion[x["want"]][x["got"]] += 1
    # stage view: below threshold -> abstain
    kept = [x for x in rows if x["got"] != INVALID and x["conf"] >= threshold]
    kept_remed_idle = [x for x in kept if x["want"] == NONE and x["got"] != NONE]
    kept_wrong = [x for x in kept if x["got"] != NONE and not x["ok"]]
    bins = []
    ece = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inb = [x for x in rows if (lo <= x["conf"] < hi) or (b == n_bins - 1 and x["conf"] == 1.0)]
        if not inb:
            bins.append({"lo": lo, "hi": hi, "n": 0, "confidence": None, "accuracy": None})
            continue
        c = sum(x["conf"] for x in inb) / len(inb)
        a = sum(x["ok"] for x in inb) / len(inb)
        ece += len(inb) / max(1, n) * abs(c - a)
        bins.append({"lo": lo, "hi": hi, "n": len(inb), "confidence": c, "accuracy": a})
    steps = [x["steps"] for x in rows if x["steps"] is not None]
    return {
        "n": n,
        "function_accuracy": sum(x["fn_ok"] for x in rows) / max(1, n),
        "exact": sum(x["ok"] for x in rows) / max(1, n),
        "actionable": {"n": len(act), "function_accuracy": len(act_fn_ok) / max(1, len(act)),
                       "exact": sum(x["ok"] for x in act) / max(1, len(act)),
                       "param_exact": sum(x["ok"] for x in act_fn_ok) / max(1, len(act_fn_ok))},
        "no_action": {"n": len(idle),
                      "precision": sum(x["want"] == NONE for x in pred_idle) / max(1, len(pred_idle)),
                      "recall": sum(x["got"] == NONE for x in idle) / max(1, len(idle)),
                      "remediations_on_no_action": len(remed_on_idle),
                      "remediations_on_resolved": sum(x["resolved"] for x in remed_on_idle)},
        "wrong_remediations": len(wrong_remed),
        "invalid": sum(x["got"] == INVALID for x in rows),
        "at_threshold": {"threshold": threshold, "coverage": len(kept) / max(1, n),
                         "accuracy": sum(x["ok"] for x in kept) / max(1, len(kept)),
                         "remediations_on_no_action": len(kept_remed_idle), "wrong_remediations": len(kept_wrong)},
        "confusion": {"labels": labels, "matrix": [[confusion[w][g] for g in labels] for w in labels]},
        "calibration": {"ece": ece, "bins": bins},
        "mean_steps": sum(steps) / max(1, len(steps)),
        "errors": [{k: x[k] for k in ("alertname", "want", "got", "conf", "want_params", "got_params")}
                   for x in rows if not x["ok"]][:50],
    }


def plot_confusion(metrics: dict[str, Any], path: str | Path, title: str = "TRM confusion") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = metrics["confusion"]["labels"]
    m = metrics["confusion"]["matrix"]
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow([[math.log1p(v) for v in row] for row in m], cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("expected")
    for i, row in enumerate(m):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="black")
    ax.set_title(title)
    return _save(fig, path)


def plot_reliability(metrics: dict[str, Any], path: str | Path, title: str = "TRM reliability") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [b for b in metrics["calibration"]["bins"] if b["n"]]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.bar([(b["lo"] + b["hi"]) / 2 for b in bins], [b["accuracy"] for b in bins], width=0.09, alpha=0.6,
           label="accuracy")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color="C1", label="bin mean")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence")
    ax.set_ylabel("exact accuracy")
    ax.set_title(f"{title} (ECE {metrics['calibration']['ece']:.3f})")
    ax.legend(loc="upper left")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def format_report(m: dict[str, Any], name: str = "") -> str:
    a, na, t = m["actionable"], m["no_action"], m["at_threshold"]
    lines = [
        f"{name} n={m['n']}: function accuracy {m['function_accuracy']:.4f}, exact {m['exact']:.4f}, "
        f"invalid {m['invalid']}, mean ACT steps {m['mean_steps']:.2f}",
        f"  actionable n={a['n']}: function {a['function_accuracy']:.4f}, parameters exact (fn right) "
        f"{a['param_exact']:.4f}, exact {a['exact']:.4f}",
        f"  no-action n={na['n']}: precision {na['precision']:.4f}, recall {na['recall']:.4f}, "
        f"REMEDIATIONS ON NO-ACTION {na['remediations_on_no_action']} (resolved {na['remediations_on_resolved']}), "
        f"wrong remediations {m['wrong_remediations']}",
        f"  at threshold {t['threshold']}: coverage {t['coverage']:.4f}, accuracy {t['accuracy']:.4f}, "
        f"remediations on no-action {t['remediations_on_no_action']}, wrong remediations {t['wrong_remediations']}",
        f"  calibration ECE {m['calibration']['ece']:.4f}",
    ]
    return "\n".join(lines)


def format_tables(m: dict[str, Any]) -> str:
    """The per-function confusion matrix and the calibration table as plain text."""
    labels = m["confusion"]["labels"]
    short = [lbl.replace("flux-reconcile-", "flux-").replace("-status", "") for lbl in labels]
    w = max(len(x) for x in short) + 1
    lines = ["confusion (rows: expected, columns: predicted)", " " * w + "".join(f"{x[:10]:>11}" for x in short)]
    for name, row in zip(short, m["confusion"]["matrix"]):
        lines.append(f"{name:<{w}}" + "".join(f"{v:>11}" for v in row))
    lines.append("calibration (confidence bin: n, mean confidence, accuracy)")
    for b in m["calibration"]["bins"]:
        if b["n"]:
            lines.append(f"  [{b['lo']:.1f}, {b['hi']:.1f}): n={b['n']:<6} conf={b['confidence']:.3f} "
                         f"acc={b['accuracy']:.3f}")
    return "\n".join(lines)


def gate_view(predictor: Any, records: list[dict[str, Any]], *, threshold: float = 0.9,
              batch_size: int = 256) -> dict[str, Any]:
    """What would reach the cluster: TRM decisions above ``threshold`` that the default gate allows
    (stateless: catalog, target provenance, namespaces, confidence). Counts remediations that pass
    and are wrong, and the ones the gate stopped."""
    from ..alerts import Alert
    from ..gate import Gate

    gate = Gate()
    allowed = wrong_allowed = stopped_wrong = stopped_right = 0
    examples = []
    for i in range(0, len(records), batch_size):
        chunk = records[i:i + batch_size]
        for r, p in zip(chunk, predictor.predict_batch([c["alert"] for c in chunk])):
            d = p.decision
            if d is None or not d.lambda_function or p.confidence < threshold:
                continue
            exp = r["expect"]
            right = (d.lambda_function == exp.get("lambda_function")
                     and dict(d.parameters) == normalise_parameters(exp.get("lambda_function"), exp.get("parameters") or {}))
            v = gate.check(Alert.model_validate(r["alert"]), d)
            if v.allowed:
                allowed += 1
                wrong_allowed += not right
                if not right:
                    examples.append({"alertname": r["alert"]["labels"].get("alertname"),
                                     "got": d.lambda_function, "params": dict(d.parameters)})
            else:
                stopped_wrong += not right
                stopped_right += right
    return {"threshold": threshold, "allowed": allowed, "wrong_allowed": wrong_allowed,
            "wrong_stopped_by_gate": stopped_wrong, "right_stopped_by_gate": stopped_right,
            "wrong_examples": examples[:20]}
