"""vLLM's engine settings and the arrival process are inputs of a prediction, not constants:
each changes memory, batching or queueing the way it does in vLLM, and a deployment renders
exactly the settings its options were predicted with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kb.catalog import assistant
from kb.db import session_scope
from manifests.render import vllm_args
from planner.assistant import Assistant
from planner.capacity import CapacitySpec, search
from planner.prediction import PredictionQuery
from planner.requirements import SearchConstraints, SLOTargets, TrafficProfile
from planner.specs import EngineSettings


@pytest.fixture(scope="module")
def helper(seeded_sqlite_url: str) -> Assistant:
    with session_scope(seeded_sqlite_url) as session:
        return assistant(session=session)


def query(**changes: object) -> PredictionQuery:
    base: dict[str, object] = {
        "model_id": "meta-llama/Llama-3.1-8B-Instruct",
        "gpu_id": "L40S-PCIE-48GB",
        "isl": 2000,
        "osl": 200,
        "qps": 4.0,
    }
    return PredictionQuery.model_validate(base | changes)


def test_memory_settings_change_what_fits(helper: Assistant) -> None:
    predict = helper.planner.predict
    default = predict(query())
    assert predict(query(kv_cache_dtype="fp8")).memory.kv_capacity_tokens == pytest.approx(
        2 * default.memory.kv_capacity_tokens, rel=0.01
    )
    assert predict(query(gpu_memory_utilization=0.6)).memory.kv_cache_gb_per_gpu < (
        default.memory.kv_cache_gb_per_gpu - 10
    )
    capped = predict(query(max_num_seqs=8, max_num_batched_tokens=8192))
    assert capped.memory.max_concurrent_sequences == 8
    too_long = predict(query(max_model_len=200_000))
    assert not too_long.fits and "exceeds the model's maximum of 131072" in (
        too_long.memory.reason or ""
    )
    # vLLM refuses to start unless its cache holds one sequence of max_model_len.
    small = predict(query(model_id="meta-llama/Llama-3.1-70B-Instruct", gpu_id="L40S-PCIE-48GB",
                          tp=2, precision="fp8", max_model_len=131072))  # fmt: skip
    assert not small.fits and "vLLM would not start" in (small.memory.reason or "")


def test_batch_limits_left_unset_are_vllms_own_on_that_gpu(helper: Assistant) -> None:
    """vLLM's OpenAI server batches 1,024 sequences in budgets of 8,192 tokens on GPUs of
    70 GiB or more, the A100 aside, and 256 in 2,048 elsewhere: a prediction with the limits
    unset is of the server vLLM would start there, and a stated limit is kept."""
    plan = helper.planner.plan
    for gpu_id, limits in (
        ("L40S-PCIE-48GB", (256, 2048)),
        ("A100-SXM-80GB", (256, 2048)),
        ("H100-SXM-80GB", (1024, 8192)),
        ("MI300X-OAM-192GB", (1024, 8192)),
    ):
        cfg = plan(query(gpu_id=gpu_id)).cfg
        assert (cfg.max_num_seqs, cfg.max_num_batched_tokens) == limits, gpu_id
    stated = plan(query(gpu_id="L40S-PCIE-48GB", max_num_seqs=512)).cfg
    assert (stated.max_num_seqs, stated.max_num_batched_tokens) == (512, 2048)
    # Fewer sequences a step leave the profiling run's sampler less to hold: more KV cache.
    small, large = (
        helper.planner.predict(query(max_num_seqs=seqs)).memory.kv_cache_gb_per_gpu
        for seqs in (256, 1024)
    )
    assert small > large + 1.0


def test_batching_settings_change_latency(helper: Assistant) -> None:
    predict = helper.planner.predict
    busy = {"concurrency": 64, "qps": None}
    free = predict(query(**busy))
    capped = predict(query(**busy, max_num_seqs=16))
    assert capped.ttft_ms and free.ttft_ms and capped.tpot_ms and free.tpot_ms
    # 48 of 64 requests wait for a sequence slot; those running share smaller steps.
    assert capped.ttft_ms.mean > 3 * free.ttft_ms.mean
    assert capped.tpot_ms.mean < free.tpot_ms.mean
    long_prompts = {"isl": 8000, "qps": 0.3}
    wide, narrow = (
        predict(query(**long_prompts, max_num_batched_tokens=8192)),
        predict(query(**long_prompts, max_num_batched_tokens=1024, max_num_seqs=256)),
    )
    assert wide.ttft_ms and narrow.ttft_ms
    # Eight chunks instead of one: the same prompt compute (each chunk is compute bound, its
    # weight reads hidden), plus seven more steps' fixed costs and decode batches.
    assert narrow.stable and wide.stable
    assert narrow.ttft_ms.mean > 1.05 * wide.ttft_ms.mean


def test_prefix_cache_hits_take_prefill_away(helper: Assistant) -> None:
    predict = helper.planner.predict
    cold, warm = predict(query(qps=3.0)), predict(query(qps=3.0, prefix_cache_hit_rate=0.8))
    assert cold.ttft_ms and warm.ttft_ms
    assert warm.ttft_ms.p90 < 0.6 * cold.ttft_ms.p90
    simulated = helper.planner.simulate(query(qps=6.0, prefix_cache_hit_rate=0.8), requests=200)
    assert simulated.ttft_ms and simulated.ttft_ms.p50 < cold.ttft_ms.p50


def test_arrivals_queue_by_their_burstiness(helper: Assistant) -> None:
    predict = helper.planner.predict
    limit = predict(query(qps=0.1)).max_sustainable_qps
    assert limit is not None and 1 < limit < 10
    p90 = []
    for arrival in (
        {"arrival": "constant"},
        {"arrival": "poisson"},
        {"arrival": "gamma", "burstiness": 0.25},
    ):
        near, past = (
            predict(query(qps=0.85 * limit, **arrival)),
            predict(query(qps=1.05 * limit, **arrival)),
        )
        assert near.stable and near.ttft_ms is not None
        p90.append(near.ttft_ms.p90)
        # Bursts queue more, but the long-run rate a replica serves is the same.
        assert not past.stable and past.ttft_ms is None
    assert p90[0] < p90[1] < p90[2]
    assert query(arrival="gamma", burstiness=0.25).arrival_cv2 == 4.0
    assert query(arrival="constant").arrival_cv2 == 0.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"burstiness": 0.5}, "burstiness shapes gamma arrivals: set arrival to gamma"),
        ({"enable_prefix_caching": False, "prefix_cache_hit_rate": 0.5}, "needs enable_prefix"),
        ({"max_num_batched_tokens": 256, "max_num_seqs": 1024}, "is below max_num_seqs (1024)"),
        ({"prefix_cache_hit_rate": 1.0}, "less than 1"),
    ],
)
def test_inconsistent_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        query(**changes)


def test_a_deployment_renders_the_settings_its_options_were_predicted_with(
    helper: Assistant,
) -> None:
    engine = EngineSettings(
        max_num_seqs=96,
        max_num_batched_tokens=4096,
        gpu_memory_utilization=0.85,
        kv_cache_dtype="fp8",
        enable_prefix_caching=True,
        prefix_cache_hit_rate=0.5,
    )
    intent = helper.read("A chatbot for 2,000 employees on L40S").model_copy(
        update={"engine": engine}
    )
    spec = helper.specify(intent)
    assert spec.engine == engine
    options = helper.recommend(spec).options
    assert options
    plan = helper.deployment_plan(options[0], spec, "support", "ml")
    args = vllm_args(plan)
    for expected in (
        "--max-num-seqs=96",
        "--max-num-batched-tokens=4096",
        "--gpu-memory-utilization=0.85",
        "--kv-cache-dtype=fp8",
        "--enable-prefix-caching",
        f"--max-model-len={spec.max_context_tokens}",
    ):
        assert expected in args
    # The same search without the settings predicts other numbers: they were used.
    plain = helper.recommend(spec.model_copy(update={"engine": EngineSettings()})).options
    assert (plain[0].option.max_qps_per_replica, plain[0].option.model_id) != (
        options[0].option.max_qps_per_replica,
        options[0].option.model_id,
    )


def test_a_capacity_search_takes_the_engine_settings(helper: Assistant) -> None:
    spec = CapacitySpec(
        traffic=TrafficProfile(
            prompt_tokens_mean=3000,
            prompt_tokens_p95=6000,
            output_tokens_mean=300,
            output_tokens_p95=600,
            steady_qps=2,
            peak_qps=4,
        ),
        slo=SLOTargets(ttft_p90_ms=2000, tpot_p90_ms=60),
        constraints=SearchConstraints(models=["Qwen/Qwen3-32B"], gpus=["H100-SXM-80GB"]),
        simulate_top=0,
    )
    fp16_kv = search(helper.planner, spec, helper.prices).options
    fp8_kv = search(
        helper.planner, spec.model_copy(update={"engine": EngineSettings(kv_cache_dtype="fp8")}),
        helper.prices,
    ).options  # fmt: skip
    one_gpu = {(o.tp, o.precision): o for o in fp16_kv}
    one_gpu_fp8 = {(o.tp, o.precision): o for o in fp8_kv}
    key = (1, "bf16")
    assert key in one_gpu and key in one_gpu_fp8
    # bf16 weights leave ~8 GB of KV on one H100: fp8 KV holds twice the sequences.
    assert one_gpu_fp8[key].max_qps_per_replica > 1.2 * one_gpu[key].max_qps_per_replica


def test_a_token_budget_below_the_gpus_default_batch_caps_the_batch(helper: Assistant) -> None:
    """A budget of 512 tokens keeps vLLM's 256 sequences on an L40S; on an H100, whose
    default is 1,024 sequences, vLLM would refuse the pair: the batch is capped at the budget,
    and the prediction says so."""
    plan = helper.planner.plan
    assert plan(query(max_num_batched_tokens=512)).cfg.max_num_seqs == 256
    h100 = helper.planner.predict(query(gpu_id="H100-SXM-80GB", max_num_batched_tokens=512))
    assert h100.fits and h100.query.max_num_seqs == 512
