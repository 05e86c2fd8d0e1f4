"""The decision chain: static annotations → TRM → LLM → rules → no action."""
