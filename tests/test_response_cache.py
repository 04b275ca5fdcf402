"""Response cache, workload duplicate structure and session stickiness."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import compose_cfg, make_request, request_row
from simroute.errors import ConfigError, InputError
from simroute.outcomes import LOOKUPS
from simroute.policy.registry import PolicyContext
from simroute.policy.response_cache import CacheConfig, ResponseCache
from simroute.records import SimResult
from simroute.runner.multiday import run_multiday
from simroute.sim.build import build_policies, setup
from simroute.sim.run import simulate
from simroute.workload.labels import label_trace
from simroute.workload.loaders import load_raw
from simroute.workload.schema import RequestTable
from simroute.workload.skills import RISK_FEATURES, SkillCatalog, catalog_from_config
from simroute.workload.synthetic import generate

SKILLS = ("draft_reply", "summarize_repo")


def _lookup(c: ResponseCache, req: Any, t: float, u: float, u_false: float = 1.0) -> Any:
    """Look up by the request's own skill (as a perfect classifier would predict it), not risky."""
    return c.lookup(req, req.skill, False, t, u, u_false)


def _insert(c: ResponseCache, req: Any, t: float, model: str, correct: bool) -> None:
    c.insert(req, req.skill, False, t, model, correct)


def _cache(**kw: Any) -> ResponseCache:
    return ResponseCache(CacheConfig(**kw))


# --- the cache object -------------------------------------------------------------------------


def test_exact_hit_only_after_an_answer_was_stored() -> None:
    c = _cache()
    a = make_request(request_id=1, content_id=7)
    assert _lookup(c, a, 0.0, 0.5) is None
    _insert(c, a, 5.0, "m", True)
    hit = _lookup(c, make_request(request_id=2, content_id=7), 6.0, 0.5)
    assert hit is not None and hit.kind == "exact" and hit.correct and hit.entry.source_id == 1
    assert _lookup(c, make_request(request_id=3, content_id=8), 6.0, 0.5) is None
    assert c.counts["exact"] == 1 and c.counts["miss"] == 2


def test_stale_entries_are_never_served() -> None:
    c = _cache(ttl_s=100.0)
    _insert(c, make_request(request_id=1, content_id=7), 0.0, "m", True)
    assert _lookup(c, make_request(request_id=2, content_id=7), 99.0, 0.5) is not None
    assert _lookup(c, make_request(request_id=3, content_id=7), 100.0, 0.5) is None
    assert c.counts["expired"] == 1
    c.clock_offset_s = 1000.0  # a later simulated day: times are absolute
    _insert(c, make_request(request_id=4, content_id=9), 0.0, "m", True)
    assert _lookup(c, make_request(request_id=5, content_id=9), 50.0, 0.5) is not None


def test_least_recently_used_entry_is_evicted() -> None:
    c = _cache(max_entries=2)
    for i in (1, 2):
        _insert(c, make_request(request_id=i, content_id=i), 0.0, "m", True)
    assert _lookup(c, make_request(request_id=10, content_id=1), 1.0, 0.5) is not None  # 1 now recent
    _insert(c, make_request(request_id=3, content_id=3), 2.0, "m", True)
    assert c.counts["evictions"] == 1
    assert _lookup(c, make_request(request_id=11, content_id=2), 3.0, 0.5) is None
    assert _lookup(c, make_request(request_id=12, content_id=1), 3.0, 0.5) is not None


def test_semantic_hits_serve_paraphrases_and_can_be_wrong() -> None:
    c = _cache(semantic=True, semantic_correct=0.9)
    _insert(c, make_request(request_id=1, content_id=1, intent_id=50), 0.0, "m", True)
    para = make_request(request_id=2, content_id=2, intent_id=50)
    right = _lookup(c, para, 1.0, 0.89)
    wrong = _lookup(c, para, 1.0, 0.91)
    assert right is not None and right.kind == "semantic" and right.correct
    assert wrong is not None and not wrong.correct
    assert _lookup(_cache(semantic=False), para, 1.0, 0.0) is None
    # a wrong stored answer is wrong for everyone
    _insert(c, make_request(request_id=3, content_id=3, intent_id=60), 0.0, "m", False)
    hit = _lookup(c, make_request(request_id=4, content_id=3, intent_id=60), 1.0, 0.0)
    assert hit is not None and hit.kind == "exact" and not hit.correct


