"""Production router: load an exported policy artifact and make the simulated decisions.

Depends on the standard library and NumPy only (plus simroute's own policy classes, which are
NumPy-only): importing it does not import SimPy, Numba, Polars, Matplotlib or Hydra::

    from simroute.runtime import load_policy
    policy = load_policy("policy.json")
    decision = policy.route({"skill": "code_change", "prompt_tokens": 8000, "deadline_s": 60,
                             "risky_migration": False, ...}, local_queue_len=3)
"""

from simroute.runtime.policy import Decision, RuntimePolicy, load_policy

__all__ = ["Decision", "RuntimePolicy", "load_policy"]
