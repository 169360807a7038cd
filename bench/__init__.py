"""Benchmarks: they print figures and never fail the test suite."""
