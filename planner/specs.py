"""What the planner needs to know about a model, an accelerator and a vLLM configuration.

These are the planner's own types: the knowledge base maps its records onto them, and
nothing here knows where the facts came from.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Precision = Literal["bf16", "fp16", "fp8", "int8", "int4", "fp4"]
AttentionKind = Literal["mha", "gqa", "mla", "hybrid_sliding", "hybrid_linear"]
PRECISIONS: tuple[Precision, ...] = ("bf16", "fp16", "fp8", "int8", "int4", "fp4")

BYTES_PER_WEIGHT: dict[Precision, float] = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0 + 4 / (128 * 128),  # block scales are noise
    "int8": 1.0 + 2 / 128,  # per-channel/group scales
    "int4": 0.5 + 2 / 128,  # AWQ/GPTQ: fp16 scale (and zero) per group of 128
    "fp4": 0.5 + 1 / 16,  # NVFP4: an fp8 scale per 16 values (MXFP4: per 32, a bit less)
}


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


SizeClass = Literal["small dense", "large dense", "MoE"]
SMALL_DENSE_B = 15.0


class ModelSpec(Frozen):
    """Architecture facts of one checkpoint (from its config.json)."""

    id: str
    params_total_b: float = Field(gt=0)
    params_active_b: float = Field(gt=0)
    num_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    intermediate_size: int | None = None
    num_attention_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    max_context_tokens: int = Field(ge=1)
    attention: AttentionKind = "gqa"
    sliding_window_tokens: int | None = None
    sliding_window_layers: int | None = None
    full_attention_layers: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    moe_num_experts: int | None = None
    moe_experts_per_token: int | None = None
    moe_shared_experts: int | None = None
    moe_intermediate_size: int | None = None
    moe_dense_layers: int | None = None
    linear_num_key_heads: int | None = None
    linear_num_value_heads: int | None = None
    linear_key_head_dim: int | None = None
    linear_value_head_dim: int | None = None
    linear_conv_kernel_dim: int | None = None
    """hybrid_linear: the gated linear-attention layers' heads and short convolution, which
    set the fixed recurrent state each sequence holds (`memory.recurrent_state_bytes`)."""
    linear_state_bytes_per_element: float | None = None
    """Bytes of one element of that recurrent state: 4 where the checkpoint asks vLLM for an
    fp32 state (`mamba_ssm_dtype`); None: 16 bit, like the checkpoint."""
    precision: Precision
    """Weight precision the checkpoint is published in."""
    non_expert_precision: Precision | None = None
    """Where a checkpoint quantises only its routed experts: the precision it keeps the rest
    in (attention, shared experts, dense layers), e.g. bf16 beside int4 experts."""
    weights_bytes: float | None = Field(default=None, gt=0)
    """Bytes the checkpoint's weights occupy (its safetensors `total_size`); None where no
    checkpoint size is known, and the parameter count estimates it."""

    @property
    def architecture_key(self) -> str:
        """Checkpoints with the same architecture (base, instruct, quantised) share it."""
        return (
            f"{self.num_layers}L-{self.hidden_size}h-{self.num_attention_heads}q-"
            f"{self.num_kv_heads}kv-{self.moe_num_experts or 0}e{self.moe_experts_per_token or 0}"
            f"-{self.attention}"
        )

    @property
    def is_moe(self) -> bool:
        return bool(self.moe_num_experts and self.moe_experts_per_token)

    @property
    def size_class(self) -> SizeClass:
        """The class accuracy is judged and bands are drawn by: MoE, or dense up to or
        beyond SMALL_DENSE_B billion parameters (the "14B" models count as small)."""
        if self.is_moe:
            return "MoE"
        return "small dense" if self.params_total_b <= SMALL_DENSE_B else "large dense"

    @cached_property
    def moe_layers(self) -> int:
        return self.num_layers - (self.moe_dense_layers or 0) if self.is_moe else 0

    @cached_property
    def output_layer_params(self) -> float:
        """The output layer (vocab x hidden): it runs only for the tokens a step samples, one
        per decoding sequence, not for every prompt token a prefill computes."""
        return float(self.vocab_size * self.hidden_size)

    @cached_property
    def counted_embeddings(self) -> int:
        """How many vocab x hidden matrices the parameter count holds: 1 where the output layer
        shares the input embeddings (small models mostly do), else 2. A dense config tells
        by what its layers leave of the count; MoE checkpoints ship their own output layer."""
        if (
            self.is_moe
            or self.intermediate_size is None
            or self.attention in ("mla", "hybrid_linear")
        ):
            return 2
        attention = (
            self.hidden_size * self.head_dim * 2 * (self.num_attention_heads + self.num_kv_heads)
        )
        layers = self.num_layers * (attention + 3 * self.hidden_size * self.intermediate_size)
        rest = self.params_total_b * 1e9 - layers
        return 1 if rest < 1.5 * self.output_layer_params else 2

    @cached_property
    def routed_expert_params(self) -> float:
        """Parameters of one routed expert in one layer (gate, up and down projections)."""
        return 3.0 * self.hidden_size * (self.moe_intermediate_size or 0)

    @cached_property
    def routed_params_total(self) -> float:
        """All routed-expert parameters; the rest (attention, shared experts, dense layers,
        embeddings) is read on every step."""
        if not self.is_moe:
            return 0.0
        assert self.moe_num_experts is not None
        routed = self.moe_layers * self.moe_num_experts * self.routed_expert_params
        # Guard against configs whose per-expert width counts differently than assumed.
        return min(routed, 0.97 * self.params_total_b * 1e9)

    @property
    def linear_attention_layers(self) -> int:
        """Layers with a fixed recurrent state instead of a growing KV cache."""
        if self.attention != "hybrid_linear":
            return 0
        return self.num_layers - (self.full_attention_layers or self.num_layers)

    @property
    def kv_cached_layers(self) -> int:
        """Layers whose KV cache grows with the context."""
        if self.attention == "hybrid_linear":
            return self.full_attention_layers or self.num_layers
        if self.attention == "hybrid_sliding":
            return self.num_layers - (self.sliding_window_layers or 0)
        return self.num_layers


class GpuSpec(Frozen):
    """Datasheet figures of one accelerator (dense, no sparsity)."""

    id: str
    vendor: str
    architecture: str
    memory_mib: int = Field(gt=0)
    """Device memory as the driver reports it (nvidia-smi, NVML): an "80 GB" H100 has
    81,559 MiB, about 85.5 decimal GB."""
    memory_bandwidth_gb_s: float = Field(gt=0)
    bf16_tflops: float = Field(gt=0)
    fp8_tflops: float | None = None
    int8_tops: float | None = None
    fp4_tflops: float | None = None
    interconnect_bandwidth_gb_s: float = Field(gt=0)
    gpus_per_node: int = Field(ge=1)

    def supports(self, precision: Precision) -> bool:
        """Can vLLM serve weights of this precision here, natively or weight-only?"""
        if precision not in ("fp8", "fp4"):
            return True
        native = self.fp8_tflops if precision == "fp8" else self.fp4_tflops
        # NVIDIA Ampere and later dequantise FP8/FP4 weights in Marlin-style kernels;
        # other vendors need the native format.
        return native is not None or (self.vendor == "nvidia" and self.architecture != "turing")

    def tensor_tflops(self, precision: Precision) -> float:
        """Peak matmul rate for weights of `precision`.

        FP8 runs W8A8 where the generation has FP8 tensor cores (Ada, Hopper and later) and
        weight-only (dequantised to 16 bit) elsewhere; FP4 runs natively only on Blackwell;
        INT4 AWQ/GPTQ is always weight-only.
        """
        native = {"fp8": self.fp8_tflops, "fp4": self.fp4_tflops, "int8": self.int8_tops}
        rate = native.get(precision)
        return rate if rate is not None else self.bf16_tflops


KvCacheDtype = Literal["auto", "fp8"]
ArrivalProcess = Literal["poisson", "constant", "gamma"]


class EngineSettings(Frozen):
    """The vLLM engine settings a user chooses, under vLLM's own names: predictions assume
    them and deployments render exactly them."""

    max_num_seqs: int | None = Field(default=None, ge=1)
    """Sequences one engine step may run; None: vLLM's default on the GPU
    (`vllm_batch_defaults`)."""
    max_num_batched_tokens: int | None = Field(default=None, ge=16)
    """Chunked-prefill token budget per engine step; None: vLLM's default on the GPU."""
    max_model_len: int | None = Field(default=None, ge=16)
    """Longest context the engine accepts; vLLM refuses to start unless the KV cache holds one
    sequence of it. None: sized to the requests planned for."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Share of device memory vLLM takes for weights, activations and KV cache."""
    kv_cache_dtype: KvCacheDtype = "auto"
    """`auto` keeps the KV cache in 16 bit; `fp8` halves it."""
    enable_prefix_caching: bool = True
    """vLLM V1 caches prompt prefixes by default."""
    prefix_cache_hit_rate: float = Field(default=0.0, ge=0, lt=1)
    """Expected share of prompt tokens found in the prefix cache (shared system prompts,
    multi-turn history): prefill skips them. Needs `enable_prefix_caching`."""

    @model_validator(mode="after")
    def _consistent_engine(self) -> EngineSettings:
        if self.prefix_cache_hit_rate > 0 and not self.enable_prefix_caching:
            raise ValueError(
                "prefix_cache_hit_rate needs enable_prefix_caching: turn it on or set the "
                "hit rate to 0"
            )
        tokens, seqs = self.max_num_batched_tokens, self.max_num_seqs
        if tokens is not None and seqs is not None and tokens < seqs:
            raise ValueError(
                f"max_num_batched_tokens ({self.max_num_batched_tokens}) is below max_num_seqs "
                f"({self.max_num_seqs}); vLLM needs at least one token per sequence a step"
            )
        return self

    def on(self, gpu: GpuSpec) -> dict[str, Any]:
        """These settings, with vLLM's default on `gpu` where a batch limit is unset. A
        budget stated below the GPU's default batch caps the batch at it: vLLM would refuse
        the pair, and the deployment renders both."""
        seqs, tokens = vllm_batch_defaults(gpu)
        budget = self.max_num_batched_tokens or tokens
        return dict(self) | {
            "max_num_seqs": self.max_num_seqs or min(seqs, budget),
            "max_num_batched_tokens": budget,
        }

    @property
    def engine(self) -> EngineSettings:
        """Just the engine settings (of a subclass that adds more)."""
        return EngineSettings.model_validate(
            self.model_dump(include=set(EngineSettings.model_fields))
        )

    @property
    def kv_bytes_per_element(self) -> float:
        return 1.0 if self.kv_cache_dtype == "fp8" else 2.0

    @property
    def prefill_share(self) -> float:
        """Share of each prompt that prefill computes (the rest comes from the cache)."""
        return 1.0 - self.prefix_cache_hit_rate


