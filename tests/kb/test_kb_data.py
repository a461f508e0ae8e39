"""The curated data itself: complete where the product needs it, and internally consistent."""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import pytest

from kb.records import ModelBase
from kb.seed import SeedSet, read_seed
from tests.conftest import MEASURED_DIR


@cache
def seed() -> SeedSet:
    return read_seed(measured_dir=MEASURED_DIR)


def records(collection: str) -> list:  # type: ignore[type-arg]
    return [item.record for item in seed().records[collection]]


REQUIRED_MODELS = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.1-405B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "mistralai/Mistral-Small-24B-Instruct-2501",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct",
    "Qwen/Qwen2.5-32B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen3-4B",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-14B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-235B-A22B",
    "Qwen/Qwen2.5-Coder-32B-Instruct",
    "microsoft/phi-4",
    "google/gemma-2-9b-it",
    "google/gemma-3-27b-it",
    "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-R1",
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "moonshotai/Kimi-K2.5",
    "MiniMaxAI/MiniMax-M2.5",
    "nvidia/Llama-3.1-8B-Instruct-FP8",
]
REQUIRED_GPUS = [
    "L4-PCIE-24GB",
    "A10G-PCIE-24GB",
    "L40S-PCIE-48GB",
    "A100-SXM-40GB",
    "A100-SXM-80GB",
    "A100-PCIE-80GB",
    "H100-PCIE-80GB",
    "H100-SXM-80GB",
    "H200-SXM-141GB",
    "B200-SXM-180GB",
    "MI300X-OAM-192GB",
]
USE_CASES = {
    "chatbot",
    "code_completion",
    "code_generation",
    "rag_qa",
    "summarization",
    "translation",
    "batch_extraction",
    "content_generation",
    "reasoning",
}


def test_catalog_covers_what_enterprises_deploy_and_every_measured_model() -> None:
    ids = {m.id for m in records("models")}
    assert not set(REQUIRED_MODELS) - ids
    assert {b.model_id for b in records("benchmarks")} <= ids
    assert any(m.family.startswith("granite") for m in records("models"))
    assert any("Distill" in m.id for m in records("models"))
    assert {m.precision for m in records("models")} >= {"bf16", "fp8", "int4", "fp4"}


def test_hardware_prices_and_use_cases_cover_the_minimum() -> None:
    gpus = {h.id: h for h in records("hardware")}
    assert not set(REQUIRED_GPUS) - set(gpus)
    assert {"H100-SXM-80GB", "H200-SXM-141GB", "B200-SXM-180GB", "B300-SXM-288GB"} <= set(gpus)
    assert (
        gpus["H100-SXM-80GB"].k8s_node_labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    )
    providers = {p.provider for p in records("prices") if p.pricing == "on_demand"}
    assert {"aws", "gcp", "azure"} <= providers
    assert any(p.pricing == "on_prem" for p in records("prices"))
    assert {u.id for u in records("use_cases")} == USE_CASES


def test_precision_support_follows_the_gpu_generation() -> None:
    for gpu in records("hardware"):
        if gpu.architecture.lower() in {"ampere", "turing"}:
            assert gpu.fp8_tflops is None, gpu.id
        if gpu.fp4_tflops is not None:
            assert gpu.fp8_tflops is not None and gpu.fp4_tflops >= gpu.fp8_tflops, gpu.id
        if gpu.fp8_tflops is not None:
            assert gpu.fp8_tflops >= gpu.bf16_tflops, gpu.id


def dense_parameter_estimate_b(m: ModelBase, tied_embeddings: bool) -> float:
    attention = m.hidden_size * m.head_dim * (2 * m.num_attention_heads + 2 * m.num_kv_heads)
    mlp = 3 * m.hidden_size * (m.intermediate_size or 0)
    embeddings = m.vocab_size * m.hidden_size * (1 if tied_embeddings else 2)
    return (m.num_layers * (attention + mlp) + embeddings) / 1e9


def test_dense_architectures_add_up_to_their_stated_parameter_count() -> None:
    """Catches a mistyped layer count, width or head count in the catalog."""
    checked = 0
    for m in records("models"):
        if m.is_moe or m.attention in ("mla", "hybrid_linear") or not m.intermediate_size:
            continue
        estimates = [dense_parameter_estimate_b(m, tied) for tied in (False, True)]
        closest = min(estimates, key=lambda e: abs(e - m.params_total_b))
        assert closest == pytest.approx(m.params_total_b, rel=0.12), m.id
        checked += 1
    assert checked >= 25


