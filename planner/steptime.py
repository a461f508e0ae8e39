"""Layer 2: how long one vLLM engine step takes.

A step runs the decode tokens of every running sequence plus up to the token budget of
prefill chunks. Its time is a roofline per part, with calibrated efficiencies:

    step = overhead + kernels x launch cost
         + (eager steps, with TP) all-reduces x stall
         + max(matmul FLOPs / (peak x e_compute), weight bytes / (bandwidth x e_memory))
         + KV bytes read / (bandwidth x e_memory)          (decode attention)
         + prefill attention FLOPs / (16-bit peak x e_compute)
         + TP all-reduces: 2 per layer, each latency + bytes / link bandwidth

Matmul FLOPs follow the active parameters less the embeddings; the output layer runs only
for the tokens a step samples (one per decoding sequence), not for a prefill's prompt tokens.
MoE: expert FLOPs follow the k active experts; the weight bytes of a step grow with the number of
distinct experts its tokens touch, E x (1 - (1 - k/E)^tokens) per layer (uniform routing);
and grouped expert GEMMs (routing, permutation, many small GEMMs) reach only a calibrated
share of the dense matmul rate.
Everything is NumPy-vectorised over candidates so that a search evaluates thousands at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planner.calibration import StepCalibration
from planner.memory import kv_bytes_per_token_per_gpu, weight_bytes
from planner.specs import GpuSpec, ModelSpec, ServingConfig

Array = NDArray[np.float64]

ACTIVATION_BYTES = 2.0
"""All-reduces move 16-bit activations."""
CUDA_GRAPH_MAX_TOKENS = 512
"""vLLM captures CUDA graphs for steps of up to this many tokens; larger steps (most
prefill chunks) launch every kernel from Python (fully so from twice this size). On one GPU
those launches run ahead of the kernels; with tensor parallelism every all-reduce waits
for the slowest rank's launches, and an eager step stalls there."""


@dataclass(frozen=True)
class StepCoefficients:
    """Per-candidate constants of the step-time model (one array entry per candidate)."""

    overhead_s: Array
    graphed_kernels_s: Array
    """Per-step launch cost of all kernels when the step replays a CUDA graph."""
    eager_sync_s: Array
    """Per-step stall of the all-reduces of a step launched eagerly (steps larger than the
    captured sizes; 0 on one GPU)."""
    request_overhead_s: Array
    """Per-request time outside engine steps (HTTP, tokenisation, first detokenisation)."""
    token_matmul_s: Array
    """Matmul time per token at the calibrated rates: attention projections, dense MLPs,
    shared experts, and the routed experts' grouped GEMMs at their own share of the rate."""
    sample_matmul_s: Array
    """The output layer's matmul time per sampled token (each decoding sequence's)."""
    always_read_bytes: Array
    expert_bytes: Array
    """Bytes of one routed expert across all MoE layers, per GPU (0 for dense models)."""
    experts: Array
    experts_per_token: Array
    """0 for dense models."""
    memory_bytes_per_s: Array
    kv_bytes_per_context_token: Array
    attention_flops_per_context_token: Array
    attention_flops_per_s: Array
    allreduce_fixed_s: Array
    allreduce_s_per_token: Array

    def __len__(self) -> int:
        return len(self.overhead_s)

    def take(self, index: slice | NDArray[np.intp]) -> StepCoefficients:
        """The same coefficients for a subset of the candidates."""
        return StepCoefficients(
            **{name: getattr(self, name)[index] for name in self.__dataclass_fields__}
        )


