"""From a capacity option to a deployment plan: vLLM's arguments, the container's size,
the autoscaler's target and the alerts' SLOs, each derived from what the planner chose."""

from __future__ import annotations

import hashlib
import math

from pydantic import ValidationError

from planner.capacity import CapacityOption
from planner.deployment_plan import (
    Autoscaler,
    DeploymentPlan,
    GpuK8s,
    ServingApi,
    ServingMode,
    SloAlerts,
    describe,
)
from planner.intent import DeploymentSpecification
from planner.memory import fit, weight_bytes
from planner.specs import EngineSettings, GpuSpec, ModelSpec, ServingConfig


def gib(value_gb: float) -> int:
    """Whole GiB holding `value_gb` GB."""
    return max(1, math.ceil(value_gb * 1e9 / 1024**3))


VLLM_IMAGES: dict[str, str] = {
    # Pinned to the vLLM release most of the planner's measured rows come from (0.19.0), so
    # the engine deployed is the one the predictions describe, and every replica, restart
    # and rollback pulls the same bits; `latest` would change under a running deployment.
    "nvidia": "docker.io/vllm/vllm-openai:v0.19.0",
    "amd": "docker.io/vllm/vllm-openai-rocm:v0.19.0",
}
WAITING_PER_REPLICA = 2
"""Queue target for hpa and keda: vLLM queues only when its batch or KV cache is full, and a
queue that stays above a couple of requests per replica means TTFT is already climbing."""
CACHE_GIB = 20
"""vLLM's torch.compile cache and the Hugging Face cache (tokenizer, configs)."""


class PlanError(ValueError):
    """The option cannot be deployed as asked; the message says what to change."""


