"""Append-only, hash-chained audit log (JSON lines).

Each record: ``{seq, ts, kind, correlation_id, alertname, data, prev, hash}`` where ``prev`` is the
previous record's ``hash`` and ``hash`` = sha256 of the record's canonical JSON without ``hash``.
Editing, deleting, reordering or inserting a record breaks the chain and ``verify`` says where.

Appends take an exclusive ``flock`` on the file, read the last record's hash, and write whole
lines with one ``write`` on an ``O_APPEND`` descriptor, so several processes may share one log.
A process killed mid-write can leave a torn last line; the next append starts on a fresh line
and chains from the last complete record, and ``verify`` reports the torn line separately.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

GENESIS = "0" * 64

KINDS = ("alert", "decision", "verdict", "event", "delivery", "dead_letter", "result", "escalation")


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def record_hash(rec: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in rec.items() if k != "hash"})).hexdigest()


def _record(line: bytes) -> dict[str, Any] | None:
    """The JSON object on ``line``, or None for a blank, torn or non-object line."""
    if not line.strip():
        return None
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return rec if isinstance(rec, dict) else None


def _last_complete(fd: int) -> tuple[dict[str, Any] | None, bool]:
    """The last complete record of the file and whether the file ends mid-line (a torn write)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, False
    torn = os.pread(fd, 1, size - 1) != b"\n"
    pos, buf = size, b""
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        cut = buf.rfind(b"\n")
        lines = buf[:cut].split(b"\n") if cut >= 0 else []
        if pos > 0 and lines:
            lines = lines[1:]  # the first piece may start mid-line
        for ln in reversed(lines):
            rec = _record(ln)
            if rec is not None and "hash" in rec:
                return rec, torn
    return None, torn


class Audit:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # (inode, size, last hash, next seq) after our last write: skips re-reading the tail
        self._tail: tuple[int, int, str, int] | None = None

    def append(self, kind: str, data: dict[str, Any], *, correlation_id: str | None = None,
               alertname: str | None = None) -> dict[str, Any]:
        return self.append_many([(kind, data, correlation_id, alertname)])[0]

    def append_many(self, items: Iterable[tuple[str, dict[str, Any], str | None, str | None]]) -> list[dict[str, Any]]:
        items = list(items)
        if not items:
            return []
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                if self._tail is not None and self._tail[:2] == (st.st_ino, st.st_size):
                    prev, seq, torn = self._tail[2], self._tail[3], False  # nobody wrote since us
                else:
                    rfd = os.open(self.path, os.O_RDONLY)
                    try:
                        last, torn = _last_complete(rfd)
                    finally:
                        os.close(rfd)
                    prev = last["hash"] if last else GENESIS
                    seq = (last["seq"] + 1) if last else 0
                out, chunks = [], [b"\n"] if torn else []
                now = time.time()
                for kind, data, corr, name in items:
                    rec = {"seq": seq, "ts": now,
                           "time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
                           "kind": kind, "correlation_id": corr, "alertname": name, "data": data, "prev": prev}
                    body = _canonical(rec)
                    rec["hash"] = hashlib.sha256(body).hexdigest()
                    prev, seq = rec["hash"], seq + 1
                    out.append(rec)
                    # the hash goes last on the line; verify re-canonicalises, so key order is free
                    chunks.append(body[:-1] + b',"hash":"' + rec["hash"].encode() + b'"}\n')
                blob = b"".join(chunks)
                os.write(fd, blob)
                self._tail = (st.st_ino, st.st_size + len(blob), prev, seq)
            finally:
                os.close(fd)  # releases the flock
        return out


def read(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Every complete record, in file order (torn lines skipped)."""
    p = Path(path)
    if not p.exists():
        return
    with p.open("rb") as f:
        for ln in f:
            rec = _record(ln)
            if rec is not None:
                yield rec


@dataclass
class VerifyResult:
    ok: bool
    records: int
    problems: list[str] = field(default_factory=list)
    torn: list[int] = field(default_factory=list)  # line numbers of torn (unparsable) lines

    def summary(self) -> str:
        head = f"{'OK' if self.ok else 'TAMPERED'}: {self.records} records"
        if self.torn:
            head += f", {len(self.torn)} torn line(s) at {self.torn[:5]} (a write cut short by a crash)"
        return "\n".join([head, *self.problems[:20]])


def verify(path: str | os.PathLike) -> VerifyResult:
    """Check every record's hash and the chain. A torn line is reported, not counted as tampering;
    a record missing, altered, inserted or moved is."""
    p = Path(path)
    res = VerifyResult(ok=True, records=0)
    if not p.exists():
        return res
    prev, seq = GENESIS, 0
    with p.open("rb") as f:
        for lineno, ln in enumerate(f, 1):
            if not ln.strip():
                continue
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                res.torn.append(lineno)
                continue
            if not isinstance(rec, dict) or "hash" not in rec:
                res.ok = False
                res.problems.append(f"line {lineno}: not an audit record")
                continue
            res.records += 1
            if record_hash(rec) != rec["hash"]:
                res.ok = False
                res.problems.append(f"line {lineno} (seq {rec.get('seq')}): content does not match its hash")
            if rec.get("prev") != prev:
                res.ok = False
                res.problems.append(f"line {lineno} (seq {rec.get('seq')}): chain broken (prev hash does not "
                                    f"match the record before)")
            if rec.get("seq") != seq:
                res.ok = False
                res.problems.append(f"line {lineno}: sequence {rec.get('seq')} where {seq} was expected")
            prev = rec["hash"]
            seq = (rec.get("seq") if isinstance(rec.get("seq"), int) else seq) + 1
    # A torn line anywhere but at a crash point is suspicious only if it broke the chain (checked above).
    return res


def parse_since(value: str | None) -> float | None:
    """``1h`` / ``30m`` / ``2d`` / ``45s`` ago, or an ISO 8601 time, as a Unix timestamp."""
    if not value:
        return None
    v = value.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if v[-1:] in units and v[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(v[:-1]) * units[v[-1]]
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {value!r}: use 30m, 2h, 1d or an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def history(path: str | os.PathLike, *, alertname: str | None = None, correlation_id: str | None = None,
            since: float | None = None, kinds: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    kinds = set(kinds) if kinds else None
    for rec in read(path):
        if alertname and rec.get("alertname") != alertname:
            continue
        if correlation_id and not str(rec.get("correlation_id") or "").startswith(correlation_id):
            continue
        if since is not None and float(rec.get("ts") or 0) < since:
            continue
        if kinds and rec.get("kind") not in kinds:
            continue
        yield rec
