"""Draw one storm as the incident desk handled it: docs/incidents.png (for the README).

    .venv/bin/python bench/storm_picture.py [--out docs/incidents.png] [--settle 10]

Two generated storms at once (``node`` seed 17: a node goes NotReady after its pods start failing,
their alerts carry no node label, and two unrelated pods crash on healthy nodes; ``gitrepo`` seed 2:
a GitRepository cannot fetch, three Kustomizations follow), played as Alertmanager delivers them
through the offline replay (``storm_replay``: the packaged chain and gate, a simulated clock).
One row per alert: when its webhook came, the settle window it waited, and what was done.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from storm_replay import DecisionCache, replay  # noqa: E402

from agent_sre.agent import needs_nothing  # noqa: E402
from agent_sre.chain.chain import Chain  # noqa: E402
from agent_sre.incidents.desk import Desk  # noqa: E402
from agent_sre.incidents.scenarios import Scenario, generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def storm() -> Scenario:
    node, git = generate("node", 17), generate("gitrepo", 2)
    for a in git.alerts:
        a.at = round(a.at + 1.5, 2)
    return Scenario("node-17+gitrepo-2", "mixed", 0, sorted(node.alerts + git.alerts, key=lambda a: a.at), 2)


def label(a) -> str:
    lb = a.labels
    if "pod" in lb and "node" not in lb["alertname"].lower():
        where = f" on {lb['node']}" if lb.get("node") else " (no node label)"
        return f"{lb['alertname']} {lb['namespace']}/{lb['pod']}{where}"
    if "node" in lb:
        return f"{lb['alertname']} {lb['node']}"
    kind = lb.get("kind") or lb.get("customresource_kind")
    return f"{lb['alertname']} {kind} {lb.get('exported_namespace')}/{lb.get('name')}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "incidents.png")
    ap.add_argument("--settle", type=float, default=10.0)
    a = ap.parse_args()
    scn = storm()
    log: list = []
    replay(scn, DecisionCache(Chain()), lambda: Desk(settle_s=a.settle, needs_nothing=needs_nothing), log=log)
    rows = sorted(scn.alerts, key=lambda x: (x.incident or "~", x.truth != "root", x.at))
    y = {x.fingerprint: i for i, x in enumerate(rows)}
    end = max(t for t, *_ in log) + 2.5
    fig, ax = plt.subplots(figsize=(16, 0.5 * len(rows) + 2.4))
    outcome: dict[str, str] = {}
    for t, fp, what, detail in log:
        i = y[fp]
        if what == "delivered":
            ax.plot(t, i, marker="|", color="#555", markersize=12)
        elif what == "defer":
            ax.barh(i, detail - t, left=t, height=0.35, color="#f2c14e", alpha=0.7)
        elif what == "hold":
            ax.plot(t, i, marker="o", color="#888", markersize=8)
            ax.hlines(i, t, end, colors="#bbb", linestyles="dotted")
            head = str(detail).split(":")[0]  # "symptom of <alertname> (<what it is about>)"
            outcome[fp] = "held: symptom of " + head[head.find("(") + 1:head.rfind(")")] if "(" in head else head
        elif what == "escalate":
            ax.plot(t, i, marker="*", color="#d1495b", markersize=16)
            n = len(detail) if isinstance(detail, list) else 1
            outcome[fp] = f"one escalation for the incident ({n} alerts)"
        elif what == "trigger":
            ax.plot(t, i, marker=">", color="#2e86ab", markersize=11)
            outcome[fp] = f"trigger: {detail}"
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label(x) for x in rows], fontsize=8)
    for x in rows:
        ax.annotate(outcome.get(x.fingerprint, ""), (1.01, y[x.fingerprint]), xycoords=("axes fraction", "data"),
                    va="center", fontsize=8, annotation_clip=False)
    ax.set_xlim(-0.3, end)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (Alertmanager group_wait 1 s, group_interval 2 s; settle window "
                  f"{a.settle:g} s)")
    ax.set_title("One storm, two incidents and two unrelated crash loops: what agent-sre did", fontsize=11)
    handles = [plt.Line2D([], [], marker="|", color="#555", ls="", markersize=10, label="webhook (group re-sent)"),
               plt.Rectangle((0, 0), 1, 1, color="#f2c14e", alpha=0.7, label="settle window: could be a symptom"),
               plt.Line2D([], [], marker="o", color="#888", ls="", label="held as a symptom of its root"),
               plt.Line2D([], [], marker=">", color="#2e86ab", ls="", label="trigger (through the gate)"),
               plt.Line2D([], [], marker="*", color="#d1495b", ls="", markersize=12, label="escalation (one per incident)")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=5, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.subplots_adjust(left=0.37, right=0.75, top=0.93, bottom=0.16)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
