"""Benchmarks of Cowork foundation, each figure beside its raw baseline.

Run the whole suite with ``bash benchmarks/run.sh``; see ``docs/performance.md``.
"""