def test_side_effects_and_other_skills_bypass_the_cache() -> None:
    c = _cache(skills=("draft_reply",))
    write = make_request(request_id=1, content_id=1, high_consequence_write=True)
    _insert(c, write, 0.0, "m", True)
    assert _lookup(c, write, 1.0, 0.5) is None
    other = make_request(request_id=2, content_id=2, skill="code_change")
    _insert(c, other, 0.0, "m", True)
    assert _lookup(c, other, 1.0, 0.5) is None
    assert c.counts["bypass"] == 2 and c.counts["inserts"] == 0


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3), st.booleans(), st.floats(0, 50), st.booleans()),
        max_size=80,
    ),
    ttl=st.floats(1.0, 40.0),
    cap=st.integers(1, 4),
)
def test_lookup_outcomes_are_conserved(
    ops: list[tuple[int, int, bool, float, bool]], ttl: float, cap: int
) -> None:
    """Whatever the sequence, each lookup is counted exactly once and hits are never stale."""
    c = _cache(semantic=True, ttl_s=ttl, max_entries=cap)
    t = 0.0
    n = 0
    for i, (content, intent, write, dt, store) in enumerate(ops):
        t += dt
        req = make_request(request_id=i, content_id=content, intent_id=intent, high_consequence_write=write)
        hit = _lookup(c, req, t, 0.5)
        n += 1
        if hit is not None:
            assert hit.entry.expires_at > t and not write
        if store:
            _insert(c, req, t, "m", True)
        assert len(c._by_content) <= cap
    assert c.conserved(n)
    assert sum(c.counts[k] for k in LOOKUPS) == n


def test_config_errors_name_the_key() -> None:
    assert CacheConfig.from_config({"enabled": False}, SKILLS) is None
    with pytest.raises(ConfigError, match="unknown key"):
        CacheConfig.from_config({"enabled": True, "ttl": 5}, SKILLS)
    with pytest.raises(ConfigError, match="unknown skill"):
        CacheConfig.from_config({"enabled": True, "skills": ["nope"]}, SKILLS)
    with pytest.raises(ConfigError, match="ttl_s > 0"):
        CacheConfig.from_config({"enabled": True, "ttl_s": 0}, SKILLS)


# --- duplicate structure in workloads ----------------------------------------------------------


@pytest.fixture(scope="module")
def repeat_skills() -> SkillCatalog:
    cfg = compose_cfg()["skills"]
    for p in cfg["profiles"].values():
        p["repeat"] = {"exact": 0.3, "near": 0.2}
    return catalog_from_config(cfg)


