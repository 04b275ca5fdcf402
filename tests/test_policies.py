"""Each policy's decision on hand-built requests, and the registry's errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from conftest import make_request, make_view
from simroute.errors import ConfigError
from simroute.policy import registry
from simroute.policy.catalog import ModelCatalog
from simroute.policy.classifiers import NoisyClassifier, OracleClassifier
from simroute.policy.escalation import NoEscalation, StrongerModel
from simroute.policy.risk import LogisticRisk, NeverEscalate
from simroute.policy.routers import RuleRouter, StaticRouter
from simroute.policy.selectors import StrongestSelector, ThresholdSelector
from simroute.policy.types import Attempt, Label, Risk, Route, TierState

SAFE = Risk(0.0, False)


class FakeState:
    """A StateView with a fixed local queue length."""

    def __init__(self, local_queue: int = 0) -> None:
        self.local_queue = local_queue

    def tier(self, name: str) -> TierState:
        return TierState(self.local_queue if name == "local" else 0, 0, 64)


def _label(clf: Any, skill: str, u: float) -> str:
    """The simulated classifier's label for one request of true ``skill`` with uniform ``u``."""
    clf.simulate([skill], np.array([u]))
    return str(clf.classify(make_view(idx=0)).skill)


def test_oracle_returns_truth() -> None:
    clf = OracleClassifier()
    clf.simulate(["db_migration"], np.array([0.5]))
    assert clf.classify(make_view(idx=0)) == Label("db_migration", 1.0)


def test_noisy_classifier_uses_the_requests_uniform(skills) -> None:
    clf = NoisyClassifier(skills.names, accuracy=0.9)
    # u below the diagonal mass -> correct label; the same u always gives the same label (CRN)
    i = skills.names.index("code_change")
    lo = clf._cum[i][i - 1] if i else 0.0
    assert _label(clf, "code_change", lo + 0.01) == "code_change"
    assert _label(clf, "code_change", lo + 0.89) == "code_change"
    wrong = _label(clf, "code_change", 0.001)
    assert wrong == skills.names[0] != "code_change"
    assert _label(clf, "code_change", 0.001) == wrong


def test_noisy_classifier_accuracy_matches_matrix(skills) -> None:
    clf = NoisyClassifier(skills.names, accuracy=0.8)
    us = np.array([(k + 0.5) / 1000 for k in range(1000)])
    clf.simulate(["eval_traces"] * 1000, us)
    hits = sum(clf.classify(make_view(idx=k)).skill == "eval_traces" for k in range(1000))
    assert hits == pytest.approx(800, abs=2)


def test_simulated_classifiers_read_a_skill_column_as_a_list(skills) -> None:
    rng = np.random.default_rng(3)
    true = [skills.names[k] for k in rng.integers(0, len(skills.names), 500)]
    us = rng.random(500)
    for make in (lambda: NoisyClassifier(skills.names, accuracy=0.7), OracleClassifier):
        by_list, by_column = make(), make()
        by_list.simulate(true, us)
        by_column.simulate(pl.Series("skill", true), us)
        labels = [[c.classify(make_view(idx=k)) for k in range(500)] for c in (by_list, by_column)]
        assert labels[0] == labels[1]
        assert {x.skill for x in labels[0]} == set(skills.names)
    exact = NoisyClassifier(skills.names, accuracy=1.0)
    for clf in (exact, OracleClassifier()):  # each row's own true skill, not a permutation of them
        clf.simulate(pl.Series("skill", true), us)
        assert [clf.classify(make_view(idx=k)).skill for k in range(500)] == true


def test_a_simulated_classifier_names_an_unknown_true_skill(skills) -> None:
    with pytest.raises(ValueError, match="unknown true skill 'write_poetry'"):
        NoisyClassifier(skills.names).simulate(
            pl.Series(["code_change", "write_poetry"]), np.array([0.1, 0.2])
        )


