"""The decision chain: static annotations → runbook → TRM → LLM → no action."""
