"""The discrete-event simulator: agrees with the analytical path where both apply, and sees
what the analytical path cannot (bursts, preemption, overload)."""

from __future__ import annotations

import numpy as np
import pytest

from kb.catalog import gpu_prices, planner
from kb.db import session_scope
from planner.capacity import CapacitySpec, search
from planner.predict import Planner
from planner.prediction import PredictionQuery
from planner.simulate import SimulationInput, simulate
from planner.specs import ServingConfig
from planner.steptime import calibrate, shape


@pytest.fixture(scope="module")
def catalog(seeded_sqlite_url: str) -> Planner:
    with session_scope(seeded_sqlite_url) as session:
        return planner(session=session)


CHAT = PredictionQuery(
    model_id="meta-llama/Llama-3.1-8B-Instruct",
    gpu_id="H100-SXM-80GB",
    isl=1000,
    osl=200,
    isl_p95=3000,
    osl_p95=450,
    qps=8,
)


def test_poisson_simulation_agrees_with_the_analytical_path(catalog: Planner) -> None:
    analytical, simulated = catalog.predict(CHAT), catalog.simulate(CHAT, requests=500)
    assert simulated.method == "simulated" and simulated.stable
    assert analytical.tpot_ms and simulated.tpot_ms and analytical.ttft_ms and simulated.ttft_ms
    assert simulated.tpot_ms.mean == pytest.approx(analytical.tpot_ms.mean, rel=0.2)
    assert simulated.ttft_ms.p90 == pytest.approx(analytical.ttft_ms.p90, rel=0.35)


def test_bursts_lengthen_the_tail(catalog: Planner) -> None:
    poisson = catalog.simulate(CHAT, requests=500)
    gamma = CHAT.model_copy(update={"arrival": "gamma", "burstiness": 0.25})
    bursty = catalog.simulate(gamma, requests=500)
    assert poisson.ttft_ms and bursty.ttft_ms
    assert bursty.ttft_ms.p90 > 1.3 * poisson.ttft_ms.p90


def test_seeded_and_reproducible(catalog: Planner) -> None:
    first, again = catalog.simulate(CHAT, seed=3), catalog.simulate(CHAT, seed=3)
    other = catalog.simulate(CHAT, seed=4)
    assert first.ttft_ms == again.ttft_ms
    assert other.ttft_ms != first.ttft_ms


def test_overload_is_reported_not_averaged_away(catalog: Planner) -> None:
    result = catalog.simulate(CHAT.model_copy(update={"qps": 400.0}), requests=300)
    assert not result.stable


def test_a_full_kv_cache_preempts_and_still_finishes(catalog: Planner) -> None:
    model, gpu = catalog.models[CHAT.model_id], catalog.gpus[CHAT.gpu_id]
    coefficients = calibrate(
        shape([(model, gpu, ServingConfig(precision="bf16"))]),
        [catalog.calibration.step(gpu.id, "bf16", model.size_class)[0]],
    )
    result = simulate(
        SimulationInput(
            coefficients=coefficients,
            kv_capacity_tokens=6000,
            max_num_seqs=256,
            max_num_batched_tokens=8192,
            request_overhead_s=0.01,
            isl_mean=1000,
            osl_mean=400,
            concurrency=16,
            requests=80,
            warmup_requests=0,
        )
    )
    assert result.preemptions > 0
    assert result.completed == 80 and np.all(result.e2e_s > result.ttft_s)


def test_capacity_checks_its_best_options_by_simulation(
    catalog: Planner, seeded_sqlite_url: str
) -> None:
    with session_scope(seeded_sqlite_url) as session:
        prices = gpu_prices(session=session)
    spec = CapacitySpec.model_validate(
        {
            "traffic": {
                "prompt_tokens_mean": 1000,
                "prompt_tokens_p95": 3000,
                "output_tokens_mean": 200,
                "output_tokens_p95": 450,
                "steady_qps": 4,
                "peak_qps": 8,
                "burstiness": "high",
            },
            "slo": {"ttft_p90_ms": 1000, "tpot_p90_ms": 60},
            "constraints": {
                "models": ["meta-llama/Llama-3.1-8B-Instruct"],
                "gpus": ["H100-SXM-80GB", "L40S-PCIE-48GB"],
            },
            "simulate_top": 2,
        }
    )
    result = search(catalog, spec, prices)
    checked = [o for o in result.options if o.simulated_slo_met is not None]
    assert len(checked) == 2 and checked == result.options[:2]
    assert all(o.simulated_ttft_ms and o.simulated_ttft_ms.p90 > 0 for o in checked)
