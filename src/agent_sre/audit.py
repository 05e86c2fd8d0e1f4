"""Append-only, tamper-evident audit log (JSON lines): a keyed hash chain and signed checkpoints.

Each record: ``{seq, ts, time, kind, correlation_id, alertname, data, prev, hash}`` where ``prev``
is the previous record's ``hash`` and ``hash`` is HMAC-SHA256 (key: the ``AUDIT_HMAC_KEY``
file) of the record's canonical JSON without ``hash`` (plain SHA-256 when no key is given: that
catches accidents, not someone who recomputes the chain). Editing, deleting, reordering or
inserting a record breaks the chain; without the key nobody can recompute it.

Truncation (dropping the newest records) keeps a valid chain, so after every append the head
``{log, seq, hash, time}`` is written as a *checkpoint* outside the log: to ``<log>.checkpoint``
(replaced atomically) and, at most every ``log_every_s``, to the process log as a line
``audit checkpoint {...}``; it is signed with the agent's key when one is given. ``verify``
checks the chain and that the checkpoint's record is still there with that hash; an operator
who distrusts the volume passes the last logged checkpoint (``history --verify --checkpoint``).

Appends take an exclusive ``flock`` on the file, read the last record's hash, and write whole
lines with one ``write`` on an ``O_APPEND`` descriptor, so several processes may share one log.
A process killed mid-write can leave a torn last line; the next append starts on a fresh line
and chains from the last complete record, and ``verify`` reports the torn line separately.

Rotation (``rotate``) renames ``<log>`` to ``<log>.1`` (older ones move up: ``.2``, ...); the
next record continues the chain (its ``prev`` and ``seq`` follow the last record of ``.1``), so
``verify(<log>)``, which reads ``<log>.N ... <log>.1, <log>`` in that order, checks the whole set;
``read`` and ``history`` go through the set in the same order. An append that takes the file past
``max_bytes`` (AUDIT_MAX_BYTES) rotates it, keeping ``keep`` (AUDIT_KEEP) rotated files. Removing
the oldest files leaves a set that starts at a later ``seq``; ``verify`` says so.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:  # signing imports cryptography; only a signed checkpoint needs it
    from .signing import KeyRing, SigningKey

log = logging.getLogger(__name__)

GENESIS = "0" * 64

KINDS = ("alert", "decision", "verdict", "event", "delivery", "dead_letter", "result", "escalation", "refused",
         # the closed loop (agent_sre.loop)
         "suppressed", "verify", "outcome", "approval", "autonomy")
MIN_KEY_BYTES = 32


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def _mac(key: bytes | None, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest() if key else hashlib.sha256(body).hexdigest()


def record_hash(rec: dict[str, Any], key: bytes | None = None) -> str:
    return _mac(key, _canonical({k: v for k, v in rec.items() if k != "hash"}))


def load_key(path: str | os.PathLike) -> bytes:
    """The HMAC key: the file's bytes without surrounding whitespace (``keys generate`` writes 64
    hex digits); at least 32 bytes."""
    key = Path(path).read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: an audit HMAC key needs at least {MIN_KEY_BYTES} bytes, this one has {len(key)}")
    return key


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


def _last_of(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _last_complete(fd)[0]
    finally:
        os.close(fd)


def checkpoint_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".checkpoint")


def rotated(path: str | os.PathLike) -> list[Path]:
    """The files of a log set, oldest first: ``<log>.N`` ... ``<log>.1``, ``<log>``."""
    p = Path(path)
    numbered = []
    for f in p.parent.glob(p.name + ".*"):
        suffix = f.name[len(p.name) + 1:]
        if suffix.isdigit():
            numbered.append((int(suffix), f))
    return [f for _, f in sorted(numbered, reverse=True)] + ([p] if p.exists() else [])


def checkpoint_message(cp: dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers: canonical JSON of its log, seq, hash and time."""
    from .signing import canonical_json

    return canonical_json({k: cp.get(k) for k in ("log", "seq", "hash", "time")})


