"""Workloads: the canonical request table, trace loaders, skill labelling and the synthetic generator."""
