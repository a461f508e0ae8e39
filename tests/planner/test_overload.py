"""Open loop and overload, honestly: the most one replica sustains is a computed number, past
it a prediction says overloaded instead of giving a latency, near it the tail grows the way
a queue's does; predictions far from measured data say so, with a wider band."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.catalog import planner
from kb.db import session_scope
from planner.capacity import CapacitySpec, search
from planner.fit import prepare
from planner.measured import MeasuredPoint
from planner.predict import Planner
from planner.prediction import PredictionQuery
from planner.report import overload_verdicts
from tests.cli.test_cli import preflight

CONFIGS = [
    ("meta-llama/Llama-3.1-8B-Instruct", "H100-SXM-80GB", 1, 1000, 200),
    ("meta-llama/Llama-3.1-8B-Instruct", "L4-PCIE-24GB", 1, 2000, 200),
    ("Qwen/Qwen3-30B-A3B", "H100-SXM-80GB", 2, 1000, 1000),
    ("meta-llama/Llama-3.1-70B-Instruct", "H100-SXM-80GB", 4, 2000, 500),
]


@pytest.fixture(scope="module")
def catalog(seeded_sqlite_url: str) -> Planner:
    with session_scope(seeded_sqlite_url) as session:
        return planner(session=session)


def query(config: tuple[str, str, int, int, int], qps: float, **more: object) -> PredictionQuery:
    model, gpu, tp, isl, osl = config
    return PredictionQuery.model_validate(
        {"model_id": model, "gpu_id": gpu, "tp": tp, "isl": isl, "osl": osl, "qps": qps} | more
    )


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=st.sampled_from(CONFIGS), share=st.floats(0.05, 2.0))
def test_a_load_is_sustainable_exactly_below_the_computed_limit(
    catalog: Planner, config: tuple[str, str, int, int, int], share: float
) -> None:
    limit = catalog.predict(query(config, 0.01)).max_sustainable_qps
    assert limit and limit > 0
    result = catalog.predict(query(config, limit * share))
    assert result.max_sustainable_qps == pytest.approx(limit)
    if share <= 0.995:
        assert result.stable and result.ttft_ms and result.tpot_ms
    elif share >= 1.005:
        # The queue grows without bound: no latency describes it.
        assert not result.stable
        assert result.ttft_ms is None and result.tpot_ms is None and result.e2e_ms is None
        assert result.requests_per_s == pytest.approx(limit)


@pytest.mark.parametrize(
    "config", [*CONFIGS, ("Qwen/Qwen3-30B-A3B", "H100-SXM-80GB", 2, 200, 1000)]
)
def test_the_limit_is_the_most_served_before_the_replica_first_falls_behind(
    catalog: Planner, config: tuple[str, str, int, int, int]
) -> None:
    # The rate a decode batch serves is not monotonic in it (steps too large for a CUDA
    # graph grow faster, then no faster again): the limit is where it first stops growing
    # (or a little before, where the prefill budget fills), not at a later turn.
    batch = catalog.batch([catalog.plan(query(config, 1.0))])
    decoding = np.geomspace(0.5, batch.cap[0], 600)
    served = batch.take(np.zeros(len(decoding), dtype=np.intp)).at_decode(decoding).requests_per_s
    first_turn = int(np.argmax(np.diff(served) < 0)) if (np.diff(served) < 0).any() else -1
    limit = catalog.predict(query(config, 0.01)).max_sustainable_qps
    assert limit is not None
    assert 0.95 * served[first_turn] <= limit <= 1.005 * served[first_turn]


def test_near_the_limit_the_tail_grows_as_a_queue_does(catalog: Planner) -> None:
    config = CONFIGS[1]
    limit = catalog.predict(query(config, 0.01)).max_sustainable_qps
    assert limit
    p90 = []
    for share in (0.5, 0.8, 0.9, 0.95, 0.99):
        result = catalog.predict(query(config, limit * share))
        assert result.stable and result.ttft_ms
        p90.append(result.ttft_ms.p90)
    assert p90 == sorted(p90)
    assert p90[-1] > 5 * p90[0]  # the wait explodes as the load nears what is served


def test_capacity_never_sizes_a_replica_past_what_it_sustains(catalog: Planner) -> None:
    spec = CapacitySpec.model_validate(
        {
            "traffic": {
                "prompt_tokens_mean": 1000,
                "output_tokens_mean": 200,
                "steady_qps": 2,
                "peak_qps": 5,
            },
            "slo": {"ttft_p90_ms": 100000, "tpot_p90_ms": 10000},
            "constraints": {"models": ["meta-llama/Llama-3.1-8B-Instruct"]},
        }
    )
    options = search(catalog, spec, []).options
    assert len(options) >= 3
    for option in options:
        config = (option.model_id, option.gpu_id, option.tp, 1000, 200)
        limit = catalog.predict(query(config, 1, precision=option.precision))
        assert limit.max_sustainable_qps is not None
        # The same search finds both: with SLOs this loose, stability binds.
        assert option.max_qps_per_replica <= limit.max_sustainable_qps * 1.01


@pytest.mark.integration  # a `preflight` process
def test_the_cli_says_overloaded_and_json_gives_the_limit(seeded_sqlite_url: str) -> None:
    args = ["predict", "--model", "llama-3.1-8b", "--gpu", "l4", "--isl", "2000", "--osl", "200"]
    text = preflight(*args, "--qps", "50", database_url=seeded_sqlite_url)
    assert text.returncode == 0, text.stderr
    assert "OVERLOADED" in text.stdout and "sustains at most" in text.stdout
    assert "TTFT" not in text.stdout
    as_json = preflight(*args, "--qps", "50", "--json", database_url=seeded_sqlite_url)
    report = json.loads(as_json.stdout)
    assert report["stable"] is False and report["ttft_ms"] is None
    assert 0 < report["max_sustainable_qps"] < 50


def test_a_prediction_far_from_measured_data_says_so_with_a_wider_band(catalog: Planner) -> None:
    measured_gpu = catalog.predict(query(CONFIGS[0], 1.0))
    datasheet_gpu = catalog.predict(query(CONFIGS[1], 0.2))
    assert measured_gpu.extrapolated is None
    assert datasheet_gpu.extrapolated and "L4-PCIE-24GB" in datasheet_gpu.extrapolated
    assert measured_gpu.uncertainty and datasheet_gpu.uncertainty
    assert "extrapolated" in datasheet_gpu.uncertainty.basis
    # H200's rates were fitted on MoE models only: a dense 8B model there is far from them.
    dense_on_moe_gpu = catalog.predict(
        query(("meta-llama/Llama-3.1-8B-Instruct", "H200-SXM-141GB", 1, 1000, 100), 1.0)
    )
    assert dense_on_moe_gpu.extrapolated == (
        "no measured dense runs on H200-SXM-141GB (only MoE): its memory rate comes from the "
        "fit over every GPU"
    )
    # Nor was Qwen3-14B's architecture ever measured, on any GPU.
    unmeasured = catalog.predict(query(("Qwen/Qwen3-14B", "H100-SXM-80GB", 1, 1000, 200), 1.0))
    assert unmeasured.extrapolated == "no measured runs of Qwen/Qwen3-14B's architecture"
    # H100 PCIe was measured one GPU at a time: its PCIe all-reduces never were, while the
    # same model on one of them is measured ground.
    pcie = ("meta-llama/Llama-3.1-8B-Instruct", "H100-PCIE-80GB")
    assert catalog.calibration.widest_tp_by_gpu["H100-PCIE-80GB"] == 1
    assert catalog.predict(query((*pcie, 1, 1000, 200), 1.0)).extrapolated is None
    assert catalog.predict(query((*pcie, 2, 1000, 200), 1.0)).extrapolated == (
        "no measured multi-GPU runs on H100-PCIE-80GB: its all-reduces are costed from other "
        "GPUs' links"
    )

    def spread(p: object) -> float:
        u = p.uncertainty  # type: ignore[attr-defined]
        return float(u.ttft_high_ms / u.ttft_low_ms)

    # The widest band any class showed: no measured configuration's is wider, an MoE's narrower.
    measured = [
        catalog.predict(query(config, 1.0)) for config in CONFIGS if config[1] != "L4-PCIE-24GB"
    ]
    assert all(spread(datasheet_gpu) >= spread(p) * (1 - 1e-9) for p in measured)
    assert spread(datasheet_gpu) > spread(catalog.predict(query(CONFIGS[2], 1.0)))


def open_run(qps: float, ttft_p90_ms: float, prompts: int = 200) -> MeasuredPoint:
    """An open-loop vLLM run of Llama-3.1-8B on one H100, 200 tokens in and out."""
    return MeasuredPoint(
        model_id="meta-llama/Llama-3.1-8B-Instruct",
        gpu_id="H100-SXM-80GB",
        precision="bf16",
        tp=1,
        isl=200,
        osl=200,
        qps=qps,
        num_prompts=prompts,
        ttft_ms=ttft_p90_ms / 2,
        ttft_p90_ms=ttft_p90_ms,
        tpot_ms=16.0,
        reference=f"test:{qps}/{ttft_p90_ms}/{prompts}",
    )


def test_a_transient_open_loop_run_is_not_fitted(catalog: Planner) -> None:
    rows = prepare([open_run(32, 80, 200), open_run(32, 80, 5000)], catalog.models, catalog.gpus)
    assert [p.reference for p in rows.points] == ["test:32/80/5000"]
    ((excluded, reason),) = rows.excluded
    assert excluded.reference == "test:32/80/200" and "a transient run" in reason


def test_overload_verdicts_name_a_queue_called_sustainable_and_a_server_that_kept_up(
    catalog: Planner,
) -> None:
    """A run whose first tokens come ten times later than at its configuration's lowest rate
    had a queue that grew, however short the run; one that kept up proves the load
    sustainable only if it ran long enough to fill its cache. The report names every run
    whose measured fate the planner's `stable` contradicts."""

    # 2 requests/s of an 8B model is a trickle for an H100, and 5,000 far past what it serves.
    runs = [
        open_run(1.0, 50.0),
        open_run(2.0, 900.0),
        open_run(5000.0, 60.0),
        open_run(5000.0, 60.0, prompts=100_000),
        open_run(6000.0, 30000.0),
    ]
    verdicts = overload_verdicts(runs, catalog)
    assert verdicts["runs"] == 5 and verdicts["queued"] == 2
    assert verdicts["queued_called_sustainable"] == [
        {"reference": "test:2.0/900.0/200", "qps": 2.0}
    ]
    assert verdicts["kept_up_called_overloaded"] == [
        {"reference": "test:5000.0/60.0/100000", "qps": 5000.0}
    ]


def test_long_outputs_hold_the_cache_longest_and_lower_what_a_replica_sustains(
    catalog: Planner,
) -> None:
    """Outputs of varied length hold the KV cache in proportion to how long they last. On a
    replica whose cache is tight (a 16-bit 70B model on two 80 GB GPUs) the computed limit
    with long-tailed outputs is where the step simulation's queue starts to grow; the limit
    from the mean lengths alone is a load at which it grows without end."""
    even = PredictionQuery(
        model_id="deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        gpu_id="H100-PCIE-80GB",
        tp=2,
        precision="bf16",
        isl=206,
        osl=199,
        qps=0.5,
    )
    spread = even.model_copy(update={"isl_p95": 800, "osl_p95": 700})
    mean_limit = catalog.predict(even).max_sustainable_qps
    limit = catalog.predict(spread).max_sustainable_qps
    assert mean_limit and limit and limit < 0.7 * mean_limit

    def simulated_stable(qps: float) -> list[bool]:
        query = spread.model_copy(update={"qps": qps})
        return [catalog.simulate(query, requests=800, seed=seed).stable for seed in range(3)]

    assert all(simulated_stable(0.5 * limit))
    assert not any(simulated_stable(1.5 * limit))
    assert not any(simulated_stable(mean_limit))
