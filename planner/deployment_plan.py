"""A deployment plan: everything the Kubernetes manifests of one chosen option need.

The plan is the only input of the templates, so every value that reaches a manifest is
here, validated: names by Kubernetes' rules, the model source by its scheme, secrets only
as references. `planner.deployment.plan_for` derives one from a capacity option.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from planner.intent import Vendor
from planner.k8s_names import (
    dns1123_label,
    dns1123_subdomain,
    label_key,
    label_value,
    looks_like_secret,
    pinned_image,
)
from planner.slo_alerts import HISTOGRAMS, measurable
from planner.specs import Frozen, Precision

ResourceName = Literal["nvidia.com/gpu", "amd.com/gpu", "habana.ai/gaudi"]
ServingMode = Literal["raw", "serverless"]
Autoscaler = Literal["kserve", "hpa", "keda"]
ServingApi = Literal["llminferenceservice", "inferenceservice"]
SERVING_APIS: tuple[ServingApi, ...] = ("llminferenceservice", "inferenceservice")
"""KServe's resources for LLMs, newest first: what a cluster serving both is given."""

RESOURCE_BY_VENDOR: dict[str, ResourceName] = {
    "nvidia": "nvidia.com/gpu",
    "amd": "amd.com/gpu",
    "intel": "habana.ai/gaudi",
}
MAX_NAME = 53
"""KServe names the predictor's Deployment and Service `<name>-predictor`, and ours add at
most ten characters (`-dashboard`): both stay within Kubernetes' 63."""
RESERVED_LABELS = ("app.kubernetes.io/", "preflight/", "serving.kserve.io/")
"""Label prefixes Preflight and KServe set themselves; a plan's own labels may not."""

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
"""A Hugging Face repository id, `org/name`: what a catalog model is called."""
_SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_PATH = r"(/[A-Za-z0-9._-]+)*"
_SOURCES = {
    "hf": re.compile(r"^hf://[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"),
    "s3": re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._-]+)+$"),
    "pvc": re.compile(rf"^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?{_PATH}$"),
}
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")


class Toleration(Frozen):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return label_key(key, "toleration key")

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None) -> str | None:
        return None if value is None else label_value(value, "toleration value")

    @model_validator(mode="after")
    def _operator(self) -> Toleration:
        if (self.operator == "Exists") != (self.value is None):
            raise ValueError("a toleration has a value with operator Equal and none with Exists")
        return self


