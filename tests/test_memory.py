"""Memory fit against numbers checked by hand from each model's config.json."""

from __future__ import annotations

import pytest

from kb.catalog import planner
from kb.db import session_scope
from planner.memory import fit, kv_bytes_per_sequence, kv_bytes_per_token_per_gpu
from planner.predict import Planner
from planner.specs import ServingConfig


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
    # 8.03e9 parameters x 2 bytes
    assert h100.weights_gb_per_gpu == pytest.approx(16.06, abs=0.01)
    usable = 80 * 0.9
    kv_gb = usable - h100.weights_gb_per_gpu - h100.overhead_gb_per_gpu
    assert h100.kv_cache_gb_per_gpu == pytest.approx(kv_gb)
    assert h100.kv_capacity_tokens == pytest.approx(kv_gb * 1e9 / 131072, rel=1e-3)
    assert h100.max_concurrent_sequences == int(kv_gb * 1e9 // (131072 * 4096))
    l4 = fit(model, catalog.gpus["L4-PCIE-24GB"], cfg, 4096)
    assert l4.fits and l4.max_concurrent_sequences < h100.max_concurrent_sequences / 10


def test_what_does_not_fit_says_why(catalog: Planner) -> None:
    v3 = catalog.models["deepseek-ai/DeepSeek-V3"]  # 671B parameters in FP8
    on_h100 = fit(v3, catalog.gpus["H100-SXM-80GB"], ServingConfig(tp=8, precision="fp8"), 4096)
    assert not on_h100.fits
    assert "exceed the usable 72.0 GB" in (on_h100.reason or "")
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
