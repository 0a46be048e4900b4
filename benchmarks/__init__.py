"""Benchmarks: figures, not pass/fail (run each with python -m benchmarks.<name>)."""
