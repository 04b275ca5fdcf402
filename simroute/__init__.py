"""simroute: a discrete-event simulator for router-first LLM agent architectures.

A request flows classifier -> risk predictor -> router -> selector -> tier (local GPUs, async batch
API, real-time API); outcomes come from a quality model with common random numbers, costs from the
real LiteLLM price table. See ``DESIGN`` notes in the README.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