@dataclass(frozen=True)
class StepShape:
    """The calibration-free part of the coefficients: what the specs alone determine.

    Kept apart so that fitting can re-scale it for new parameters without rebuilding.
    """

    matmul_flops_per_token: Array
    output_flops_per_sample: Array
    expert_flops_per_token: Array
    matmul_peak_flops_per_s: Array
    always_read_bytes: Array
    expert_bytes: Array
    experts: Array
    experts_per_token: Array
    peak_memory_bytes_per_s: Array
    kv_bytes_per_context_token: Array
    attention_flops_per_context_token: Array
    attention_peak_flops_per_s: Array
    kernels: Array
    """GPU kernels one step launches (see `kernels_per_step`)."""
    allreduces: Array
    """All-reduces per step (0 without tensor parallelism)."""
    allreduce_bytes_per_token: Array
    """Bytes one token moves over the link per step, ring all-reduce."""
    peak_link_bytes_per_s: Array

    def take(self, index: np.ndarray) -> StepShape:
        """The same shape for a subset of the candidates."""
        return StepShape(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


ATTENTION_KERNELS = {"mha": 7, "gqa": 7, "hybrid_sliding": 7, "mla": 11, "hybrid_linear": 7}
"""Kernels of one attention block: norms, projections, RoPE, attention, output projection;
MLA adds the latent down/up projections, their norms and the absorbed BMMs."""
LINEAR_ATTENTION_EXTRA_KERNELS = 6
"""Gated linear-attention layers add convolution, gating and state-update kernels."""
DENSE_MLP_KERNELS = 3
MOE_KERNELS = 7
"""Router GEMM, top-k, token permutation, two grouped GEMMs, activation, combine."""


def kernels_per_step(model: ModelSpec) -> float:
    """Kernels one forward pass launches: per-kernel costs dominate small steps."""
    attention = ATTENTION_KERNELS[model.attention] * model.num_layers
    if model.attention == "hybrid_linear":
        attention += LINEAR_ATTENTION_EXTRA_KERNELS * (model.num_layers - model.kv_cached_layers)
    dense_layers = model.num_layers - model.moe_layers
    shared = DENSE_MLP_KERNELS * model.moe_layers if model.moe_shared_experts else 0
    ffn = DENSE_MLP_KERNELS * dense_layers + (MOE_KERNELS * model.moe_layers) + shared
    return float(attention + ffn)


def shape(candidates: Sequence[tuple[ModelSpec, GpuSpec, ServingConfig]]) -> StepShape:
    columns: dict[str, list[float]] = {name: [] for name in StepShape.__dataclass_fields__}
    for model, gpu, cfg in candidates:
        tp = cfg.tp
        # The input embeddings are a lookup; the output layer (the same matrix where tied) is
        # a matmul for sampled tokens only.
        embeddings = model.counted_embeddings * model.output_layer_params
        heads_per_gpu = model.num_attention_heads / tp
        routed_active = (
            model.moe_layers * (model.moe_experts_per_token or 0) * (model.routed_expert_params)
        )
        columns["matmul_flops_per_token"].append(
            2.0 * max(model.params_active_b * 1e9 - embeddings - routed_active, 0.0) / tp
        )
        columns["output_flops_per_sample"].append(2.0 * model.output_layer_params / tp)
        columns["expert_flops_per_token"].append(2.0 * routed_active / tp)
        columns["matmul_peak_flops_per_s"].append(gpu.tensor_tflops(cfg.precision) * 1e12)
        weights = weight_bytes(model, cfg.precision)
        columns["always_read_bytes"].append(weights.always_read / tp)
        # Per routed expert across its layers: a step reads those its tokens touch.
        columns["expert_bytes"].append(
            weights.routed_experts / (model.moe_num_experts or 1) / tp if model.is_moe else 0.0
        )
        columns["experts"].append(float(model.moe_num_experts or 1))
        columns["experts_per_token"].append(float(model.moe_experts_per_token or 0))
        columns["peak_memory_bytes_per_s"].append(gpu.memory_bandwidth_gb_s * 1e9)
        columns["kv_bytes_per_context_token"].append(kv_bytes_per_token_per_gpu(model, cfg))
        if model.attention == "mla":
            # Absorbed MLA attends in the latent space: per head, the latent + RoPE width.
            width = (model.kv_lora_rank or 0) + (model.qk_rope_head_dim or 0)
            attention = 4.0 * model.num_layers * heads_per_gpu * width
        else:
            attention = 4.0 * model.kv_cached_layers * heads_per_gpu * model.head_dim
        columns["attention_flops_per_context_token"].append(attention)
        columns["attention_peak_flops_per_s"].append(gpu.bf16_tflops * 1e12)
        columns["kernels"].append(kernels_per_step(model))
        columns["allreduces"].append(2.0 * model.num_layers if tp > 1 else 0.0)
        columns["allreduce_bytes_per_token"].append(
            model.hidden_size * ACTIVATION_BYTES * 2.0 * (tp - 1) / tp
        )
        # Vendors quote bidirectional link bandwidth; a ring sends one way.
        columns["peak_link_bytes_per_s"].append(gpu.interconnect_bandwidth_gb_s / 2 * 1e9)
    return StepShape(**{k: np.asarray(v, dtype=np.float64) for k, v in columns.items()})


def calibrate(s: StepShape, calibrations: Sequence[StepCalibration]) -> StepCoefficients:
    """Apply one calibration per candidate to the spec-only shape."""
    return apply(
        s,
        {
            name: np.fromiter(
                (getattr(c, name) for c in calibrations), np.float64, len(calibrations)
            )
            for name in StepCalibration.model_fields
        },
    )


def apply(s: StepShape, p: Mapping[str, Array]) -> StepCoefficients:
    """Scale the shape by calibration parameters given as one array per parameter name."""
    matmul_flops_per_s = s.matmul_peak_flops_per_s * p["compute_efficiency"]
    return StepCoefficients(
        overhead_s=p["step_overhead_ms"] / 1e3,
        graphed_kernels_s=s.kernels * p["kernel_overhead_us"] / 1e6,
        eager_sync_s=s.allreduces * p["eager_allreduce_overhead_us"] / 1e6,
        request_overhead_s=p["request_overhead_ms"] / 1e3
        + s.kernels * p["request_kernel_overhead_us"] / 1e6,
        token_matmul_s=(s.matmul_flops_per_token + s.expert_flops_per_token / p["moe_efficiency"])
        / matmul_flops_per_s,
        sample_matmul_s=s.output_flops_per_sample / matmul_flops_per_s,
        always_read_bytes=s.always_read_bytes,
        expert_bytes=s.expert_bytes,
        experts=s.experts,
        experts_per_token=s.experts_per_token,
        memory_bytes_per_s=s.peak_memory_bytes_per_s * p["memory_efficiency"],
        kv_bytes_per_context_token=s.kv_bytes_per_context_token,
        attention_flops_per_context_token=s.attention_flops_per_context_token,
        attention_flops_per_s=s.attention_peak_flops_per_s * p["compute_efficiency"],
        allreduce_fixed_s=s.allreduces * p["allreduce_latency_us"] / 1e6,
        allreduce_s_per_token=s.allreduces
        * s.allreduce_bytes_per_token
        / (s.peak_link_bytes_per_s * p["link_efficiency"]),
    )


def coefficients(
    candidates: Sequence[tuple[ModelSpec, GpuSpec, ServingConfig, StepCalibration]],
) -> StepCoefficients:
    return calibrate(
        shape([(m, g, cfg) for m, g, cfg, _ in candidates]), [calib for *_, calib in candidates]
    )


def step_seconds(
    c: StepCoefficients,
    decode_seqs: Array | float,
    decode_context: Array | float,
    prefill_tokens: Array | float,
    prefill_context: Array | float,
) -> Array:
    """Duration of one engine step, per candidate.

    decode_context: mean context of the decoding sequences; prefill_context: mean context
    each prefill token attends to (about half the prompt for a whole prompt, causal).
    Inputs broadcast against the candidates: stacking several step kinds on a leading axis
    evaluates them all in one call.
    """
    decode = np.asarray(decode_seqs)
    tokens = decode + np.asarray(prefill_tokens)
    touched = c.experts * -np.expm1(tokens * np.log1p(-c.experts_per_token / c.experts))
    touched = np.where(c.expert_bytes > 0, np.minimum(touched, c.experts), 0.0)
    weight_bytes = c.always_read_bytes + c.expert_bytes * touched
    # Only sampled tokens (one per decoding sequence) run the output layer.
    matmul = np.maximum(
        tokens * c.token_matmul_s + decode * c.sample_matmul_s,
        weight_bytes / c.memory_bytes_per_s,
    )
    # Decode attention streams the KV cache (memory bound); prefill attention is compute bound.
    kv_read = decode * np.asarray(decode_context) * c.kv_bytes_per_context_token
    prefill_attention_flops = (
        c.attention_flops_per_context_token
        * np.asarray(prefill_tokens)
        * np.asarray(prefill_context)
    )
    attention = kv_read / c.memory_bytes_per_s + prefill_attention_flops / c.attention_flops_per_s
    communication = c.allreduce_fixed_s + tokens * c.allreduce_s_per_token
    # A ramp rather than a cliff: a hard threshold gives the serving fixed point two
    # solutions near it, and predictions would jump between them as load changes.
    eager = np.clip((tokens - CUDA_GRAPH_MAX_TOKENS) / CUDA_GRAPH_MAX_TOKENS, 0.0, 1.0)
    launch = c.graphed_kernels_s + eager * c.eager_sync_s
    result: Array = c.overhead_s + launch + matmul + attention + communication
    return result
