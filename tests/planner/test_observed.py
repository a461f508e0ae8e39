"""Learning from live deployments (planner/observed.py): outcomes pooled per configuration
correct its later predictions; pooled over all, they are the model's bias."""

from __future__ import annotations

import pytest

from planner.memory import MemoryFit
from planner.observed import MIN_OUTCOMES, Outcome, adjusted, bias, factors, key
from planner.percentiles import LatencyStats
from planner.prediction import Prediction, PredictionQuery, Source


def outcome(deployment: str, ttft: float, tpot: float, gpu: str = "H100") -> Outcome:
    return Outcome(deployment, "m", gpu, "fp8", ttft, 100.0, tpot, 10.0)


def prediction(source: Source = "modelled") -> Prediction:
    stats = LatencyStats(mean=100.0, p50=90.0, p90=150.0, p95=170.0, p99=200.0)
    tpot = LatencyStats(mean=10.0, p50=10.0, p90=12.0, p95=13.0, p99=15.0)
    e2e = LatencyStats(mean=1100.0, p50=1000.0, p90=1400.0, p95=1500.0, p99=1700.0)
    return Prediction(
        query=PredictionQuery(model_id="m", gpu_id="H100", precision="fp8", isl=9, osl=9, qps=1),
        precision="fp8",
        fits=True,
        memory=MemoryFit(
            fits=True,
            reason=None,
            context_tokens=18,
            weights_gb_per_gpu=16.0,
            weights_basis="checkpoint size",
            overhead_gb_per_gpu=2.0,
            kv_cache_gb_per_gpu=50.0,
            kv_bytes_per_token_per_gpu=131072.0,
            state_bytes_per_sequence_per_gpu=0.0,
            kv_capacity_tokens=400_000,
            max_concurrent_sequences=1024,
        ),
        stable=True,
        ttft_ms=stats,
        tpot_ms=tpot,
        e2e_ms=e2e,
        source=source,
    )


def test_a_configuration_needs_enough_outcomes_and_takes_their_median() -> None:
    few = [outcome("a", 120, 11) for _ in range(MIN_OUTCOMES - 1)]
    assert factors(few) == {}
    found = factors([*few, outcome("b", 200, 30), outcome("c", 130, 12, gpu="A100")])
    factor = found[key("m", "H100", "fp8")]
    assert factor.ttft == pytest.approx(1.2) and factor.tpot == pytest.approx(1.1)
    assert (factor.outcomes, factor.deployments) == (MIN_OUTCOMES, 2)
    assert key("m", "A100", "fp8") not in found


def test_an_observed_configuration_is_corrected_and_says_so() -> None:
    factor = factors([outcome("a", 150, 20)] * MIN_OUTCOMES)
    corrected = adjusted(prediction(), factor)
    assert corrected.source == "observed"
    assert corrected.ttft_ms and corrected.ttft_ms.p90 == pytest.approx(225.0)
    assert corrected.tpot_ms and corrected.tpot_ms.p90 == pytest.approx(24.0)
    # E2E = TTFT + decode, each part by its own factor: 100 x 1.5 + 1000 x 2 = 2150.
    assert corrected.e2e_ms and corrected.e2e_ms.mean == pytest.approx(2150.0)
    assert corrected.observed and "modelled TTFT p90 150 ms" in corrected.observed
    assert adjusted(prediction("measured"), factor).source == "measured"
    assert adjusted(prediction(), {}).source == "modelled"


def test_bias_pools_every_deployment_and_a_broken_one_is_clipped() -> None:
    assert bias([]) is None
    pooled = bias([outcome("a", 110, 10), outcome("b", 130, 10), outcome("c", 10_000, 10)])
    assert pooled and pooled.ttft == pytest.approx(1.3) and pooled.deployments == 3
    wild = factors([outcome("a", 10_000, 1)] * MIN_OUTCOMES)[key("m", "H100", "fp8")]
    assert (wild.ttft, wild.tpot) == (4.0, 0.25)
