"""Benchmarks of astrachaos against the raw driver, measured in one run: `python -m bench`."""
