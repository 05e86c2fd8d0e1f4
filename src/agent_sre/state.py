"""Durable gate state: dedup, cooldowns, budgets, the storm and the loop breaker.

The check and the reservation happen in one atomic step, so two replicas (or two threads) that
see the same alert at the same moment cannot both act:

* SQLite (default; ``STATE_DB``, else ``STATE_DIR``/state.db): WAL, one ``BEGIN IMMEDIATE`` transaction per
  reservation, which serialises writers across processes sharing the file.
* Redis (``REDIS_URL``, optional ``redis`` package): one Lua script per reservation, which Redis
  runs atomically; shared by every replica that points at it.

Tables (SQLite): ``actions`` holds one row per allowed plan step of an alert occurrence
(primary key alert_key + step: the dedup record), with function, target, fingerprint, whether
it mutates and when; cooldowns, budgets and the loop breaker are queries over it. ``signals``
holds, per target, the last time it fired or failed (the storm breaker counts distinct recent
targets).

A step reserved in suggest mode (waiting for a person) is a dedup record only: it acts on
nothing, so it counts towards no cooldown, budget or loop. When the person approves, the same
step is reserved again with ``approved`` set: the suggestion gives way (it is not a duplicate
of itself) and every other limit is checked as for any action.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .settings import StateSettings
from .sqlite import Database


@dataclass(frozen=True)
class Action:
    """What the gate wants to reserve for one plan step of one alert occurrence."""

    alert_key: str
    fingerprint: str
    step: int
    function: str
    target: str
    params: dict[str, Any]
    mutating: bool
    mode: str
    approved: bool = False  # a person approved this step's suggestion: it replaces the suggest record

    @property
    def acts(self) -> bool:
        """Counts towards cooldowns, budgets and the loop breaker (a suggestion does not)."""
        return self.mode != "suggest"


@dataclass(frozen=True)
class Limits:
    dedup_seconds: float = 7 * 86400
    cooldown_seconds: float = 300
    per_target_per_hour: int = 3
    global_per_hour: int = 30
    storm_targets: int = 20
    storm_window_seconds: float = 300
    loop_max_returns: int = 3
    loop_window_seconds: float = 86400


@dataclass(frozen=True)
class Reserved:
    ok: bool
    code: str  # ok | duplicate | storm | loop | cooldown | budget_target | budget_global
    reason: str
    prior: dict[str, Any] | None = None


class StateStore(Protocol):
    def reserve(self, action: Action, limits: Limits, now: float | None = None) -> Reserved: ...

    def signal(self, target: str, now: float | None = None) -> None:
        """A target fired or its remediation failed (feeds the storm breaker)."""

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


HOUR = 3600.0


def _refusal_reason(code: str, a: Action, limits: Limits, n: float | int) -> str:
    if code == "storm":
        return (f"storm breaker: {int(n)} distinct targets fired or failed in the last "
                f"{int(limits.storm_window_seconds)}s (limit {limits.storm_targets}); no mutating action")
    if code == "loop":
        return (f"loop breaker: alert {a.fingerprint} came back after {int(n)} remediations in "
                f"{int(limits.loop_window_seconds)}s (limit {limits.loop_max_returns}); stop and escalate")
    if code == "cooldown":
        return (f"cooldown: {a.function} acted on {a.target} {n:.0f}s ago "
                f"(cooldown {int(limits.cooldown_seconds)}s)")
    if code == "budget_target":
        return f"budget: {int(n)} mutating actions on {a.target} in the last hour (limit {limits.per_target_per_hour})"
    if code == "budget_global":
        return f"budget: {int(n)} mutating actions in the last hour overall (limit {limits.global_per_hour})"
    return code


# --------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
  alert_key   TEXT NOT NULL,
  step        INTEGER NOT NULL,
  fingerprint TEXT NOT NULL,
  function    TEXT NOT NULL,
  target      TEXT NOT NULL,
  params      TEXT NOT NULL,
  mutating    INTEGER NOT NULL,
  mode        TEXT NOT NULL,
  ts          REAL NOT NULL,
  PRIMARY KEY (alert_key, step)
);
CREATE INDEX IF NOT EXISTS actions_fn_target ON actions (function, target, ts);
CREATE INDEX IF NOT EXISTS actions_target ON actions (target, mutating, ts);
CREATE INDEX IF NOT EXISTS actions_fp ON actions (fingerprint, mutating, ts);
CREATE INDEX IF NOT EXISTS actions_ts ON actions (mutating, ts);
CREATE TABLE IF NOT EXISTS signals (
  target TEXT PRIMARY KEY,
  ts     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_ts ON signals (ts);
"""


