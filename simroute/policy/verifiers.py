"""Answer checkers: does the system *accept* an attempt's answer?

The quality model decides whether an answer is correct; a verifier decides whether the system
believes it. Every policy names its verifier:

* ``judge`` — an LLM judge from the model catalogue: each check is a real-time call of that model,
  priced from its LiteLLM rates for the tokens it reads (prompt, answer and a rubric) and writes
  (its verdict), and as slow as that model; it accepts a wrong answer with probability
  ``false_accept`` (an undetected failure) and rejects a right one with ``false_reject`` (a wasted
  escalation). A simulated error model: its verdict is drawn from the truth through those rates.
* ``noisy`` — an unpriced checker with the same error model and a fixed latency (unit tests, a
  linter: checks whose cost is not an API call).
* ``none`` — no check: every completed answer is accepted and failures surface later (no
  escalation on wrong answers).
* ``oracle`` — accepts exactly the right answers, instantly and for free. It reads the truth: an
  upper bound only, listed in ``summary.json → uses_ground_truth``.

Draws use the request's own uniforms (common random numbers).
"""

from __future__ import annotations

from simroute.errors import ConfigError
from simroute.policy.catalog import ModelCatalog
from simroute.policy.types import RequestView


class OracleVerifier:
    """Accepts exactly the correct answers, instantly and for free (reads the truth)."""

    name = "oracle"
    oracle = True
    latency_s = 0.0
    model: str | None = None
    false_accept = 0.0
    false_reject = 0.0

    def accept(self, request: RequestView, correct: bool, u: float) -> bool:
        """True iff the answer is correct."""
        return correct

    def check_usd(self, prompt_tokens: int, answer_tokens: int) -> float:
        """A check costs nothing."""
        return 0.0


class NoVerifier:
    """Accepts every completed answer: nothing is checked, nothing is escalated for being wrong."""

    name = "none"
    oracle = False
    latency_s = 0.0
    model: str | None = None
    false_accept = 1.0
    false_reject = 0.0

    def accept(self, request: RequestView, correct: bool, u: float) -> bool:
        """Always True."""
        return True

    def check_usd(self, prompt_tokens: int, answer_tokens: int) -> float:
        """Nothing is checked: 0 USD."""
        return 0.0


class NoisyVerifier:
    """A checker with configurable error rates and a fixed latency, at no API cost.

    Args:
        false_accept: P(accept | wrong answer).
        false_reject: P(reject | correct answer).
        latency_s: seconds each check takes.
    """

    name = "noisy"
    model: str | None = None

    def __init__(self, false_accept: float = 0.1, false_reject: float = 0.05, latency_s: float = 0.0) -> None:
        if not (0 <= false_accept <= 1 and 0 <= false_reject <= 1 and latency_s >= 0):
            raise ConfigError("verifier: need 0 <= false_accept, false_reject <= 1 and latency_s >= 0")
        self.false_accept = false_accept
        self.false_reject = false_reject
        self.latency_s = latency_s
        self.oracle = false_accept == 0 and false_reject == 0  # error-free: it reads the truth

    def accept(self, request: RequestView, correct: bool, u: float) -> bool:
        """Accept a correct answer unless ``u < false_reject``; a wrong one if ``u < false_accept``."""
        return u >= self.false_reject if correct else u < self.false_accept

    def check_usd(self, prompt_tokens: int, answer_tokens: int) -> float:
        """An unpriced check: 0 USD."""
        return 0.0


class JudgeVerifier(NoisyVerifier):
    """An LLM judge: a real-time call of ``model`` per check, priced and timed like one.

    Args:
        catalog: the run's offers (injected); ``model`` must be offered in the real-time tier.
        model: the judge's LiteLLM id.
        false_accept: P(accept | wrong answer).
        false_reject: P(reject | correct answer).
        rubric_tokens: instruction tokens the judge reads besides the prompt and the answer.
        verdict_tokens: tokens the judge writes (verdict and a short rationale).

    The check's latency is the judge model's real-time latency for ``verdict_tokens`` output
    tokens, drawn by the real-time tier (``latency_s`` is 0 here).
    """

    name = "judge"

    def __init__(
        self,
        catalog: ModelCatalog,
        model: str,
        false_accept: float = 0.15,
        false_reject: float = 0.15,
        rubric_tokens: int = 300,
        verdict_tokens: int = 100,
    ) -> None:
        super().__init__(false_accept, false_reject, 0.0)
        offers = [o for o in catalog.by_tier["realtime"] if o.model == model]
        if not offers:
            valid = sorted({o.model for o in catalog.by_tier["realtime"]})
            raise ConfigError(
                f"verifier.model: {model!r} is not a real-time model of the catalogue; valid: {valid}"
            )
        if rubric_tokens < 0 or verdict_tokens < 1:
            raise ConfigError("verifier: need rubric_tokens >= 0 and verdict_tokens >= 1")
        self.model: str | None = model
        self._offer = offers[0]
        self.rubric_tokens = rubric_tokens
        self.verdict_tokens = verdict_tokens
        std = self._offer.standard_rates if self._offer.standard_rates is not None else self._offer.rates
        self._usd_in, self._usd_out = float(std[0]), float(std[3])  # read once: rates never change

    def check_usd(self, prompt_tokens: int, answer_tokens: int) -> float:
        """USD of one check: the judge reads prompt + answer + rubric and writes its verdict, at
        the model's standard real-time rates."""
        tokens_in = prompt_tokens + answer_tokens + self.rubric_tokens
        return tokens_in * self._usd_in + self.verdict_tokens * self._usd_out
