"""The audit log rotates by size (AUDIT_MAX_BYTES, AUDIT_KEEP) and its chain continues across files:
`history` and `history --verify` go through the rotated files in order; a record changed in a rotated
file, or a rotated file missing in the middle, fails the check; the quota removes the oldest files
only, and the check then starts at the first record kept. Several processes appending at once across
rotations keep one unbroken chain."""

from __future__ import annotations

import json
import multiprocessing as mp

from typer.testing import CliRunner

from agent_sre import audit
from agent_sre.audit import Audit
from agent_sre.cli import app as cli_app
from agent_sre.server import agent_from_env


def starts_late(res: audit.VerifyResult) -> list[str]:
    """verify's note that the set does not start at the first record ever written."""
    return [w for w in res.warnings if "starts at seq" in w]


def fill(log, n: int, max_bytes: int = 8192, keep: int | None = None, pad: int = 200) -> Audit:
    a = Audit(log, max_bytes=max_bytes, keep=keep)
    for i in range(n):
        a.append("decision", {"i": i, "pad": "x" * pad}, correlation_id=f"c{i}", alertname="A")
    return a


def test_the_log_rotates_by_size_and_the_chain_continues(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 300)
    files = audit.rotated(log)
    assert len(files) > 5 and files[-1] == log and files[-2].name == "audit.jsonl.1"
    assert all(f.stat().st_size < 8192 + 1024 for f in files)
    recs = list(audit.read(log))
    assert [r["data"]["i"] for r in recs] == list(range(300))
    assert [r["seq"] for r in recs] == list(range(300))
    firsts = [json.loads(f.read_text().splitlines()[0]) for f in files[1:]]
    lasts = [json.loads(f.read_text().splitlines()[-1]) for f in files[:-1]]
    assert all(first["prev"] == last["hash"] for first, last in zip(firsts, lasts))
    res = audit.verify(log)
    assert res.ok and res.records == 300 and not starts_late(res), res.summary()


def test_history_and_verify_from_the_cli_read_the_rotated_files(tmp_path):
    log = tmp_path / "audit.jsonl"
    writer = fill(log, 120)
    r = CliRunner().invoke(cli_app, ["history", "--verify", "--log", str(log)])
    assert r.exit_code == 0 and "OK: 120 records" in r.output, r.output
    r = CliRunner().invoke(cli_app, ["history", "--json", "--log", str(log)])
    assert len(r.output.splitlines()) == 120
    writer.rotate()  # just after a rotation there is no live file until the next record
    assert not log.exists()
    r = CliRunner().invoke(cli_app, ["history", "--verify", "--log", str(log)])
    assert r.exit_code == 0 and "OK: 120 records" in r.output, r.output


def test_a_record_changed_in_a_rotated_file_is_caught(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 120)
    victim = audit.rotated(log)[1]
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
    files = audit.rotated(log)
    files[2].unlink()
    res = audit.verify(log)
    assert not res.ok and any("chain broken" in p for p in res.problems), res.summary()
    # ... also when the later files are renamed to close the gap
    for f in audit.rotated(log)[:2]:
        n = int(f.name.rsplit(".", 1)[1])
        f.rename(f.with_name(f"{log.name}.{n - 1}"))
    res = audit.verify(log)
    assert not res.ok and any("chain broken" in p for p in res.problems), res.summary()


def test_the_quota_removes_only_the_oldest_files(tmp_path):
    log = tmp_path / "audit.jsonl"
    fill(log, 300, keep=3)
    files = audit.rotated(log)
    assert [f.name for f in files] == ["audit.jsonl.3", "audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    res = audit.verify(log)
    first = next(audit.read(log))["seq"]
    assert res.ok and first > 0, res.summary()
    assert starts_late(res) == [f"the log starts at seq {first}: earlier records are not here (rotated away, or removed)"]
    assert [r["seq"] for r in audit.read(log)] == list(range(first, 300))


def test_the_agent_rotates_by_its_settings(tmp_path):
    agent = agent_from_env({"STATE_DIR": str(tmp_path), "AUDIT_MAX_BYTES": "4096", "AUDIT_KEEP": "2"})
    assert agent.audit.max_bytes == 4096 and agent.audit.keep == 2
    agent = agent_from_env({"STATE_DIR": str(tmp_path), "AUDIT_KEEP": "0"})
    assert agent.audit.max_bytes == 64 << 20 and agent.audit.keep is None  # 0: keep every file


def _writer(path: str, who: int, n: int) -> None:
    a = Audit(path, max_bytes=4096, keep=None)
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
    assert res.ok and res.records == 600 and not starts_late(res), res.summary()
    assert len(audit.rotated(log)) > 10
    seen = {(r["data"]["who"], r["data"]["i"]) for r in audit.read(log)}
    assert len(seen) == 600