class SQLiteState:
    def __init__(self, path: str | os.PathLike):
        self.db = Database(path, _SCHEMA)
        self.path = self.db.path
        self._calls = 0

    def reserve(self, action: Action, limits: Limits, now: float | None = None) -> Reserved:
        now = time.time() if now is None else now
        a = action
        with self.db.write() as c:
            if a.step == 0:
                c.execute("INSERT INTO signals(target, ts) VALUES(?, ?) "
                          "ON CONFLICT(target) DO UPDATE SET ts=max(ts, excluded.ts)", (a.target, now))
            row = c.execute("SELECT function, target, params, mode, ts FROM actions WHERE alert_key=? AND step=? "
                            "AND ts>?", (a.alert_key, a.step, now - limits.dedup_seconds)).fetchone()
            if row is not None and not (a.approved and row[3] == "suggest"):
                prior = {"function": row[0], "target": row[1], "params": json.loads(row[2]), "mode": row[3],
                         "ts": row[4]}
                return Reserved(False, "duplicate",
                                f"duplicate: this alert occurrence (step {a.step}) was already handled "
                                f"{now - row[4]:.0f}s ago by {row[0]} on {row[1]}", prior)
            refusal = self._limits(c, a, limits, now)
            if refusal is not None:
                return refusal
            # REPLACE: a row still here from an occurrence whose dedup window has passed (not yet
            # pruned) gives way to the new action instead of tripping the primary key.
            c.execute("INSERT OR REPLACE INTO actions(alert_key, step, fingerprint, function, target, params, mutating, mode, ts) "
                      "VALUES(?,?,?,?,?,?,?,?,?)",
                      (a.alert_key, a.step, a.fingerprint, a.function, a.target,
                       json.dumps(a.params, sort_keys=True), int(a.mutating and a.acts), a.mode, now))
        self._calls += 1
        if self._calls % 500 == 0:
            self.prune(limits, now)
        return Reserved(True, "ok", "reserved")

    @staticmethod
    def _limits(c: sqlite3.Connection, a: Action, limits: Limits, now: float) -> Reserved | None:
        if not a.acts:
            return None  # a suggestion acts on nothing: only its dedup record is kept
        if a.mutating:
            (n,) = c.execute("SELECT count(*) FROM signals WHERE ts>?", (now - limits.storm_window_seconds,)).fetchone()
            if n >= limits.storm_targets:
                return Reserved(False, "storm", _refusal_reason("storm", a, limits, n))
            (n,) = c.execute("SELECT count(DISTINCT alert_key) FROM actions WHERE fingerprint=? AND mutating=1 "
                             "AND alert_key<>? AND ts>?",
                             (a.fingerprint, a.alert_key, now - limits.loop_window_seconds)).fetchone()
            if n >= limits.loop_max_returns:
                return Reserved(False, "loop", _refusal_reason("loop", a, limits, n))
        if limits.cooldown_seconds > 0:
            (last,) = c.execute("SELECT max(ts) FROM actions WHERE function=? AND target=? AND ts>? "
                                "AND mode<>'suggest'", (a.function, a.target, now - limits.cooldown_seconds)).fetchone()
            if last is not None:
                return Reserved(False, "cooldown", _refusal_reason("cooldown", a, limits, now - last))
        if a.mutating:
            (n,) = c.execute("SELECT count(*) FROM actions WHERE target=? AND mutating=1 AND ts>?",
                             (a.target, now - HOUR)).fetchone()
            if n >= limits.per_target_per_hour:
                return Reserved(False, "budget_target", _refusal_reason("budget_target", a, limits, n))
            (n,) = c.execute("SELECT count(*) FROM actions WHERE mutating=1 AND ts>?", (now - HOUR,)).fetchone()
            if n >= limits.global_per_hour:
                return Reserved(False, "budget_global", _refusal_reason("budget_global", a, limits, n))
        return None

    def signal(self, target: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.db.write() as c:
            c.execute("INSERT INTO signals(target, ts) VALUES(?, ?) "
                      "ON CONFLICT(target) DO UPDATE SET ts=max(ts, excluded.ts)", (target, now))

    def prune(self, limits: Limits, now: float | None = None) -> None:
        now = time.time() if now is None else now
        keep = max(limits.dedup_seconds, limits.loop_window_seconds, HOUR, limits.cooldown_seconds)
        with self.db.write() as c:
            c.execute("DELETE FROM actions WHERE ts<?", (now - keep,))
            c.execute("DELETE FROM signals WHERE ts<?", (now - max(limits.storm_window_seconds, HOUR),))

    def stats(self) -> dict[str, Any]:
        c = self.db.conn()
        now = time.time()
        (actions,) = c.execute("SELECT count(*) FROM actions").fetchone()
        (mut,) = c.execute("SELECT count(*) FROM actions WHERE mutating=1 AND ts>?", (now - HOUR,)).fetchone()
        (sig,) = c.execute("SELECT count(*) FROM signals").fetchone()
        return {"backend": "sqlite", "path": self.path, "actions": actions, "mutating_last_hour": mut,
                "targets_signalled": sig}

    def close(self) -> None:
        self.db.close()


# --------------------------------------------------------------------------- Redis

# KEYS: none (built from ARGV[1] prefix so one script serves every key; a single Redis, not a cluster).
# ARGV: prefix, now (Python repr: exact), action JSON (without params), limits JSON, prior doc JSON
# (built in Python so params and ts round-trip exactly). Returns {code, detail, prior-json}.
#
# Semantics mirror SQLiteState: every check is against the recorded history and the logical ``now``
# (never against Redis TTLs, which only collect garbage after the longest window, like prune()):
#   dedup     p..'dedup:'..alert_key..':'..step   hash {ts, doc}; a duplicate while ts > now - dedup
#   cooldown  p..'cool:'..#fn..':'..fn..':'..target   max ts of any action of fn on target
#   budgets   p..'budget:t:'..target, p..'budget:global'   zsets of mutating alert_key:step by ts
#   loop      p..'loop:'..fingerprint   zset of alert_keys with a mutating action, by latest ts
#   storm     p..'signals'   zset of targets by the last time they fired or failed
# Window bounds are formatted with %.17g: Lua's own number->string (%.14g) would round them.
_LUA = r"""
local p = ARGV[1]
local nows = ARGV[2]
local now = tonumber(nows)
local a = cjson.decode(ARGV[3])
local l = cjson.decode(ARGV[4])
local doc = ARGV[5]
local function after(t) return string.format('(%.17g', t) end
local function zmax(key, member)
  local old = redis.call('ZSCORE', key, member)
  if (not old) or tonumber(old) < now then redis.call('ZADD', key, nows, member) end
end
local keep = math.max(l.dedup_seconds, l.loop_window_seconds, 3600, l.cooldown_seconds)
local ttl = math.ceil(keep) + 60
local sig = p .. 'signals'
if a.step == 0 then zmax(sig, a.target) end
redis.call('ZREMRANGEBYSCORE', sig, '-inf', after(now - math.max(l.storm_window_seconds, 3600)))
local dkey = p .. 'dedup:' .. a.alert_key .. ':' .. a.step
local prior = redis.call('HMGET', dkey, 'ts', 'doc')
if prior[1] and tonumber(prior[1]) > now - l.dedup_seconds then
  -- an approved step replaces its own suggestion; anything else is a duplicate
  if not (a.approved and cjson.decode(prior[2]).mode == 'suggest') then return {'duplicate', 0, prior[2]} end
end
local acts = a.mode ~= 'suggest'
local mutating = a.mutating and acts
local lkey = p .. 'loop:' .. a.fingerprint
local tkey = p .. 'budget:t:' .. a.target
local gkey = p .. 'budget:global'
if mutating then
  local n = redis.call('ZCOUNT', sig, after(now - l.storm_window_seconds), '+inf')
  if n >= l.storm_targets then return {'storm', n, ''} end
  local since = now - l.loop_window_seconds
  local m = redis.call('ZCOUNT', lkey, after(since), '+inf')
  local mine = redis.call('ZSCORE', lkey, a.alert_key)
  if mine and tonumber(mine) > since then m = m - 1 end
  if m >= l.loop_max_returns then return {'loop', m, ''} end
end
local fn = a['function']
local ckey = p .. 'cool:' .. string.len(fn) .. ':' .. fn .. ':' .. a.target
if acts and l.cooldown_seconds > 0 then
  local last = redis.call('GET', ckey)
  if last and tonumber(last) > now - l.cooldown_seconds then
    return {'cooldown', string.format('%.17g', now - tonumber(last)), ''}
  end
end
if mutating then
  local n = redis.call('ZCOUNT', tkey, after(now - 3600), '+inf')
  if n >= l.per_target_per_hour then return {'budget_target', n, ''} end
  n = redis.call('ZCOUNT', gkey, after(now - 3600), '+inf')
  if n >= l.global_per_hour then return {'budget_global', n, ''} end
end
-- reserve: record the action in every history the checks read
redis.call('HSET', dkey, 'ts', nows, 'doc', doc)
redis.call('EXPIRE', dkey, ttl)
if acts then
  local last = redis.call('GET', ckey)
  if (not last) or tonumber(last) < now then redis.call('SET', ckey, nows, 'EX', ttl) end
end
if mutating then
  local member = a.alert_key .. ':' .. a.step
  local old = after(now - keep)
  for _, key in ipairs({tkey, gkey}) do
    redis.call('ZADD', key, nows, member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', old)
    redis.call('EXPIRE', key, ttl)
  end
  zmax(lkey, a.alert_key)
  redis.call('ZREMRANGEBYSCORE', lkey, '-inf', old)
  redis.call('EXPIRE', lkey, ttl)
end
return {'ok', 0, ''}
"""


class RedisState:
    """The same semantics as SQLiteState on a shared Redis (one atomic Lua script per reservation).

    Needs Redis >= 6.2 (``ZADD GT`` in signal())."""

    def __init__(self, url: str, prefix: str = "agent-sre:"):
        import redis  # optional dependency: pip install 'agent-sre[redis]'

        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url)
        self._script = self.client.register_script(_LUA)

    def reserve(self, action: Action, limits: Limits, now: float | None = None) -> Reserved:
        now = time.time() if now is None else float(now)
        a = asdict(action)
        params = a.pop("params")
        doc = {"function": action.function, "target": action.target, "params": params, "mode": action.mode,
               "ts": now}
        code, n, prior = self._script(args=[self.prefix, repr(now), json.dumps(a), json.dumps(asdict(limits)),
                                            json.dumps(doc, sort_keys=True)])
        code = code.decode() if isinstance(code, bytes) else code
        if code == "ok":
            return Reserved(True, "ok", "reserved")
        if code == "duplicate":
            doc = json.loads(prior)
            return Reserved(False, "duplicate",
                            f"duplicate: this alert occurrence (step {action.step}) was already handled "
                            f"{now - float(doc['ts']):.0f}s ago by {doc['function']} on {doc['target']}", doc)
        n = float(n.decode() if isinstance(n, bytes) else n)
        return Reserved(False, code, _refusal_reason(code, action, limits, n))

    def signal(self, target: str, now: float | None = None) -> None:
        now = time.time() if now is None else float(now)
        self.client.zadd(self.prefix + "signals", {target: now}, gt=True)

    def stats(self) -> dict[str, Any]:
        return {"backend": "redis", "url": self.url.split("@")[-1],
                "mutating_last_hour": self.client.zcount(self.prefix + "budget:global", f"({time.time() - HOUR!r}",
                                                         "+inf"),
                "targets_signalled": self.client.zcard(self.prefix + "signals")}

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- from the settings


def open_store(settings: StateSettings) -> StateStore:
    """``REDIS_URL`` → RedisState; else SQLite at ``STATE_DB`` (default ``STATE_DIR``/state.db)."""
    if settings.redis_url:
        return RedisState(settings.redis_url)
    return SQLiteState(settings.state_path)
