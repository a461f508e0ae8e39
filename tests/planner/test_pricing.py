"""What a replica costs: a TP-N replica is priced from an instance of at least N GPUs, and a
price older than 180 days is marked stale wherever it is shown."""

from __future__ import annotations

import datetime as dt

import pytest

from cli.predict import option_line
from kb.catalog import assistant, gpu_prices
from kb.db import session_scope
from planner.assistant import Assistant
from planner.capacity import CapacitySpec, SearchConstraints, cheapest_prices, search
from planner.requirements import SLOTargets, TrafficProfile


@pytest.fixture(scope="module")
def helper(seeded_sqlite_url: str) -> Assistant:
    with session_scope(seeded_sqlite_url) as session:
        return assistant(session=session)


def l40s_on_aws(tp: int | None = None) -> CapacitySpec:
    return CapacitySpec(
        traffic=TrafficProfile(
            prompt_tokens_mean=1000,
            prompt_tokens_p95=3000,
            output_tokens_mean=200,
            output_tokens_p95=400,
            steady_qps=2,
            peak_qps=5,
        ),
        slo=SLOTargets(ttft_p90_ms=1500, tpot_p90_ms=60),
        constraints=SearchConstraints(
            models=["meta-llama/Llama-3.3-70B-Instruct"],
            gpus=["L40S-PCIE-48GB"],
            provider="aws",
            max_tp=tp or 8,
        ),
        simulate_top=0,
    )


def test_a_tp_n_replica_is_priced_from_an_instance_of_n_gpus(helper: Assistant) -> None:
    quotes = cheapest_prices(helper.prices, l40s_on_aws().constraints)
    one = quotes[("L40S-PCIE-48GB", 1)]
    four = quotes[("L40S-PCIE-48GB", 4)]
    assert one.gpus_per_instance == 1 and four.gpus_per_instance >= 4
    # A one-GPU g6e.xlarge cannot hold a TP-4 replica; the 4-GPU g6e.12xlarge costs 1.4x
    # as much per GPU.
    assert four.usd_per_gpu_hour == pytest.approx(1.41 * one.usd_per_gpu_hour, rel=0.02)
    assert quotes[("L40S-PCIE-48GB", 8)].gpus_per_instance == 8
    options = search(helper.planner, l40s_on_aws(), helper.prices).options
    tp4 = next(o for o in options if o.tp == 4)
    assert tp4.price is not None and tp4.price.gpus_per_instance >= 4
    assert tp4.usd_per_hour == pytest.approx(tp4.price.usd_per_gpu_hour * 4 * tp4.replicas_for_peak)


def test_stale_prices_are_marked_wherever_they_are_shown(seeded_sqlite_url: str) -> None:
    later = dt.date(2027, 9, 1)  # every seed price is then over 180 days old
    with session_scope(seeded_sqlite_url) as session:
        today = gpu_prices(session=session)
        then = gpu_prices(session=session, today=later)
        helper = assistant(session=session)
    fresh = [p for p in today if dt.date.fromisoformat(p.retrieved) > dt.date(2026, 6, 9)]
    assert fresh and not any(p.stale for p in fresh)
    assert all(p.stale for p in then)
    stale_helper = Assistant(
        helper.planner, helper.vocabulary, helper.use_cases, helper.cards, then, helper.gpu_k8s
    )
    spec = stale_helper.specify(stale_helper.read("A chatbot for 500 employees, NVIDIA only"))
    option = stale_helper.recommend(spec).options[0]
    assert "STALE: over 180 days old" in option.rationale
    assert "STALE" in option_line(option.option)
    assert option.option.price is not None and option.option.price.stale