MAX_BYTES, KEEP = 64 << 20, 8  # the defaults of AUDIT_MAX_BYTES and AUDIT_KEEP


class Audit:
    """``key``: the HMAC key of the chain; ``signer``: signs checkpoints (the agent's key);
    ``max_bytes``: an append that takes the file past it rotates it (None: never); ``keep``: rotated
    files kept (None: all). Every log is bounded unless told otherwise."""

    def __init__(self, path: str | os.PathLike, *, key: bytes | None = None, signer: "SigningKey | None" = None,
                 log_every_s: float = 10.0, max_bytes: int | None = MAX_BYTES, keep: int | None = KEEP):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.keep = keep
        self.key = key
        self.signer = signer
        self.log_every_s = log_every_s
        self._logged_at = 0.0
        self._lock = threading.Lock()
        # (inode, size, last hash, next seq) after our last write: skips re-reading the tail
        self._tail: tuple[int, int, str, int] | None = None

    def append(self, kind: str, data: dict[str, Any], *, correlation_id: str | None = None,
               alertname: str | None = None) -> dict[str, Any]:
        return self.append_many([(kind, data, correlation_id, alertname)])[0]

    def _open_current(self) -> int:
        """The log file, opened and flock'ed; reopened if it was rotated while we waited."""
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def _head(self, fd: int, st: os.stat_result) -> tuple[str, int, bool]:
        """(last hash, next seq, torn) of the log set."""
        if self._tail is not None and self._tail[:2] == (st.st_ino, st.st_size):
            return self._tail[2], self._tail[3], False  # nobody wrote since us
        rfd = os.open(self.path, os.O_RDONLY)
        try:
            last, torn = _last_complete(rfd)
        finally:
            os.close(rfd)
        if last is None:  # a new file: continue from the newest rotated one
            last = _last_of(self.path.with_name(self.path.name + ".1"))
        return (last["hash"], last["seq"] + 1, torn) if last else (GENESIS, 0, torn)

    def append_many(self, items: Iterable[tuple[str, dict[str, Any], str | None, str | None]]) -> list[dict[str, Any]]:
        items = list(items)
        if not items:
            return []
        with self._lock:
            fd = self._open_current()
            try:
                st = os.fstat(fd)
                prev, seq, torn = self._head(fd, st)
                out, chunks = [], [b"\n"] if torn else []
                now = time.time()
                stamp = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
                for kind, data, corr, name in items:
                    rec = {"seq": seq, "ts": now, "time": stamp, "kind": kind, "correlation_id": corr,
                           "alertname": name, "data": data, "prev": prev}
                    body = _canonical(rec)
                    rec["hash"] = _mac(self.key, body)
                    prev, seq = rec["hash"], seq + 1
                    out.append(rec)
                    # the hash goes last on the line; verify re-canonicalises, so key order is free
                    chunks.append(body[:-1] + b',"hash":"' + rec["hash"].encode() + b'"}\n')
                blob = b"".join(chunks)
                os.write(fd, blob)
                self._tail = (st.st_ino, st.st_size + len(blob), prev, seq)
                self._checkpoint(out[-1], now)
                if self.max_bytes is not None and st.st_size + len(blob) >= self.max_bytes:
                    self._shift(self.keep)
            finally:
                os.close(fd)  # releases the flock
        return out

    def _checkpoint(self, last: dict[str, Any], now: float) -> None:
        cp: dict[str, Any] = {"log": self.path.name, "seq": last["seq"], "hash": last["hash"],
                              "time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")}
        if self.signer is not None:
            from .signing import b64

            cp["keyid"] = self.signer.id
            cp["signature"] = b64(self.signer.sign(checkpoint_message(cp)))
        doc = json.dumps(cp, sort_keys=True)
        target = checkpoint_path(self.path)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(doc + "\n")
        os.replace(tmp, target)
        if now - self._logged_at >= self.log_every_s:
            self._logged_at = now
            log.info("audit checkpoint %s", doc)

    def rotate(self, keep: int | None = None) -> Path | None:
        """Start a new file: ``<log>`` becomes ``<log>.1`` (older files move up one; beyond
        ``keep`` rotated files the oldest are removed). The chain continues in the new file.
        Returns the rotated file, or None when there was nothing to rotate."""
        with self._lock:
            if not self.path.exists():
                return None
            fd = self._open_current()
            try:
                if os.fstat(fd).st_size == 0:
                    return None
                return self._shift(keep)
            finally:
                os.close(fd)

    def _shift(self, keep: int | None) -> Path:
        """Under the lock and the flock of the current file: rename the set up by one."""
        older = [f for f in rotated(self.path) if f != self.path]  # oldest first
        for f in older:
            n = int(f.name.rsplit(".", 1)[1])
            if keep is not None and n + 1 > keep:
                f.unlink()
            else:
                os.replace(f, f.with_name(f"{self.path.name}.{n + 1}"))
        first = self.path.with_name(self.path.name + ".1")
        os.replace(self.path, first)
        self._tail = None
        return first


