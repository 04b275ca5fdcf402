"""Wiring: build a run from config, the SimPy request lifecycle, and the per-request records."""