def test_moe_fields_are_consistent() -> None:
    for m in records("models"):
        if m.is_moe:
            assert m.moe_experts_per_token <= m.moe_num_experts, m.id
            assert m.moe_intermediate_size, m.id
            assert m.params_active_b < m.params_total_b, m.id


def test_variants_share_their_base_architecture() -> None:
    models = {m.id: m for m in records("models")}
    for m in models.values():
        if m.base_model and m.family == models[m.base_model].family:
            base = models[m.base_model]
            for field in ("num_layers", "hidden_size", "num_kv_heads", "head_dim"):
                assert getattr(m, field) == getattr(base, field), (m.id, field)


def test_use_case_traffic_model_is_one_consistent_mapping() -> None:
    peak_by_burstiness: dict[str, set[float]] = defaultdict(set)
    for u in records("use_cases"):
        peak_by_burstiness[u.burstiness].add(u.peak_factor)
        assert u.min_context_tokens >= u.prompt_tokens_p95 + u.output_tokens_p95, u.id
        assert u.e2e_p95_ms >= u.ttft_p90_ms, u.id
    assert all(len(factors) == 1 for factors in peak_by_burstiness.values()), peak_by_burstiness
    templates = {t.use_case_id for t in records("deployment_templates")}
    assert templates == USE_CASES


def test_device_memory_and_checkpoint_sizes_carry_their_sources() -> None:
    for gpu in records("hardware"):
        label = gpu.k8s_node_labels.get("nvidia.com/gpu.memory")
        # The GPU operator's label is the same driver-reported total, where it is set.
        assert label is None or int(label) == gpu.memory_mib, gpu.id
        assert gpu.memory_source and str(gpu.memory_mib) in gpu.memory_source, gpu.id
    sized = [m for m in records("models") if m.weights_bytes is not None]
    assert len(sized) >= 40
    for m in sized:
        assert m.weights_source, m.id
        # A stated size within reason of the parameters at the checkpoint's precision: bytes
        # per parameter between 4-bit-with-scales and 16 bit (a shard sum's headers, vision
        # towers and 16-bit layers included).
        per_parameter = m.weights_bytes / (m.params_total_b * 1e9)
        assert 0.5 <= per_parameter <= 2.1, (m.id, per_parameter)


def test_prices_name_their_instance_and_on_prem_is_one_basis() -> None:
    prices = records("prices")
    for p in prices:
        assert p.instance_type and p.gpus_per_instance >= 1, p.id
    on_prem = [p for p in prices if p.pricing == "on_prem"]
    assert on_prem
    for p in on_prem:
        # Whole systems (server, CPUs, network, power), never a bare card.
        assert p.gpus_per_instance == 8, p.id
        assert any(word in p.instance_type for word in ("DGX", "HGX", "server")), p.id
    # A TP-4 replica on L40S can be priced on AWS from an instance of four or more GPUs.
    assert any(
        p.gpu_id == "L40S-PCIE-48GB" and p.provider == "aws" and p.gpus_per_instance >= 4
        for p in prices
    )


def test_measured_rows_state_their_replica_size() -> None:
    rows = [r for r in records("benchmarks") if not r.id.startswith("vllm-public:")]
    assert len(rows) == 2567  # the corrected files of 2026-12-06
    by_engine: dict[str, int] = defaultdict(int)
    for row in rows:
        by_engine[row.engine] += 1
        if row.dp is not None and row.gpus is not None:
            assert row.gpus == row.tp * row.pp * row.dp, row.id
    assert by_engine == {"vllm": 897, "sglang": 631, "trtllm": 1039}
    dp_attention = [r for r in rows if r.engine == "vllm" and (r.dp or 1) > 1]
    assert len(dp_attention) == 58
    assert sum(r.dp is None for r in rows) == 15  # rows whose source leaves dp at 0


def test_public_measurements_carry_their_provenance_and_a_held_aside_split() -> None:
    rows = [r for r in records("benchmarks") if r.id.startswith("vllm-public:")]
    assert len(rows) >= 60
    splits: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for r in rows:
        assert r.engine == "vllm" and r.source.startswith("https://"), r.id
        assert r.measured_on is not None and r.note, r.id
        assert (r.concurrency is None) != (r.qps is None), r.id  # closed or open loop
        assert r.qps is None or r.arrival is not None, r.id
        assert r.ttft_mean_ms or r.ttft_p50_ms, r.id
        splits[(r.model_id, r.gpu_id, r.tp)].add(r.split)
    # Whole pairs are held aside: a pair is never partly fitted.
    assert all(len(found) == 1 for found in splits.values())
    held = {pair for pair, found in splits.items() if found == {"held_aside"}}
    assert len(held) >= 3
    assert sum(r.split == "held_aside" and r.qps is not None for r in rows) >= 5
