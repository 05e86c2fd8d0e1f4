"""Remembered answers by trigger event id, so a redelivered trigger does its work once.

A SQLite file in the ``STATE_DIR`` setting (survives restarts and Knative scale-to-zero; the
manifests keep it on a PersistentVolumeClaim), else memory (only in ``FUNCTION_LOCAL_MODE`` and
in-process). Each answer is kept with the digest of the signed trigger it answered, so the same
id arriving with other content is told apart from a redelivery. Both stores keep at most
``max_items`` ids, forgetting the oldest first, but never one younger than ``keep_s`` (the
freshness window): a trigger that may still arrive is never forgotten.
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
CREATE TABLE IF NOT EXISTS answers (id TEXT PRIMARY KEY, at REAL NOT NULL, digest TEXT, result TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS answers_at ON answers(at);
"""

Entry = tuple[dict[str, Any], "str | None"]  # (result, digest of the trigger it answered)


class ResultStore(Protocol):
    def entry(self, key: str) -> Entry | None: ...

    def put(self, key: str, result: dict[str, Any], digest: str | None = None) -> None: ...


class MemoryStore:
    def __init__(self, max_items: int = 10_000, keep_s: float = 0.0):
        self.max_items = max_items
        self.keep_s = keep_s
        self._d: OrderedDict[str, tuple[float, str | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, key: str) -> Entry | None:
        with self._lock:
            v = self._d.get(key)
        return (json.loads(v[2]), v[1]) if v is not None else None

    def get(self, key: str) -> dict[str, Any] | None:
        e = self.entry(key)
        return e[0] if e else None

    def put(self, key: str, result: dict[str, Any], digest: str | None = None) -> None:
        now = time.time()
        with self._lock:
            self._d[key] = (now, digest, json.dumps(result, default=str))
            self._d.move_to_end(key)
            while len(self._d) > self.max_items:
                oldest = next(iter(self._d.values()))
                if now - oldest[0] < self.keep_s:
                    break
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class SQLiteStore:
    def __init__(self, path: str, max_items: int = 10_000, keep_s: float = 0.0):
        self.db = Database(path, _SCHEMA, timeout=10)
        self.path = self.db.path
        self.max_items = max_items
        self.keep_s = keep_s

    def entry(self, key: str) -> Entry | None:
        row = self.db.conn().execute("SELECT result, digest FROM answers WHERE id = ?", (key,)).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def get(self, key: str) -> dict[str, Any] | None:
        e = self.entry(key)
        return e[0] if e else None

    def put(self, key: str, result: dict[str, Any], digest: str | None = None) -> None:
        doc = json.dumps(result, default=str)
        now = time.time()
        with self.db.write() as c:
            c.execute("INSERT OR IGNORE INTO answers (id, at, digest, result) VALUES (?, ?, ?, ?)",
                      (key, now, digest, doc))
            c.execute("DELETE FROM answers WHERE at < ? AND id IN (SELECT id FROM answers ORDER BY at DESC, "
                      "rowid DESC LIMIT -1 OFFSET ?)", (now - self.keep_s, self.max_items))

    def __len__(self) -> int:
        return int(self.db.conn().execute("SELECT COUNT(*) FROM answers").fetchone()[0])


def open_store(settings: FunctionSettings, keep_s: float = 0.0) -> MemoryStore | SQLiteStore:
    if settings.state_dir is not None:
        return SQLiteStore(str(settings.state_dir / "functions-results.sqlite3"), settings.idempotency_max, keep_s)
    return MemoryStore(settings.idempotency_max, keep_s)
