"""Durable delivery: an inbox of accepted alerts and an outbox of events, in one SQLite file.

Layout (``OUTBOX_DB``, default ``STATE_DIR``/outbox.db; WAL):

* ``inbox``   one row per accepted alert, committed before the HTTP 202. ``pending`` until its
  decision's events are in the outbox (same transaction flips it to ``done``). A row is leased
  by the process working on it (``owner``, ``lease_until``); a crashed owner's rows are taken
  back when its lease runs out, or at once by the next process on the same host.
* ``events``  one row per CloudEvent to send, keyed by the event id (derived from the decision),
  so enqueuing the same trigger again is a no-op: redelivery never produces a second id.
  ``pending`` → ``delivered`` | ``dead`` (retries exhausted: the dead letter, kept with its
  last error). Retries back off exponentially with jitter (``next_at``).
* ``plans``   open multi-step plans by correlation id (alert + decision), so a result that
  arrives after a restart still finds its plan.
* ``results`` result events seen, keyed by their id: a result delivered twice is handled once.
  Recording a result and enqueuing the next step's trigger happen in one transaction.

Leases: the rows a process works on (accepted alerts until their decision is committed, events
being sent) are *held*; ``renew`` (the worker's keeper thread, every third of the lease) extends
the held rows' leases, so a long request is never taken over and decided twice, and a crashed
process's rows come free one lease after its last renewal. ``release`` (a graceful stop) frees
them at once for the next process. ``prune`` forgets delivered events, decided alerts, results and
plans older than the retention (dead letters and alerts that failed stay for an operator).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import ce
from .ce import CloudEvent
from .sqlite import Database

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  alert       TEXT NOT NULL,
  alert_key   TEXT NOT NULL,
  received    REAL NOT NULL,
  state       TEXT NOT NULL DEFAULT 'pending',
  attempts    INTEGER NOT NULL DEFAULT 0,
  owner       TEXT,
  lease_until REAL NOT NULL DEFAULT 0,
  error       TEXT,
  done_at     REAL
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (state, lease_until);
CREATE TABLE IF NOT EXISTS events (
  id             TEXT PRIMARY KEY,
  type           TEXT NOT NULL,
  correlation_id TEXT,
  lambdafunction TEXT,
  body           TEXT NOT NULL,
  created        REAL NOT NULL,
  state          TEXT NOT NULL DEFAULT 'pending',
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        REAL NOT NULL,
  owner          TEXT,
  lease_until    REAL NOT NULL DEFAULT 0,
  last_error     TEXT,
  delivered_at   REAL
);
CREATE INDEX IF NOT EXISTS events_due ON events (state, next_at);
CREATE TABLE IF NOT EXISTS plans (
  correlation_id TEXT PRIMARY KEY,
  alert          TEXT NOT NULL,
  decision       TEXT NOT NULL,
  created        REAL NOT NULL,
  updated        REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
  id             TEXT PRIMARY KEY,
  correlation_id TEXT,
  body           TEXT NOT NULL,
  received       REAL NOT NULL
);
"""


def make_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def event_body(event: CloudEvent) -> str:
    _, body = ce.to_structured(event)
    return body.decode()


def event_from_body(body: str) -> CloudEvent:
    return ce.from_http({"content-type": "application/cloudevents+json"}, body.encode())


@dataclass
class Retry:
    """Exponential backoff with jitter: attempt n waits base * 2**(n-1), capped, times U(0.5, 1)."""

    base_s: float = 1.0
    max_s: float = 300.0
    max_attempts: int = 12

    def delay(self, attempts: int) -> float:
        d = min(self.max_s, self.base_s * (2 ** max(0, attempts - 1)))
        return d * random.uniform(0.5, 1.0)


