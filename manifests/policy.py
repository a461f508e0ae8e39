"""Policy checks on rendered manifests, beyond what a schema can say: names, secrets, GPU
resources, tensor parallelism, replica bounds, and (with the catalog) the memory fit."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import ValidationError

from planner.deployment_plan import RESOURCE_BY_VENDOR, DeploymentPlan
from planner.k8s_names import dns1123_label, label_key, label_value, looks_like_secret
from planner.memory import fit
from planner.predict import Planner
from planner.specs import ServingConfig

SECRET_ENV_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|CREDENTIAL|PRIVATE", re.IGNORECASE
)
GPU_RESOURCES = frozenset(RESOURCE_BY_VENDOR.values())
_TP_ARG = re.compile(r"^--tensor-parallel-size=(\d+)$")
_REPLICA_FIELDS = {
    "InferenceService": ("spec.predictor", "minReplicas", "maxReplicas"),
    "LLMInferenceService": ("spec.scaling", "minReplicas", "maxReplicas"),
    "HorizontalPodAutoscaler": ("spec", "minReplicas", "maxReplicas"),
    "ScaledObject": ("spec", "minReplicaCount", "maxReplicaCount"),
}


def policy_problems(
    manifests: Sequence[dict[str, Any]], plan: DeploymentPlan, planner: Planner | None
) -> list[str]:
    problems = []
    for manifest in manifests:
        problems += _names(manifest, plan) + _secrets(manifest) + _replicas(manifest)
    problems += _gpus(manifests, plan)
    if planner is not None:
        problems += _fit(plan, planner)
    return problems


def _where(manifest: dict[str, Any]) -> str:
    return f"{manifest.get('kind')}/{_get(manifest, 'metadata.name')}"


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _names(manifest: dict[str, Any], plan: DeploymentPlan) -> list[str]:
    metadata = manifest.get("metadata") or {}
    labels = metadata.get("labels") or {}
    checks: list[tuple[Callable[[str, str], str], str, str]] = [
        (dns1123_label, str(metadata.get("name")), "name")
    ]
    checks += [(label_key, str(key), "label key") for key in labels]
    checks += [(label_value, str(value), "label value") for value in labels.values()]
    checks += [(label_key, str(key), "annotation key") for key in metadata.get("annotations") or {}]
    problems = []
    for check, value, what in checks:
        try:
            check(value, what)
        except ValueError as error:
            problems.append(f"{_where(manifest)}: {error}")
    if metadata.get("namespace") != plan.namespace:
        problems.append(f"{_where(manifest)}: namespace is not the plan's ({plan.namespace})")
    return problems


def _secrets(manifest: dict[str, Any]) -> list[str]:
    """No secret in a manifest: env values that name or look like one, or any string that
    looks like a token or key. Secrets come from a Secret, by secretKeyRef."""
    problems = []
    for env in _env_vars(manifest):
        name = str(env.get("name"))
        if "value" in env and (
            SECRET_ENV_NAME.search(name) or looks_like_secret(str(env["value"]))
        ):
            problems.append(
                f"{_where(manifest)}: env {name} has a literal value; "
                "take it from a Secret with valueFrom.secretKeyRef"
            )
        source = env.get("valueFrom") or {}
        if SECRET_ENV_NAME.search(name) and source and "secretKeyRef" not in source:
            problems.append(f"{_where(manifest)}: env {name} must come from a secretKeyRef")
    for path, value in _strings(manifest, ""):
        if looks_like_secret(value):
            problems.append(f"{_where(manifest)}: {path} holds something that looks like a secret")
    return problems


def _env_vars(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "env" and isinstance(value, list):
                yield from (e for e in value if isinstance(e, dict))
            else:
                yield from _env_vars(value)
    elif isinstance(data, list):
        for item in data:
            yield from _env_vars(item)


def _strings(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _strings(item, f"{path}[{i}]")


def _replicas(manifest: dict[str, Any]) -> list[str]:
    """Replica bounds in order; an LLMInferenceService's replicas or scaling, not both
    (its CRD's CEL rules, which the schema check does not run)."""
    fields = _REPLICA_FIELDS.get(str(manifest.get("kind")))
    if fields is None:
        return []
    problems = []
    if manifest["kind"] == "LLMInferenceService" and {"replicas", "scaling"} <= set(
        manifest.get("spec") or {}
    ):
        problems.append(f"{_where(manifest)}: replicas and scaling are mutually exclusive")
    spec = _get(manifest, fields[0]) or {}
    low, high = spec.get(fields[1]), spec.get(fields[2])
    if isinstance(low, int) and isinstance(high, int) and low > high:
        problems.append(f"{_where(manifest)}: {fields[1]} {low} exceeds {fields[2]} {high}")
    return problems


def _gpus(manifests: Sequence[dict[str, Any]], plan: DeploymentPlan) -> list[str]:
    """GPU requests equal limits and tensor parallelism; TP fits one node."""
    problems = []
    tp = None
    for m in manifests:
        if m.get("kind") == "ServingRuntime":
            for container in _get(m, "spec.containers") or []:
                for arg in container.get("args") or []:
                    match = _TP_ARG.match(str(arg))
                    tp = int(match.group(1)) if match else tp
        if m.get("kind") == "LLMInferenceService":
            tp = _get(m, "spec.parallelism.tensor")
    if tp is None:
        problems.append("no tensor parallelism: no --tensor-parallel-size, no parallelism.tensor")
    elif tp > plan.accelerator.gpus_per_node:
        problems.append(
            f"tensor parallelism {tp} exceeds the "
            f"{plan.accelerator.gpus_per_node} GPUs of one {plan.accelerator.gpu_id} node"
        )
    for m, resources in _model_resources(manifests):
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        gpus = {k for k in {*requests, *limits} if k in GPU_RESOURCES}
        if not gpus:
            problems.append(f"{_where(m)}: requests no GPU")
        for key in sorted(gpus):
            if str(requests.get(key)) != str(limits.get(key)):
                problems.append(f"{_where(m)}: {key} requests must equal its limits")
            if tp is not None and str(limits.get(key)) != str(tp):
                problems.append(f"{_where(m)}: {limits.get(key)} {key} for tensor parallel {tp}")
    return problems


def _model_resources(
    manifests: Sequence[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each model server's manifest and the resources of the container that runs vLLM."""
    for m in manifests:
        if m.get("kind") == "InferenceService":
            yield m, _get(m, "spec.predictor.model.resources") or {}
        if m.get("kind") == "LLMInferenceService":
            for container in _get(m, "spec.template.containers") or []:
                if container.get("name") == "main":
                    yield m, container.get("resources") or {}


def _fit(plan: DeploymentPlan, planner: Planner) -> list[str]:
    """The plan's engine settings rechecked against the catalog's model and GPU."""
    model = planner.models.get(plan.model.model_id)
    gpu = planner.gpus.get(plan.accelerator.gpu_id)
    if model is None or gpu is None:
        unknown = plan.model.model_id if model is None else plan.accelerator.gpu_id
        return [f"{unknown} is not in the catalog; its fit cannot be checked"]
    v = plan.vllm
    problems = []
    if plan.accelerator.gpus_per_node > gpu.gpus_per_node:
        problems.append(
            f"the plan counts {plan.accelerator.gpus_per_node} GPUs per node; "
            f"a {gpu.id} node has {gpu.gpus_per_node}"
        )
    quantizes = v.quantization == "fp8" and model.precision in ("bf16", "fp16")
    if v.precision != model.precision and not quantizes:
        problems.append(
            f"{model.id} is published in {model.precision}; serving {v.precision} needs "
            "quantization fp8 of a 16-bit checkpoint"
        )
    if v.quantization is not None and not quantizes:
        problems.append(f"{model.id} is already {model.precision}: drop the quantization")
    try:
        cfg = ServingConfig(
            tp=v.tensor_parallel_size,
            precision=v.precision,
            kv_cache_dtype=v.kv_cache_dtype,
            gpu_memory_utilization=v.gpu_memory_utilization,
            max_num_seqs=v.max_num_seqs,
            max_num_batched_tokens=v.max_num_batched_tokens,
            max_model_len=v.max_model_len,
        )
    except ValidationError as error:
        return [*problems, f"vLLM settings: {error.errors()[0]['msg']}"]
    memory = fit(model, gpu, cfg, v.max_model_len)
    if not memory.fits:
        problems.append(
            f"{model.id} on {v.tensor_parallel_size} x {gpu.id} does not fit: {memory.reason}"
        )
    return problems
