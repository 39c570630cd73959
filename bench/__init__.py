"""Benchmarks: run one from the repo root with ``uv run python -m bench.<name>``.

``daemon_bench`` is described in docs/benchmarks.md.
"""