def test_synthetic_repeats_copy_the_original(repeat_skills: SkillCatalog) -> None:
    wl = compose_cfg()["workload"]
    wl["n_requests"] = 6000
    wl["repeat_window_s"] = 600.0
    d = generate(wl, repeat_skills, 3).with_prefix_column().df
    first = d.filter(pl.col("step") == 0)
    exact = d.filter(pl.col("content_id").is_duplicated())
    assert exact.height > 0
    # exact repeats: the same skill, prompt, prefix blocks, difficulty and risk features
    for cols in (["skill"], ["prompt_tokens"], ["prefix_hashes"], ["difficulty"], list(RISK_FEATURES)):
        assert exact.group_by("content_id").agg([pl.col(c).n_unique() for c in cols]).select(
            pl.all().exclude("content_id").max()
        ).row(0) == (1,) * len(cols)
    assert (exact["step"] == 0).all()  # only a session's first request repeats
    # paraphrases: same intent (and difficulty), their own prompt
    near = d.filter(pl.col("intent_id").is_duplicated() & ~pl.col("content_id").is_duplicated())
    assert near.height > 0
    assert near.group_by("intent_id").agg(pl.col("difficulty").n_unique())["difficulty"].max() == 1
    # every repeat has an earlier request of its intent within the window (its source is one), so
    # the gap to the previous request of the same intent is at most the window
    gaps = (
        first.sort("arrival_s")
        .with_columns(gap=pl.col("arrival_s").diff().over("intent_id"))
        .filter(pl.col("gap").is_not_null())["gap"]
    )
    assert gaps.len() > 0 and (gaps >= 0).all() and (gaps <= 600.0).all()
    # about the configured share of first requests repeat (exact or near), minus those with no source
    share = 1.0 - first["intent_id"].n_unique() / first.height
    assert 0.3 < share < 0.5


def test_zero_repeat_rates_leave_every_request_unique(skills: SkillCatalog) -> None:
    cat = catalog_from_config(
        {
            **compose_cfg()["skills"],
            "profiles": {
                k: {**v, "repeat": {"exact": 0.0, "near": 0.0}}
                for k, v in compose_cfg()["skills"]["profiles"].items()
            },
        }
    )
    wl = compose_cfg()["workload"]
    wl["n_requests"] = 2000
    d = generate(wl, cat, 1).df
    assert d["content_id"].n_unique() == d.height == d["intent_id"].n_unique()


def test_mooncake_repeats_share_content_and_labels(tmp_path: Path, skills: SkillCatalog) -> None:
    rows = [
        {"timestamp": 0, "input_length": 600, "output_length": 10, "hash_ids": [1, 2]},
        {"timestamp": 5, "input_length": 600, "output_length": 30, "hash_ids": [1, 2]},
        {"timestamp": 9, "input_length": 600, "output_length": 30, "hash_ids": [1, 3]},
        {"timestamp": 12, "input_length": 700, "output_length": 30, "hash_ids": []},
        {"timestamp": 15, "input_length": 700, "output_length": 30, "hash_ids": []},
    ]
    p = tmp_path / "t.jsonl.gz"
    p.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    t = label_trace(load_raw(p), skills, [], "draft_reply", 0).df
    assert t["content_id"].to_list() == [0, 0, 2, 3, 4]  # no block hashes: nothing known, unique
    assert t["intent_id"].to_list() == t["content_id"].to_list()
    assert t.row(0, named=True)["difficulty"] == t.row(1, named=True)["difficulty"]
    assert t.row(0, named=True)["skill"] == t.row(1, named=True)["skill"]


def test_bundled_mooncake_trace_has_real_repeats() -> None:
    raw = load_raw(Path(__file__).parents[1] / "traces" / "mooncake_conversation.jsonl.gz")
    share = 1.0 - raw.df["content_id"].n_unique() / raw.df.height
    assert share == pytest.approx(0.0098, abs=0.0005)  # 118 of 12,031 requests repeat a prompt


def test_content_ids_must_agree_on_the_prompt(skills: SkillCatalog) -> None:
    df = pl.DataFrame([request_row(0, content_id=5), request_row(1, content_id=5, prompt_tokens=9)])
    with pytest.raises(InputError, match=r"row 2.*content_id"):
        RequestTable(df, "t.parquet", 16, skills.names)


# --- in the simulation -------------------------------------------------------------------------


def _run(cfg: dict[str, Any], n: int = 3000, seed: int = 0) -> SimResult:
    cfg = copy.deepcopy(cfg)
    cfg["workload"]["n_requests"] = n
    inp = setup(cfg, seed)
    pol = build_policies(cfg["policy"], PolicyContext(inp.skills.names, inp.catalog, seed))
    return simulate(inp.table, pol, cfg["tiers"], inp.catalog, inp.quality, seed, progress=False)


