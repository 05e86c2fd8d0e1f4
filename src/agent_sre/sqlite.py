"""SQLite as every durable store here uses it: WAL, one connection per thread, serialised writes.

    db = Database(path, schema)
    with db.write() as c:          # BEGIN IMMEDIATE … COMMIT (ROLLBACK on error)
        c.execute("INSERT …")
    db.conn().execute("SELECT …")  # reads: this thread's connection, no lock

Writers queue on one ``threading.Lock`` per file in this process (in order, instead of in SQLite's
busy handler, which sleeps with back-off); processes sharing a file still serialise in SQLite
(``BEGIN IMMEDIATE`` and ``busy_timeout``). ``synchronous=NORMAL``: a committed transaction
survives the process being killed; only a power loss can drop the last few (the usual WAL trade).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["Database", "connect", "transaction", "write_lock"]


def connect(path: str | os.PathLike, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection in WAL mode, autocommit (writes open their own ``BEGIN IMMEDIATE``)."""
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(path: str | os.PathLike) -> threading.Lock:
    """The one lock of this process for writes to the file at ``path``."""
    key = os.path.abspath(path)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


@contextmanager
def transaction(conn: sqlite3.Connection, lock: threading.Lock | None = None) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` when the block raises; under ``lock``."""
    if lock is not None:
        lock.acquire()
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if lock is not None:
            lock.release()


class Database:
    """One SQLite file (created with its folder and ``schema`` if missing), shared by threads."""

    def __init__(self, path: str | os.PathLike, schema: str = "", timeout: float = 30.0):
        self.path = str(path)
        self.timeout = timeout
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = write_lock(self.path)
        if schema:
            self.conn().executescript(schema)

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.timeout)
            self._local.conn = conn
        return conn

    def write(self):
        """A write transaction on this thread's connection (see ``transaction``)."""
        return transaction(self.conn(), self._lock)

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