class GpuK8s(Frozen):
    """How Kubernetes names one accelerator: the knowledge base's `k8s_resource` and
    `k8s_node_labels` (set by the GPU operator or the device plugin)."""

    resource_name: ResourceName
    node_labels: dict[str, str]

    @field_validator("node_labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        return _checked_labels(labels, "node label")


class ModelSource(Frozen):
    model_id: str
    """The catalog id, e.g. `meta-llama/Llama-3.1-8B-Instruct`."""
    served_model_name: str
    """What clients pass as `model` in OpenAI requests."""
    uri: str
    """`hf://org/repo`, `s3://bucket/path` or `pvc://claim/path`."""
    hf_token_secret: str | None = None
    """Name of a Secret in the namespace with key `HF_TOKEN`: a reference, never a token."""

    @field_validator("model_id")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not MODEL_ID.match(value):
            raise ValueError(f"model_id {value!r} is not a catalog id of the form 'org/name'")
        return value

    @field_validator("served_model_name")
    @classmethod
    def _served(cls, value: str) -> str:
        if not _SERVED_NAME.match(value):
            raise ValueError(
                f"served_model_name {value!r} may hold letters, digits, '.', '_', '-' and '/', "
                "at most 128 characters"
            )
        return value

    @field_validator("uri")
    @classmethod
    def _uri(cls, uri: str) -> str:
        scheme = uri.split("://", 1)[0]
        pattern = _SOURCES.get(scheme)
        if pattern is None or not pattern.match(uri) or "/../" in f"{uri}/":
            raise ValueError(
                f"model source {uri!r} is not valid: use hf://org/repo, s3://bucket/path or "
                "pvc://claim/path (letters, digits, '.', '_', '-' in each part)"
            )
        return uri

    @field_validator("hf_token_secret")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if looks_like_secret(value):
            raise ValueError(
                "hf_token_secret looks like a token itself; give the name of a Kubernetes Secret "
                "that holds it (key HF_TOKEN), never the token"
            )
        return dns1123_subdomain(value, "hf_token_secret")

    @model_validator(mode="after")
    def _token_for_hub(self) -> ModelSource:
        if self.hf_token_secret is not None and not self.uri.startswith("hf://"):
            raise ValueError("hf_token_secret applies to hf:// sources only")
        return self


class Accelerator(Frozen):
    gpu_id: str
    vendor: Vendor
    resource_name: ResourceName
    node_labels: dict[str, str]
    """nodeSelector: the labels the GPU operator puts on nodes with this accelerator."""
    gpus_per_node: int = Field(ge=1, le=64)
    tolerations: list[Toleration] = []

    @field_validator("gpu_id")
    @classmethod
    def _gpu_id(cls, value: str) -> str:
        return label_value(value, "gpu_id")

    @field_validator("node_labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        return _checked_labels(labels, "node label")

    @model_validator(mode="after")
    def _resource_of_vendor(self) -> Accelerator:
        expected = RESOURCE_BY_VENDOR[self.vendor]
        if self.resource_name != expected:
            raise ValueError(
                f"resource_name {self.resource_name} does not belong to vendor {self.vendor}; "
                f"use {expected}"
            )
        return self


class VllmSettings(Frozen):
    """The engine arguments and the container around it."""

    tensor_parallel_size: int = Field(ge=1, le=64)
    max_model_len: int = Field(ge=16)
    gpu_memory_utilization: float = Field(gt=0, le=0.98)
    max_num_seqs: int = Field(ge=1)
    max_num_batched_tokens: int = Field(ge=16)
    precision: Precision
    """Weight precision served (the checkpoint's, or fp8 quantised at load)."""
    quantization: Literal["fp8"] | None = None
    """`fp8` quantises a 16-bit checkpoint at load; None when it is already quantised."""
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    image: str
    cpu: int = Field(ge=1, le=256)
    """CPU cores requested (no limit: throttling the API server stalls every stream)."""
    memory_gib: int = Field(ge=1, le=4096)
    """Memory request and limit, including the shared-memory volume."""
    shm_gib: int = Field(ge=0, le=256)
    """Shared memory for tensor-parallel workers (NCCL, vLLM's message queue); 0 at TP 1."""
    cache_gib: int = Field(ge=1, le=1024)
    """Local volume for vLLM's compile cache and the Hugging Face cache."""
    ephemeral_storage_gib: int = Field(ge=1, le=16384)
    """Node disk the pod needs: the downloaded weights plus the cache."""
    startup_seconds: int = Field(ge=60, le=7200)
    """How long loading weights and compiling may take before the pod counts as failed."""

    @field_validator("image")
    @classmethod
    def _image(cls, image: str) -> str:
        return pinned_image(image)

    @model_validator(mode="after")
    def _consistent(self) -> VllmSettings:
        if self.quantization == "fp8" and self.precision != "fp8":
            raise ValueError("quantization fp8 serves fp8 weights: set precision to fp8")
        if self.tensor_parallel_size > 1 and self.shm_gib < 1:
            raise ValueError("tensor parallelism needs shared memory: set shm_gib to 1 or more")
        if self.shm_gib >= self.memory_gib:
            raise ValueError("shm_gib counts against memory_gib and must be smaller")
        if self.ephemeral_storage_gib < self.cache_gib:
            raise ValueError("ephemeral_storage_gib must hold at least the cache (cache_gib)")
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError(
                "vLLM needs max_num_batched_tokens >= max_num_seqs; raise the token budget"
            )
        if not self.enable_chunked_prefill and self.max_num_batched_tokens < self.max_model_len:
            raise ValueError(
                "without chunked prefill a whole prompt runs in one step: "
                "max_num_batched_tokens must be >= max_model_len"
            )
        return self


class Serving(Frozen):
    api: ServingApi = "llminferenceservice"
    """`llminferenceservice`: KServe's LLMInferenceService (v1alpha2, KServe 0.17 and later,
    llm-d underneath); `inferenceservice`: a ServingRuntime plus an InferenceService, which
    older clusters serve."""
    mode: ServingMode = "raw"
    """`raw`: KServe Standard (a Deployment); `serverless`: Knative, may scale to zero
    (InferenceService only)."""
    prefix_routing: bool = False
    """llm-d's prefix-cache-aware routing: a gateway route and an inference scheduler pick
    the replica holding a request's prefix (LLMInferenceService only)."""
    min_replicas: int = Field(ge=0, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    autoscaler: Autoscaler
    """`kserve`: Knative's own (serverless); `hpa`: HPA v2 on vLLM's queue through a custom
    metrics adapter; `keda`: a KEDA ScaledObject on the queue through Prometheus."""
    scale_target: int = Field(ge=1, le=10000)
    """Per replica: requests in flight (kserve) or requests waiting (hpa, keda)."""
    prometheus_url: str | None = None
    """Where KEDA queries Prometheus (keda only)."""
    scale_down_delay_seconds: int = Field(default=600, ge=0, le=3600)
    """A GPU replica takes minutes to start: keep it this long after the load drops."""

    @property
    def replicas_at_start(self) -> int:
        """Replicas that start with the deployment: a serverless one scaled to zero starts
        one for its first request, so it needs room for one all the same."""
        return max(self.min_replicas, 1)

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not _URL.match(url):
            raise ValueError(f"prometheus_url {url!r} is not an http(s) URL")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> Serving:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}"
            )
        if self.api == "llminferenceservice" and self.mode == "serverless":
            raise ValueError(
                "serverless (Knative) mode is the InferenceService's: set api to "
                "inferenceservice, or mode to raw"
            )
        if self.api == "inferenceservice" and self.prefix_routing:
            raise ValueError(
                "prefix-cache-aware routing is llm-d's, served through an LLMInferenceService: "
                "set api to llminferenceservice, or turn prefix_routing off"
            )
        if self.mode == "serverless" and self.autoscaler != "kserve":
            raise ValueError("serverless mode scales with Knative: set autoscaler to kserve")
        if self.mode == "raw" and self.autoscaler == "kserve":
            raise ValueError(
                "in raw mode KServe's own autoscaler scales on CPU or memory, which does not "
                "follow GPU load: use hpa or keda"
            )
        if self.min_replicas == 0 and self.mode == "raw":
            raise ValueError("only serverless mode scales to zero: set min_replicas to 1 or more")
        if self.autoscaler == "keda" and self.prometheus_url is None:
            raise ValueError("keda needs prometheus_url, the Prometheus that KEDA queries")
        return self


class SloAlerts(Frozen):
    """Targets the alerts watch; None leaves that SLO without alerts."""

    ttft_p90_ms: float | None = Field(default=None, gt=0)
    tpot_p90_ms: float | None = Field(default=None, gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)
    availability: float = Field(default=0.999, ge=0.9, le=0.99999)
    """Share of requests that must finish normally (not aborted or failed)."""

    @model_validator(mode="after")
    def _measurable(self) -> SloAlerts:
        targets = {"ttft": self.ttft_p90_ms, "tpot": self.tpot_p90_ms, "e2e": self.e2e_p95_ms}
        for h in HISTOGRAMS:
            target = targets[h.key]
            if target is not None and not measurable(target / 1000, h.buckets_s):
                raise ValueError(
                    f"{h.title} target {target:g} ms is below vLLM's smallest histogram bucket "
                    f"({h.buckets_s[0] * 1000:g} ms), so no alert could measure it"
                )
        return self


class DeploymentPlan(Frozen):
    name: str
    """Name of the InferenceService and of everything rendered with it."""
    namespace: str
    deployment_id: str
    """Stable id of this deployment (a label on every object, for rollback and audit)."""
    labels: dict[str, str] = {}
    """Extra labels for every object, e.g. the one a Prometheus selects rules by."""
    model: ModelSource
    accelerator: Accelerator
    vllm: VllmSettings
    serving: Serving
    slo: SloAlerts

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        dns1123_label(name, "name", MAX_NAME)
        if not name[0].isalpha():
            raise ValueError(f"name {name!r} must start with a letter (KServe's rule)")
        return name

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        return dns1123_label(namespace, "namespace")

    @field_validator("deployment_id")
    @classmethod
    def _deployment_id(cls, value: str) -> str:
        if not value:
            raise ValueError("deployment_id is empty")
        return label_value(value, "deployment_id")

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if key.startswith(RESERVED_LABELS):
                raise ValueError(f"label {key!r} is set by Preflight or KServe; choose another")
        return _checked_labels(labels, "label")

    @model_validator(mode="after")
    def _fits_a_node(self) -> DeploymentPlan:
        tp, node = self.vllm.tensor_parallel_size, self.accelerator.gpus_per_node
        if tp > node:
            raise ValueError(
                f"tensor_parallel_size {tp} exceeds the {node} GPUs of one "
                f"{self.accelerator.gpu_id} node; a replica must fit one node"
            )
        return self


def _checked_labels(labels: dict[str, str], what: str) -> dict[str, str]:
    for key, value in labels.items():
        label_key(key, f"{what} key")
        label_value(value, f"{what} {key!r} value")
        if looks_like_secret(value):
            raise ValueError(f"{what} {key!r} looks like a secret; labels are public")
    return labels


def describe(error: ValidationError) -> str:
    """Every problem of a validation error, each named by the field it is about."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