def plan_for(
    option: CapacityOption,
    spec: DeploymentSpecification,
    model: ModelSpec,
    gpu: GpuSpec,
    gpu_k8s: GpuK8s,
    name: str,
    namespace: str,
    *,
    deployment_id: str | None = None,
    source_uri: str | None = None,
    served_model_name: str | None = None,
    hf_token_secret: str | None = None,
    api: ServingApi | None = None,
    mode: ServingMode = "raw",
    min_replicas: int | None = None,
    autoscaler: Autoscaler | None = None,
    prometheus_url: str | None = None,
    labels: dict[str, str] | None = None,
    image: str | None = None,
    engine: EngineSettings | None = None,
) -> DeploymentPlan:
    """The plan deploying `option` for `spec`: vLLM runs with the settings the planner
    predicted with (`engine`, vLLM's defaults unless given; an unset max_model_len is the
    longest request the specification allows); replicas from steady (or `min_replicas`) to
    peak. Raises PlanError, saying what to change, when it cannot run."""
    if (option.model_id, option.gpu_id) != (model.id, gpu.id):
        raise PlanError(
            f"option is {option.model_id} on {option.gpu_id}, not {model.id} on {gpu.id}"
        )
    if option.precision not in (model.precision, "fp8"):
        raise PlanError(
            f"{model.id} is published in {model.precision}; "
            f"vLLM cannot serve it in {option.precision}"
        )
    t = spec.traffic
    context = max(
        spec.max_context_tokens,
        (t.prompt_tokens_p95 or t.prompt_tokens_mean)
        + (t.output_tokens_p95 or t.output_tokens_mean),
    )
    if context > model.max_context_tokens:
        raise PlanError(
            f"the specification needs {context} tokens of context; "
            f"{model.id} takes at most {model.max_context_tokens}"
        )
    settings = engine or EngineSettings()
    if settings.max_model_len is not None and settings.max_model_len < context:
        raise PlanError(
            f"max_model_len {settings.max_model_len} is below the {context} tokens of context "
            "the specification needs; raise it or leave it unset"
        )
    # The prediction's engine, with max_model_len sized to the requests where it was unset.
    cfg = ServingConfig(
        tp=option.tp,
        precision=option.precision,
        **(settings.on(gpu) | {"max_model_len": settings.max_model_len or context}),
    )
    memory = fit(model, gpu, cfg, context)
    if not memory.fits:
        raise PlanError(f"{model.id} on {option.tp} x {gpu.id} does not fit: {memory.reason}")
    if image is None and gpu.vendor not in VLLM_IMAGES:
        raise PlanError(f"no pinned vLLM image for {gpu.vendor} accelerators; pass image=")
    tp = option.tp
    shm = 2 * tp if tp > 1 else 0
    uri = source_uri or f"hf://{model.id}"
    checkpoint_gb = weight_bytes(model, model.precision).total / 1e9
    download = 0 if uri.startswith("pvc://") else gib(checkpoint_gb * 1.1)
    autoscaler = autoscaler or ("kserve" if mode == "serverless" else "hpa")
    if autoscaler == "kserve":
        # Little's law: requests in flight per replica at the planned peak load.
        per_replica_qps = t.peak_qps / option.replicas_for_peak
        target = max(1, math.ceil(per_replica_qps * option.e2e_ms.mean / 1000))
    else:
        target = WAITING_PER_REPLICA
    slo = spec.slo
    fields = {
        "name": name,
        "namespace": namespace,
        "deployment_id": deployment_id or _default_id(namespace, name, option),
        "labels": labels or {},
        "model": {
            "model_id": model.id,
            "served_model_name": served_model_name or model.id,
            "uri": uri,
            "hf_token_secret": hf_token_secret,
        },
        "accelerator": {
            "gpu_id": gpu.id,
            "vendor": gpu.vendor,
            "resource_name": gpu_k8s.resource_name,
            "node_labels": gpu_k8s.node_labels,
            "gpus_per_node": gpu.gpus_per_node,
            # GPU node pools are commonly tainted with their resource name (GKE and AKS do
            # it themselves); tolerating a taint that is absent costs nothing.
            "tolerations": [{"key": gpu_k8s.resource_name, "effect": "NoSchedule"}],
        },
        "vllm": {
            "tensor_parallel_size": tp,
            "max_model_len": cfg.max_model_len,
            "gpu_memory_utilization": cfg.gpu_memory_utilization,
            "max_num_seqs": cfg.max_num_seqs,
            "max_num_batched_tokens": cfg.max_num_batched_tokens,
            "precision": option.precision,
            "quantization": "fp8" if option.precision != model.precision else None,
            "kv_cache_dtype": cfg.kv_cache_dtype,
            "enable_prefix_caching": cfg.enable_prefix_caching,
            "image": image or VLLM_IMAGES[gpu.vendor],
            # Judgement: the API server and tokenizers, plus a worker process per GPU.
            "cpu": 4 + 2 * tp,
            "memory_gib": 16 + 8 * tp + shm,
            "shm_gib": shm,
            "cache_gib": CACHE_GIB,
            "ephemeral_storage_gib": download + CACHE_GIB,
            # Judgement: ten minutes, plus reading the weights at ~200 MB/s, in minutes.
            "startup_seconds": 60 * math.ceil((600 + 5 * checkpoint_gb) / 60),
        },
        "serving": {
            # Knative scaling to zero is only the InferenceService's.
            "api": api or ("inferenceservice" if mode == "serverless" else "llminferenceservice"),
            "mode": mode,
            "prefix_routing": spec.prefix_routing,
            "min_replicas": option.min_replicas if min_replicas is None else min_replicas,
            "max_replicas": option.replicas_for_peak,
            "autoscaler": autoscaler,
            "scale_target": target,
            "prometheus_url": prometheus_url,
        },
        "slo": {
            "ttft_p90_ms": slo.ttft_p90_ms,
            "tpot_p90_ms": slo.tpot_p90_ms,
            "e2e_p95_ms": slo.e2e_p95_ms,
            "availability": spec.reliability_target or SloAlerts().availability,
        },
    }
    try:
        return DeploymentPlan.model_validate(fields)
    except ValidationError as error:
        raise PlanError(describe(error)) from None


def _default_id(namespace: str, name: str, option: CapacityOption) -> str:
    """Deterministic (no clock, no randomness): the same plan gets the same id."""
    key = f"{namespace}/{name}/{option.model_id}/{option.gpu_id}/{option.tp}/{option.precision}"
    return f"{name[:40]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


__all__ = ["DeploymentPlan", "GpuK8s", "PlanError", "plan_for"]
