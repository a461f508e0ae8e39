"""Recommendations as the web UI draws them: each option's source and uncertainty band, and
the landscape of feasible options for the cost/latency/quality chart."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kb.catalog import assistant
from kb.db import session_scope
from planner import capacity, recommend
from planner.assistant import Assistant
from planner.capacity import option_query
from planner.intent import DeploymentSpecification
from planner.ranking import pareto
from planner.recommend import LANDSCAPE_MAX
from planner.recommendation import LandscapePoint, Recommendation, Recommendations, option_id

DESCRIPTIONS = (
    "A chatbot for 2,000 employees, first token under 500 ms, $20k a month.",
    "A chatbot for 200 people.",
    "Summarise documents for 50 lawyers, budget $3000 a month.",
)


@pytest.fixture(scope="module")
def helper(seeded_sqlite_url: str) -> Assistant:
    with session_scope(seeded_sqlite_url) as session:
        return assistant(session=session)


@pytest.fixture(scope="module", params=DESCRIPTIONS)
def planned(
    request: pytest.FixtureRequest, helper: Assistant
) -> tuple[DeploymentSpecification, Recommendations]:
    spec = helper.specify(helper.read(request.param))
    return spec, helper.recommend(spec)


def test_each_option_says_where_its_numbers_come_from(
    helper: Assistant, planned: tuple[DeploymentSpecification, Recommendations]
) -> None:
    spec, result = planned
    assert result.options
    for r in result.options:
        o, t = r.option, spec.traffic
        assert r.source in ("measured", "interpolated", "modelled", "observed")
        assert (r.source in ("measured", "interpolated")) == bool(r.references)
        assert (r.source == "observed") == (r.observed is not None)
        # The band brackets the prediction (factors of it) and says what it rests on.
        assert r.uncertainty is not None and r.uncertainty.basis
        band = r.uncertainty
        assert 0 < band.ttft_low <= 1 <= band.ttft_high
        assert 0 < band.tpot_low <= 1 <= band.tpot_high
        if r.source == "modelled":
            assert band.ttft_high - band.ttft_low > 0.05  # modelled numbers are not exact
        # The prediction behind it is of this option at its share of peak load.
        again = helper.planner.predict(option_query(o, t, t.peak_qps / o.replicas_for_peak))
        assert again.source == r.source
        assert again.uncertainty and again.ttft_ms
        assert band.ttft_high == pytest.approx(again.uncertainty.ttft_high_ms / again.ttft_ms.mean)


def test_old_payloads_without_the_new_fields_still_parse(
    planned: tuple[DeploymentSpecification, Recommendations],
) -> None:
    _, result = planned
    old = result.model_dump(mode="json", exclude={"landscape"})
    for option in old["options"]:
        for field in ("source", "uncertainty", "references", "observed"):
            del option[field]
    parsed = Recommendations.model_validate(old)
    assert parsed.landscape == []
    assert all(isinstance(r, Recommendation) and r.source == "modelled" for r in parsed.options)
    assert all(r.uncertainty is None and r.references == [] for r in parsed.options)


def _latency_use(p: LandscapePoint, spec: DeploymentSpecification) -> float:
    slo = spec.slo
    uses = [
        value / target
        for value, target in (
            (p.ttft_p90_ms, slo.ttft_p90_ms),
            (p.tpot_p90_ms, slo.tpot_p90_ms),
            (p.e2e_p95_ms, slo.e2e_p95_ms),
        )
        if target
    ]
    return max(uses) if uses else 0.0


def test_the_landscape_holds_the_options_and_an_undominated_front(
    planned: tuple[DeploymentSpecification, Recommendations],
) -> None:
    spec, result = planned
    landscape = result.landscape
    assert 0 < len(landscape) <= LANDSCAPE_MAX
    ids = [p.id for p in landscape]
    assert len(ids) == len(set(ids))
    assert {r.id for r in result.options} <= set(ids)
    chosen = {r.id: r for r in result.options}
    for p in landscape:
        if p.id in chosen:
            o = chosen[p.id].option
            assert (p.gpu_id, p.tp, p.replicas) == (o.gpu_id, o.tp, o.replicas_for_peak)
            assert p.ttft_p90_ms == o.ttft_ms.p90 and p.usd_per_month == o.usd_per_month
            assert p.model == chosen[p.id].display_name
        else:
            assert p.usd_per_month is not None  # a chart with a cost axis places it
    front = [p for p in landscape if p.pareto]
    assert front

    def metrics(p: LandscapePoint) -> tuple[float, float, float]:
        cost = p.usd_per_month if p.usd_per_month is not None else float("inf")
        return cost, _latency_use(p, spec), -(p.quality or 0.0)

    for p in front:
        for other in landscape:
            a, b = metrics(other), metrics(p)
            dominated = all(x <= y for x, y in zip(a, b, strict=True)) and a != b
            assert not dominated, f"{p.id} on the front, dominated by {other.id}"
    # Beyond the front, each (model, GPU) shows its best option: no pair twice off the front.
    pairs = [(p.model, p.gpu_id) for p in landscape if not p.pareto and p.id not in chosen]
    assert len(pairs) == len(set(pairs))


def test_a_small_cap_keeps_the_recommended_options_first(
    helper: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommend, "LANDSCAPE_MAX", 4)
    spec = helper.specify(helper.read(DESCRIPTIONS[1]))
    result = helper.recommend(spec, wide=True)
    assert len(result.options) == 5
    # The cap leaves room for none but the recommended: the first four are there.
    assert {p.id for p in result.landscape} == {r.id for r in result.options[:4]}


@given(
    st.lists(
        st.tuples(*[st.sampled_from([0.0, 1.0, 2.0, float("inf")])] * 3), min_size=1, max_size=30
    )
)
def test_the_front_is_every_option_no_other_beats(metrics: list[tuple[float, ...]]) -> None:
    rows = np.asarray(metrics)
    front = pareto(rows)
    for i, row in enumerate(rows):
        beaten = any(np.all(other <= row) and np.any(other != row) for other in rows)
        assert front[i] == (not beaten)


def test_the_same_question_is_answered_once(helper: Assistant) -> None:
    spec = helper.specify(helper.read(DESCRIPTIONS[2]))
    first = helper.recommend(spec)
    assert helper.recommend(spec.model_copy()) is first
    assert helper.recommend(spec, wide=True) is not first
    busier = spec.model_copy(
        update={"traffic": spec.traffic.model_copy(update={"peak_qps": spec.traffic.peak_qps * 2})}
    )
    again = helper.recommend(busier)
    assert again is not first and again.specification == busier


def test_another_head_count_is_sized_from_the_capacity_already_found(
    helper: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a replica sustains does not depend on the load: a second team of another size,
    # same use case, costs no second capacity search, and gets the same per-replica limits.
    spec = helper.specify(helper.read("A support chatbot for 1,234 employees."))
    first = helper.recommend(spec)
    searched: list[object] = []
    original = capacity._max_rates

    def counted(*args: Any) -> Any:
        searched.append(args)
        return original(*args)

    monkeypatch.setattr(capacity, "_max_rates", counted)
    t = spec.traffic
    bigger = spec.model_copy(update={"traffic": t.model_copy(update={"peak_qps": t.peak_qps * 40})})
    second = helper.recommend(bigger)
    assert not searched
    limits = {option_id(r.option): r.option.max_qps_per_replica for r in first.options}
    for r in second.options:
        if option_id(r.option) in limits:
            assert r.option.max_qps_per_replica == limits[option_id(r.option)]
    assert sum(r.option.replicas_for_peak for r in second.options) > sum(
        r.option.replicas_for_peak for r in first.options
    )
    tighter = bigger.model_copy(update={"slo": spec.slo.model_copy(update={"ttft_p90_ms": 300})})
    helper.recommend(tighter)
    assert searched  # another SLO is another search