LARGE_GPU_MIB = 70 * 1024
"""Device memory from which vLLM's OpenAI server batches more by default."""


def vllm_batch_defaults(gpu: GpuSpec) -> tuple[int, int]:
    """vLLM's defaults for the OpenAI server (`max_num_seqs`, `max_num_batched_tokens`): 1024
    and 8192 on GPUs of 70 GiB or more other than the A100, 256 and 2048 elsewhere (vLLM
    0.9 and later: pull requests 12369, 16158, 17073 and 17885; the A100 batches less
    because a larger budget cost it throughput)."""
    if gpu.memory_mib >= LARGE_GPU_MIB and "A100" not in gpu.id.upper():
        return 1024, 8192
    return 256, 2048


class ServingConfig(EngineSettings):
    """One replica's configuration: its parallelism and precision, and the engine settings,
    its batch limits resolved (`EngineSettings.on`)."""

    max_num_seqs: int = Field(default=1024, ge=1)
    max_num_batched_tokens: int = Field(default=8192, ge=16)

    tp: int = Field(default=1, ge=1)
    """Tensor-parallel degree: GPUs per replica."""
    precision: Precision
    """Weight precision served (the checkpoint's, or fp8 quantised online)."""

    @field_validator("tp")
    @classmethod
    def _tp(cls, tp: int) -> int:
        return power_of_two_tp(tp)


def power_of_two_tp(tp: int) -> int:
    """`tp`, if vLLM can shard attention heads over that many GPUs (a power of two)."""
    if tp & (tp - 1):
        raise ValueError(f"tp must be a power of two (1, 2, 4, 8), got {tp}")
    return tp
