"""Benchmarks, run by `make bench` (not by `make test`: they measure, they do not assert).

Each module named in `__main__.BENCHMARKS` has `run(args) -> dict` returning its figures and
`markdown(figures) -> str` rendering them as a table; the runner writes both to
tests/benchmarks/results/.
"""
