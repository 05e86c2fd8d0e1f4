"""The rule files in rules/: valid for the real promtool, covering the runbook, and giving every
alert the labels its runbook plan reads its parameters from."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent_sre import catalog, runbook
from agent_sre.collect.promql import infer_labels
from agent_sre.collect.rules import alert_labels, load_rules

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "rules").glob("*.yaml"))
RULES = [r for p in RULE_FILES for r in load_rules(p)]


def test_rule_files_exist():
    assert RULE_FILES and RULES


def test_promtool_accepts_every_rule_file():
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(promtool).exists(), "promtool missing: run .ci/install-system-deps.sh"
    out = subprocess.run([promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_runbook_alert_has_a_rule_and_names_are_unique():
    names = [r.alert for r in RULES]
    assert len(names) == len(set(names)), names
    rb = runbook.load()
    for entry in rb.alerts:
        assert entry.alert in names, f"runbook alert {entry.alert} has no rule in rules/"
    for name in names:
        assert rb.entry_for(name) is not None, f"rule {name} is not in the runbook"


def test_static_fast_path_is_used_at_most_once_and_only_for_read_only():
    static = [r for r in RULES if "lambda_function" in r.annotations]
    assert len(static) <= 1, [r.alert for r in static]
    for r in static:
        spec = catalog.get(r.annotations["lambda_function"])
        assert not spec.mutating, f"{r.alert}: the static path may only name a read-only function"
        # The template must name labels the alert really carries, and produce the catalog's parameters.
        tmpl = r.annotations["lambda_parameters"]
        used = set(re.findall(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)", tmpl))
        assert used <= set(alert_labels(r)), (r.alert, used - set(alert_labels(r)))
        rendered = re.sub(r"\{\{\s*\$labels\.([a-zA-Z0-9_]+)\s*\}\}", "x-1", tmpl)
        params = json.loads(rendered)
        assert catalog.validate_parameters(spec.name, params) == params


def _plan_for(entry, labels: set[str]):
    """The plan the runbook would choose for an alert carrying ``labels`` with any values:
    cases matching on a label value are considered reachable when the label is present."""
    for case in entry.when:
        if all((k in labels) or (None in (v if isinstance(v, list) else [v])) for k, v in case.match.items()):
            yield case


@pytest.mark.parametrize("rule", [r for r in RULES if r.alert != "Watchdog"], ids=lambda r: r.alert)
def test_rule_labels_feed_the_runbook_parameters(rule):
    """Every required parameter of the first step of every reachable plan can be read from a
    label the alert carries (label inference from the rule's expression + its static labels)."""
    labels = set(alert_labels(rule))
    entry = runbook.load().entry_for(rule.alert)
    cases = list(_plan_for(entry, labels))
    assert cases, f"{rule.alert}: no runbook case is reachable with labels {sorted(labels)}"
    planned = [case for case in cases if case.plan]
    assert planned, f"{rule.alert}: every reachable runbook case is empty, so the rule can trigger nothing"
    for case in planned:
        step = case.plan[0]
        required = catalog.get(step.function).required_parameters()
        for p in required:
            src = step.parameters.get(p)
            assert src is not None, f"{rule.alert}: {step.function}.{p} has no source"
            assert src.value is not None or set(src.labels) & labels, (
                f"{rule.alert}: {step.function} needs {p} from one of {src.labels}, alert carries {sorted(labels)}")


def test_flux_rules_keep_the_object_namespace():
    """Scraped gotk_* metrics carry the object's namespace as exported_namespace: a by() that
    dropped it would make the agent act in flux-system."""
    flux = [r for r in RULES if any(m.startswith("gotk_") for m in infer_labels(r.expr).metrics)]
    assert {r.alert for r in flux} >= {r.alert for r in load_rules(REPO / "rules" / "flux.yaml")} > set()
    for r in flux:
        inf = infer_labels(r.expr)
        assert "exported_namespace" in inf.labels and "kind" in inf.labels and "name" in inf.labels, r.alert
