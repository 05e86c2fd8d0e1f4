"""Benchmark scripts (run as files: ``python bench/compare.py``); importable as ``bench.<name>`` for tests."""
