"""Layer 1: does it fit, and how much KV cache is left for sequences?

Per GPU, as vLLM sizes its cache at start-up: the memory CUDA sees x
`gpu_memory_utilization`, less the weights / TP, the profiling run's activation peak and
the memory outside PyTorch (NCCL buffers across GPUs), is KV cache. CUDA graphs are captured
afterwards, out of the share left to other processes. Weights are what the checkpoint stores
where its size is known; a sequence holds KV cache for its context and, in linear-attention
layers, a fixed recurrent state.

The constants come from vLLM's own start-up logs (`kb/data/vllm_memory.csv`, the rows split
`fit`); the rows split `check` test them (tests/planner/test_memory.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from planner.specs import BYTES_PER_WEIGHT, Frozen, GpuSpec, ModelSpec, Precision, ServingConfig

GIB = 1024**3
MIB = 1024**2
GB = 1e9

ArrayOrFloat = NDArray[np.float64] | float

CUDA_HIDDEN_MIB = 470
"""Device memory the driver keeps from CUDA, and so from vLLM's share: an 80 GB H100 has
81,559 MiB in nvidia-smi and 79.19 GiB for CUDA (vLLM 0.19 logs)."""
NON_TORCH_GIB = 0.25
"""Memory the profiling run takes outside PyTorch on one GPU: cuBLAS workspaces (vLLM 0.19
logs)."""
TP_BUFFERS_GIB = 1.85
"""What a replica across GPUs adds outside PyTorch: NCCL and custom all-reduce buffers (2.07
to 2.21 GiB in all at TP 2 and 4)."""
SAMPLER_COPIES = 3.85
"""The profiling run samples `max_num_seqs` sequences over the whole vocabulary on every
rank: its peak holds about this many float32 copies of their logits (1.89 GiB for 1,024
sequences of Llama 3's 128,256-token vocabulary, 2.21 GiB of Qwen 2.5's 152,064, at TP 1
and 2 alike, vLLM 0.19 logs). It outweighs the forward pass's activations at vLLM's
default budgets."""


class MemoryFit(Frozen):
    fits: bool
    reason: str | None
    """Why it does not fit, in words that say what to change."""
    context_tokens: int
    weights_gb_per_gpu: float
    weights_basis: str = "parameter formula"
    """Where the weight bytes come from: the checkpoint's stated size, or the parameter
    count (where no checkpoint size is known, or the precision served differs). Defaults,
    here and below, read payloads recorded before 2026-12-06."""
    overhead_gb_per_gpu: float
    kv_cache_gb_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    state_bytes_per_sequence_per_gpu: float = 0.0
    """Fixed per-sequence state outside the KV cache (linear-attention layers)."""
    kv_capacity_tokens: int
    """Tokens of context the KV cache holds at this context length."""
    max_concurrent_sequences: int
    """Sequences of `context_tokens` that fit at once (also capped by max_num_seqs)."""


def usable_bytes(gpu: GpuSpec, cfg: ServingConfig) -> float:
    """What vLLM may take of one device: the memory CUDA sees x gpu_memory_utilization."""
    return (gpu.memory_mib - CUDA_HIDDEN_MIB) * MIB * cfg.gpu_memory_utilization


class WeightBytes(NamedTuple):
    """A whole model's weight bytes, split by how often a step reads them."""

    always_read: float
    """Attention, dense layers, shared experts, embeddings: read on every step."""
    routed_experts: float
    """Routed experts (MoE): a step reads those its tokens touch."""
    basis: str
    """The checkpoint's stated size, or the parameter formula (no size known, or another
    precision served than the checkpoint's)."""

    @property
    def total(self) -> float:
        return self.always_read + self.routed_experts


def weight_bytes(model: ModelSpec, precision: Precision) -> WeightBytes:
    """The model's weights served in `precision`.

    The parameter formula keeps embeddings in 16 bit, routed experts in `precision` and
    everything else in the checkpoint's `non_expert_precision` where it keeps those apart.
    A checkpoint's stated size holds what its layout really stores (layers kept in 16 bit,
    quantisation groups and scales): where it is known and served as published, it is the
    total, split between the parts as the formula splits it.
    """
    embedding = float(model.vocab_size * model.hidden_size)
    routed = model.routed_params_total
    rest = model.params_total_b * 1e9 - embedding - routed
    native = precision == model.precision
    rest_precision = (model.non_expert_precision if native else None) or precision
    always = embedding * 2.0 + rest * BYTES_PER_WEIGHT[rest_precision]
    experts = routed * BYTES_PER_WEIGHT[precision]
    if model.weights_bytes is not None and native:
        scale = model.weights_bytes / (always + experts)
        return WeightBytes(always * scale, experts * scale, "checkpoint size")
    return WeightBytes(always, experts, "parameter formula")


def weight_bytes_per_gpu(model: ModelSpec, cfg: ServingConfig) -> float:
    return weight_bytes(model, cfg.precision).total / cfg.tp


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


def recurrent_state_bytes(model: ModelSpec, tp: int) -> float:
    """Fixed state one sequence holds on each GPU in linear-attention layers, whatever its
    length: the recurrent matrix per value head (key x value width) and the short
    convolution's last `kernel - 1` inputs, both split over TP by heads."""
    layers = model.linear_attention_layers
    if not layers:
        return 0.0
    value_heads = model.linear_num_value_heads or 0
    key_dim, value_dim = model.linear_key_head_dim or 0, model.linear_value_head_dim or 0
    recurrent = value_heads * key_dim * value_dim * (model.linear_state_bytes_per_element or 2.0)
    conv_channels = 2 * (model.linear_num_key_heads or 0) * key_dim + value_heads * value_dim
    conv = conv_channels * max((model.linear_conv_kernel_dim or 1) - 1, 0) * 2.0
    return layers * (recurrent + conv) / tp


