"""The audit log is tamper-evident: a keyed chain catches a rewritten or deleted record even when
the chain is recomputed, and the signed checkpoint catches records dropped from the end."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from agent_sre import audit, signing
from agent_sre.audit import Audit, verify
from agent_sre.cli import app as cli_app
from tests.keys import AGENT, ATTACKER

KEY = b"k" * 64
RING = signing.KeyRing([AGENT.public])


def write(path, n=300, **kw) -> Audit:
    log = Audit(path, key=KEY, signer=AGENT, **kw)
    for i in range(0, n, 10):
        log.append_many([("decision", {"i": j, "parameters": {"name": f"web-{j}"}}, f"c{j}", "A")
                         for j in range(i, min(n, i + 10))])
    return log


def check(path, **kw):
    return verify(path, key=KEY, ring=RING, require_checkpoint=True, **kw)


def lines(path):
    return path.read_text().splitlines()


def put(path, rows):
    path.write_text("\n".join(rows) + ("\n" if rows else ""))


def rechain(rows, key):
    """What an attacker does after deleting a record: recompute seq, prev and hash of the rest."""
    out, prev = [], audit.GENESIS
    for seq, ln in enumerate(rows):
        rec = json.loads(ln)
        rec.update(seq=seq, prev=prev)
        rec.pop("hash")
        rec["hash"] = audit.record_hash(rec, key)
        prev = rec["hash"]
        out.append(json.dumps(rec))
    return out


def test_an_untouched_log_verifies(tmp_path):
    log = tmp_path / "audit.jsonl"
    write(log)
    res = check(log)
    assert res.ok and res.records == 300 and res.problems == [], res.summary()
    cp = json.loads(audit.checkpoint_path(log).read_text())
    assert cp["seq"] == 299 and cp["keyid"] == AGENT.id and cp["log"] == "audit.jsonl"


def test_dropping_the_last_100_records_fails(tmp_path):
    log = tmp_path / "audit.jsonl"
    write(log)
    put(log, lines(log)[:-100])
    res = check(log)  # the chain that is left is intact: only the checkpoint tells
    assert not res.ok and len(res.problems) == 1, res.summary()
    assert "truncated" in res.problems[0] and "record 299 exists; the log ends at 199" in res.problems[0]


@pytest.mark.parametrize("attacker_key", [None, b"guess" * 10, KEY])
def test_deleting_one_record_and_recomputing_the_chain_fails(tmp_path, attacker_key):
    log = tmp_path / "audit.jsonl"
    write(log)
    rows = lines(log)
    del rows[150]
    put(log, rechain(rows, attacker_key))
    res = check(log)
    assert not res.ok, res.summary()
    if attacker_key == KEY:  # even with the HMAC key: the signed checkpoint names seq 299's hash
        assert any("truncated" in p for p in res.problems)
    else:
        assert any("does not match its hash" in p for p in res.problems)


def test_rewriting_a_record_fails(tmp_path):
    log = tmp_path / "audit.jsonl"
    write(log)
    rows = lines(log)
    rows[42] = rows[42].replace('"web-42"', '"web-99"')
    put(log, rows)
    res = check(log)
    assert not res.ok and any("line 43" in p and "does not match its hash" in p for p in res.problems)


def test_a_forged_or_missing_checkpoint_fails(tmp_path):
    log = tmp_path / "audit.jsonl"
    write(log)
    cp_path = audit.checkpoint_path(log)
    cp = json.loads(cp_path.read_text())
    put(log, lines(log)[:-100])
    # the attacker moves the checkpoint back to the new end: the signature no longer matches
    cp_path.write_text(json.dumps({**cp, "seq": 199, "hash": json.loads(lines(log)[-1])["hash"]}))
    res = check(log)
    assert not res.ok and any("signature is invalid" in p for p in res.problems)
    # ... or signs it with a key of their own
    forged = {"log": "audit.jsonl", "seq": 199, "hash": json.loads(lines(log)[-1])["hash"], "time": cp["time"],
              "keyid": AGENT.id}
    forged["signature"] = signing.b64(ATTACKER.sign(audit.checkpoint_message(forged)))
    cp_path.write_text(json.dumps(forged))
    assert not check(log).ok
    # ... or removes it
    cp_path.unlink()
    res = check(log)
    assert not res.ok and any("no checkpoint" in p for p in res.problems)


def test_an_old_checkpoint_put_back_is_caught_by_the_logged_one(tmp_path, caplog):
    log = tmp_path / "audit.jsonl"
    w = Audit(log, key=KEY, signer=AGENT, log_every_s=0)
    w.append_many([("alert", {"i": i}, None, None) for i in range(100)])
    old = audit.checkpoint_path(log).read_text()
    with caplog.at_level(logging.INFO, logger="agent_sre.audit"):
        w.append_many([("alert", {"i": i}, None, None) for i in range(100, 200)])
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit checkpoint ")][-1]
    put(log, lines(log)[:100])
    audit.checkpoint_path(log).write_text(old)
    assert check(log).ok  # the volume alone looks consistent
    cp = json.loads(logged[logged.index("{"):])
    res = check(log, checkpoint=cp)
    assert not res.ok and any("truncated" in p for p in res.problems)


def test_a_torn_last_line_is_reported_not_tampering(tmp_path):
    log = tmp_path / "audit.jsonl"
    w = write(log, 20)
    with log.open("ab") as f:
        f.write(b'{"seq": 20, "kind": "alert", "da')  # a crash mid-write
    res = check(log)
    assert res.ok and res.torn == [21], res.summary()
    w2 = Audit(log, key=KEY, signer=AGENT)  # a new process chains on from the last complete record
    w2.append("alert", {"after": "crash"})
    del w
    res = check(log)
    assert res.ok and res.records == 21 and res.torn == [21], res.summary()


def test_the_chain_continues_across_rotation(tmp_path):
    log = tmp_path / "audit.jsonl"
    w = write(log, 100)
    assert w.rotate().name == "audit.jsonl.1"
    w.append_many([("alert", {"i": i}, None, None) for i in range(50)])
    w.rotate()
    w.append("alert", {"i": "last"})
    assert [p.name for p in audit.rotated(log)] == ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    assert json.loads(lines(log)[0])["seq"] == 150
    res = check(log)
    assert res.ok and res.records == 151, res.summary()
    # a record deleted in a rotated file breaks the chain
    rows = lines(tmp_path / "audit.jsonl.1")
    del rows[10]
    put(tmp_path / "audit.jsonl.1", rows)
    assert not check(log).ok


def test_rotation_keeps_at_most_n_files_and_the_rest_still_verifies(tmp_path):
    log = tmp_path / "audit.jsonl"
    w = Audit(log, key=KEY, signer=AGENT)
    for i in range(5):
        w.append("alert", {"i": i})
        w.rotate(keep=2)
    w.append("alert", {"i": 5})
    assert [p.name for p in audit.rotated(log)] == ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    res = check(log)
    assert res.ok and res.records == 3 and any("starts at seq 3" in n for n in res.warnings), res.summary()


def test_history_verify_from_the_cli(tmp_path):
    log = tmp_path / "audit.jsonl"
    write(log)
    (tmp_path / "hmac.key").write_bytes(KEY)
    pub = tmp_path / "agent.pem"
    pub.write_bytes(signing.public_pem(AGENT.public))
    env = {"AUDIT_LOG": str(log), "AUDIT_HMAC_KEY": str(tmp_path / "hmac.key"), "AGENT_PUBLIC_KEYS": str(pub),
           "AGENT_SIGNING_KEY": "", "FUNCTION_PUBLIC_KEYS": ""}
    runner = CliRunner()
    r = runner.invoke(cli_app, ["history", "--verify"], env=env)
    assert r.exit_code == 0 and "OK: 300 records" in r.output, r.output
    cp = audit.checkpoint_path(log).read_text()
    put(log, lines(log)[:-100])
    r = runner.invoke(cli_app, ["history", "--verify"], env=env)
    assert r.exit_code == 1 and "TAMPERED" in r.output and "truncated" in r.output
    audit.checkpoint_path(log).unlink()
    r = runner.invoke(cli_app, ["history", "--verify", "--checkpoint", "audit checkpoint " + cp], env=env)
    assert r.exit_code == 1 and "truncated" in r.output
    # without the keys: the chain is checked with plain SHA-256, which fails on a keyed log, and says why
    r = runner.invoke(cli_app, ["history", "--verify"], env={"AUDIT_LOG": str(log), "AUDIT_HMAC_KEY": "",
                                                            "AGENT_PUBLIC_KEYS": "", "AGENT_SIGNING_KEY": "",
                                                            "FUNCTION_PUBLIC_KEYS": ""})
    assert r.exit_code == 1 and "give AUDIT_HMAC_KEY" in r.output
