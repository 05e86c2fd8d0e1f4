"""Remembered results by trigger event id, so a redelivered trigger does its work once.

A SQLite file in the ``STATE_DIR`` setting when set (survives restarts and Knative
scale-to-zero), else memory. Both keep at most ``max_items`` ids, forgetting the oldest first.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

from ..settings import FunctionSettings
from ..sqlite import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, at REAL NOT NULL, result TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS results_at ON results(at);
"""


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
        self.db = Database(path, _SCHEMA, timeout=10)
        self.path = self.db.path
        self.max_items = max_items

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.db.conn().execute("SELECT result FROM results WHERE id = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, result: dict[str, Any]) -> None:
        doc = json.dumps(result, default=str)
        with self.db.write() as c:
            c.execute("INSERT OR IGNORE INTO results (id, at, result) VALUES (?, ?, ?)", (key, time.time(), doc))
            c.execute("DELETE FROM results WHERE id IN (SELECT id FROM results ORDER BY at DESC, rowid DESC "
                      "LIMIT -1 OFFSET ?)", (self.max_items,))

    def __len__(self) -> int:
        return int(self.db.conn().execute("SELECT COUNT(*) FROM results").fetchone()[0])


def open_store(settings: FunctionSettings) -> MemoryStore | SQLiteStore:
    if settings.state_dir is not None:
        return SQLiteStore(str(settings.state_dir / "functions-results.sqlite3"), settings.idempotency_max)
    return MemoryStore(settings.idempotency_max)
