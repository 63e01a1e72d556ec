"""Benchmarks for Mobile Backup (not part of the test run).

Run with `make bench` or `python -m bench.run [B1 B3 ...] [--runs N] [--quick]`. Each
scenario lives in a module `bench/b<N>_<topic>.py` that registers itself with
`bench._harness.scenario`; see bench/README.md.
"""
