"""The real-time tier's token-dependent latency for the Claude models (fits to the recorded calls)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest
import simpy

from conftest import compose_cfg, make_request
from simroute import luck
from simroute.config import REPO_ROOT, TRACES_DIR
from simroute.errors import ConfigError, InputError
from simroute.tiers.api_call_fit import fits_document
from simroute.tiers.factory import build_tiers, latency_model
from simroute.tiers.latency_fit import fit_profiles
from simroute.tiers.realtime import LatencyModel, RealtimeTier
from simroute.tiers.token_latency import load_token_fits

FITS = REPO_ROOT / "conf" / "tiers" / "claude_api_latency.json"


def _tier() -> RealtimeTier:
    cfg = compose_cfg()
    tiers = build_tiers(simpy.Environment(), cfg["tiers"], 0, {}, None, 16)
    rt = tiers["realtime"]
    assert isinstance(rt, RealtimeTier)
    return rt


def _first_token_s(tier: RealtimeTier, model: str, **kw: Any) -> tuple[float, float]:
    """(TTFT, end - start) of one call of ``model`` in a fresh environment (same keyed luck)."""
    env = simpy.Environment()
    tier.env = env
    out = []

    def go() -> Any:
        out.append((yield tier.submit(make_request(**kw), model)))

    env.process(go())
    env.run()
    return out[0].first_token_s - out[0].start_s, out[0].end_s - out[0].start_s


def _same_up_to_rounding(a: Any, b: Any, where: str = "") -> None:
    """``a`` equals ``b`` in structure, keys, text and integers, and in floats to 1e-9 relative: a
    least-squares fit's last bits differ between CPUs (the BLAS takes other kernels)."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same_up_to_rounding(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_up_to_rounding(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-15), where
    else:
        assert a == b, where


def test_fits_file_is_the_command_output() -> None:
    """conf/tiers/claude_api_latency.json is what `python -m simroute.tiers.api_call_fit` writes
    (floats up to the rounding of the CPU's linear algebra)."""
    doc = json.loads(FITS.read_text())
    _same_up_to_rounding(doc, json.loads(json.dumps(fits_document(TRACES_DIR / "claude_code_2025.parquet"))))
    assert set(doc["models"]) == {
        "claude-haiku-4-5", "claude-opus-4-1", "claude-opus-4-5",
        "claude-opus-4-6", "claude-sonnet-4", "claude-sonnet-4-5",
    }  # fmt: skip


def test_claude_ttft_grows_with_prompt_tokens_as_fitted() -> None:
    tier = _tier()
    fit = load_token_fits(FITS)["claude-sonnet-4-5"]
    assert tier.latency["claude-sonnet-4-5"].tokens == fit
    req = make_request(request_id=7, prompt_tokens=1_000, output_tokens=201)
    z = NormalDist().inv_cdf(luck.uniform(0, luck.purpose_key("realtime.ttft"), 7, 0, 0))
    factor = math.exp(fit.sigma * z)
    m = "claude-sonnet-4-5"
    small, end_small = _first_token_s(tier, m, request_id=7, prompt_tokens=1_000, output_tokens=201)
    big, _ = _first_token_s(tier, m, request_id=7, prompt_tokens=100_000, output_tokens=201)
    assert small == pytest.approx(fit.median_ttft_s(req.prompt_tokens) * factor)
    assert big == pytest.approx(fit.median_ttft_s(100_000) * factor)
    assert big - small == pytest.approx(fit.ttft_per_1k_prompt_s * 99 * factor)
    assert end_small - small == pytest.approx(200 * fit.tpot_s * factor)


def test_other_models_keep_the_llmperf_fit() -> None:
    tier = _tier()
    spec = fit_profiles(TRACES_DIR / "llmperf_2023_individual.csv.gz")["together/70b"]
    assert tier.latency["*"].spec == spec and tier.latency["*"].tokens is None
    assert "gpt-4.1" not in tier.latency
    a, _ = _first_token_s(tier, "gpt-4.1", request_id=7, prompt_tokens=1_000)
    b, _ = _first_token_s(tier, "gpt-4.1", request_id=7, prompt_tokens=100_000)
    u0 = luck.uniform(0, luck.purpose_key("realtime.ttft"), 7, 0, 0)
    u1 = luck.uniform(0, luck.purpose_key("realtime.itl"), 7, 0, 0)
    assert a == b == pytest.approx(LatencyModel(spec).draw(u0, u1)[0])


def test_unknown_api_fit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"models\.x\.api_fit: unknown 'gpt-9'.*claude-opus-4-5"):
        latency_model({"api_fit": "gpt-9"}, Path("unused"), "models.x", FITS)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", r"bad\.json: invalid JSON"),
        ('{"models": {}}', r"bad\.json, column 'models': expected an object with a non-empty"),
        ('{"models": {"m": {"ttft_base_s": 1, "tpot_s": 0.01, "sigma": 0.2}}}',
         r"bad\.json, column 'models\.m\.ttft_per_1k_prompt_s': expected a finite number >= 0, got None"),
        ('{"models": {"m": {"ttft_base_s": 1, "ttft_per_1k_prompt_s": "x", "tpot_s": 0.01, "sigma": 0.2}}}',
         r"column 'models\.m\.ttft_per_1k_prompt_s': expected a finite number >= 0, got 'x'"),
        ('{"models": {"m": {"ttft_base_s": 1, "ttft_per_1k_prompt_s": 0.01, "tpot_s": -1, "sigma": 0.2}}}',
         r"column 'models\.m\.tpot_s': expected a finite number >= 0, got -1"),
    ],
)  # fmt: skip
def test_bad_fits_file_is_one_clean_error(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as e:
        load_token_fits(p)
    assert "\n" not in str(e.value)
