"""bench/storms.py runs: the offline replay on a few storms, and one storm over HTTP to a real
`agent-sre serve` subprocess (a tiny version of the benchmark; the figures are the bench's)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "storms.py"), *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=600, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_offline_replay_prints_the_table():
    out = _run("offline", "--storms", "6")
    assert "| no incident layer |" in out and "| correlator (settle 10s) |" in out
    row = next(line for line in out.splitlines() if line.startswith("| correlator"))
    assert row.split("|")[2].strip().endswith("/6")


def test_one_storm_over_http():
    out = _run("http", "--storms", "1", "--time-scale", "0.3", "--env", "INCIDENT_SETTLE_SECONDS=2")
    assert "gitrepo-0" in out and "| agent-sre serve" in out