class Throttle:
    """At most one record per key and ``interval_s``: refusals of unauthenticated requests are
    recorded, but whoever can send them cannot grow the log at their own rate. ``allow(key)``
    returns how many were skipped since the last one recorded, or None to skip this one."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -1e18) < self.interval_s:
                self._skipped[key] = self._skipped.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._skipped.pop(key, 0)


def read(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Every complete record of the log set, oldest file first, in file order (torn lines skipped)."""
    for p in rotated(path):
        try:
            f = p.open("rb")
        except FileNotFoundError:  # moved by a rotation meanwhile
            continue
        with f:
            for ln in f:
                rec = _record(ln)
                if rec is not None:
                    yield rec


def tail(path: str | os.PathLike, limit: int = 100, kinds: Iterable[str] | None = None,
         window: int = 1 << 20) -> list[dict[str, Any]]:
    """The last ``limit`` complete records (of ``kinds``), newest first, read from the current file's
    last ``window`` bytes (a page showing recent activity need not read the whole log)."""
    p = Path(path)
    if not p.exists():
        return []
    kinds = set(kinds) if kinds else None
    with p.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - window))
        lines = f.read().split(b"\n")
    if size > window:
        lines = lines[1:]  # the first piece may start mid-line
    out = []
    for ln in reversed(lines):
        rec = _record(ln)
        if rec is not None and (kinds is None or rec.get("kind") in kinds):
            out.append(rec)
            if len(out) >= limit:
                break
    return out