def test_simulated_classifiers_say_whether_they_are_oracles(skills) -> None:
    assert OracleClassifier().oracle
    assert NoisyClassifier(skills.names, accuracy=1.0).oracle
    assert not NoisyClassifier(skills.names, accuracy=0.9).oracle


def test_noisy_classifier_rejects_bad_confusion(skills) -> None:
    bad = {s: {s: 0.5} for s in skills.names}
    with pytest.raises(ConfigError, match="sum to 1"):
        NoisyClassifier(skills.names, confusion=bad)


def test_logistic_risk_escalates_risky_requests() -> None:
    risk = LogisticRisk({"risky_migration": 2.0, "security_sensitive": 1.5}, bias=-2.5, threshold=0.5)
    assert not risk.assess(make_request()).escalate
    assert not risk.assess(make_request(risky_migration=True)).escalate  # -0.5 logit < 0
    both = risk.assess(make_request(risky_migration=True, security_sensitive=True))
    assert both.escalate and both.score == pytest.approx(1 / (1 + 2.718281828**-1.0), rel=1e-6)
    assert NeverEscalate().assess(make_request(risky_migration=True)) == Risk(0.0, False)


def test_logistic_risk_scores_as_the_plain_formula() -> None:
    """The score is exactly ``sigmoid(bias + sum over the features of weight * value)``, summed in
    feature order as ``sum()`` sums, over random weights and requests."""
    import math

    from simroute.workload.skills import RISK_FEATURES

    rng = np.random.default_rng(3)
    for _ in range(200):
        weights = {f: float(rng.normal(0, 2)) for f in RISK_FEATURES}
        risk = LogisticRisk(weights, bias=float(rng.normal(-2, 1)), threshold=0.4)
        kw = {f: bool(rng.random() < 0.5) for f in RISK_FEATURES if f != "dependency_chain"}
        view = make_view(dependency_chain=int(rng.integers(0, 9)), **kw)
        x = risk.bias + sum(weights[f] * float(getattr(view, f)) for f in RISK_FEATURES)
        want = 1.0 / (1.0 + math.exp(-x))
        assert risk.assess(view) == Risk(want, want >= 0.4)


def test_logistic_risk_rejects_unknown_feature() -> None:
    with pytest.raises(ConfigError, match="unknown feature"):
        LogisticRisk({"vibes": 1.0})


def test_rule_router_decisions(catalog: ModelCatalog) -> None:
    r = RuleRouter(catalog, batch_min_deadline_s=86_400, overflow_queue=10, local_min_quality=0.7)
    draft = Label("draft_reply", 0.9)
    # risky -> realtime strong, even if batchable
    assert r.route(make_request(deadline_s=86_400), draft, Risk(0.9, True), FakeState()) == Route(
        "realtime", True, "risk"
    )
    # batchable -> batch
    assert r.route(make_request(deadline_s=86_400), draft, SAFE, FakeState()).tier == "batch"
    # interactive, easy skill, idle local -> local
    assert r.route(make_request(deadline_s=60), draft, SAFE, FakeState(0)).tier == "local"
    # congested local -> realtime
    assert r.route(make_request(deadline_s=60), draft, SAFE, FakeState(10)).tier == "realtime"
    # a skill no local model is good enough for -> realtime
    hard = Label("db_migration", 0.9)
    assert (
        r.route(make_request(deadline_s=60), hard, SAFE, FakeState(0)).reason == "no local model good enough"
    )


def test_routers_never_send_interactive_work_to_batch(catalog: ModelCatalog) -> None:
    for router in (RuleRouter(catalog), StaticRouter("batch")):
        for deadline in (60.0, 3600.0):
            route = router.route(
                make_request(deadline_s=deadline), Label("eval_traces", 1), SAFE, FakeState()
            )
            assert route.tier != "batch"


