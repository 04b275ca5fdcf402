"""Answer checkers: does the system *accept* an attempt's answer?

The quality model decides whether an answer is correct; a verifier decides whether the system
believes it. A perfect verifier accepts exactly the correct answers. An imperfect one (an LLM judge,
unit tests, a heuristic) accepts a wrong answer with probability ``false_accept`` — an undetected
failure — and rejects a correct one with probability ``false_reject`` — a wasted escalation. Draws
use the request's own uniforms (common random numbers).
"""

from __future__ import annotations

from simroute.errors import ConfigError
from simroute.policy.types import Request


class PerfectVerifier:
    """Accepts exactly the correct answers, instantly."""

    latency_s = 0.0

    def accept(self, request: Request, correct: bool, u: float) -> bool:
        """True iff the answer is correct."""
        return correct


class NoisyVerifier:
    """A checker with configurable error rates and latency.

    Args:
        false_accept: P(accept | wrong answer).
        false_reject: P(reject | correct answer).
        latency_s: seconds each check takes.
    """

    def __init__(self, false_accept: float = 0.1, false_reject: float = 0.05, latency_s: float = 0.0) -> None:
        if not (0 <= false_accept <= 1 and 0 <= false_reject <= 1 and latency_s >= 0):
            raise ConfigError("verifier: need 0 <= false_accept, false_reject <= 1 and latency_s >= 0")
        self.false_accept = false_accept
        self.false_reject = false_reject
        self.latency_s = latency_s

    def accept(self, request: Request, correct: bool, u: float) -> bool:
        """Accept a correct answer unless ``u < false_reject``; a wrong one if ``u < false_accept``."""
        return u >= self.false_reject if correct else u < self.false_accept
