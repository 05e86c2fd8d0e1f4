"""Durable loop state in the gate's backends: SQLite (``STATE_DB``) or Redis (``REDIS_URL``).

Both keep the same records (``records.py``) with the same rules, so two replicas sharing a
backend agree:

* an outcome is recorded once per id, and its class's ledger is updated in the same step
  (``ClassStats.counted``: the one counting rule);
* an approval or a watch changes state only from the state the caller saw (compare and set), so
  of two replicas approving, expiring or closing the same thing at once, one wins and the other
  gets ``None``.

SQLite: four tables next to the gate's, JSON documents with the columns queries need; every
change is one ``BEGIN IMMEDIATE`` transaction. Redis: one JSON value per record under the prefix,
sorted sets as indexes, changes in ``WATCH``/``MULTI`` transactions.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

from ..settings import StateSettings
from ..sqlite import Database
from .records import Approval, ClassStats, Mode, OutcomeRecord, Watch

# Outcome ids remembered (idempotency) and closed approvals and watches kept, in Redis.
KEEP_SECONDS = 30 * 86400
LOG_MAX = 5000


class LoopStore(Protocol):
    def record_outcome(self, rec: OutcomeRecord) -> tuple[ClassStats, ClassStats] | None:
        """Count ``rec`` in its class's ledger: (before, after), or None if its id was recorded already."""

    def classes(self) -> list[ClassStats]: ...

    def get_class(self, key: str) -> ClassStats | None: ...

    def pin(self, key: str, alertname: str, function: str, mode: Mode | None) -> tuple[ClassStats, ClassStats]:
        """Pin a class to ``mode`` (None: unpin): (before, after)."""

    def outcomes(self, limit: int = 100, alert_class: str | None = None) -> list[OutcomeRecord]: ...

    def add_approval(self, a: Approval) -> tuple[Approval, bool]:
        """Store ``a`` unless its id exists: (the stored one, whether it was new)."""

    def get_approval(self, approval_id: str) -> Approval | None: ...

    def approvals(self, status: str | None = None, limit: int = 200) -> list[Approval]: ...

    def resolve_approval(self, approval_id: str, status: str, *, by: str | None, note: str | None,
                         now: float | None = None, expect: str = "pending") -> Approval | None:
        """Move an approval from ``expect`` to ``status``; None if it was not in ``expect``."""

    def open_watch(self, w: Watch) -> bool:
        """Start watching unless a watch of that id exists; True if it is new."""

    def close_watch(self, watch_id: str, outcome: str, now: float | None = None) -> Watch | None:
        """Close an open watch with ``outcome``; None if it was closed already."""

    def watches(self, status: str | None = "open", limit: int = 500) -> list[Watch]: ...

    def suppressing(self, fingerprint: str, now: float | None = None) -> Watch | None:
        """A watch of this fingerprint whose window has not passed (its re-fires are suppressed)."""

    def count_suppressed(self, watch_id: str) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS loop_outcomes (
  id TEXT PRIMARY KEY, class TEXT NOT NULL, ts REAL NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loop_outcomes_ts ON loop_outcomes (ts);
CREATE INDEX IF NOT EXISTS loop_outcomes_class ON loop_outcomes (class, ts);
CREATE TABLE IF NOT EXISTS loop_classes (class TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS loop_approvals (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, created REAL NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loop_approvals_status ON loop_approvals (status, created);
CREATE TABLE IF NOT EXISTS loop_watches (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, fingerprint TEXT NOT NULL, deadline REAL NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS loop_watches_fp ON loop_watches (fingerprint, deadline);
CREATE INDEX IF NOT EXISTS loop_watches_status ON loop_watches (status, deadline);
"""


class SQLiteLoopStore:
    def __init__(self, path: Any):
        self.db = Database(path, _SCHEMA)
        self.path = self.db.path

    def record_outcome(self, rec: OutcomeRecord) -> tuple[ClassStats, ClassStats] | None:
        with self.db.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO loop_outcomes(id, class, ts, doc) VALUES(?,?,?,?)",
                            (rec.id, rec.alert_class, rec.ts, rec.model_dump_json()))
            if cur.rowcount == 0:
                return None
            before = self._class(c, rec.alert_class) or ClassStats(alert_class=rec.alert_class)
            after = before.counted(rec)
            self._put_class(c, after)
        return before, after

    @staticmethod
    def _class(c: Any, key: str) -> ClassStats | None:
        row = c.execute("SELECT doc FROM loop_classes WHERE class=?", (key,)).fetchone()
        return ClassStats.model_validate_json(row[0]) if row else None

    @staticmethod
    def _put_class(c: Any, s: ClassStats) -> None:
        c.execute("INSERT INTO loop_classes(class, doc) VALUES(?, ?) ON CONFLICT(class) DO UPDATE SET doc=excluded.doc",
                  (s.alert_class, s.model_dump_json()))

    def classes(self) -> list[ClassStats]:
        return [ClassStats.model_validate_json(d) for (d,) in
                self.db.conn().execute("SELECT doc FROM loop_classes ORDER BY class")]

    def get_class(self, key: str) -> ClassStats | None:
        return self._class(self.db.conn(), key)

    def pin(self, key: str, alertname: str, function: str, mode: Mode | None) -> tuple[ClassStats, ClassStats]:
        with self.db.write() as c:
            before = self._class(c, key) or ClassStats(alert_class=key, alertname=alertname, function=function)
            after = before.model_copy(update={"pin": mode})
            self._put_class(c, after)
        return before, after

    def outcomes(self, limit: int = 100, alert_class: str | None = None) -> list[OutcomeRecord]:
        q, args = "SELECT doc FROM loop_outcomes", ()
        if alert_class:
            q, args = q + " WHERE class=?", (alert_class,)
        rows = self.db.conn().execute(q + " ORDER BY ts DESC LIMIT ?", (*args, limit))
        return [OutcomeRecord.model_validate_json(d) for (d,) in rows]

    def add_approval(self, a: Approval) -> tuple[Approval, bool]:
        with self.db.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO loop_approvals(id, status, created, doc) VALUES(?,?,?,?)",
                            (a.id, a.status, a.created, a.model_dump_json()))
            if cur.rowcount == 1:
                return a, True
            row = c.execute("SELECT doc FROM loop_approvals WHERE id=?", (a.id,)).fetchone()
        return Approval.model_validate_json(row[0]), False

    def get_approval(self, approval_id: str) -> Approval | None:
        row = self.db.conn().execute("SELECT doc FROM loop_approvals WHERE id=?", (approval_id,)).fetchone()
        return Approval.model_validate_json(row[0]) if row else None

    def approvals(self, status: str | None = None, limit: int = 200) -> list[Approval]:
        q, args = "SELECT doc FROM loop_approvals", ()
        if status:
            q, args = q + " WHERE status=?", (status,)
        rows = self.db.conn().execute(q + " ORDER BY created DESC LIMIT ?", (*args, limit))
        return [Approval.model_validate_json(d) for (d,) in rows]

    def resolve_approval(self, approval_id: str, status: str, *, by: str | None, note: str | None,
                         now: float | None = None, expect: str = "pending") -> Approval | None:
        now = time.time() if now is None else now
        with self.db.write() as c:
            row = c.execute("SELECT doc FROM loop_approvals WHERE id=? AND status=?", (approval_id, expect)).fetchone()
            if row is None:
                return None
            a = Approval.model_validate_json(row[0]).model_copy(
                update={"status": status, "by": by, "note": note, "resolved_at": now})
            c.execute("UPDATE loop_approvals SET status=?, doc=? WHERE id=?", (status, a.model_dump_json(), approval_id))
        return a

    def open_watch(self, w: Watch) -> bool:
        with self.db.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO loop_watches(id, status, fingerprint, deadline, doc) VALUES(?,?,?,?,?)",
                            (w.id, w.status, w.fingerprint, w.deadline, w.model_dump_json()))
        return cur.rowcount == 1

    def close_watch(self, watch_id: str, outcome: str, now: float | None = None) -> Watch | None:
        with self.db.write() as c:
            row = c.execute("SELECT doc FROM loop_watches WHERE id=? AND status='open'", (watch_id,)).fetchone()
            if row is None:
                return None
            w = Watch.model_validate_json(row[0]).model_copy(update={"status": "closed", "outcome": outcome})
            c.execute("UPDATE loop_watches SET status='closed', doc=? WHERE id=?", (w.model_dump_json(), watch_id))
        return w

    def watches(self, status: str | None = "open", limit: int = 500) -> list[Watch]:
        q, args = "SELECT doc FROM loop_watches", ()
        if status:
            q, args = q + " WHERE status=?", (status,)
        rows = self.db.conn().execute(q + " ORDER BY deadline LIMIT ?", (*args, limit))
        return [Watch.model_validate_json(d) for (d,) in rows]

    def suppressing(self, fingerprint: str, now: float | None = None) -> Watch | None:
        now = time.time() if now is None else now
        row = self.db.conn().execute("SELECT doc FROM loop_watches WHERE fingerprint=? AND deadline>? "
                                     "ORDER BY deadline DESC LIMIT 1", (fingerprint, now)).fetchone()
        return Watch.model_validate_json(row[0]) if row else None

    def count_suppressed(self, watch_id: str) -> None:
        with self.db.write() as c:
            row = c.execute("SELECT doc FROM loop_watches WHERE id=?", (watch_id,)).fetchone()
            if row is not None:
                w = Watch.model_validate_json(row[0])
                w.suppressed += 1
                c.execute("UPDATE loop_watches SET doc=? WHERE id=?", (w.model_dump_json(), watch_id))

    def close(self) -> None:
        self.db.close()


# --------------------------------------------------------------------------- Redis


class RedisLoopStore:
    """The same records on a shared Redis (optimistic ``WATCH``/``MULTI`` transactions)."""

    def __init__(self, url: str, prefix: str = "agent-sre:loop:"):
        import redis  # optional dependency: pip install 'agent-sre[redis]'

        self.url = url
        self.p = prefix
        self.client = redis.Redis.from_url(url)

    def _k(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    def _get(self, key: str, model: Any) -> Any:
        raw = self.client.get(key)
        return model.model_validate_json(raw) if raw else None

    def _change(self, key: str, fn: Callable[[Any, bytes | None], Any], *more: str) -> Any:
        """Run ``fn(pipe, current value of key)`` in a WATCH/MULTI transaction, retried on conflict;
        ``fn`` queues its writes after ``pipe.multi()`` and returns the result."""
        box: dict[str, Any] = {}

        def tx(pipe: Any) -> None:
            box["out"] = fn(pipe, pipe.get(key))

        self.client.transaction(tx, key, *more)
        return box.get("out")

    def record_outcome(self, rec: OutcomeRecord) -> tuple[ClassStats, ClassStats] | None:
        if not self.client.set(self._k("outcome-id", rec.id), "1", nx=True, ex=KEEP_SECONDS):
            return None
        ckey = self._k("class", rec.alert_class)

        def fn(pipe: Any, raw: bytes | None) -> tuple[ClassStats, ClassStats]:
            before = ClassStats.model_validate_json(raw) if raw else ClassStats(alert_class=rec.alert_class)
            after = before.counted(rec)
            pipe.multi()
            pipe.set(ckey, after.model_dump_json())
            pipe.sadd(self._k("classes"), rec.alert_class)
            pipe.lpush(self._k("outcomes"), rec.model_dump_json())
            pipe.ltrim(self._k("outcomes"), 0, LOG_MAX - 1)
            return before, after

        return self._change(ckey, fn)

    def classes(self) -> list[ClassStats]:
        keys = sorted(k.decode() for k in self.client.smembers(self._k("classes")))
        vals = self.client.mget([self._k("class", k) for k in keys]) if keys else []
        return [ClassStats.model_validate_json(v) for v in vals if v]

    def get_class(self, key: str) -> ClassStats | None:
        return self._get(self._k("class", key), ClassStats)

    def pin(self, key: str, alertname: str, function: str, mode: Mode | None) -> tuple[ClassStats, ClassStats]:
        ckey = self._k("class", key)

        def fn(pipe: Any, raw: bytes | None) -> tuple[ClassStats, ClassStats]:
            before = (ClassStats.model_validate_json(raw) if raw
                      else ClassStats(alert_class=key, alertname=alertname, function=function))
            after = before.model_copy(update={"pin": mode})
            pipe.multi()
            pipe.set(ckey, after.model_dump_json())
            pipe.sadd(self._k("classes"), key)
            return before, after

        return self._change(ckey, fn)

    def outcomes(self, limit: int = 100, alert_class: str | None = None) -> list[OutcomeRecord]:
        out = []
        for raw in self.client.lrange(self._k("outcomes"), 0, LOG_MAX - 1):
            rec = OutcomeRecord.model_validate_json(raw)
            if alert_class is None or rec.alert_class == alert_class:
                out.append(rec)
                if len(out) >= limit:
                    break
        return out

    def add_approval(self, a: Approval) -> tuple[Approval, bool]:
        key = self._k("approval", a.id)
        if self.client.set(key, a.model_dump_json(), nx=True, ex=KEEP_SECONDS):
            self.client.zadd(self._k("approvals"), {a.id: a.created})
            return a, True
        return self._get(key, Approval), False

    def get_approval(self, approval_id: str) -> Approval | None:
        return self._get(self._k("approval", approval_id), Approval)

    def approvals(self, status: str | None = None, limit: int = 200) -> list[Approval]:
        self.client.zremrangebyscore(self._k("approvals"), "-inf", time.time() - KEEP_SECONDS)
        ids = [i.decode() for i in self.client.zrevrange(self._k("approvals"), 0, -1)]
        out = []
        for raw in (self.client.mget([self._k("approval", i) for i in ids]) if ids else []):
            if raw:
                a = Approval.model_validate_json(raw)
                if status is None or a.status == status:
                    out.append(a)
                    if len(out) >= limit:
                        break
        return out

    def resolve_approval(self, approval_id: str, status: str, *, by: str | None, note: str | None,
                         now: float | None = None, expect: str = "pending") -> Approval | None:
        now = time.time() if now is None else now
        key = self._k("approval", approval_id)

        def fn(pipe: Any, raw: bytes | None) -> Approval | None:
            a = Approval.model_validate_json(raw) if raw else None
            if a is None or a.status != expect:
                return None
            a = a.model_copy(update={"status": status, "by": by, "note": note, "resolved_at": now})
            pipe.multi()
            pipe.set(key, a.model_dump_json(), ex=KEEP_SECONDS)
            return a

        return self._change(key, fn)

    def open_watch(self, w: Watch) -> bool:
        if not self.client.set(self._k("watch", w.id), w.model_dump_json(), nx=True, ex=KEEP_SECONDS):
            return False
        pipe = self.client.pipeline()
        pipe.zadd(self._k("watches", "open"), {w.id: w.deadline})
        fp = self._k("watches", "fp", w.fingerprint)
        pipe.zadd(fp, {w.id: w.deadline})
        pipe.expire(fp, KEEP_SECONDS)
        pipe.execute()
        return True

    def close_watch(self, watch_id: str, outcome: str, now: float | None = None) -> Watch | None:
        key = self._k("watch", watch_id)

        def fn(pipe: Any, raw: bytes | None) -> Watch | None:
            w = Watch.model_validate_json(raw) if raw else None
            if w is None or w.status != "open":
                return None
            w = w.model_copy(update={"status": "closed", "outcome": outcome})
            pipe.multi()
            pipe.set(key, w.model_dump_json(), ex=KEEP_SECONDS)
            pipe.zrem(self._k("watches", "open"), watch_id)
            return w

        return self._change(key, fn)

    def watches(self, status: str | None = "open", limit: int = 500) -> list[Watch]:
        if status == "open":
            ids = [i.decode() for i in self.client.zrange(self._k("watches", "open"), 0, limit - 1)]
        else:
            ids = [k.decode()[len(self._k("watch", "")):] for k in self.client.scan_iter(self._k("watch", "*"))]
        vals = self.client.mget([self._k("watch", i) for i in ids]) if ids else []
        out = [Watch.model_validate_json(v) for v in vals if v]
        out = [w for w in out if status is None or w.status == status]
        return sorted(out, key=lambda w: w.deadline)[:limit]

    def suppressing(self, fingerprint: str, now: float | None = None) -> Watch | None:
        now = time.time() if now is None else now
        ids = self.client.zrevrangebyscore(self._k("watches", "fp", fingerprint), "+inf", f"({now!r}", start=0, num=1)
        return self._get(self._k("watch", ids[0].decode()), Watch) if ids else None

    def count_suppressed(self, watch_id: str) -> None:
        key = self._k("watch", watch_id)

        def fn(pipe: Any, raw: bytes | None) -> None:
            if raw:
                w = Watch.model_validate_json(raw)
                w.suppressed += 1
                pipe.multi()
                pipe.set(key, w.model_dump_json(), keepttl=True)

        self._change(key, fn)

    def close(self) -> None:
        self.client.close()


def open_loop_store(settings: StateSettings) -> LoopStore:
    """``REDIS_URL`` → Redis; else SQLite beside the gate's state (``STATE_DB``)."""
    if settings.redis_url:
        return RedisLoopStore(settings.redis_url)
    return SQLiteLoopStore(settings.state_path)

