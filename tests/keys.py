"""Keys for tests: one agent and one functions key pair for the whole run, and key files on disk
(written by the same code as ``agent-sre keys generate``) for the tests that start processes."""

from __future__ import annotations

from pathlib import Path

from agent_sre import keys
from agent_sre.ce import CloudEvent
from agent_sre.signing import KeyRing, SigningKey, Trust, sign

AGENT = SigningKey.generate()
FUNCTIONS = SigningKey.generate()
ATTACKER = SigningKey.generate()


def agent_trust(max_age_s: float = 300.0) -> Trust:
    """The agent's side: signs with AGENT, accepts results signed by FUNCTIONS."""
    return Trust(AGENT, KeyRing([FUNCTIONS.public]), max_age_s)


def function_trust(max_age_s: float = 300.0) -> Trust:
    """The functions' side: signs with FUNCTIONS, accepts triggers signed by AGENT."""
    return Trust(FUNCTIONS, KeyRing([AGENT.public]), max_age_s)


def by_agent(event: CloudEvent, now: float | None = None) -> CloudEvent:
    return sign(event, AGENT, now=now)


def by_functions(event: CloudEvent, now: float | None = None) -> CloudEvent:
    return sign(event, FUNCTIONS, now=now)


def key_files(out: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A key set under ``out`` (written on first use, then read back): (the agent's settings, the
    functions' settings)."""
    if not (out / "secrets-signing.yaml").exists():
        keys.generate(out)
    return keys.env(out, keys.AGENT_MOUNTS), keys.env(out, keys.FUNCTION_MOUNTS)
