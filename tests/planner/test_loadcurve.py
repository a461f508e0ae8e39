"""One replica's latency against load: rising with load, the SLO limit inside the curve."""

from __future__ import annotations

import itertools

import pytest

from kb.catalog import assistant
from kb.db import session_scope
from planner.assistant import Assistant
from planner.catalog_index import Candidate
from planner.loadcurve import PAST_LIMIT, load_curve
from planner.requirements import SLOTargets


@pytest.fixture(scope="module")
def helper(seeded_sqlite_url: str) -> Assistant:
    with session_scope(seeded_sqlite_url) as session:
        return assistant(session=session)


def meets(slo: SLOTargets, ttft: float, tpot: float, e2e: float) -> bool:
    return all(
        target is None or value <= target
        for value, target in (
            (ttft, slo.ttft_p90_ms),
            (tpot, slo.tpot_p90_ms),
            (e2e, slo.e2e_p95_ms),
        )
    )


@pytest.mark.parametrize(
    "words",
    [
        "A chatbot for 2,000 employees, first token under 500 ms, $20k a month.",
        "Summarise documents for 50 lawyers, budget $3000 a month.",
    ],
)
def test_latency_rises_with_load_and_the_slo_limit_sits_inside(
    helper: Assistant, words: str
) -> None:
    spec = helper.specify(helper.read(words))
    options = helper.recommend(spec).options
    assert options
    for r in options:
        limit = r.option.max_qps_per_replica
        curve = load_curve(helper.planner, r.option, spec.traffic, limit, points=12)
        assert curve.fits and curve.reason is None
        loads = [p.qps for p in curve.points]
        assert len(loads) == 12 and loads == sorted(loads)
        assert loads[0] == pytest.approx(limit / 12)
        assert loads[-1] == pytest.approx(limit * PAST_LIMIT)
        assert loads[0] < limit < loads[-1]
        shown = [p for p in curve.points if p.stable]
        assert len(shown) >= 2 and curve.points[0].stable
        assert all(p.source == r.source for p in curve.points)
        for a, b in itertools.pairwise(shown):
            for name in ("ttft_p90_ms", "tpot_p90_ms", "e2e_p95_ms"):
                low, high = getattr(a, name), getattr(b, name)
                assert low is not None and high is not None
                assert high >= low * (1 - 1e-9), (r.id, name, a.qps, b.qps)
        # Below the limit the SLOs hold; a replica past its stable load shows no numbers.
        for p in curve.points:
            if p.qps <= limit * 0.95:
                assert p.ttft_p90_ms and p.tpot_p90_ms and p.e2e_p95_ms
                assert meets(spec.slo, p.ttft_p90_ms, p.tpot_p90_ms, p.e2e_p95_ms), (r.id, p)
            if not p.stable:
                assert p.ttft_p90_ms is p.tpot_p90_ms is p.e2e_p95_ms is None


def test_a_configuration_that_does_not_fit_says_why(helper: Assistant) -> None:
    big = Candidate(
        model_id="meta-llama/Llama-3.1-405B-Instruct", gpu_id="L4-PCIE-24GB", tp=1, precision="bf16"
    )
    spec = helper.specify(helper.read("A chatbot for 200 people."))
    curve = load_curve(helper.planner, big, spec.traffic, 2.0, points=4)
    assert not curve.fits and curve.reason
    assert all(not p.stable and p.ttft_p90_ms is None for p in curve.points)


def test_unknown_names_and_bad_loads_are_refused(helper: Assistant) -> None:
    spec = helper.specify(helper.read("A chatbot for 200 people."))
    nowhere = Candidate(model_id="Qwen/Qwen3-8B", gpu_id="TPU-v9", tp=1, precision="bf16")
    with pytest.raises(KeyError, match="unknown GPU 'TPU-v9'"):
        load_curve(helper.planner, nowhere, spec.traffic, 1.0)
    ok = nowhere.model_copy(update={"gpu_id": "L4-PCIE-24GB"})
    with pytest.raises(ValueError, match="up_to_qps > 0"):
        load_curve(helper.planner, ok, spec.traffic, 0.0)