class Outbox:
    def __init__(self, path: str | os.PathLike, owner: str | None = None, lease_s: float = 30.0,
                 retention_s: float = 14 * 86400):
        self.db = Database(path, _SCHEMA)
        self.path = self.db.path
        self.owner = owner or make_owner()
        self.lease_s = lease_s
        self.retention_s = retention_s
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._held: dict[str, set] = {"inbox": set(), "events": set()}  # rows this process works on
        self._held_lock = threading.Lock()

    @classmethod
    def temporary(cls) -> "Outbox":
        """An outbox in a private temporary folder, removed with the object (the embedded agent's)."""
        tmp = tempfile.TemporaryDirectory(prefix="agent-sre-outbox-")
        box = cls(os.path.join(tmp.name, "outbox.db"))
        box._tmp = tmp
        return box

    def _conn(self):
        return self.db.conn()

    # ------------------------------------------------------------------ leases
    def _hold(self, table: str, ids: Iterable[Any]) -> None:
        with self._held_lock:
            self._held[table].update(ids)

    def let_go(self, table: str, ids: Iterable[Any]) -> None:
        """No longer working on these rows (done, failed, or given up): their leases stop being renewed."""
        with self._held_lock:
            self._held[table].difference_update(ids)

    def held(self) -> dict[str, int]:
        with self._held_lock:
            return {t: len(v) for t, v in self._held.items()}

    def renew(self) -> int:
        """Extend the leases of the rows this process holds; returns how many rows were renewed."""
        with self._held_lock:
            held = {t: list(v) for t, v in self._held.items()}
        until, n = time.time() + self.lease_s, 0
        for table, ids in held.items():
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                with self.db.write() as c:
                    n += c.execute(f"UPDATE {table} SET lease_until=? WHERE owner=? AND state='pending' "
                                   f"AND id IN ({','.join('?' * len(part))})",
                                   (until, self.owner, *part)).rowcount
        return n

    def release(self) -> int:
        """Free every pending row this process holds a lease on (a graceful stop: the next process
        takes them at once instead of waiting for the leases to run out)."""
        with self.db.write() as c:
            n = sum(c.execute(f"UPDATE {t} SET owner=NULL, lease_until=0 WHERE owner=? AND state='pending'",
                              (self.owner,)).rowcount for t in ("inbox", "events"))
        with self._held_lock:
            for v in self._held.values():
                v.clear()
        return n

    def prune(self, now: float | None = None, batch: int = 5000) -> dict[str, int]:
        """Forget what is older than the retention: delivered events, decided alerts, results, and
        plans not touched since. Deletes in batches so writers are never held up for long."""
        cutoff = (now or time.time()) - self.retention_s
        queries = {"events": "state='delivered' AND delivered_at<?", "inbox": "state='done' AND done_at<?",
                   "results": "received<?", "plans": "updated<?"}
        key = {"plans": "correlation_id", "results": "id", "events": "id", "inbox": "id"}
        out = {}
        for table, where in queries.items():
            out[table] = 0
            while True:
                with self.db.write() as c:
                    n = c.execute(f"DELETE FROM {table} WHERE {key[table]} IN (SELECT {key[table]} FROM {table} "
                                  f"WHERE {where} LIMIT ?)", (cutoff, batch)).rowcount
                out[table] += n
                if n < batch:
                    break
        return out

    # ------------------------------------------------------------------ inbox
    def accept(self, alerts: list[Any]) -> list[int]:
        """Durably record accepted alerts (leased to this process); returns their inbox ids."""
        now = time.time()
        ids = []
        with self.db.write() as c:
            for a in alerts:
                cur = c.execute("INSERT INTO inbox(alert, alert_key, received, owner, lease_until) VALUES(?,?,?,?,?)",
                                (a.model_dump_json(exclude_none=True), a.key(), now, self.owner, now + self.lease_s))
                ids.append(cur.lastrowid)
        self._hold("inbox", ids)
        return ids

    def finish(self, inbox_ids: Iterable[int], events: Iterable[CloudEvent],
               plans: Iterable[tuple[str, str, str]] = ()) -> list[str]:
        """In one transaction: enqueue ``events`` (ids already known are left alone), save open
        ``plans`` (correlation id, alert JSON, decision JSON), mark the inbox rows done.
        Returns the ids newly enqueued."""
        now = time.time()
        fresh = []
        with self.db.write() as c:
            for ev in events:
                if self._insert_event(c, ev, now):
                    fresh.append(ev.get_id())
            for corr, alert, decision in plans:
                c.execute("INSERT INTO plans(correlation_id, alert, decision, created, updated) VALUES(?,?,?,?,?) "
                          "ON CONFLICT(correlation_id) DO UPDATE SET updated=excluded.updated",
                          (corr, alert, decision, now, now))
            for i in inbox_ids:
                c.execute("UPDATE inbox SET state='done', done_at=?, owner=NULL, lease_until=0 WHERE id=?", (now, i))
        self.let_go("inbox", inbox_ids)
        return fresh

    @staticmethod
    def _insert_event(c, ev: CloudEvent, now: float) -> bool:
        attrs = ev.get_attributes()
        cur = c.execute("INSERT OR IGNORE INTO events(id, type, correlation_id, lambdafunction, body, created, next_at) "
                        "VALUES(?,?,?,?,?,?,?)",
                        (ev.get_id(), ev.get_type(), attrs.get("correlationid"), attrs.get("lambdafunction"),
                         event_body(ev), now, now))
        return cur.rowcount == 1

    def fail_alert(self, inbox_id: int, error: str, max_attempts: int = 10) -> None:
        with self.db.write() as c:
            c.execute("UPDATE inbox SET attempts=attempts+1, error=?, owner=NULL, "
                      "lease_until=?, state=CASE WHEN attempts+1>=? THEN 'dead' ELSE state END WHERE id=?",
                      (error[:500], time.time() + self.lease_s, max_attempts, inbox_id))
        self.let_go("inbox", [inbox_id])

    def claim_alerts(self, limit: int = 100) -> list[tuple[int, str]]:
        """Pending alerts nobody holds (a crashed process's, once its lease ran out)."""
        now = time.time()
        with self.db.write() as c:
            rows = c.execute("SELECT id, alert FROM inbox WHERE state='pending' AND lease_until<? ORDER BY id LIMIT ?",
                             (now, limit)).fetchall()
            for i, _ in rows:
                c.execute("UPDATE inbox SET owner=?, lease_until=? WHERE id=?", (self.owner, now + self.lease_s, i))
        self._hold("inbox", [i for i, _ in rows])
        return rows

    def defer(self, inbox_id: int, until: float) -> None:
        """Keep a pending alert for this process until ``until`` (epoch seconds): the worker takes it
        up again then (the incident settle window). Durable: after a crash it is taken up as any
        abandoned row. The row is no longer held (its lease is not renewed): the deadline is its lease."""
        self.let_go("inbox", [inbox_id])
        with self.db.write() as c:
            c.execute("UPDATE inbox SET owner=?, lease_until=? WHERE id=? AND state='pending'",
                      (self.owner, until, inbox_id))

    def recent_alerts(self, since: float) -> list[tuple[int, str, float, bool]]:
        """Alerts received since ``since``, oldest first: (id, alert JSON, received, done)."""
        rows = self.db.conn().execute("SELECT id, alert, received, state FROM inbox WHERE received>=? ORDER BY id",
                                      (since,)).fetchall()
        return [(i, doc, received, state != "pending") for i, doc, received, state in rows]

    def reclaim_dead_owners(self) -> int:
        """Release leases held by processes on this host that are gone (a restart after kill -9)."""
        host = socket.gethostname()
        me_pid = os.getpid()
        n = 0
        with self.db.write() as c:
            owners = {o for (o,) in c.execute(
                "SELECT DISTINCT owner FROM inbox WHERE state='pending' AND owner IS NOT NULL UNION "
                "SELECT DISTINCT owner FROM events WHERE state='pending' AND owner IS NOT NULL")}
            for o in owners:
                parts = o.split(":")
                if o == self.owner or len(parts) != 3 or parts[0] != host:
                    continue
                pid = int(parts[1]) if parts[1].isdigit() else -1
                if pid == me_pid or not _pid_alive(pid):
                    n += c.execute("UPDATE inbox SET owner=NULL, lease_until=0 WHERE owner=? AND state='pending'",
                                   (o,)).rowcount
                    n += c.execute("UPDATE events SET owner=NULL, lease_until=0 WHERE owner=? AND state='pending'",
                                   (o,)).rowcount
        return n

    # ------------------------------------------------------------------ events
    def claim_events(self, limit: int = 50, ids: Iterable[str] | None = None) -> list[tuple[str, str, int]]:
        """Due events nobody holds, oldest first: (id, body, attempts so far); only ``ids`` if given."""
        now = time.time()
        only, args = "", ()
        if ids is not None:
            ids = list(ids)
            only, args = f" AND id IN ({','.join('?' * len(ids))})", tuple(ids)
        with self.db.write() as c:
            rows = c.execute("SELECT id, body, attempts FROM events WHERE state='pending' AND next_at<=? "
                             f"AND lease_until<?{only} ORDER BY next_at, rowid LIMIT ?",
                             (now, now, *args, limit)).fetchall()
            for i, _, _ in rows:
                c.execute("UPDATE events SET owner=?, lease_until=? WHERE id=?", (self.owner, now + self.lease_s, i))
        self._hold("events", [i for i, _, _ in rows])
        return rows

    def delivered_many(self, event_ids: list[str]) -> None:
        if not event_ids:
            return
        now = time.time()
        with self.db.write() as c:
            c.executemany("UPDATE events SET state='delivered', attempts=attempts+1, delivered_at=?, owner=NULL, "
                          "lease_until=0, last_error=NULL WHERE id=?", [(now, i) for i in event_ids])
        self.let_go("events", event_ids)

    def failed(self, event_id: str, error: str, retry: Retry) -> tuple[bool, int]:
        """Record a failed attempt; returns (dead, attempts)."""
        with self.db.write() as c:
            row = c.execute("SELECT attempts FROM events WHERE id=?", (event_id,)).fetchone()
            attempts = (row[0] if row else 0) + 1
            dead = attempts >= retry.max_attempts
            c.execute("UPDATE events SET attempts=?, last_error=?, owner=NULL, lease_until=0, next_at=?, state=? "
                      "WHERE id=?", (attempts, error[:500], time.time() + retry.delay(attempts),
                                     "dead" if dead else "pending", event_id))
        self.let_go("events", [event_id])
        return dead, attempts

    def requeue_dead(self, event_id: str | None = None) -> int:
        """Give dead letters another round of retries (all of them, or one)."""
        with self.db.write() as c:
            q = "UPDATE events SET state='pending', attempts=0, next_at=? WHERE state='dead'"
            args: tuple = (time.time(),)
            if event_id:
                q += " AND id=?"
                args += (event_id,)
            return c.execute(q, args).rowcount

    # ------------------------------------------------------------------ plans and results
    def get_plan(self, correlation_id: str) -> tuple[str, str] | None:
        row = self._conn().execute("SELECT alert, decision FROM plans WHERE correlation_id=?",
                                   (correlation_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def has_result(self, result_id: str) -> bool:
        return self._conn().execute("SELECT 1 FROM results WHERE id=?", (result_id,)).fetchone() is not None

    def record_result(self, result_id: str, correlation_id: str | None, body: dict[str, Any],
                      events: Iterable[CloudEvent]) -> bool:
        """Record a result and enqueue what follows from it, atomically. False if already seen."""
        now = time.time()
        with self.db.write() as c:
            cur = c.execute("INSERT OR IGNORE INTO results(id, correlation_id, body, received) VALUES(?,?,?,?)",
                            (result_id, correlation_id, json.dumps(body, default=str), now))
            if cur.rowcount == 0:
                return False
            for ev in events:
                self._insert_event(c, ev, now)
            if correlation_id:
                c.execute("UPDATE plans SET updated=? WHERE correlation_id=?", (now, correlation_id))
        return True

    # ------------------------------------------------------------------ inspection
    def stats(self) -> dict[str, Any]:
        c = self._conn()
        now = time.time()
        out: dict[str, Any] = {"path": self.path}
        out["inbox"] = dict(c.execute("SELECT state, count(*) FROM inbox GROUP BY state").fetchall())
        out["events"] = dict(c.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
        (oldest,) = c.execute("SELECT min(created) FROM events WHERE state='pending'").fetchone()
        (oldest_in,) = c.execute("SELECT min(received) FROM inbox WHERE state='pending'").fetchone()
        out["oldest_pending_event_age_s"] = round(now - oldest, 3) if oldest else 0.0
        out["oldest_pending_alert_age_s"] = round(now - oldest_in, 3) if oldest_in else 0.0
        out["plans"] = c.execute("SELECT count(*) FROM plans").fetchone()[0]
        out["results"] = c.execute("SELECT count(*) FROM results").fetchone()[0]
        return out

    def events(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = ("SELECT id, type, lambdafunction, correlation_id, state, attempts, last_error, created, delivered_at "
             "FROM events")
        args: tuple = ()
        if state:
            q += " WHERE state=?"
            args = (state,)
        q += " ORDER BY created DESC LIMIT ?"
        cols = ["id", "type", "lambdafunction", "correlation_id", "state", "attempts", "last_error", "created",
                "delivered_at"]
        return [dict(zip(cols, r)) for r in self._conn().execute(q, args + (limit,)).fetchall()]

    def close(self) -> None:
        self.db.close()


@dataclass
class Sent:
    """One delivery attempt: the event, its attempts so far, and the reply or the error."""

    event: CloudEvent
    attempts: int
    reply: CloudEvent | None = None
    handled: Any = None  # what ``on_reply`` returned for the reply
    error: str | None = None


class Worker:
    """Delivery: resumes pending alerts, sends due events with retries, hands replies on.

    ``send(event) -> reply | None`` raises on failure (BrokerError or anything else: both retried);
    ``on_reply(reply)`` runs before the event is marked delivered, so a crash in between only
    means the event goes out again with the same id; ``resume(rows)`` processes inbox rows.
    ``start()`` runs it on a background thread, sending ``concurrency`` events at once, and a keeper
    thread that renews the outbox's held leases every third of a lease and prunes it every
    ``prune_every_s``; ``stop()`` ends both and releases what this process still holds, for the next
    one. ``deliver(rows)`` sends claimed rows now. With ``concurrency=0`` sends happen in the calling
    thread, in row order (the embedded agent's inline delivery).
    """

    def __init__(self, outbox: Outbox, send: Callable[[CloudEvent], CloudEvent | None],
                 on_reply: Callable[[CloudEvent], Any] | None = None,
                 resume: Callable[[list[tuple[int, str]]], Any] | None = None,
                 on_dead: Callable[[CloudEvent, str, int], Any] | None = None,
                 on_delivered: Callable[[list[tuple[CloudEvent, int]]], Any] | None = None,
                 retry: Retry | None = None, poll_s: float = 0.5, concurrency: int = 4, batch: int = 64,
                 prune_every_s: float = 3600.0):
        self.outbox = outbox
        self.send = send
        self.on_reply = on_reply
        self.resume = resume
        self.on_dead = on_dead
        self.on_delivered = on_delivered
        self.retry = retry or Retry()
        self.poll_s = poll_s
        self.batch = batch
        self._pool = (ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="outbox-send")
                      if concurrency > 0 else None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.prune_every_s = prune_every_s
        self._thread: threading.Thread | None = None
        self._keeper: threading.Thread | None = None

    def start(self) -> "Worker":
        if self._thread is None:
            self.outbox.reclaim_dead_owners()
            self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)
            self._thread.start()
            self._keeper = threading.Thread(target=self._keep, name="outbox-keeper", daemon=True)
            self._keeper.start()
        return self

    def _keep(self) -> None:
        """Renew held leases (a webhook of thousands of alerts takes longer than one lease), prune."""
        pruned_at = 0.0
        while not self._stop.wait(max(0.05, self.outbox.lease_s / 3)):
            try:
                self.outbox.renew()
                if time.monotonic() - pruned_at >= self.prune_every_s:
                    pruned_at = time.monotonic()
                    gone = self.outbox.prune()
                    if any(gone.values()):
                        log.info("outbox pruned past its retention: %s", gone)
            except Exception:  # noqa: BLE001 - a locked or full disk must not end the renewals
                log.exception("outbox keeper iteration failed")

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        started = self._thread is not None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._keeper is not None:
            self._keeper.join(timeout)
            self._keeper = None
        if started:
            n = self.outbox.release()
            log.warning("delivery stopped: %d pending alerts and events left in the outbox for the next process", n)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # noqa: BLE001 - the worker must survive a bad row or a locked DB
                log.exception("outbox worker iteration failed")
                busy = False
            if not busy:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def run_once(self) -> bool:
        """One round: resume abandoned alerts, then deliver one batch of due events."""
        busy = False
        if self.resume is not None:
            rows = self.outbox.claim_alerts(self.batch)
            if rows:
                busy = True
                try:
                    self.resume(rows)
                finally:
                    self.outbox.let_go("inbox", [i for i, _ in rows])
        rows = self.outbox.claim_events(self.batch)
        self.deliver(rows)
        return busy or bool(rows)

    def deliver(self, rows: list[tuple[str, str, int]]) -> list[Sent]:
        """Send claimed rows (results in row order); mark them delivered in one batch, or failed
        (retried later, dead after ``retry.max_attempts``)."""
        each = self._pool.map if self._pool is not None else map
        try:
            sent = [s for s in each(self._deliver, rows) if s is not None]
            done = [(s.event, s.attempts) for s in sent if s.error is None]
            self.outbox.delivered_many([ev.get_id() for ev, _ in done])
        finally:
            self.outbox.let_go("events", [r[0] for r in rows])
        if self.on_delivered is not None and done:
            self.on_delivered(done)
        return sent

    def _deliver(self, row: tuple[str, str, int]) -> Sent | None:
        event_id, body, attempts = row
        try:
            event = event_from_body(body)
        except ce.CloudEventError as e:
            self.outbox.failed(event_id, f"stored event unreadable: {e}", Retry(max_attempts=1))
            return None
        out = Sent(event, attempts + 1)
        try:
            out.reply = self.send(event)
            if out.reply is not None and self.on_reply is not None:
                out.handled = self.on_reply(out.reply)
        except Exception as e:  # noqa: BLE001 - every failure is retried, then dead-lettered
            out.error = str(e)
            dead, n = self.outbox.failed(event_id, out.error, self.retry)
            out.attempts = n
            if dead:
                log.error("event %s (%s) dead-lettered after %d attempts: %s", event_id, event.get_type(), n, e)
                if self.on_dead is not None:
                    self.on_dead(event, out.error, n)
            else:
                log.warning("delivery of %s failed (attempt %d), will retry: %s", event_id, n, e)
        return out
