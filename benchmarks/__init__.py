"""Benchmarks of the harness itself, outside the `bench` package: `python -m bench perf` runs them.

- benchmarks/perf.py: the performance targets, fast and naive paths timed side by side (results/perf.md).
- benchmarks/perf_real.py: wall time and peak memory per phase of real-shaped runs (results/perf-real.md).

They use the kernel, the methods and the suites as any caller would; nothing in bench/, methods/ or
suites/ imports them.
"""
