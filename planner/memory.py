"""Layer 1: does it fit, and how much KV cache is left for sequences?

Per GPU: weights / TP + runtime overhead + KV cache must fit under
`memory_gb x gpu_memory_utilization`, as vLLM sizes its cache at start-up.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from planner.specs import BYTES_PER_WEIGHT, Frozen, GpuSpec, ModelSpec, ServingConfig

GIB = 1024**3
GB = 1e9

ArrayOrFloat = NDArray[np.float64] | float

RUNTIME_RESERVED_GIB = 1.5
"""CUDA context, CUDA graphs and allocator slack that vLLM's profiling run leaves outside the
KV cache; TP adds communication buffers (see `overhead_bytes`)."""


class MemoryFit(Frozen):
    fits: bool
    reason: str | None
    """Why it does not fit, in words that say what to change."""
    context_tokens: int
    weights_gb_per_gpu: float
    overhead_gb_per_gpu: float
    kv_cache_gb_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    kv_capacity_tokens: int
    """Tokens of context the KV cache holds at this context length."""
    max_concurrent_sequences: int
    """Sequences of `context_tokens` that fit at once (also capped by max_num_seqs)."""


def weight_bytes_per_gpu(model: ModelSpec, cfg: ServingConfig) -> float:
    # Embeddings stay in 16 bit in quantised checkpoints; everything else is quantised.
    embedding = float(model.vocab_size * model.hidden_size)
    rest = model.params_total_b * 1e9 - embedding
    return (embedding * 2.0 + rest * BYTES_PER_WEIGHT[cfg.precision]) / cfg.tp


def kv_heads_per_gpu(model: ModelSpec, tp: int) -> int:
    """KV heads are split across TP ranks; with fewer heads than ranks they are replicated."""
    return math.ceil(model.num_kv_heads / tp)


def kv_bytes_per_token_per_gpu(model: ModelSpec, cfg: ServingConfig) -> float:
    """KV bytes one token of context costs on each GPU, in the layers whose cache grows."""
    element = cfg.kv_bytes_per_element
    if model.attention == "mla":
        # The compressed latent and the RoPE key are shared by all heads, so every TP rank
        # keeps the whole thing.
        width = (model.kv_lora_rank or 0) + (model.qk_rope_head_dim or 0)
        return model.num_layers * width * element
    per_layer = 2 * kv_heads_per_gpu(model, cfg.tp) * model.head_dim * element
    return model.kv_cached_layers * per_layer


def window_kv_bytes_per_token_per_gpu(model: ModelSpec, cfg: ServingConfig) -> float:
    """KV bytes per token of the sliding-window layers, which keep only their window."""
    if model.attention != "hybrid_sliding" or not model.sliding_window_tokens:
        return 0.0
    per_layer = 2 * kv_heads_per_gpu(model, cfg.tp) * model.head_dim * cfg.kv_bytes_per_element
    return (model.sliding_window_layers or 0) * per_layer


def sequence_bytes(
    per_token: ArrayOrFloat,
    window_per_token: ArrayOrFloat,
    window_tokens: ArrayOrFloat,
    context_tokens: float,
) -> ArrayOrFloat:
    """KV bytes of one sequence: growing layers hold the whole context, sliding-window layers
    at most their window. Works on scalars and on arrays of candidates alike."""
    window = np.minimum(context_tokens, window_tokens)
    result: ArrayOrFloat = per_token * context_tokens + window_per_token * window
    return result


def kv_bytes_per_sequence(model: ModelSpec, cfg: ServingConfig, context_tokens: float) -> float:
    """KV bytes one sequence of `context_tokens` holds on each GPU."""
    return float(
        sequence_bytes(
            kv_bytes_per_token_per_gpu(model, cfg),
            window_kv_bytes_per_token_per_gpu(model, cfg),
            model.sliding_window_tokens or 0,
            context_tokens,
        )
    )


def overhead_bytes(model: ModelSpec, cfg: ServingConfig) -> float:
    """Activation peak of one full token budget, sampler logits, runtime and TP buffers."""
    tokens = cfg.max_num_batched_tokens
    ffn = model.intermediate_size or (
        (model.moe_intermediate_size or 0) * (model.moe_experts_per_token or 1)
    )
    activations = tokens * (4 * model.hidden_size + 2 * ffn / cfg.tp) * 2.0
    logits = min(cfg.max_num_seqs, tokens) * model.vocab_size * 4.0 / cfg.tp
    communication = 0.5 * GIB if cfg.tp > 1 else 0.0
    return RUNTIME_RESERVED_GIB * GIB + activations + logits + communication


def fit(model: ModelSpec, gpu: GpuSpec, cfg: ServingConfig, context_tokens: int) -> MemoryFit:
    """Memory fit of `model` on `cfg.tp` x `gpu` for sequences of `context_tokens`."""
    usable = gpu.memory_gb * GB * cfg.gpu_memory_utilization
    weights = weight_bytes_per_gpu(model, cfg)
    overhead = overhead_bytes(model, cfg)
    kv_total = max(0.0, usable - weights - overhead)
    per_token = kv_bytes_per_token_per_gpu(model, cfg)
    per_sequence = kv_bytes_per_sequence(model, cfg, max(context_tokens, 1))
    sequences = int(kv_total // per_sequence) if per_sequence > 0 else 0
    reason = None
    if cfg.tp > gpu.gpus_per_node:
        reason = f"tp {cfg.tp} exceeds the {gpu.gpus_per_node} GPUs of one {gpu.id} node"
    elif model.num_attention_heads % cfg.tp:
        reason = f"{model.num_attention_heads} attention heads do not split over tp {cfg.tp}"
    elif context_tokens > model.max_context_tokens:
        reason = (
            f"context of {context_tokens} tokens exceeds the model's maximum of "
            f"{model.max_context_tokens}"
        )
    elif weights + overhead >= usable:
        reason = (
            f"weights ({weights / GB:.1f} GB) and runtime ({overhead / GB:.1f} GB) per GPU "
            f"exceed the usable {usable / GB:.1f} GB; use more GPUs or a lower precision"
        )
    elif sequences < 1:
        reason = (
            f"KV cache of {kv_total / GB:.1f} GB per GPU cannot hold one sequence of "
            f"{context_tokens} tokens; use more GPUs, fp8 KV cache or a shorter context"
        )
    return MemoryFit.model_construct(
        fits=reason is None,
        reason=reason,
        context_tokens=context_tokens,
        weights_gb_per_gpu=weights / GB,
        overhead_gb_per_gpu=overhead / GB,
        kv_cache_gb_per_gpu=kv_total / GB,
        kv_bytes_per_token_per_gpu=per_token,
        kv_capacity_tokens=int(kv_total / per_sequence * context_tokens) if per_sequence else 0,
        max_concurrent_sequences=min(sequences, cfg.max_num_seqs),
    )
