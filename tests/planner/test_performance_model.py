"""Properties the performance model must keep whatever the inputs, and its interfaces."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kb.catalog import gpu_prices, measured_points, planner
from kb.db import session_scope
from planner.calibration import CALIBRATION_FILE, stored_calibration
from planner.capacity import CapacityOption, CapacitySpec, GpuPrice, option_query, search
from planner.catalog_index import Candidate
from planner.memory import fit
from planner.percentiles import quantile, quantiles, samples
from planner.predict import ROOFLINE, Planner
from planner.prediction import PredictionQuery
from planner.specs import ServingConfig
from planner.steptime import calibrate, shape, step_seconds
from tests.cli.test_cli import preflight


@pytest.fixture(scope="module")
def catalog(seeded_sqlite_url: str) -> Planner:
    with session_scope(seeded_sqlite_url) as session:
        return planner(session=session)


@pytest.fixture(scope="module")
def prices(seeded_sqlite_url: str) -> list[GpuPrice]:
    with session_scope(seeded_sqlite_url) as session:
        return gpu_prices(session=session)


CONFIGS = [
    ("meta-llama/Llama-3.1-8B-Instruct", "H100-SXM-80GB", 1, "bf16"),
    ("meta-llama/Llama-3.1-70B-Instruct", "A100-SXM-80GB", 4, "bf16"),
    ("Qwen/Qwen3-30B-A3B", "L40S-PCIE-48GB", 2, "fp8"),
    ("deepseek-ai/DeepSeek-V3", "H200-SXM-141GB", 8, "fp8"),
    ("openai/gpt-oss-120b", "B200-SXM-180GB", 1, "fp4"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "L4-PCIE-24GB", 1, "bf16"),
]
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples on every run: a CI run passes or fails on the code
)


def closed_loop_queries(max_concurrency: int) -> st.SearchStrategy[PredictionQuery]:
    return st.builds(
        lambda config, isl, osl, concurrency: PredictionQuery(
            model_id=config[0],
            gpu_id=config[1],
            tp=config[2],
            precision=config[3],
            isl=isl,
            osl=osl,
            concurrency=concurrency,
        ),
        st.sampled_from(CONFIGS),
        st.integers(16, 8192),
        st.integers(2, 2048),
        st.integers(1, max_concurrency),
    )


@PROPERTY
@given(query=closed_loop_queries(256), more=st.integers(1, 256))
def test_tpot_never_falls_as_concurrency_rises(
    catalog: Planner, query: PredictionQuery, more: int
) -> None:
    assert query.concurrency is not None
    low, high = catalog.predict_many(
        [query, query.model_copy(update={"concurrency": query.concurrency + more})]
    )
    if low.fits and low.source == high.source == "modelled":
        assert low.tpot_ms and high.tpot_ms
        assert high.tpot_ms.mean >= low.tpot_ms.mean * (1 - 1e-6)


def test_a_request_alone_decodes_no_slower_than_two(catalog: Planner) -> None:
    alone = PredictionQuery(
        model_id="meta-llama/Llama-3.1-8B-Instruct",
        gpu_id="H100-SXM-80GB",
        tp=1,
        precision="bf16",
        isl=4096,
        osl=2,
        concurrency=1,
    )
    one, two = catalog.predict_many([alone, alone.model_copy(update={"concurrency": 2})])
    assert one.tpot_ms and two.tpot_ms and one.source == two.source == "modelled"
    assert two.tpot_ms.mean >= one.tpot_ms.mean


@PROPERTY
@given(query=closed_loop_queries(64))
@example(
    query=PredictionQuery(
        model_id="meta-llama/Llama-3.1-70B-Instruct",
        gpu_id="A100-SXM-80GB",
        tp=4,
        precision="bf16",
        isl=8192,
        osl=64,
        concurrency=3,
    )
)
def test_a_closed_loop_request_waits_for_at_most_the_others(
    catalog: Planner, query: PredictionQuery
) -> None:
    # N requests in flight that the KV cache holds at once: a prompt queues behind at most
    # the other N - 1 prompts.
    assert query.concurrency is not None
    alone, loop = catalog.predict_many([query.model_copy(update={"concurrency": 1}), query])
    held = query.concurrency * (query.isl + query.osl) <= loop.memory.kv_capacity_tokens
    if held and loop.fits and alone.source == loop.source == "modelled":
        assert alone.ttft_ms and loop.ttft_ms
        assert loop.ttft_ms.mean <= 1.5 * query.concurrency * alone.ttft_ms.mean


@PROPERTY
@given(query=closed_loop_queries(1))
def test_one_request_in_flight_waits_for_no_one(catalog: Planner, query: PredictionQuery) -> None:
    # A closed loop of one is a trickle: its first "wave" is one prompt, not a full budget,
    # and it starts on an idle engine.
    closed, trickle = catalog.predict_many(
        [query, query.model_copy(update={"concurrency": None, "qps": 1e-3})]
    )
    if closed.fits and closed.source == trickle.source == "modelled":
        assert closed.ttft_ms and trickle.ttft_ms
        assert closed.ttft_ms.mean == pytest.approx(trickle.ttft_ms.mean, rel=0.15)


def test_a_closed_loop_of_fixed_lengths_queues_in_waves(
    catalog: Planner, seeded_sqlite_url: str
) -> None:
    # The held-aside run of fixed lengths (vLLM issue 24684: 64 clients, 1k-token prompts,
    # exactly 128 tokens out), never fitted: its source's length distribution says it.
    with session_scope(seeded_sqlite_url) as session:
        held = measured_points(session=session, held_aside=True)
    (run,) = [p for p in held if p.closed and p.fixed_lengths]
    fixed = run.query()
    spread, predicted = catalog.predict_many(
        [fixed.model_copy(update={"fixed_lengths": False}), fixed]
    )
    assert spread.ttft_ms and predicted.ttft_ms and predicted.source == "modelled"
    # Requests that finish together return together and wait for each other's prefills.
    assert predicted.ttft_ms.mean > 2 * spread.ttft_ms.mean
    assert predicted.ttft_ms.mean == pytest.approx(run.ttft_ms, rel=0.35)
    alone = [fixed.model_copy(update={"concurrency": 1, "fixed_lengths": f}) for f in (False, True)]
    one, one_fixed = catalog.predict_many(alone)
    assert one.ttft_ms and one_fixed.ttft_ms
    assert one_fixed.ttft_ms.mean == pytest.approx(one.ttft_ms.mean)  # a wave of one


@pytest.mark.integration  # a `preflight` process
def test_the_cli_predicts_a_benchmark_of_fixed_lengths(seeded_sqlite_url: str) -> None:
    args = ["predict", "--model", "llama-3.1-8b", "--gpu", "h100", "--isl", "1022", "--osl"]
    args += ["128", "--concurrency", "64", "--json"]
    varied, fixed = (
        preflight(*args, *extra, database_url=seeded_sqlite_url)
        for extra in ([], ["--fixed-lengths"])
    )
    assert varied.returncode == fixed.returncode == 0, varied.stderr + fixed.stderr
    ttft = [json.loads(run.stdout)["ttft_ms"]["mean"] for run in (varied, fixed)]
    assert json.loads(fixed.stdout)["fixed_lengths"] is True
    assert ttft[1] > 2 * ttft[0]


@PROPERTY
@given(query=closed_loop_queries(512))
def test_throughput_never_exceeds_the_roofline(catalog: Planner, query: PredictionQuery) -> None:
    result = catalog.predict(query)
    if not result.fits:
        return
    bound = catalog.steady_states([catalog.plan(query)], closed=True, roofline=[True])
    assert result.requests_per_s is not None
    assert result.requests_per_s <= bound.requests_per_s[0] * (1 + 1e-6)
    assert result.tpot_ms and result.tpot_ms.mean >= bound.tpot_s[0] * 1e3 * (1 - 1e-6)


@PROPERTY
@given(
    model_id=st.sampled_from(sorted({c[0] for c in CONFIGS})),
    gpu_id=st.sampled_from(
        ["H100-SXM-80GB", "A100-SXM-80GB", "L40S-PCIE-48GB", "MI300X-OAM-192GB"]
    ),
    context=st.integers(128, 32768),
    tp=st.sampled_from([1, 2, 4]),
)
def test_more_gpus_never_reduce_kv_capacity(
    catalog: Planner,
    model_id: str,
    gpu_id: str,
    context: int,
    tp: int,
) -> None:
    model, gpu = catalog.models[model_id], catalog.gpus[gpu_id]
    fewer = fit(model, gpu, ServingConfig(tp=tp, precision=model.precision), context)
    more = fit(model, gpu, ServingConfig(tp=tp * 2, precision=model.precision), context)
    if more.reason and "heads" in more.reason:
        return
    assert more.kv_capacity_tokens >= fewer.kv_capacity_tokens


def chat_spec(**constraints: object) -> CapacitySpec:
    return CapacitySpec.model_validate(
        {
            "traffic": {
                "prompt_tokens_mean": 1000,
                "prompt_tokens_p95": 4000,
                "output_tokens_mean": 200,
                "output_tokens_p95": 450,
                "steady_qps": 4,
                "peak_qps": 8,
                "burstiness": "medium",
            },
            "slo": {"ttft_p90_ms": 800, "tpot_p90_ms": 60},
            "constraints": constraints,
        }
    )


def test_capacity_offers_only_what_fits_and_meets_the_slo(
    catalog: Planner, prices: list[GpuPrice]
) -> None:
    spec = chat_spec(
        models=["meta-llama/Llama-3.1-70B-Instruct", "Qwen/Qwen3-8B"],
        gpus=["H100-SXM-80GB", "L4-PCIE-24GB", "A100-SXM-80GB"],
    )
    result = search(catalog, spec, prices)
    assert result.options, result.infeasible
    for option in result.options:
        memory = fit(
            catalog.models[option.model_id],
            catalog.gpus[option.gpu_id],
            ServingConfig(tp=option.tp, precision=option.precision),
            4450,
        )
        assert memory.fits
        assert option.ttft_ms.p90 <= 800 * 1.05 and option.tpot_ms.p90 <= 60 * 1.05
        assert option.replicas_for_peak * option.max_qps_per_replica * 0.8 >= 8 * 0.999
    unfit = [
        i
        for i in result.infeasible
        if i.model_id == "meta-llama/Llama-3.1-70B-Instruct" and i.gpu_id == "L4-PCIE-24GB"
    ]
    assert unfit and all("exceed the usable" in i.reason or "SLO" in i.reason for i in unfit)
    priced = [o.usd_per_month for o in result.options if o.usd_per_month is not None]
    assert priced == sorted(priced)


def test_each_option_runs_at_the_largest_rate_its_slos_allow(
    catalog: Planner, prices: list[GpuPrice]
) -> None:
    """The search's rate, asked of `predict` (the open loop's fixed point, not the search's
    explicit path): 1 % under it every SLO holds, 3 % over it one breaks or the queue grows."""
    spec = chat_spec(
        models=["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-30B-A3B"],
        gpus=["H100-SXM-80GB", "L4-PCIE-24GB", "L40S-PCIE-48GB"],
    )
    t = spec.traffic
    options = search(catalog, spec, prices).options
    assert len(options) >= 10

    def worst_at(option: CapacityOption, rate: float) -> float:
        """The largest p90 over its target; infinite when unstable."""
        result = catalog.predict(option_query(option, t, rate))
        if not result.stable:
            assert result.ttft_ms is None  # no steady state, so no latency
            return float("inf")
        assert result.ttft_ms and result.tpot_ms
        return max(result.ttft_ms.p90 / 800, result.tpot_ms.p90 / 60)

    for option in options:
        # (An option whose SLO binds at a trickle, on its latency floor, gains nothing from 1 %
        # less load: the search's resolution is the tolerance.)
        assert worst_at(option, option.max_qps_per_replica * 0.99) <= 1.0 + 1e-3
        assert worst_at(option, option.max_qps_per_replica * 1.03) > 1.0


def test_options_are_built_when_read(catalog: Planner, prices: list[GpuPrice]) -> None:
    result = search(catalog, chat_spec(gpus=["H100-SXM-80GB"]), prices)
    options = result.options
    assert options[-1] == options[len(options) - 1] == list(options)[-1]
    assert options[:2] == [options[0], options[1]]
    with pytest.raises(IndexError):
        options[len(options)]
    report = result.report(top=3)
    assert [o["model_id"] for o in report["options"]] == [o.model_id for o in options[:3]]
    assert len(report["infeasible"]) == len(result.infeasible)


def test_ranking_reads_the_numbers_each_option_shows(
    catalog: Planner, prices: list[GpuPrice]
) -> None:
    """Ranking and the chart read every option's percentiles at once, by selection; an option
    shown computes its own by sorting. A person comparing a chart point with its card must
    see the same number."""
    result = search(catalog, chat_spec(), prices)
    columns = result.columns
    assert len(columns.candidates) == len(result.options) > 100
    for rank in [0, 1, len(result.options) // 2, len(result.options) - 1]:
        option = result.options[rank]
        assert columns.candidates[rank] == Candidate(
            **option.model_dump(include=set(Candidate.model_fields))
        )
        assert columns.ttft_p90_ms[rank] == option.ttft_ms.p90
        assert columns.tpot_p90_ms[rank] == option.tpot_ms.p90
        assert columns.e2e_p95_ms[rank] == option.e2e_ms.p95
        assert columns.replicas_for_peak[rank] == option.replicas_for_peak


@pytest.mark.parametrize("closed", [True, False])
def test_percentiles_by_selection_are_the_sorted_ones(catalog: Planner, closed: bool) -> None:
    """TPOT samples come out sorted (percentiles read them without a sort), and a percentile
    by selection is the one a sort gives."""
    queries = [
        PredictionQuery(
            model_id=model_id,
            gpu_id="H100-SXM-80GB",
            isl=1500,
            osl=300,
            isl_p95=6000,
            osl_p95=900,
            **({"concurrency": load} if closed else {"qps": load / 10}),
        )
        for model_id in ("Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct")
        for load in (1, 16, 64)
    ]
    plans = [catalog.plan(q) for q in queries]
    state = catalog.steady_states(plans, closed)
    lengths = [
        np.asarray([getattr(q, name) or 0 for q in queries], dtype=float)
        for name in ("osl", "isl", "isl_p95", "osl_p95")
    ]
    osl, isl, isl_p95, osl_p95 = lengths
    ttft, tpot, e2e = samples(
        state, catalog.calibration.serving, osl, closed, isl, isl_p95, osl_p95
    )
    assert (np.diff(tpot, axis=1) >= 0).all()
    assert quantiles(tpot, ordered=True) == pytest.approx(quantiles(tpot), rel=1e-12)
    for values, q in ((ttft, 90), (e2e, 95), (tpot, 50)):
        expected = np.percentile(values, q, axis=1) * 1e3
        assert quantile(values.copy(), q) == pytest.approx(expected, rel=1e-12)


def test_unknown_price_is_unknown_not_zero(catalog: Planner) -> None:
    result = search(catalog, chat_spec(models=["Qwen/Qwen3-8B"], gpus=["H100-SXM-80GB"]), [])
    assert result.options
    assert all(o.price is None and o.usd_per_month is None for o in result.options)


def test_measured_row_is_returned_as_measured(catalog: Planner) -> None:
    query = PredictionQuery(
        model_id="meta-llama/Llama-3.1-70B",
        gpu_id="H100-SXM-80GB",
        tp=4,
        precision="fp8",
        isl=1024,
        osl=1024,
        concurrency=16,
    )
    result = catalog.predict(query)
    assert result.source == "measured" and result.measured_references
    point = next(p for p in catalog.measured if p.reference == result.measured_references[0])
    assert result.ttft_ms and result.ttft_ms.mean == pytest.approx(point.ttft_ms)
    between = catalog.predict(query.model_copy(update={"concurrency": 24}))
    assert between.source == "interpolated" and len(between.measured_references) == 2
    assert between.tpot_ms and 13.19 <= between.tpot_ms.mean <= 16.49


def test_stored_calibration_has_cross_validated_bands() -> None:
    calibration = stored_calibration()
    assert calibration.version != "uncalibrated"
    assert {"ttft", "tpot", "ttft_interpolated", "tpot_interpolated"} <= set(calibration.residuals)
    # A class with enough rows has its own band (thin classes borrow the widest).
    assert {"ttft/MoE", "tpot/MoE", "ttft/large dense"} <= set(calibration.residuals)
    assert calibration.by_gpu_precision


def test_decode_correction_carries_to_variants_of_a_measured_architecture(
    catalog: Planner,
) -> None:
    base = catalog.models["meta-llama/Llama-3.1-70B"]
    instruct = catalog.models["meta-llama/Llama-3.1-70B-Instruct"]
    assert base.architecture_key == instruct.architecture_key
    factor = catalog.calibration.model_factors[base.architecture_key]
    assert 0.5 < factor < 2.0
    query = PredictionQuery(
        model_id=instruct.id,
        gpu_id="A100-SXM-80GB",
        tp=4,
        precision="bf16",
        isl=1000,
        osl=200,
        qps=1.0,
    )
    # The level alone (the slope, a function of the load, is kept out).
    level_only = catalog.calibration.model_copy(update={"model_slopes": {}})
    corrected = Planner(catalog.models, catalog.gpus, level_only).predict(query)
    plain = Planner(
        catalog.models, catalog.gpus, level_only.model_copy(update={"model_factors": {}})
    ).predict(query)
    assert corrected.tpot_ms and plain.tpot_ms
    assert corrected.tpot_ms.mean == pytest.approx(plain.tpot_ms.mean * factor, rel=0.02)


def test_stored_calibration_is_what_the_code_fits_today(seeded_sqlite_url: str) -> None:
    """A change to the model without `preflight calibrate` leaves stale parameters behind."""
    from kb.catalog import gpu_specs, model_specs, other_engine_points
    from planner.fit import fit_calibration, prepare

    with session_scope(seeded_sqlite_url) as session:
        models, gpus = model_specs(session=session), gpu_specs(session=session)
        rows = prepare(measured_points(session=session), models, gpus)
        others = prepare(other_engine_points(session=session), models, gpus)
    fitted = fit_calibration(rows, other_engines=others)
    stored = stored_calibration()
    assert set(fitted.by_gpu_precision) == set(stored.by_gpu_precision)
    for key, calibration in fitted.by_gpu_precision.items():
        for name, value in calibration.model_dump().items():
            assert value == pytest.approx(
                getattr(stored.by_gpu_precision[key], name), rel=1e-3, abs=1e-6
            ), (key, name)
    assert fitted.model_factors == pytest.approx(stored.model_factors, rel=1e-3)
    assert fitted.model_slopes == pytest.approx(stored.model_slopes, rel=1e-3, abs=1e-6)


def test_a_candidate_answers_the_same_alone_or_in_a_batch(catalog: Planner) -> None:
    """Searches solve thousands of candidates together; none may depend on its neighbours."""
    query = PredictionQuery(
        model_id="mistralai/Mistral-7B-Instruct-v0.3",
        gpu_id="L4-PCIE-24GB",
        isl=16,
        osl=300,
        concurrency=64,
    )
    neighbour = PredictionQuery(
        model_id="deepseek-ai/DeepSeek-V3",
        gpu_id="H200-SXM-141GB",
        tp=8,
        isl=8000,
        osl=2000,
        concurrency=3,
    )
    alone = catalog.steady_states([catalog.plan(query)], closed=True)
    together = catalog.steady_states([catalog.plan(query), catalog.plan(neighbour)], closed=True)
    assert together.tpot_s[0] == alone.tpot_s[0]
    assert together.ttft_s[0] == alone.ttft_s[0]
    assert together.requests_per_s[0] == alone.requests_per_s[0]


def test_dp_attention_rows_are_never_read_as_tp_only(catalog: Planner) -> None:
    """A replica of tp x dp GPUs whose attention runs dp ways is not the tp-GPU replica the
    model knows: its rows are left out of the fit, with their reason, and of look-ups."""
    report = json.loads(CALIBRATION_FILE.with_name("calibration_report.json").read_text())
    reasons = {row["reference"]: row["reason"] for row in report["rows_excluded"]}
    wide = [p for p in catalog.measured if p.dp != 1]
    assert len(wide) == 58
    for point in wide:
        assert "attention data parallel" in reasons[point.reference]
    point = next(p for p in wide if p.model_id == "MiniMaxAI/MiniMax-M2.5" and p.tp == 4)
    result = catalog.predict(
        PredictionQuery(
            model_id=point.model_id,
            gpu_id=point.gpu_id,
            tp=point.tp,
            precision=point.precision,
            isl=point.isl,
            osl=point.osl,
            concurrency=point.concurrency,
        )
    )
    assert point.reference not in result.measured_references
    assert not {p.reference for p in wide} & set(result.measured_references)


def test_accuracy_is_reported_per_class_and_worst_pair_first() -> None:
    """A median over all rows hides a class the data is thin on: the report slices it."""
    report = json.loads(CALIBRATION_FILE.with_name("calibration_report.json").read_text())
    accuracy = report["cross_validated"]
    pairs = accuracy["by_pair"]
    worst = [max(p["ttft_mdape"], p["tpot_mdape"]) for p in pairs]
    assert worst == sorted(worst, reverse=True)
    assert sum(p["rows"] for p in pairs) == accuracy["overall"]["rows"] == report["rows_fitted"]
    assert sum(c["rows"] for c in accuracy["by_class"].values()) == report["rows_fitted"]
    assert {"MoE", "large dense", "small dense"} <= set(accuracy["by_class"])
    assert {"H100", "B200"} <= set(accuracy["by_gpu_family"])
    assert {"closed loop", "open loop"} <= set(accuracy["by_load"])
    # The rows no fit ever saw, reported apart; open loops by their own percentiles.
    held = report["held_aside"]
    assert held["overall"]["rows"] >= 10 and held["by_pair"]
    assert not {p["pair"] for p in held["by_pair"]} & {p["pair"] for p in pairs}
    open_loop = report["held_aside_open_loop_percentiles"]
    assert open_loop["rows"] >= 5 and open_loop["ttft_p90_mdape"] is not None
    # Overload is judged on every open-loop run, short ones too: some queued, and each
    # verdict the planner got wrong is named.
    overload = report["held_aside_overload"]
    assert overload["runs"] > open_loop["rows"] and overload["queued"] >= 1
    named = overload["queued_called_sustainable"] + overload["kept_up_called_overloaded"]
    assert all(r["reference"].startswith("vllm-public:") and r["qps"] > 0 for r in named)


@pytest.mark.parametrize(
    ("model_id", "tied"),
    [
        # tie_word_embeddings in each checkpoint's config.json
        ("meta-llama/Llama-3.2-3B-Instruct", True),
        ("google/gemma-2-9b-it", True),
        ("meta-llama/Llama-3.1-8B-Instruct", False),
        ("Qwen/Qwen3-8B", False),
    ],
)
def test_prompt_tokens_skip_the_output_layer(catalog: Planner, model_id: str, tied: bool) -> None:
    """vLLM computes logits only for the tokens it samples: a prefill chunk costs the layers'
    FLOPs, a decoding sequence the output layer's on top, whether or not the checkpoint ties
    it to its embeddings (then its parameter count holds the matrix once)."""
    model, gpu = catalog.models[model_id], catalog.gpus["H100-SXM-80GB"]
    assert model.counted_embeddings == (1 if tied else 2)
    c = calibrate(shape([(model, gpu, ServingConfig(tp=1, precision="bf16"))]), [ROOFLINE])
    tokens = 8192.0  # large enough to be compute bound either way
    prefill = float(step_seconds(c, 0.0, 0.0, tokens, 0.0)[0])
    decode = float(step_seconds(c, tokens, 0.0, 0.0, 0.0)[0])
    peak = gpu.tensor_tflops("bf16") * 1e12
    output_layer = 2 * model.vocab_size * model.hidden_size * tokens / peak
    layers = 2 * (
        model.params_total_b * 1e9 - model.counted_embeddings * model.vocab_size * model.hidden_size
    )
    assert decode - prefill == pytest.approx(output_layer, rel=1e-6)
    assert prefill == pytest.approx(layers * tokens / peak, rel=1e-6)


def test_a_dense_model_on_a_gpu_fitted_on_moe_alone_streams_at_the_pooled_rate(
    catalog: Planner,
) -> None:
    """H200's rows are all MoE: their fit cannot tell the memory rate from how many experts
    a step reads. A dense 70B model at one request a step reads every weight, so its decode
    follows the bandwidth ratio to an H100 (4.8 against 3.35 TB/s), whose rate dense rows
    fitted, less what kernels and the all-reduce add alike; the H200's MoE-bent rate made it
    5 % faster (held aside on one H200: 26 ms predicted, 20 ms measured by vLLM 0.14.1)."""
    assert catalog.calibration.classes_by_gpu["H200-SXM-141GB"] == ["MoE"]

    def tpot_ms(gpu: str) -> float:
        q = PredictionQuery(
            model_id="RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8",
            gpu_id=gpu,
            tp=2,
            precision="fp8",
            isl=200,
            osl=200,
            concurrency=1,
        )
        prediction = catalog.predict(q)
        assert prediction.tpot_ms is not None
        return prediction.tpot_ms.mean

    h200, h100 = catalog.gpus["H200-SXM-141GB"], catalog.gpus["H100-SXM-80GB"]
    bandwidth = h200.memory_bandwidth_gb_s / h100.memory_bandwidth_gb_s
    assert tpot_ms("H100-SXM-80GB") / tpot_ms("H200-SXM-141GB") > 0.8 * bandwidth
