"""Validated record shapes of the knowledge base.

Each `XBase` is what a seed file (kb/data/*.yaml) holds for one record and what the
loader validates; the table classes in `kb.tables` add only storage concerns. Units are
in the field names; every curated record carries where it came from (`source`) and when
(`retrieved`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, BigInteger, String
from sqlmodel import Field, SQLModel

Precision = Literal["bf16", "fp16", "fp8", "int8", "int4", "fp4"]
"""Weight precision. int4 covers AWQ/GPTQ (weight-only); fp4 covers NVFP4/MXFP4."""

Vendor = Literal["nvidia", "amd", "intel"]
PricingKind = Literal["on_demand", "spot", "committed_1y", "committed_3y", "on_prem"]
AttentionKind = Literal["mha", "gqa", "mla", "hybrid_sliding", "hybrid_linear"]
"""How the KV cache is laid out: plain multi-head/grouped-query attention, DeepSeek-style
multi-head latent attention (compressed KV), interleaved sliding-window + full layers, or
linear-attention layers (no growing KV cache) mixed with full-attention layers."""
Burstiness = Literal["low", "medium", "high"]
ServingMode = Literal["raw", "serverless"]
BenchmarkKind = Literal["measured", "estimated"]
BenchmarkSplit = Literal["fit", "held_aside"]
ModelOrigin = Literal["catalog", "user-added"]


class Provenance(SQLModel):
    source: str = Field(min_length=3)
    """Where the facts come from: a URL or a named document, specific enough to re-check."""
    retrieved: dt.date
    """When the source was read."""


def _positive(name: str, value: float | int | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


class PositiveNumbers(SQLModel):
    """Every numeric field of a record must be strictly positive where it is set."""

    @model_validator(mode="after")
    def _numbers_positive(self) -> PositiveNumbers:
        for name, value in self:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                _positive(name, value)
        return self


class ModelBase(Provenance, PositiveNumbers):
    """One servable checkpoint, with the architecture facts from its config.json."""

    id: str = Field(primary_key=True, min_length=3)
    """Hugging Face repository id, e.g. `meta-llama/Llama-3.1-8B-Instruct`."""
    display_name: str
    family: str
    """Model family, e.g. `llama-3.1`, `qwen3`; variants of one base share it."""
    base_model: str | None = None
    """For a quantized or fine-tuned variant: the catalog id it derives from."""
    params_total_b: float
    """Total parameters, billions (all experts for MoE)."""
    params_active_b: float
    """Parameters used per token, billions (equal to total for dense models)."""
    num_layers: int
    hidden_size: int
    intermediate_size: int | None = None
    """Dense MLP width (for MoE models: the dense layers' width, if any)."""
    num_attention_heads: int
    num_kv_heads: int
    """Key/value heads (GQA); equal to attention heads for MHA; 1 latent head for MLA."""
    head_dim: int
    vocab_size: int
    max_context_tokens: int
    attention: AttentionKind = Field(default="gqa", sa_type=String)
    sliding_window_tokens: int | None = None
    sliding_window_layers: int | None = None
    """How many of `num_layers` use the sliding window (hybrid_sliding)."""
    full_attention_layers: int | None = None
    """For hybrid_linear: how many layers keep a full KV cache."""
    kv_lora_rank: int | None = None
    """MLA: compressed KV width per token per layer."""
    qk_rope_head_dim: int | None = None
    """MLA: decoupled RoPE key width stored next to the latent."""
    moe_num_experts: int | None = None
    moe_experts_per_token: int | None = None
    moe_shared_experts: int | None = None
    moe_intermediate_size: int | None = None
    moe_dense_layers: int | None = None
    """Leading layers that are dense rather than MoE."""
    linear_num_key_heads: int | None = None
    linear_num_value_heads: int | None = None
    linear_key_head_dim: int | None = None
    linear_value_head_dim: int | None = None
    linear_conv_kernel_dim: int | None = None
    """hybrid_linear: the gated linear-attention layers' shape (config.json `linear_*`)."""
    linear_state_bytes_per_element: float | None = None
    """Bytes per element of the recurrent state vLLM keeps (4 for `mamba_ssm_dtype` float32;
    None: the checkpoint's 16-bit dtype)."""
    precision: Precision = Field(sa_type=String)
    """Weight precision of this checkpoint as published."""
    non_expert_precision: Precision | None = Field(default=None, sa_type=String)
    """Where only the routed experts are quantised: the precision of everything else."""
    quantization_method: str | None = None
    """e.g. `fp8`, `awq`, `gptq`, `compressed-tensors`, `modelopt`, `mxfp4`."""
    weights_bytes: int | None = Field(default=None, sa_type=BigInteger)
    """Bytes the checkpoint's weights occupy: its safetensors index's `total_size`. None where
    no size is known: the planner then estimates from the parameter count, and says so."""
    weights_source: str | None = None
    """Where `weights_bytes` was read (the index URL), or how it was computed."""
    origin: ModelOrigin = Field(default="catalog", sa_type=String)
    """`catalog` (curated seed) or `user-added` (`preflight kb add-model`)."""
    license: str
    """SPDX id where one exists, else the licence's own name (e.g. `llama3.1`)."""
    license_permissive: bool
    """True for OSI-style licences (Apache-2.0, MIT) with no use or user-count limits."""
    tasks: list[str] = Field(default_factory=list, sa_type=JSON)
    domains: list[str] = Field(default_factory=list, sa_type=JSON)
    languages: list[str] = Field(default_factory=list, sa_type=JSON)
    aliases: list[str] = Field(default_factory=list, sa_type=JSON)
    quality_benchmark: str | None = None
    """The quality signal's benchmark, the same one across the catalog (MMLU-Pro)."""
    quality_score: float | None = None
    """Score on `quality_benchmark`, 0-100."""
    quality_source: str | None = None
    quality_license: str | None = None
    """Licence under which the quality number may be redistributed."""

    @model_validator(mode="after")
    def _architecture_consistent(self) -> ModelBase:
        if self.params_active_b > self.params_total_b:
            raise ValueError("params_active_b exceeds params_total_b")
        if self.num_kv_heads > self.num_attention_heads:
            raise ValueError("num_kv_heads exceeds num_attention_heads")
        if (self.moe_num_experts is None) != (self.moe_experts_per_token is None):
            raise ValueError("set both moe_num_experts and moe_experts_per_token, or neither")
        if self.attention == "mla" and self.kv_lora_rank is None:
            raise ValueError("attention 'mla' needs kv_lora_rank")
        if self.attention == "hybrid_sliding" and not (
            self.sliding_window_tokens and self.sliding_window_layers
        ):
            raise ValueError(
                "attention 'hybrid_sliding' needs sliding_window_tokens and sliding_window_layers"
            )
        if self.attention == "hybrid_linear" and self.full_attention_layers is None:
            raise ValueError("attention 'hybrid_linear' needs full_attention_layers")
        if (self.weights_bytes is None) != (self.weights_source is None):
            raise ValueError("set both weights_bytes and weights_source, or neither")
        if (
            self.attention == "hybrid_linear"
            and self.linear_attention_layers
            and not (
                self.linear_num_value_heads
                and self.linear_key_head_dim
                and self.linear_value_head_dim
            )
        ):
            raise ValueError(
                "attention 'hybrid_linear' needs linear_num_value_heads, linear_key_head_dim "
                "and linear_value_head_dim (the recurrent state)"
            )
        if self.quality_score is not None and not (
            self.quality_benchmark and self.quality_source and self.quality_license
        ):
            raise ValueError(
                "quality_score needs quality_benchmark, quality_source, quality_license"
            )
        return self

    @property
    def is_moe(self) -> bool:
        return self.moe_num_experts is not None

    @property
    def linear_attention_layers(self) -> int:
        if self.attention != "hybrid_linear" or self.full_attention_layers is None:
            return 0
        return self.num_layers - self.full_attention_layers


class HardwareBase(Provenance, PositiveNumbers):
    """One accelerator model, with datasheet figures (dense, no sparsity)."""

    id: str = Field(primary_key=True)
    """`FAMILY-FORM-MEMORY`, e.g. `H100-SXM-80GB`, matching the measured data's names."""
    display_name: str
    vendor: Vendor = Field(sa_type=String)
    architecture: str
    """e.g. ampere, ada, hopper, blackwell, cdna3, gaudi3."""
    memory_mib: int
    """Device memory as the driver reports it (nvidia-smi / NVML total, MiB): the "80 GB" of a
    datasheet is HBM capacity in GiB-sized stacks, and vLLM sizes from the reported total."""
    memory_source: str = Field(min_length=3)
    """Where `memory_mib` was read (an nvidia-smi or amd-smi listing, a GPU operator label)."""
    memory_bandwidth_gb_s: float
    bf16_tflops: float
    fp8_tflops: float | None = None
    """None where the generation has no FP8 tensor cores."""
    int8_tops: float | None = None
    fp4_tflops: float | None = None
    """None where the generation has no FP4 tensor cores (before Blackwell)."""
    interconnect: str
    """e.g. `NVLink 4`, `PCIe Gen4`, `Infinity Fabric`."""
    interconnect_bandwidth_gb_s: float
    """Per-GPU bandwidth to its peers, GB/s, as the vendor states it (bidirectional)."""
    gpus_per_node: int
    """GPUs in the usual server of this accelerator (the TP ceiling within one node)."""
    tdp_w: float | None = None
    k8s_resource: str
    """Extended resource name, e.g. `nvidia.com/gpu`, `amd.com/gpu`, `habana.ai/gaudi`."""
    k8s_node_labels: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    """Labels that the device plugin / GPU operator sets, for nodeSelector."""
    aliases: list[str] = Field(default_factory=list, sa_type=JSON)


class PriceBase(Provenance, PositiveNumbers):
    """A dated price of one GPU-hour from one provider."""

    id: str = Field(primary_key=True)
    gpu_id: str = Field(foreign_key="hardware.id")
    provider: str
    """aws, gcp, azure, oci, lambda, coreweave, ... or `on_prem`."""
    pricing: PricingKind = Field(sa_type=String)
    region: str | None = None
    instance_type: str
    """The instance (or, on premises, the system) the price is for."""
    gpus_per_instance: int
    """GPUs in it: a TP-N replica needs an instance of at least N."""
    usd_per_gpu_hour: float
    """The instance's price per hour divided by its GPUs."""


class UseCaseBase(Provenance, PositiveNumbers):
    """Defaults for one kind of workload: its SLOs and its traffic shape.

    The traffic model (written down once, applied in the planner):
      active users   = users x active_user_ratio
      steady QPS     = active users x requests_per_active_user_per_min / 60
      peak QPS       = steady QPS x peak_factor
    """

    id: str = Field(primary_key=True)
    display_name: str
    description: str
    tasks: list[str] = Field(default_factory=list, sa_type=JSON)
    """Model task tags this use case needs (matched against the catalog's `tasks`)."""
    ttft_p90_ms: float
    tpot_p90_ms: float
    e2e_p95_ms: float
    prompt_tokens_mean: int
    prompt_tokens_p95: int
    output_tokens_mean: int
    output_tokens_p95: int
    active_user_ratio: float = Field(le=1)
    requests_per_active_user_per_min: float
    burstiness: Burstiness = Field(sa_type=String)
    peak_factor: float = Field(ge=1)
    min_context_tokens: int
    """Context window the model must offer for this use case."""

    @model_validator(mode="after")
    def _percentiles_ordered(self) -> UseCaseBase:
        if self.prompt_tokens_p95 < self.prompt_tokens_mean:
            raise ValueError("prompt_tokens_p95 is below prompt_tokens_mean")
        if self.output_tokens_p95 < self.output_tokens_mean:
            raise ValueError("output_tokens_p95 is below output_tokens_mean")
        return self


class DeploymentTemplateBase(Provenance, PositiveNumbers):
    """vLLM and KServe defaults for serving one use case."""

    id: str = Field(primary_key=True)
    use_case_id: str = Field(foreign_key="use_case.id")
    serving_mode: ServingMode = Field(sa_type=String)
    gpu_memory_utilization: float = Field(le=1)
    max_num_seqs: int
    max_num_batched_tokens: int
    enable_prefix_caching: bool
    enable_chunked_prefill: bool
    headroom: float = Field(le=1)
    """Fraction of SLO capacity held back when sizing replicas (0.2 = size to 80 %)."""
    min_replicas: int
    scale_to_zero: bool
    """Serverless only: allow zero replicas when idle (cold starts break interactive SLOs)."""


class BenchmarkBase(SQLModel):
    """One serving measurement (or estimate) at fixed lengths and load."""

    id: str = Field(primary_key=True)
    engine: str
    engine_version: str | None = None
    model_id: str = Field(foreign_key="model.id", index=True)
    gpu_id: str = Field(foreign_key="hardware.id", index=True)
    precision: Precision = Field(sa_type=String)
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    dp: int | None = Field(default=None, ge=1)
    """Attention data-parallel degree inside the replica (1 for most rows); None where the
    source does not state it."""
    gpus: int | None = Field(default=None, ge=1)
    """GPUs one replica spans: tp x pp x dp."""
    isl: int = Field(ge=1)
    osl: int = Field(ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    """Closed-loop requests in flight across the whole replica; None for an open-loop (QPS)
    measurement."""
    qps: float | None = Field(default=None, gt=0)
    ttft_mean_ms: float | None = Field(default=None, gt=0)
    ttft_p50_ms: float | None = Field(default=None, gt=0)
    ttft_p90_ms: float | None = Field(default=None, gt=0)
    ttft_p99_ms: float | None = Field(default=None, gt=0)
    tpot_mean_ms: float | None = Field(default=None, gt=0)
    tpot_p50_ms: float | None = Field(default=None, gt=0)
    tpot_p90_ms: float | None = Field(default=None, gt=0)
    tpot_p99_ms: float | None = Field(default=None, gt=0)
    e2e_mean_ms: float | None = Field(default=None, gt=0)
    e2e_p90_ms: float | None = Field(default=None, gt=0)
    e2e_p99_ms: float | None = Field(default=None, gt=0)
    output_tokens_per_s: float | None = Field(default=None, gt=0)
    requests_per_s: float | None = Field(default=None, gt=0)
    memory_gb_per_gpu: float | None = Field(default=None, gt=0)
    e2e_p50_ms: float | None = Field(default=None, gt=0)
    itl_mean_ms: float | None = Field(default=None, gt=0)
    arrival: str | None = None
    """Open loop: `poisson`, `constant` or `gamma` (with `burstiness`, vLLM's gamma shape)."""
    burstiness: float | None = Field(default=None, gt=0)
    length_distribution: str | None = None
    """`fixed`, `random(range_ratio=R)`, `sharegpt`, or what else the source used."""
    num_prompts: int | None = Field(default=None, ge=1)
    """Requests in the run: an open loop of few requests never reaches a steady state."""
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    kv_cache_dtype: str | None = None
    prefix_caching: bool | None = None
    """The engine settings of the run, where the source states them."""
    split: BenchmarkSplit = Field(default="fit", sa_type=String)
    """`held_aside` rows are never fitted: the accuracy on them is reported."""
    note: str | None = None
    """What a reader needs to judge the row (derived values, assumptions)."""
    kind: BenchmarkKind = Field(sa_type=String)
    source: str = Field(min_length=3)
    measured_on: dt.date | None = None
    """When the measurement was taken, where the source says."""
    retrieved: dt.date

    @field_validator("engine_version", mode="before")
    @classmethod
    def _blank_is_unknown(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _replica_size(self) -> BenchmarkBase:
        if (
            self.dp is not None
            and self.gpus is not None
            and self.gpus != self.tp * self.pp * self.dp
        ):
            raise ValueError(
                f"gpus {self.gpus} is not tp x pp x dp = {self.tp} x {self.pp} x {self.dp}"
            )
        return self


class OutcomeBase(SQLModel):
    """What a live deployment did against what was predicted for it."""

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(index=True)
    model_id: str = Field(foreign_key="model.id")
    gpu_id: str = Field(foreign_key="hardware.id")
    precision: Precision = Field(sa_type=String)
    tp: int = Field(ge=1)
    replicas: int = Field(ge=0)
    observed_at: dt.datetime
    window_s: float = Field(gt=0)
    observed_qps: float | None = Field(default=None, ge=0)
    observed_prompt_tokens_mean: float | None = Field(default=None, ge=0)
    observed_output_tokens_mean: float | None = Field(default=None, ge=0)
    predicted_ttft_p90_ms: float | None = Field(default=None, gt=0)
    observed_ttft_p90_ms: float | None = Field(default=None, gt=0)
    predicted_tpot_p90_ms: float | None = Field(default=None, gt=0)
    observed_tpot_p90_ms: float | None = Field(default=None, gt=0)
    predicted_e2e_p95_ms: float | None = Field(default=None, gt=0)
    observed_e2e_p95_ms: float | None = Field(default=None, gt=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    slo_met: bool | None = None
    source: str = "observed"
