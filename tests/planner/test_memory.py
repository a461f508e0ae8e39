"""Memory fit against numbers checked by hand from each model's config.json, and against the
KV cache vLLM's own start-up logs print."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kb.catalog import planner
from kb.db import session_scope
from planner.memory import (
    CUDA_HIDDEN_MIB,
    GIB,
    MIB,
    NON_TORCH_GIB,
    SAMPLER_COPIES,
    TP_BUFFERS_GIB,
    fit,
    kv_bytes_per_sequence,
    kv_bytes_per_token_per_gpu,
    recurrent_state_bytes,
)
from planner.predict import Planner
from planner.specs import EngineSettings, ServingConfig


@pytest.fixture(scope="module")
def catalog(seeded_sqlite_url: str) -> Planner:
    with session_scope(seeded_sqlite_url) as session:
        return planner(session=session)


@pytest.mark.parametrize(
    ("model_id", "tp", "kv_bytes"),
    [
        # 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes
        ("meta-llama/Llama-3.1-8B-Instruct", 1, 2 * 32 * 8 * 128 * 2),
        # 80 layers, 8 KV heads split over 4 GPUs = 2 per GPU
        ("meta-llama/Llama-3.1-70B-Instruct", 4, 2 * 80 * 2 * 128 * 2),
        # 8 KV heads over 16 ranks would replicate: at tp 8, one head each
        ("meta-llama/Llama-3.1-405B-Instruct", 8, 2 * 126 * 1 * 128 * 2),
        # MoE with GQA: Mixtral 8x7B, 32 layers, 8 KV heads
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 2, 2 * 32 * 4 * 128 * 2),
        # MLA: 61 layers x (512 latent + 64 RoPE) x 2 bytes, the same on every TP rank
        ("deepseek-ai/DeepSeek-V3", 8, 61 * (512 + 64) * 2),
        # Qwen3-235B-A22B MoE: 94 layers, 4 KV heads x 128
        ("Qwen/Qwen3-235B-A22B", 4, 2 * 94 * 1 * 128 * 2),
    ],
)
def test_kv_bytes_per_token(catalog: Planner, model_id: str, tp: int, kv_bytes: int) -> None:
    model = catalog.models[model_id]
    cfg = ServingConfig(tp=tp, precision=model.precision)
    assert kv_bytes_per_token_per_gpu(model, cfg) == kv_bytes


def test_sliding_window_layers_hold_at_most_the_window(catalog: Planner) -> None:
    model = catalog.models["google/gemma-2-9b-it"]  # 42 layers, 21 local (4096), 8 KV x 256
    cfg = ServingConfig(precision="bf16")
    per_layer_token = 2 * 8 * 256 * 2
    expected = 21 * per_layer_token * 8192 + 21 * per_layer_token * 4096
    assert kv_bytes_per_sequence(model, cfg, 8192) == expected


def test_llama_8b_on_one_l4_and_h100(catalog: Planner) -> None:
    model = catalog.models["meta-llama/Llama-3.1-8B-Instruct"]
    cfg = ServingConfig(precision="bf16")
    h100 = fit(model, catalog.gpus["H100-SXM-80GB"], cfg, 4096)
    # The checkpoint's safetensors total_size, 16,060,522,496 bytes
    assert h100.weights_gb_per_gpu == pytest.approx(16.06, abs=0.01)
    assert h100.weights_basis == "checkpoint size"
    # nvidia-smi's 81,559 MiB (not "80 GB"), less what the driver keeps from CUDA
    usable = (81559 - CUDA_HIDDEN_MIB) * 2**20 * 0.9 / 1e9
    kv_gb = usable - h100.weights_gb_per_gpu - h100.overhead_gb_per_gpu
    assert h100.kv_cache_gb_per_gpu == pytest.approx(kv_gb)
    assert h100.kv_capacity_tokens == pytest.approx(kv_gb * 1e9 / 131072, rel=1e-3)
    assert h100.max_concurrent_sequences == int(kv_gb * 1e9 // (131072 * 4096))
    l4 = fit(model, catalog.gpus["L4-PCIE-24GB"], cfg, 4096)
    assert l4.fits and l4.max_concurrent_sequences < h100.max_concurrent_sequences / 10


def test_device_memory_is_what_the_driver_reports(catalog: Planner) -> None:
    """HBM parts report about 7 % more bytes than their marketing GB; a tight fit gains far
    more than 7 % of KV cache from it."""
    for gpu_id, nominal_gb in (
        ("A100-SXM-80GB", 80),
        ("H100-SXM-80GB", 80),
        ("H200-SXM-141GB", 141),
        ("B200-SXM-180GB", 180),
        ("MI300X-OAM-192GB", 192),
    ):
        reported_gb = catalog.gpus[gpu_id].memory_mib * 2**20 / 1e9
        assert 1.06 < reported_gb / nominal_gb < 1.08, gpu_id
    qwen = catalog.models["Qwen/Qwen3-32B"]
    tight = fit(qwen, catalog.gpus["H100-SXM-80GB"], ServingConfig(precision="bf16"), 4096)
    # 3.0 GB when 80 GB was read as decimal; about 8 GB as the device reports it
    assert tight.fits and tight.kv_cache_gb_per_gpu >= 7.0


def test_a_mixed_precision_checkpoint_weighs_what_it_stores(catalog: Planner) -> None:
    """Llama-3.1-405B-Instruct-FP8 keeps attention and its first and last layers in bf16."""
    fp8 = catalog.models["meta-llama/Llama-3.1-405B-Instruct-FP8"]
    h100 = catalog.gpus["H100-SXM-80GB"]
    cfg = ServingConfig(tp=8, precision="fp8")
    stored = fit(fp8, h100, cfg, 8192)
    assert stored.weights_gb_per_gpu == pytest.approx(60.9, rel=0.05)
    assert stored.weights_basis == "checkpoint size"
    formula = fit(fp8.model_copy(update={"weights_bytes": None}), h100, cfg, 8192)
    assert formula.weights_basis == "parameter formula" and formula.weights_gb_per_gpu < 52
    # The bf16 layers take the KV cache of about half the sequences at 8k: 1.8x fewer on the
    # memory the H100 reports, 2.5x fewer had its memory been read as 80 decimal GB.
    ratio = formula.max_concurrent_sequences / stored.max_concurrent_sequences
    assert 1.6 < ratio < 2.0
    decimal = h100.model_copy(update={"memory_mib": int(80e9 / 2**20)})
    decimal_ratio = (
        fit(
            fp8.model_copy(update={"weights_bytes": None}), decimal, cfg, 8192
        ).max_concurrent_sequences
        / fit(fp8, decimal, cfg, 8192).max_concurrent_sequences
    )
    assert decimal_ratio == pytest.approx(2.5, abs=0.15)
    # Kimi-K2.5: int4 experts in groups of 32, attention and shared experts bf16, ~595 GB.
    kimi = fit(
        catalog.models["moonshotai/Kimi-K2.5"], h100, ServingConfig(tp=8, precision="int4"), 4096
    )
    assert not kimi.fits and "checkpoint size" in (kimi.reason or "")
    assert kimi.weights_gb_per_gpu * 8 == pytest.approx(595, rel=0.01)


def test_linear_attention_layers_hold_a_fixed_state_per_sequence(catalog: Planner) -> None:
    """Qwen3.5-397B's 45 Gated DeltaNet layers keep an fp32 recurrent state of ~189 MB a
    sequence, whatever its length; only its 15 full-attention layers grow a KV cache."""
    model = catalog.models["Qwen/Qwen3.5-397B-A17B"]
    one = recurrent_state_bytes(model, 1)
    assert one == pytest.approx(189e6, rel=0.03)
    assert recurrent_state_bytes(model, 8) == pytest.approx(one / 8)
    cfg = ServingConfig(tp=8, precision="bf16")
    per_token = kv_bytes_per_token_per_gpu(model, cfg)
    assert per_token == 15 * 2 * 1 * 256 * 2  # 2 KV heads over 8 ranks: one each
    assert kv_bytes_per_sequence(model, cfg, 1000) == pytest.approx(per_token * 1000 + one / 8)
    h200 = fit(model, catalog.gpus["H200-SXM-141GB"], cfg, 1000)
    assert h200.state_bytes_per_sequence_per_gpu == pytest.approx(one / 8)
    no_state = fit(
        model.model_copy(update={"linear_num_value_heads": 0}),
        catalog.gpus["H200-SXM-141GB"],
        cfg,
        1000,
    )
    assert h200.max_concurrent_sequences < no_state.max_concurrent_sequences


def test_what_does_not_fit_says_why(catalog: Planner) -> None:
    v3 = catalog.models["deepseek-ai/DeepSeek-V3"]  # 671B parameters in FP8
    on_h100 = fit(v3, catalog.gpus["H100-SXM-80GB"], ServingConfig(tp=8, precision="fp8"), 4096)
    assert not on_h100.fits
    assert "exceed the usable 76.5 GB" in (on_h100.reason or "")
    on_h200 = fit(v3, catalog.gpus["H200-SXM-141GB"], ServingConfig(tp=8, precision="fp8"), 4096)
    assert on_h200.fits and on_h200.max_concurrent_sequences > 10
    wide = fit(v3, catalog.gpus["H200-SXM-141GB"], ServingConfig(tp=16, precision="fp8"), 4096)
    assert wide.reason == "tp 16 exceeds the 8 GPUs of one H200-SXM-141GB node"
    long = fit(
        catalog.models["google/gemma-2-9b-it"],
        catalog.gpus["H100-SXM-80GB"],
        ServingConfig(precision="bf16"),
        32768,
    )
    assert "exceeds the model's maximum of 8192" in (long.reason or "")


def test_fp8_kv_cache_doubles_capacity(catalog: Planner) -> None:
    model = catalog.models["meta-llama/Llama-3.1-70B-Instruct"]
    gpu = catalog.gpus["H100-SXM-80GB"]
    auto = fit(model, gpu, ServingConfig(tp=4, precision="fp8"), 8192)
    fp8 = fit(model, gpu, ServingConfig(tp=4, precision="fp8", kv_cache_dtype="fp8"), 8192)
    assert fp8.kv_capacity_tokens == pytest.approx(2 * auto.kv_capacity_tokens, rel=1e-3)


LOGS = Path(__file__).resolve().parents[2] / "kb" / "data" / "vllm_memory.csv"
ROWS = list(csv.DictReader(LOGS.open()))


def test_the_memory_constants_are_what_the_fitted_logs_say(catalog: Planner) -> None:
    """Each constant of `planner.memory`, recomputed from the start-up logs split `fit`: the
    memory CUDA sees, the sampler's copies of the logits, what lies outside PyTorch on one
    GPU and on several. A constant typed in against the logs fails here."""
    fitted = [row for row in ROWS if row["split"] == "fit"]
    for row in fitted:
        gpu = catalog.gpus[row["gpu"]]
        hidden_mib = gpu.memory_mib - float(row["cuda_total_gib"]) * GIB / MIB
        assert hidden_mib == pytest.approx(CUDA_HIDDEN_MIB, abs=10), row["id"]
        vocab = catalog.models[row["model_id"]].vocab_size
        copies = float(row["torch_peak_gib"]) * GIB / (int(row["max_num_seqs"]) * vocab * 4)
        assert copies == pytest.approx(SAMPLER_COPIES, rel=0.05), row["id"]
        outside = NON_TORCH_GIB + (TP_BUFFERS_GIB if int(row["tp"]) > 1 else 0.0)
        assert float(row["non_torch_gib"]) == pytest.approx(outside, abs=0.05), row["id"]
    assert {int(row["tp"]) for row in fitted} >= {1, 2}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_the_kv_cache_vllm_logged_at_start_up(catalog: Planner, row: dict[str, str]) -> None:
    """The KV cache vLLM sized at start-up, as its logs print it: within 5 % where the log
    states the engine's version and settings (the `fit` rows set the constants, the
    `check` rows of the same runs test them), within 10 % where a table quotes it with the
    version and memory share unstated. A KV-tight replica (a 72B model on two 80 GB GPUs:
    3 GiB of cache) is where an error of a GiB or two halves what it sustains."""
    model, gpu = catalog.models[row["model_id"]], catalog.gpus[row["gpu"]]
    settings = EngineSettings.model_validate(
        {
            name: row[name]
            for name in ("max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization")
            if row[name]
        }
    )
    cfg = ServingConfig(tp=int(row["tp"]), precision=row["precision"], **settings.on(gpu))
    found = fit(model, gpu, cfg, 2048)
    logged_gb = float(row["kv_cache_gib"]) * 2**30 / 1e9
    tolerance = 0.05 if row["engine_version"] else 0.10
    assert found.kv_cache_gb_per_gpu == pytest.approx(logged_gb, rel=tolerance)
    if row["torch_peak_gib"]:
        logged = float(row["torch_peak_gib"]) + float(row["non_torch_gib"])
        assert found.overhead_gb_per_gpu == pytest.approx(logged * 2**30 / 1e9, rel=0.10)
