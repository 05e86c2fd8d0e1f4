"""agent-sre: auto-remediation for Kubernetes alerts."""
__version__ = "0.1.0"