@pytest.fixture(scope="module")
def heavy_repeats() -> dict[str, Any]:
    """Many repeats; the oracle verifier (only right answers are stored) and no false matches, so
    the cache's own mechanics are what is checked."""
    cfg = compose_cfg()
    for p in cfg["skills"]["profiles"].values():
        p["repeat"] = {"exact": 0.3, "near": 0.2}
    cfg["policy"]["verifier"] = {"name": "oracle"}
    cfg["policy"]["response_cache"]["false_match"] = 0.0
    return cfg


def test_false_matches_serve_a_wrong_answer_of_the_same_predicted_skill(
    heavy_repeats: dict[str, Any],
) -> None:
    cfg = copy.deepcopy(heavy_repeats)
    cfg["policy"]["response_cache"]["false_match"] = 0.5
    res = _run(cfg)
    r = res.requests
    src = r.select(
        pl.col("request_id").alias("cache_source_id"),
        pl.col("intent_id").alias("src_intent"),
        pl.col("skill_pred").alias("src_skill_pred"),
    )
    j = r.filter(pl.col("final_tier") == "cache").join(src, on="cache_source_id")
    false = j.filter(pl.col("src_intent") != pl.col("intent_id"))
    assert false.height == res.cache_counts["false_matches"] > 10
    assert (false["outcome"] == "failed").all() and not false["correct"].any()
    assert (false["skill_pred"] == false["src_skill_pred"]).all()
    assert (false["cache_lookup"] == "semantic").all()


def test_cache_hit_accounting_conserves_requests(heavy_repeats: dict[str, Any]) -> None:
    res = _run(heavy_repeats)
    r = res.requests
    counts = r["cache_lookup"].value_counts()
    assert int(counts["count"].sum()) == r.height == 3000
    issued = r.filter(pl.col("outcome") != "cancelled")  # a cancelled step never looks up
    assert sum(res.cache_counts[k] for k in LOOKUPS) == issued.height
    hits = r.filter(pl.col("final_tier") == "cache")
    assert hits.height == res.cache_counts["exact"] + res.cache_counts["semantic"] > 50
    assert (hits["attempts"] == 0).all()
    assert not res.attempts["request_index"].is_in(hits["request_id"].implode()).any()
    # each hit's source was answered before the hit arrived, within the TTL, and was accepted
    src = r.select(
        pl.col("request_id").alias("cache_source_id"),
        (pl.col("arrival_s") + pl.col("e2e_s")).alias("answered_s"),
        pl.col("outcome").alias("src_outcome"),
        pl.col("content_id").alias("src_content"),
        pl.col("intent_id").alias("src_intent"),
    )
    j = hits.join(src, on="cache_source_id")
    assert j.height == hits.height
    assert (j["answered_s"] <= j["arrival_s"]).all()
    assert (j["arrival_s"] - j["answered_s"] < 86_400).all()
    assert (j["src_intent"] == j["intent_id"]).all()
    exact = j.filter(pl.col("cache_lookup") == "exact")
    assert (exact["src_content"] == exact["content_id"]).all()
    # a perfect verifier stores only right answers: exact hits are right, semantic ones mostly
    assert (exact["outcome"] == "succeeded").all()
    sem = j.filter(pl.col("cache_lookup") == "semantic")
    assert 0.8 < float((sem["outcome"] == "succeeded").mean()) < 0.97
    # writes and security-sensitive prompts never touch the cache
    risky = issued.filter(pl.col("high_consequence_write") | pl.col("security_sensitive"))
    assert (risky["cache_lookup"] == "bypass").all()
    # savings: each hit saved what its source's answer cost at the margin (API calls and checks; the
    # GPUs are paid for anyway and the hit is classified again)
    src_cost = r.select(
        pl.col("request_id").alias("cache_source_id"),
        (pl.col("cost_api_usd") + pl.col("cost_verifier_usd")).alias("marginal"),
    )
    np.testing.assert_allclose(
        hits["saved_response_cache_usd"].sum(), j.join(src_cost, on="cache_source_id")["marginal"].sum()
    )


