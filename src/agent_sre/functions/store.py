"""Remembered results by trigger event id, so a redelivered trigger does its work once.

SQLite file under STATE_DIR when set (survives restarts and Knative scale-to-zero), else memory.
Both keep at most ``max_items`` ids, forgetting the oldest first.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol


class ResultStore(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, result: dict[str, Any]) -> None: ...


class MemoryStore:
    def __init__(self, max_items: int = 10_000):
        self.max_items = max_items
        self._d: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            v = self._d.get(key)
            return json.loads(json.dumps(v)) if v is not None else None

    def put(self, key: str, result: dict[str, Any]) -> None:
        with self._lock:
            self._d[key] = json.loads(json.dumps(result, default=str))
            self._d.move_to_end(key)
            while len(self._d) > self.max_items:
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class SQLiteStore:
    def __init__(self, path: str, max_items: int = 10_000):
        self.path = path
        self.max_items = max_items
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with self._conn() as c:
            c.execute("CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, at REAL NOT NULL, result TEXT NOT NULL)")
            c.execute("CREATE INDEX IF NOT EXISTS results_at ON results(at)")

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock, self._conn() as c:
            row = c.execute("SELECT result FROM results WHERE id = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, result: dict[str, Any]) -> None:
        doc = json.dumps(result, default=str)
        with self._lock:
            c = self._conn()
            try:
                with c:
                    c.execute("INSERT OR IGNORE INTO results (id, at, result) VALUES (?, ?, ?)", (key, time.time(), doc))
                    c.execute("DELETE FROM results WHERE id IN (SELECT id FROM results ORDER BY at DESC, rowid DESC "
                              "LIMIT -1 OFFSET ?)", (self.max_items,))
            finally:
                c.close()

    def __len__(self) -> int:
        with self._lock, self._conn() as c:
            return int(c.execute("SELECT COUNT(*) FROM results").fetchone()[0])


def from_env(max_items: int | None = None) -> MemoryStore | SQLiteStore:
    n = max_items or int(os.environ.get("IDEMPOTENCY_MAX") or 10_000)
    state_dir = os.environ.get("STATE_DIR")
    if state_dir:
        return SQLiteStore(os.path.join(state_dir, "functions-results.sqlite3"), n)
    return MemoryStore(n)