def test_threshold_selector_picks_cheapest_model_meeting_threshold(catalog: ModelCatalog) -> None:
    sel = ThresholdSelector(catalog, threshold=0.7)
    req = make_request(prompt_tokens=2000)
    label = Label("draft_reply", 1.0)
    chosen = sel.select(req, label, Route("realtime"))
    ok = [o for o in catalog.offers("realtime") if o.expected_quality["draft_reply"] >= 0.7]
    assert chosen == min(ok, key=lambda o: o.est_cost(2000, 500)).model
    # a strong route always gets the strongest model
    assert (
        sel.select(req, label, Route("realtime", strong=True))
        == catalog.strongest("realtime", "draft_reply").model
    )
    # an unreachable threshold falls back to the strongest
    assert ThresholdSelector(catalog, threshold=1.0).select(req, label, Route("realtime")) == (
        catalog.strongest("realtime", "draft_reply").model
    )


def test_threshold_selector_local_tier(catalog: ModelCatalog) -> None:
    sel = ThresholdSelector(catalog, threshold=0.7)
    easy = sel.select(make_request(), Label("draft_reply", 1), Route("local"))
    hard = sel.select(make_request(), Label("code_change", 1), Route("local"))
    assert easy in {o.model for o in catalog.offers("local")}
    q = {o.model: o.expected_quality for o in catalog.offers("local")}
    assert q[hard]["code_change"] == max(v["code_change"] for v in q.values())


def test_strongest_selector(catalog: ModelCatalog) -> None:
    best = StrongestSelector(catalog).select(make_request(), Label("code_change", 1), Route("batch"))
    assert best == catalog.strongest("batch", "code_change").model


def test_stronger_model_escalation(catalog: ModelCatalog) -> None:
    esc = StrongerModel(catalog, max_attempts=3)
    label = Label("code_change", 1.0)
    weak = catalog.offers("local")[0].model
    top = catalog.strongest("realtime", "code_change").model
    assert esc.next_route(make_request(), label, [Attempt("local", weak, "completed", False)]) == Route(
        "realtime", True, "escalate after failure"
    )
    # nothing stronger than the strongest
    assert esc.next_route(make_request(), label, [Attempt("realtime", top, "completed", False)]) is None
    # rejected/expired attempts are retried on the escalation tier with normal selection
    assert esc.next_route(make_request(), label, [Attempt("local", weak, "rejected", False)]) == Route(
        "realtime", False, "rejected -> realtime"
    )
    # attempt budget
    hist = [Attempt("local", weak, "rejected", False)] * 3
    assert esc.next_route(make_request(), label, hist) is None
    assert NoEscalation().next_route(make_request(), label, hist[:1]) is None


def test_registry_lists_valid_names(ctx) -> None:
    valid = "cost_aware, rules, static, thompson, win_rate"
    with pytest.raises(ConfigError, match=rf"unknown router 'nope'; valid: {valid}"):
        registry.build("router", {"name": "nope"}, ctx)
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['bogus'\]"):
        registry.build("router", {"name": "rules", "bogus": 1}, ctx)


def test_registry_injects_run_objects(ctx) -> None:
    clf = registry.build("classifier", {"name": "noisy", "accuracy": 0.5}, ctx)
    assert isinstance(clf, NoisyClassifier) and clf.skills == ctx.skills
    sel = registry.build("selector", {"name": "threshold", "threshold": 0.8}, ctx)
    assert isinstance(sel, ThresholdSelector) and sel.catalog is ctx.catalog


def test_strongest_picks_what_argmax_picks() -> None:
    from simroute.policy.catalog import Offer

    rng = np.random.default_rng(5)
    for _ in range(300):
        q = rng.choice([0.2, 0.5, 0.9, float("nan")], size=int(rng.integers(1, 5)), p=[0.3, 0.3, 0.3, 0.1])
        offers = [
            Offer(f"m{i}", "realtime", "standard", np.array([1.0 + i, 2.0, 0, 0, 0]), {"s": float(v)})
            for i, v in enumerate(q)
        ]
        cat = ModelCatalog(offers)
        want = {o.model: o for o in offers}[f"m{int(np.argmax(q))}"]  # offers are re-sorted by price
        assert cat.strongest("realtime", "s") is want