@dataclass
class VerifyResult:
    ok: bool
    records: int
    problems: list[str] = field(default_factory=list)
    torn: list[int] = field(default_factory=list)  # line numbers of torn (unparsable) lines
    warnings: list[str] = field(default_factory=list)
    head: tuple[int, str] | None = None  # (seq, hash) of the last record

    def summary(self) -> str:
        head = f"{'OK' if self.ok else 'TAMPERED'}: {self.records} records"
        if self.torn:
            head += f", {len(self.torn)} torn line(s) at {self.torn[:5]} (a write cut short by a crash)"
        return "\n".join([head, *self.problems[:20], *(f"note: {w}" for w in self.warnings)])


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    p = checkpoint_path(path)
    if not p.exists():
        return None
    try:
        doc = json.loads(p.read_text())
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def verify(path: str | os.PathLike, *, key: bytes | None = None, ring: "KeyRing | None" = None,
           checkpoint: dict[str, Any] | None = None, require_checkpoint: bool = False) -> VerifyResult:
    """Check every record's hash (HMAC with ``key``), the chain across the rotated files, and the
    head against ``checkpoint`` (default: ``<log>.checkpoint``), whose signature is checked with
    ``ring``. With ``require_checkpoint`` a missing or unsigned checkpoint is a problem, else a note.
    A torn line is reported, not counted as tampering; a record missing, altered, inserted or
    moved is, and so is a log that ends before its checkpoint."""
    p = Path(path)
    res = VerifyResult(ok=True, records=0)
    by_seq: dict[int, str] = {}
    prev: str | None = None
    seq = 0
    lineno_base = ""
    for f in rotated(p):
        lineno_base = "" if f == p else f"{f.name} "
        with f.open("rb") as fh:
            for lineno, ln in enumerate(fh, 1):
                if not ln.strip():
                    continue
                try:
                    rec = json.loads(ln)
                except (ValueError, RecursionError):
                    res.torn.append(lineno)
                    continue
                where = f"{lineno_base}line {lineno}"
                if not isinstance(rec, dict) or "hash" not in rec:
                    res.ok = False
                    res.problems.append(f"{where}: not an audit record")
                    continue
                res.records += 1
                if prev is None:  # the first record of the set
                    prev, seq = rec.get("prev"), rec.get("seq") if isinstance(rec.get("seq"), int) else 0
                    if prev != GENESIS:
                        res.warnings.append(f"the log starts at seq {seq}: earlier records are not here "
                                            "(rotated away, or removed)")
                if record_hash(rec, key) != rec["hash"]:
                    res.ok = False
                    hint = "" if key else " (a keyed log? give AUDIT_HMAC_KEY)"
                    res.problems.append(f"{where} (seq {rec.get('seq')}): content does not match its hash{hint}")
                if rec.get("prev") != prev:
                    res.ok = False
                    res.problems.append(f"{where} (seq {rec.get('seq')}): chain broken (prev hash does not "
                                        f"match the record before)")
                if rec.get("seq") != seq:
                    res.ok = False
                    res.problems.append(f"{where}: sequence {rec.get('seq')} where {seq} was expected")
                prev = rec["hash"]
                if isinstance(rec.get("seq"), int):
                    by_seq[rec["seq"]] = rec["hash"]
                    res.head = (rec["seq"], rec["hash"])
                seq = (rec.get("seq") if isinstance(rec.get("seq"), int) else seq) + 1
    if key is None and res.records:
        res.warnings.append("no AUDIT_HMAC_KEY: the chain is checked with plain SHA-256, which someone who "
                            "rewrites the log can recompute")
    _check_head(res, checkpoint if checkpoint is not None else read_checkpoint(p), by_seq, ring, require_checkpoint)
    return res


def _check_head(res: VerifyResult, cp: dict[str, Any] | None, by_seq: dict[int, str], ring: "KeyRing | None",
                required: bool) -> None:
    def problem(msg: str) -> None:
        if required:
            res.ok = False
            res.problems.append(msg)
        else:
            res.warnings.append(msg)

    if cp is None:
        if res.records:
            problem("no checkpoint: records dropped from the end would go unnoticed")
        return
    if not isinstance(cp.get("seq"), int) or not isinstance(cp.get("hash"), str):
        res.ok = False
        res.problems.append("the checkpoint is unreadable")
        return
    if not cp.get("signature"):
        problem("the checkpoint is not signed (no AGENT_SIGNING_KEY when it was written)")
    elif ring is None or len(ring) == 0:
        res.warnings.append("checkpoint signature not checked: give the signer's public keys")
    else:
        from .signing import unb64

        try:
            sig = unb64(str(cp["signature"]))
        except ValueError:
            sig = b""
        if not ring.verify(str(cp.get("keyid")), sig, checkpoint_message(cp)):
            res.ok = False
            res.problems.append(f"the checkpoint's signature is invalid (key {cp.get('keyid')})")
            return
    have = by_seq.get(cp["seq"])
    if have is None:
        last = res.head[0] if res.head else None
        res.ok = False
        res.problems.append(f"truncated: the checkpoint of {cp.get('time')} says record {cp['seq']} exists; "
                            f"the log ends at {last}")
    elif have != cp["hash"]:
        res.ok = False
        res.problems.append(f"record {cp['seq']} differs from the one the checkpoint of {cp.get('time')} recorded")


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
