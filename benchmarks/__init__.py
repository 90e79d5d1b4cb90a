"""Benchmarks: scripts that print speed and memory figures (`python -m benchmarks.NAME`)."""
