"""Fixtures for the demo, tests and benchmarks: a synthetic corpus in the
IEMOCAP release layout and tiny random SSL encoders (no data, no
network)."""
