"""The Kubernetes manifests of a deployment plan: rendered from templates/, parsed back and
checked, then validated against schemas and policy before anything leaves Preflight.

Rendering reads the template files; validation reads the schema files. Values reach the
YAML only through `tojson` (JSON is YAML), after the plan has refused anything that is not
a valid Kubernetes name, label or source, so no value can change the YAML's structure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from manifests.kinds import SERVING_KINDS
from manifests.policy import policy_problems
from manifests.schemas import schema_problems
from planner.deployment_plan import DeploymentPlan
from planner.predict import Planner
from planner.slo_alerts import guard_alerts, objectives

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
PORT = 8080
MODEL_DIR = "/mnt/models"
"""Where KServe puts the model: downloaded by its storage initializer, or the PVC mounted."""
KSERVE_MODES = {"raw": "Standard", "serverless": "Knative"}
METRICS_PORTS = {"raw": "http1", "serverless": "user-port"}
"""Knative renames the serving container's port to `user-port`."""
LLMISVC_PORT = 8000
"""Where KServe's LLMInferenceService template runs vLLM (an unnamed container port)."""
AUTOSCALERS = {"hpa": "horizontalpodautoscaler", "keda": "scaledobject"}
"""The InferenceService's autoscaler templates; Knative's (`kserve`) is KServe's own."""


class ManifestError(ValueError):
    """A template rendered something that is not the manifest it should be."""


def _tojson(value: object) -> str:
    # Jinja's own tojson escapes for HTML; plain JSON is a YAML scalar or flow collection.
    return json.dumps(value)


_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    undefined=StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["tojson"] = _tojson


def common_labels(plan: DeploymentPlan) -> dict[str, str]:
    return {
        **plan.labels,
        "app.kubernetes.io/name": plan.name,
        "app.kubernetes.io/component": "llm-inference",
        "app.kubernetes.io/managed-by": "preflight",
        "preflight/deployment-id": plan.deployment_id,
    }


def vllm_args(plan: DeploymentPlan) -> list[str]:
    """`vllm serve` arguments of the ServingRuntime: what to serve where, then the engine."""
    return [
        MODEL_DIR,
        f"--port={PORT}",
        f"--served-model-name={plan.model.served_model_name}",
        f"--tensor-parallel-size={plan.vllm.tensor_parallel_size}",
        *engine_args(plan),
    ]


def engine_args(plan: DeploymentPlan) -> list[str]:
    """The engine settings the prediction assumed, every one explicit so that vLLM's
    defaults (which differ by GPU and by release) never decide what runs."""
    v = plan.vllm
    args = [
        f"--max-model-len={v.max_model_len}",
        f"--gpu-memory-utilization={v.gpu_memory_utilization}",
        f"--max-num-seqs={v.max_num_seqs}",
        f"--max-num-batched-tokens={v.max_num_batched_tokens}",
    ]
    if v.quantization is not None:
        args.append(f"--quantization={v.quantization}")
    args.append(f"--kv-cache-dtype={v.kv_cache_dtype}")
    args.append(f"--{'' if v.enable_prefix_caching else 'no-'}enable-prefix-caching")
    args.append(f"--{'' if v.enable_chunked_prefill else 'no-'}enable-chunked-prefill")
    return args


def render(plan: DeploymentPlan) -> list[dict[str, Any]]:
    """The manifests of `plan`, in the order to apply them."""
    # Validated again: a plan built with model_construct skipped its checks.
    plan = DeploymentPlan.model_validate(plan.model_dump())
    context = _context(plan)
    manifests = []
    for name in templates(plan):
        text = _ENV.get_template(f"{name}.yaml.j2").render(context)
        manifest = _parsed(text, name)
        _check_identity(manifest, plan, name)
        manifests.append(manifest)
    return manifests


def templates(plan: DeploymentPlan) -> list[str]:
    """The templates `plan` renders, in the order to apply them."""
    if plan.serving.api == "llminferenceservice":
        # Its controller creates the autoscaler itself (see `serving_notes`).
        names = ["llminferenceservice"]
    else:
        names = ["servingruntime", "inferenceservice"]
        if plan.serving.autoscaler in AUTOSCALERS:
            names.append(AUTOSCALERS[plan.serving.autoscaler])
    return [*names, "poddisruptionbudget", "podmonitor", "prometheusrule", "dashboard-configmap"]


def serving_notes(plan: DeploymentPlan) -> list[str]:
    """What serves the model, and what Preflight leaves to KServe's controller, in words."""
    api_version, kind = SERVING_KINDS[plan.serving.api]
    if plan.serving.api != "llminferenceservice":
        return [f"served by an {kind} ({api_version}) with its own ServingRuntime"]
    notes = [f"served by an {kind} ({api_version}) on KServe's vLLM template"]
    if plan.serving.min_replicas < plan.serving.max_replicas:
        kind = "HorizontalPodAutoscaler" if plan.serving.autoscaler == "hpa" else "ScaledObject"
        notes.append(
            f"no {kind} of Preflight's: the LLMInferenceService's `scaling` makes KServe "
            f"create one, driven by the workload variant autoscaler"
        )
    if plan.serving.prefix_routing:
        notes.append(
            "no route or InferencePool of Preflight's: the LLMInferenceService's `router` makes "
            "KServe create the HTTPRoute, the InferencePool and its endpoint picker"
        )
    return notes


