"""Training records for the TRM: their format, the runbook's expectation, JSONL files, merge and split.

A record (one JSON line)::

    {"alert": {...Alertmanager alert...},
     "expect": {"lambda_function": str|None, "parameters": {...}, "plan": [...], "sources": {param: label key}},
     "meta": {"template": ..., "alertname": ..., "family": ..., "style": ..., "source": ...}}

* ``runbook_expect`` — the expectation the runbook gives for an alert's labels.
* ``runbook_records`` / ``write_runbook_dataset`` — one canonical example per runbook case.
* ``write_jsonl`` / ``read_jsonl`` / ``merge`` — files of records; merge drops duplicates
  (``record_key``) and refuses conflicting ones. ``expect`` may be null (collected, not labelled
  yet): ``labelled`` keeps the others; ``outcome_weighted`` repeats examples labelled by real
  outcomes (``meta.label``).
* ``split`` — deterministic random split, or by alert name and annotation template (held-out names).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .. import runbook as rb
from ..alerts import Alert, label_fingerprint

# --------------------------------------------------------------------------- expectations


def no_action_expect() -> dict[str, Any]:
    return {"lambda_function": None, "parameters": {}, "plan": [], "sources": {}}


def runbook_expect(book: rb.Runbook, labels: dict[str, str], *, entry: rb.Entry | None = None,
                   status: str = "firing") -> dict[str, Any]:
    """What the runbook decides for ``labels``: the first step of the case ``book.case_for`` picks, the
    label each parameter was read from, and the whole plan. No action when resolved, when no case
    matches, when the plan is empty or a required parameter has no label.

    ``entry`` answers for the labels whatever their ``alertname`` (generated alerts carry variants of
    an entry's name); it must be one of ``book``'s entries. Without it the alertname picks the entry."""
    if status != "firing":
        return no_action_expect()
    hit = book.case_for({**labels, "alertname": entry.alert} if entry is not None else labels)
    if hit is None or not hit[1].plan:
        return no_action_expect()
    entry, case = hit
    alert = Alert(labels={**labels, "alertname": labels.get("alertname") or entry.alert})
    first = case.plan[0]
    params, missing = rb.resolve_step(first, alert)
    if missing:
        return no_action_expect()
    sources = {}
    for name, src in first.parameters.items():
        _, key = src.resolve(labels)
        if key is not None:
            sources[name] = key
    plan: list[dict[str, Any]] = [{"lambda_function": first.function, "parameters": dict(params)}]
    for step in case.plan[1:]:
        later, _ = rb.resolve_step(step, alert)
        plan.append({"lambda_function": step.function, "parameters": later, "from_previous": list(step.from_previous)})
    return {"lambda_function": first.function, "parameters": dict(params), "plan": plan, "sources": sources}


# --------------------------------------------------------------------------- runbook dataset


def runbook_records(book: rb.Runbook | None = None) -> list[dict[str, Any]]:
    """One canonical example per runbook case: the entry's own alert name, plain labels built from the
    case's match and its parameter sources (first label key of each), expected decision from the runbook."""
    book = book or rb.load()
    out = []
    for e in book.alerts:
        for ci, case in enumerate(e.when):
            labels: dict[str, str] = {"alertname": e.alert, "severity": "warning"}
            for key, want in case.match.items():
                vals = want if isinstance(want, list) else [want]
                v = next((x for x in vals if x), None)
                if v:
                    labels[key] = v
            ctx_values = {"name": "demo-app", "namespace": "demo", "selector": "app=demo"}
            for step in case.plan[:1]:
                for pname, src in step.parameters.items():
                    if src.value is None and src.labels:
                        key = src.labels[0]
                        default = {"pod": "demo-app-5c9d7b8f6d-x2k9q", "persistentvolumeclaim": "data-demo-app-0"}
                        labels[key] = default.get(key, ctx_values.get(pname, "demo"))
            alert = {"status": "firing", "labels": labels, "annotations": {"summary": e.description},
                     "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                     "fingerprint": label_fingerprint(labels)}
            out.append({"alert": alert, "expect": runbook_expect(book, labels),
                        "meta": {"template": f"runbook:{e.alert}:{ci}", "alertname": e.alert, "family": "runbook",
                                 "style": "canonical", "source": "runbook"}})
    return out


def write_runbook_dataset(path: str | Path = "data/runbook_test_dataset.jsonl",
                          book: rb.Runbook | None = None) -> int:
    recs = runbook_records(book)
    write_jsonl(path, recs)
    return len(recs)


# --------------------------------------------------------------------------- io, merge, split


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w") as f:
        for rec in records:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not JSON: {e}") from None
    return out


def record_key(rec: dict[str, Any]) -> str:
    a = rec["alert"]
    doc = json.dumps([a.get("status"), a.get("labels"), a.get("annotations")], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def merge(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Records of several JSONL files, duplicates (same status, labels, annotations) dropped, first kept.
    Conflicting duplicates (same alert, different expectation) raise."""
    seen: dict[str, dict[str, Any]] = {}
    out = []
    for p in paths:
        for rec in read_jsonl(p):
            if "alert" not in rec or "expect" not in rec:
                raise ValueError(f"{p}: record without alert/expect")
            k = record_key(rec)
            if k in seen:
                a, b = seen[k]["expect"], rec["expect"]
                if a is None and b is not None:  # a label for a record seen unlabelled: the label wins
                    seen[k]["expect"] = b
                    continue
                if a is not None and b is not None and \
                        (a.get("lambda_function"), a.get("parameters")) != (b.get("lambda_function"), b.get("parameters")):
                    raise ValueError(f"{p}: conflicting expectations for the same alert {rec['alert']['labels']}")
                continue
            seen[k] = rec
            out.append(rec)
    return out


def labelled(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that carry an expectation (``expect`` not null): what training and evaluation use."""
    return [r for r in records if r.get("expect") is not None]


def outcome_weighted(records: list[dict[str, Any]], weight: int) -> list[dict[str, Any]]:
    """``records`` with every example labelled by a real outcome (``meta.label`` positive or
    negative, from ``dataset collect``) repeated ``weight`` times: what a verified fix or a
    rejected suggestion says outweighs a generated example."""
    if weight <= 1:
        return records
    return [r for rec in records for r in [rec] * (weight if (rec.get("meta") or {}).get("label") else 1)]


@dataclass
class Split:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    info: dict[str, Any]


def _alertname(rec: dict[str, Any]) -> str:
    return rec.get("meta", {}).get("alertname") or rec["alert"]["labels"]["alertname"]


def split(records: list[dict[str, Any]], seed: int = 0, *, by: str = "name", val_frac: float = 0.1,
          test_frac: float = 0.15) -> Split:
    """Deterministic split.

    ``by="random"``: shuffled records. ``by="name"``: alert names and annotation templates are split
    into train / val / test groups (stratified by family), and a record goes to the first of test, val
    whose names or templates it uses, else to train — so test (and val) hold alert names and templates
    the model never saw in training."""
    rng = random.Random(seed)
    if by == "random":
        idx = list(range(len(records)))
        rng.shuffle(idx)
        n_test, n_val = int(len(idx) * test_frac), int(len(idx) * val_frac)
        test = [records[i] for i in idx[:n_test]]
        val = [records[i] for i in idx[n_test:n_test + n_val]]
        train = [records[i] for i in idx[n_test + n_val:]]
        info = {"by": by, "seed": seed}
    elif by == "name":
        fam_names: dict[str, set[str]] = {}
        fam_tmpl: dict[str, set[str]] = {}
        for rec in records:
            fam = rec.get("meta", {}).get("family", "")
            fam_names.setdefault(fam, set()).add(_alertname(rec))
            t = rec.get("meta", {}).get("template")
            if t and not t.endswith(":none"):
                fam_tmpl.setdefault(fam.split("-")[0], set()).add(t)

        def pick(groups: dict[str, set[str]], frac_t: float, frac_v: float) -> tuple[set[str], set[str]]:
            t_set, v_set = set(), set()
            for _g, items in sorted(groups.items()):
                items_l = sorted(items)
                rng.shuffle(items_l)
                if len(items_l) < 3:
                    continue
                nt = max(1, round(len(items_l) * frac_t))
                nv = max(1, round(len(items_l) * frac_v))
                t_set.update(items_l[:nt])
                v_set.update(items_l[nt:nt + nv])
            return t_set, v_set

        test_names, val_names = pick(fam_names, test_frac, val_frac)
        test_tmpl, val_tmpl = pick(fam_tmpl, 0.15, 0.1)
        train, val, test = [], [], []
        for rec in records:
            nm, t = _alertname(rec), rec.get("meta", {}).get("template")
            if nm in test_names or t in test_tmpl:
                test.append(rec)
            elif nm in val_names or t in val_tmpl:
                val.append(rec)
            else:
                train.append(rec)
        # names used by both a held-out and a train family (e.g. a shared generic name) stay in train only
        train_names = {_alertname(r) for r in train}
        test = [r for r in test if _alertname(r) not in train_names]
        val = [r for r in val if _alertname(r) not in train_names]
        info = {"by": by, "seed": seed, "held_out_names": {"test": len(test_names), "val": len(val_names)},
                "held_out_templates": {"test": sorted(test_tmpl), "val": sorted(val_tmpl)}}
    else:
        raise ValueError(f"split by {by!r}: choose 'random' or 'name'")
    info["sizes"] = {"train": len(train), "val": len(val), "test": len(test)}
    return Split(train, val, test, info)
