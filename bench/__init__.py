"""Benchmarks (``make bench``): each ``bench/bench_*.py`` has ``main() -> None``
and writes its figures to ``bench/results/<name>.json``."""
