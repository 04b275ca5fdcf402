"""Prices (LiteLLM cost map), cost kernels and the quality model."""
