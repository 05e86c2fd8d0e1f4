from tests.gate.test_state_redis import redis_url  # noqa: F401 - the real redis-server fixture
