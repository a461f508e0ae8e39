"""Benchmarks of Preflight: accuracy and speed, reported as medians and ratios."""
