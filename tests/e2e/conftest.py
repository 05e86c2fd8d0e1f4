import pytest

from tests.keys import key_files


@pytest.fixture
def keyset(tmp_path):
    """A key set written to the test's tmp dir, as `agent-sre keys generate` writes it: (the agent's
    settings, the functions' settings)."""
    return key_files(tmp_path / "keys")
