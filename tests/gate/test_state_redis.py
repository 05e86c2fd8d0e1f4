"""RedisState against a real redis-server: every test of tests/gate/test_state.py again (same assertions,
the ``store`` fixture swapped for Redis), plus what only Redis has (TTLs, key layout).

redis-server comes from Debian (``.ci/install-system-deps.sh``, which CI runs before pytest); a missing
binary is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from agent_sre.state import Limits, RedisState, SQLiteState
from tests.gate.test_state import *  # noqa: F401,F403 -- the shared tests, collected again here
from tests.gate.test_state import LOOSE, T0, Store, act

INSTALL_HINT = "run .ci/install-system-deps.sh (CI runs it before pytest)"


def _redis_server_binary() -> str:
    exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK)
                                           else None)
    if exe is None:
        pytest.fail(f"redis-server is not installed: {INSTALL_HINT}", pytrace=False)
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(exe: str, workdir, port: int) -> subprocess.Popen:
    log = workdir / f"redis-{port}.log"
    return subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir), "--logfile", str(log), "--daemonize", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    try:
        import redis
    except ImportError:
        pytest.fail("the redis package is missing: pip install -e '.[test]'", pytrace=False)
    exe = _redis_server_binary()
    workdir = tmp_path_factory.mktemp("redis")
    proc = None
    for _ in range(5):  # the free port can be taken between probing and binding: try another
        port = _free_port()
        proc = _start(exe, workdir, port)
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.02)
        else:
            client.close()
            proc.kill()
            proc.wait()
            continue
        client.close()
        break
    else:
        logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in workdir.glob("redis-*.log"))
        pytest.fail(f"redis-server did not start on loopback:\n{logs}", pytrace=False)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture()
def store(redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as c:
        c.flushall()
    s = Store(RedisState, {"REDIS_URL": redis_url, "STATE_DB": "/nonexistent/never-opened.db"},
              lambda: RedisState(redis_url))
    yield s
    s.close()


def test_the_shared_tests_run_here_against_redis(store):
    # guards the import above: if the shared tests stopped being collected here, this file would still pass
    names = {n for n in globals() if n.startswith("test_")}
    assert {"test_check_and_reserve_is_atomic_across_processes", "test_loop_breaker_after_n_returns_of_the_same_alert",
            "test_from_env_opens_the_same_store", "test_storm_breaker_stops_mutating_actions_only"} <= names
    assert store.kind is RedisState and isinstance(store.open(), RedisState)


def test_redis_url_wins_over_state_db(store, tmp_path):
    from agent_sre import state
    from agent_sre.settings import StateSettings, load

    s = state.open_store(load(StateSettings, {"REDIS_URL": store.env["REDIS_URL"], "STATE_DB": str(tmp_path / "x.db")}))
    store.opened.append(s)
    assert isinstance(s, RedisState) and not (tmp_path / "x.db").exists()
    assert isinstance(state.open_store(load(StateSettings, {"STATE_DB": str(tmp_path / "x.db")})), SQLiteState)


def test_every_key_expires_after_the_longest_window(store):
    import redis

    st = store.open()
    lim = Limits(dedup_seconds=600, cooldown_seconds=60, loop_window_seconds=1200)
    assert st.reserve(act(), lim).ok
    assert st.reserve(act(key="r@1", fp="r", fn="pod-check-status", mutating=False), lim).ok
    st.signal("media/y")
    with redis.Redis.from_url(store.env["REDIS_URL"]) as c:
        keys = sorted(k.decode() for k in c.keys("agent-sre:*"))
        assert {"agent-sre:signals", "agent-sre:budget:global", "agent-sre:budget:t:media/x-1",
                "agent-sre:loop:fp", "agent-sre:dedup:fp@1:0"} <= set(keys)
        for k in keys:
            ttl = c.ttl(k)
            if k == "agent-sre:signals":
                assert ttl == -1  # trimmed to the storm window on every reservation instead
            else:
                assert 3600 <= ttl <= 3660, (k, ttl)  # max(windows, an hour) + a minute
    assert st.stats() == {"backend": "redis", "url": store.env["REDIS_URL"],
                          "mutating_last_hour": 1, "targets_signalled": 2}


def test_reservations_of_two_prefixes_do_not_see_each_other(store):
    a = RedisState(store.env["REDIS_URL"], prefix="a:")
    b = RedisState(store.env["REDIS_URL"], prefix="b:")
    store.opened += [a, b]
    assert a.reserve(act(), LOOSE, now=T0).ok
    assert b.reserve(act(), LOOSE, now=T0).ok
    assert a.reserve(act(), LOOSE, now=T0).code == "duplicate"