def test_cache_off_means_no_lookups(cfg: dict[str, Any]) -> None:
    c = copy.deepcopy(cfg)
    c["policy"]["response_cache"]["enabled"] = False
    res = _run(c, n=800)
    assert (res.requests["cache_lookup"] == "off").all() and res.cache_counts == {}


def test_sticky_sessions_warm_the_local_prefix_cache(cfg: dict[str, Any]) -> None:
    """Affinity sends a session's steps to the replica holding its prefix: more cached tokens."""
    cached = {}
    for sticky in (False, True):
        c = copy.deepcopy(cfg)
        c["policy"]["sticky_sessions"] = sticky
        c["policy"]["response_cache"]["enabled"] = False
        for pool in c["tiers"]["local"]["pools"]:  # several replicas per model: affinity matters
            pool["replicas"] = 3
        r = _run(c, n=4000)
        a = r.attempts.filter(pl.col("tier") == "local")
        cached[sticky] = int(a["cached_tokens"].sum())
        reasons = r.requests["route_reason"]
        assert reasons.str.ends_with("+sticky").any() == sticky
        if sticky:  # a sticky request keeps the router's tier and uses a model its session used
            sr = r.requests.filter(reasons.str.ends_with("+sticky"))
            first = r.attempts.filter(pl.col("attempt") == 0).select(
                pl.col("request_index").alias("request_id"), "tier", "model"
            )
            j = sr.join(first, on="request_id")
            assert (j["tier"] == j["first_tier"]).all()
            seen = r.requests.join(first, on="request_id").group_by("session_id").agg(pl.col("model"))
            used = dict(zip(seen["session_id"].to_list(), seen["model"].to_list(), strict=True))
            assert all(m in used[s] for s, m in zip(j["session_id"], j["model"], strict=True))
            assert not j["risk_escalated"].any()
    assert cached[True] > cached[False] * 1.1


def test_multiday_cache_carries_over_and_attributes_savings() -> None:
    over = [
        "experiment=fleet_14d",
        "multiday.days=2",
        "workload.arrival.rate_per_s=0.02",
        "workload.n_requests=8000",
        "+workload.repeat_window_s=172800",
    ]
    cfg = compose_cfg(over)
    for p in cfg["skills"]["profiles"].values():
        p["repeat"] = {"exact": 0.3, "near": 0.0}
    daily, _ = run_multiday(cfg)
    assert (daily["response_cache_hits"] > 0).all()
    assert daily["saved_response_cache_usd"].is_finite().all()
    assert (daily["saved_response_cache_usd"] > 0).all()


def test_source_costs_equal_a_lookup_by_request_id() -> None:
    from simroute.sim.run import source_costs

    rng = np.random.default_rng(2)
    for n_src, unique in ((0, False), (1, False), (40, False), (25, True)):
        # repeated ids: the last row counts; ids each once in increasing order: looked up unsorted
        ids = np.sort(rng.choice(60, n_src, replace=False)) if unique else rng.integers(0, 30, n_src)
        sources = pl.DataFrame(
            {"request_id": ids, "cost_api_usd": rng.random(n_src), "cost_verifier_usd": rng.random(n_src)}
        )
        requests = pl.DataFrame({"cache_source_id": rng.integers(-3, 35, 200)})
        marginal = (sources["cost_api_usd"] + sources["cost_verifier_usd"]).to_list()
        cost = dict(zip(ids.tolist(), marginal, strict=True))
        want = [0.0 if s < 0 else cost.get(s, float("nan")) for s in requests["cache_source_id"].to_list()]
        got = source_costs(requests, sources).to_list()
        assert np.array_equal(np.array(got), np.array(want), equal_nan=True)
