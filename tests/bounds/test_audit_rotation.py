"""The audit log rotates by size and its chain continues across files: `history --verify` goes
through the rotated files in order, catches a record changed in a rotated file, a rotated file
missing in the middle, and a file's records moved to another; the quota removes the oldest files
only. Several processes appending at once across rotations keep one unbroken chain."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

from typer.testing import CliRunner

from agent_sre import audit
from agent_sre.audit import Audit
from agent_sre.cli import app as cli_app


def fill(log, n: int, max_bytes: int = 8192, keep: int = 0, pad: int = 200) -> Audit:
    a = Audit(log, max_bytes=max_bytes, keep=keep)
    for i in range(n):
        a.append("decision", {"i": i, "pad": "x" * pad}, correlation_id=f"c{i}", alertname="A")
    return a


def test_the_log_rotates_and_the_chain_continues(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 300)
    files = audit.log_files(log)
    assert len(files) > 5 and files[-1] == log
    assert all(f.stat().st_size < 8192 + 1024 for f in files)
    recs = list(audit.read(log))
    assert [r["data"]["i"] for r in recs] == list(range(300))
    assert [r["seq"] for r in recs] == list(range(300))
    firsts = [json.loads(f.read_text().splitlines()[0]) for f in files[1:]]
    lasts = [json.loads(f.read_text().splitlines()[-1]) for f in files[:-1]]
    assert all(first["prev"] == last["hash"] for first, last in zip(firsts, lasts))
    res = audit.verify(log)
    assert res.ok and res.records == 300 and res.files == len(files), res.summary()


def test_verify_from_the_cli_reads_the_rotated_files(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 120)
    r = CliRunner().invoke(cli_app, ["history", "--verify", "--log", str(log)])
    assert r.exit_code == 0 and "OK: 120 records in" in r.output, r.output
    r = CliRunner().invoke(cli_app, ["history", "--json", "--log", str(log)])
    assert len(r.output.splitlines()) == 120
    os.rename(log, tmp_path / "elsewhere")  # just after a rotation the live file may not exist yet
    r = CliRunner().invoke(cli_app, ["history", "--verify", "--log", str(log)])
    assert r.exit_code == 0, r.output


def test_a_record_changed_in_a_rotated_file_is_caught(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 120)
    victim = audit.log_files(log)[1]
    lines = victim.read_text().splitlines()
    rec = json.loads(lines[2])
    rec["data"]["i"] = 9999
    lines[2] = json.dumps(rec)
    victim.write_text("\n".join(lines) + "\n")
    res = audit.verify(log)
    assert not res.ok and any(victim.name in p and "does not match its hash" in p for p in res.problems)
    assert CliRunner().invoke(cli_app, ["history", "--verify", "--log", str(log)]).exit_code == 1


def test_a_rotated_file_missing_in_the_middle_is_caught(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 120)
    audit.log_files(log)[2].unlink()
    res = audit.verify(log)
    assert not res.ok and any("not consecutive" in p for p in res.problems), res.summary()


def test_a_rotated_file_replaced_by_a_renumbered_copy_is_caught(tmp_path):
    """Deleting a file and renaming the next ones to close the gap still breaks the chain."""
    log = tmp_path / "audit.jsonl"
    fill(log, 120)
    files = [f for n, f in audit.rotated_files(log)]
    files[1].unlink()
    for f in files[2:]:
        n = int(f.name.rsplit(".", 1)[1])
        f.rename(f.with_name(f"{log.name}.{n - 1:06d}"))
    res = audit.verify(log)
    assert not res.ok and any("chain broken" in p for p in res.problems)


def test_the_quota_removes_only_the_oldest_files(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 300, keep=3)
    rotated = audit.rotated_files(log)
    assert len(rotated) == 3 and rotated[0][0] > 1
    res = audit.verify(log)
    assert res.ok and res.first_seq > 0, res.summary()
    assert "earlier files removed" in res.summary()
    assert [r["seq"] for r in audit.read(log)] == list(range(res.first_seq, 300))


def _writer(path: str, who: int, n: int) -> None:
    a = Audit(path, max_bytes=4096, keep=0)
    for i in range(n):
        a.append_many([("event", {"who": who, "i": i, "pad": "y" * 100}, None, None)])


def test_processes_appending_across_rotations_keep_one_chain(tmp_path):
    log = tmp_path / "audit.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(str(log), w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    res = audit.verify(log)
    assert res.ok and res.records == 600, res.summary()
    assert len(audit.log_files(log)) > 10
    seen = {(r["data"]["who"], r["data"]["i"]) for r in audit.read(log)}
    assert len(seen) == 600