def sequence_bytes(
    per_token: ArrayOrFloat,
    window_per_token: ArrayOrFloat,
    window_tokens: ArrayOrFloat,
    state: ArrayOrFloat,
    context_tokens: float,
) -> ArrayOrFloat:
    """Bytes of one sequence: growing layers hold the whole context, sliding-window layers
    at most their window, linear-attention layers a fixed state. Works on scalars and on
    arrays of candidates alike."""
    window = np.minimum(context_tokens, window_tokens)
    result: ArrayOrFloat = per_token * context_tokens + window_per_token * window + state
    return result


def kv_bytes_per_sequence(model: ModelSpec, cfg: ServingConfig, context_tokens: float) -> float:
    """Bytes one sequence of `context_tokens` holds on each GPU (KV cache and state)."""
    return float(
        sequence_bytes(
            kv_bytes_per_token_per_gpu(model, cfg),
            window_kv_bytes_per_token_per_gpu(model, cfg),
            model.sliding_window_tokens or 0,
            recurrent_state_bytes(model, cfg.tp),
            context_tokens,
        )
    )


def overhead_bytes(model: ModelSpec, cfg: ServingConfig) -> float:
    """The profiling run's peak (one full token budget's activations, or sampling the most
    sequences a step runs, whichever is larger) and the memory outside PyTorch."""
    tokens = cfg.max_num_batched_tokens
    ffn = model.intermediate_size or (
        (model.moe_intermediate_size or 0) * (model.moe_experts_per_token or 1)
    )
    activations = tokens * (4 * model.hidden_size + 2 * ffn / cfg.tp) * 2.0
    sampler = SAMPLER_COPIES * min(cfg.max_num_seqs, tokens) * model.vocab_size * 4.0
    outside = NON_TORCH_GIB + (TP_BUFFERS_GIB if cfg.tp > 1 else 0.0)
    return max(activations, sampler) + outside * GIB


def fit(
    model: ModelSpec,
    gpu: GpuSpec,
    cfg: ServingConfig,
    context_tokens: int,
    held_tokens: float | None = None,
) -> MemoryFit:
    """Memory fit of `model` on `cfg.tp` x `gpu` for sequences of `context_tokens`; the
    sequences that decode at once are counted at `held_tokens` each (what one holds on
    average while it decodes; `context_tokens` where not given)."""
    usable = usable_bytes(gpu, cfg)
    checkpoint = weight_bytes(model, cfg.precision)
    weights, basis = checkpoint.total / cfg.tp, checkpoint.basis
    overhead = overhead_bytes(model, cfg)
    kv_total = max(0.0, usable - weights - overhead)
    per_token = kv_bytes_per_token_per_gpu(model, cfg)
    per_sequence = kv_bytes_per_sequence(model, cfg, max(context_tokens, 1))
    sequences = int(kv_total // per_sequence) if per_sequence > 0 else 0
    held = per_sequence if held_tokens is None else kv_bytes_per_sequence(model, cfg, held_tokens)
    decoding = int(kv_total // held) if held > 0 else 0
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
    elif cfg.max_model_len is not None and cfg.max_model_len > model.max_context_tokens:
        reason = (
            f"max_model_len {cfg.max_model_len} exceeds the model's maximum of "
            f"{model.max_context_tokens}"
        )
    elif cfg.max_model_len is not None and context_tokens > cfg.max_model_len:
        reason = (
            f"context of {context_tokens} tokens exceeds max_model_len {cfg.max_model_len}; "
            "raise max_model_len"
        )
    elif weights + overhead >= usable:
        reason = (
            f"weights ({weights / GB:.1f} GB, {basis}) and runtime ({overhead / GB:.1f} GB) per "
            f"GPU exceed the usable {usable / GB:.1f} GB; use more GPUs or a lower precision"
        )
    elif sequences < 1:
        reason = (
            f"KV cache of {kv_total / GB:.1f} GB per GPU cannot hold one sequence of "
            f"{context_tokens} tokens; use more GPUs, fp8 KV cache or a shorter context"
        )
    elif cfg.max_model_len is not None and kv_total < kv_bytes_per_sequence(
        model, cfg, cfg.max_model_len
    ):
        # vLLM checks this at start-up and refuses to serve.
        reason = (
            f"KV cache of {kv_total / GB:.1f} GB per GPU cannot hold one sequence of "
            f"max_model_len {cfg.max_model_len}: vLLM would not start; lower max_model_len"
        )
    return MemoryFit.model_construct(
        fits=reason is None,
        reason=reason,
        context_tokens=context_tokens,
        weights_gb_per_gpu=weights / GB,
        weights_basis=basis,
        overhead_gb_per_gpu=overhead / GB,
        kv_cache_gb_per_gpu=kv_total / GB,
        kv_bytes_per_token_per_gpu=per_token,
        state_bytes_per_sequence_per_gpu=recurrent_state_bytes(model, cfg.tp),
        kv_capacity_tokens=int(kv_total / per_sequence * context_tokens) if per_sequence else 0,
        max_concurrent_sequences=min(decoding, cfg.max_num_seqs),
    )