def validate(
    manifests: Sequence[dict[str, Any]], plan: DeploymentPlan, planner: Planner | None = None
) -> list[str]:
    """Every problem found (empty: valid): each manifest against its schema, then policy.
    With a planner, the model's fit on the GPU is rechecked too."""
    return schema_problems(manifests) + policy_problems(manifests, plan, planner)


def to_yaml(manifests: Sequence[dict[str, Any]]) -> str:
    """One multi-document YAML stream."""
    return "---\n".join(dump(m) for m in manifests)


def _context(plan: DeploymentPlan) -> dict[str, Any]:
    selector = f'namespace="{plan.namespace}",job="{plan.name}"'
    slo = plan.slo
    targets = {"ttft": slo.ttft_p90_ms, "tpot": slo.tpot_p90_ms, "e2e": slo.e2e_p95_ms}
    found = objectives(selector, targets, slo.availability)
    labels = common_labels(plan)
    # Grafana uids hold at most 40 characters; the same deployment keeps the same one.
    uid = hashlib.sha256(f"{plan.namespace}/{plan.name}".encode()).hexdigest()[:16]
    dashboard = _ENV.get_template("grafana-dashboard.json.j2").render(
        sel=selector,
        uid=f"preflight-{uid}",
        title=f"vLLM {plan.namespace}/{plan.name} ({plan.model.served_model_name})",
        targets={k: "none" if v is None else f"{v:g} ms" for k, v in targets.items()},
    )
    llmisvc = plan.serving.api == "llminferenceservice"
    return {
        "plan": plan,
        "labels": labels,
        # The labels KServe puts on the model's pods (not on a router's).
        "pod_selector": (
            {
                "app.kubernetes.io/name": plan.name,
                "app.kubernetes.io/part-of": "llminferenceservice",
                "kserve.io/component": "workload",
            }
            if llmisvc
            else {"serving.kserve.io/inferenceservice": plan.name}
        ),
        "job_label": "app.kubernetes.io/name" if llmisvc else "serving.kserve.io/inferenceservice",
        "runtime_name": f"{plan.name}-vllm",
        "predictor_deployment": f"{plan.name}-predictor",
        "deployment_mode": KSERVE_MODES[plan.serving.mode],
        "metrics_port": None if llmisvc else METRICS_PORTS[plan.serving.mode],
        "metrics_port_number": LLMISVC_PORT,
        "port": PORT,
        "vllm_args": vllm_args(plan),
        "engine_args": engine_args(plan),
        "startup_failures": -(-plan.vllm.startup_seconds // 10),
        "tolerations": [t.model_dump(exclude_none=True) for t in plan.accelerator.tolerations],
        "waiting_query": f"sum(vllm:num_requests_waiting{{{selector}}})",
        "objectives": found,
        "guards": guard_alerts(selector, found),
        "dashboard_json": _checked_json(dashboard),
        "dashboard_labels": {**labels, "grafana_dashboard": "1"},
    }


def _checked_json(text: str) -> str:
    """The dashboard as rendered (its layout is the template's), once it parses."""
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"the dashboard template rendered invalid JSON: {error}") from None
    return text.strip() + "\n"


def _parsed(text: str, template: str) -> dict[str, Any]:
    """The one manifest `text` holds; anchors and aliases are refused, since nothing
    Preflight renders has them and a value that made one would be an injection."""
    try:
        events = list(yaml.parse(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise ManifestError(f"template {template} rendered invalid YAML: {error}") from None
    if any(isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None) for e in events):
        raise ManifestError(f"template {template} rendered a YAML anchor or alias")
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ManifestError(f"template {template} did not render exactly one mapping")
    manifest: dict[str, Any] = documents[0]
    return manifest


def _check_identity(manifest: dict[str, Any], plan: DeploymentPlan, template: str) -> None:
    """The parsed manifest carries the plan's namespace and labels unchanged."""
    metadata = manifest.get("metadata")
    labels = common_labels(plan)
    if (
        not isinstance(metadata, dict)
        or metadata.get("namespace") != plan.namespace
        or {k: metadata.get("labels", {}).get(k) for k in labels} != labels
    ):
        raise ManifestError(f"template {template} lost the plan's namespace or labels")


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, multi-line strings (the dashboard) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(manifest: dict[str, Any]) -> str:
    """One manifest as the YAML Preflight writes everywhere (render, GitOps, goldens)."""
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=False)
