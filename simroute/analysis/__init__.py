"""Summaries and figures of simulated runs."""
