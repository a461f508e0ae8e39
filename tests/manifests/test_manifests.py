"""Deployment plans, the manifests rendered from them, and their validation.

Golden manifests live in tests/golden/<plan>/: the plan (plan.json) and what `preflight
render` writes for it. After a deliberate change to the templates or the plan builder,
regenerate them and review the diff line by line:

    PREFLIGHT_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/manifests/test_manifests.py
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from deploy.gitops import planned_files
from kb.seed import read_seed
from manifests import render as manifests_module
from manifests.render import ManifestError, render, serving_notes, to_yaml, validate
from manifests.schemas import schema_problems
from planner.calibration import stored_calibration
from planner.capacity import CapacityOption
from planner.deployment import VLLM_IMAGES, GpuK8s, PlanError, plan_for
from planner.deployment_plan import DeploymentPlan, describe
from planner.intent import BudgetConstraint, DeploymentSpecification
from planner.percentiles import LatencyStats
from planner.predict import Planner
from planner.requirements import SearchConstraints, SLOTargets, TrafficProfile
from planner.specs import GpuSpec, ModelSpec, Precision
from tests.cli.test_cli import preflight

GOLDEN_DIR = Path(__file__).parents[1] / "golden"
REGENERATE = os.environ.get("PREFLIGHT_REGENERATE_GOLDEN") == "1"
NAMESPACE = "llm-serving"
PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"


@dataclass(frozen=True)
class Catalog:
    """The seed catalog as the planner sees it, read from kb/data without a database."""

    models: dict[str, ModelSpec]
    gpus: dict[str, GpuSpec]
    k8s: dict[str, GpuK8s]

    def planner(self) -> Planner:
        return Planner(models=self.models, gpus=self.gpus, calibration=stored_calibration())


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    seed = read_seed()
    hardware = [item.record for item in seed.records["hardware"]]
    return Catalog(
        models={
            item.record.id: ModelSpec.model_validate(
                item.record.model_dump(include=set(ModelSpec.model_fields))
            )
            for item in seed.records["models"]
        },
        gpus={
            h.id: GpuSpec.model_validate(h.model_dump(include=set(GpuSpec.model_fields)))
            for h in hardware
        },
        k8s={
            h.id: GpuK8s(resource_name=h.k8s_resource, node_labels=h.k8s_node_labels)
            for h in hardware
        },
    )


def latency(mean_ms: float) -> LatencyStats:
    return LatencyStats(
        mean=mean_ms, p50=mean_ms, p90=mean_ms * 1.4, p95=mean_ms * 1.6, p99=mean_ms * 2
    )


def option(
    model_id: str, gpu_id: str, tp: int, precision: Precision, replicas: tuple[int, int]
) -> CapacityOption:
    """A capacity option as the search returns it (only what a plan reads matters)."""
    steady, peak = replicas
    return CapacityOption(
        model_id=model_id,
        gpu_id=gpu_id,
        tp=tp,
        precision=precision,
        max_qps_per_replica=1.5,
        replicas_for_peak=peak,
        min_replicas=steady,
        gpus_total=peak * tp,
        ttft_ms=latency(180),
        tpot_ms=latency(28),
        e2e_ms=latency(6200),
        price=None,
        usd_per_hour=None,
        usd_per_month=None,
        usd_per_month_steady=None,
        usd_per_1k_tokens=None,
        binding_slo="ttft",
    )


def specification(
    slo: SLOTargets, context_tokens: int, reliability: float | None = None
) -> DeploymentSpecification:
    return DeploymentSpecification(
        use_case="chatbot",
        priority="balanced",
        traffic=TrafficProfile(
            prompt_tokens_mean=1000,
            prompt_tokens_p95=3000,
            output_tokens_mean=200,
            output_tokens_p95=450,
            steady_qps=3,
            peak_qps=6,
        ),
        traffic_formula="steady and peak QPS as given",
        slo=slo,
        budget=BudgetConstraint(),
        constraints=SearchConstraints(),
        max_context_tokens=context_tokens,
        reliability_target=reliability,
    )


@dataclass(frozen=True)
class Case:
    model_id: str
    gpu_id: str
    tp: int
    precision: Precision
    replicas: tuple[int, int]
    slo: SLOTargets
    context_tokens: int
    choices: dict[str, Any] = field(default_factory=dict)
    reliability: float | None = None


CHAT_SLO = SLOTargets(ttft_p90_ms=500, tpot_p90_ms=50, e2e_p95_ms=20000)


def llama_8b_on_l4(**choices: Any) -> Case:
    return Case(
        "meta-llama/Llama-3.1-8B-Instruct",
        "L4-PCIE-24GB",
        1,
        "bf16",
        (2, 4),
        CHAT_SLO,
        8192,
        {"hf_token_secret": "hf-token", **choices},
    )


def llama_70b_fp8_on_h100(**choices: Any) -> Case:
    return Case(
        "meta-llama/Llama-3.1-70B-Instruct",
        "H100-SXM-80GB",
        4,
        "fp8",
        (2, 6),
        SLOTargets(ttft_p90_ms=300, tpot_p90_ms=40, e2e_p95_ms=30000),
        32768,
        {
            "hf_token_secret": "hf-token",
            "autoscaler": "keda",
            "prometheus_url": PROMETHEUS,
            "labels": {"release": "kube-prometheus-stack", "team": "ml-platform"},
            **choices,
        },
        reliability=0.9999,
    )


CLASSIC = {"api": "inferenceservice"}

GOLDEN: dict[str, Case] = {
    # KServe's LLMInferenceService, the default.
    # A small model on one L4, scaled from 2 to 4 by the workload variant autoscaler (HPA).
    "llama-8b-l4-llmisvc": llama_8b_on_l4(),
    # 70B quantised to FP8 at load on four H100s, KEDA as the actuator, four nines.
    "llama-70b-fp8-h100-llmisvc": llama_70b_fp8_on_h100(),
    # An MoE on two H200 replicas, no autoscaling, llm-d's prefix-cache-aware routing.
    "qwen3-moe-h200-routed": Case(
        "Qwen/Qwen3-30B-A3B",
        "H200-SXM-141GB",
        1,
        "bf16",
        (2, 2),
        SLOTargets(ttft_p90_ms=1000, tpot_p90_ms=75, e2e_p95_ms=60000),
        32768,
        {
            "source_uri": "s3://models-prod/qwen/Qwen3-30B-A3B",
            "served_model_name": "qwen3-30b",
            "prefix_routing": True,
        },
    ),
    # The classic ServingRuntime plus InferenceService, for clusters before KServe 0.17.
    # A small model on one L4, HPA on the queue; the same plan in Knative mode below.
    "llama-8b-l4": llama_8b_on_l4(**CLASSIC),
    "llama-8b-l4-serverless": llama_8b_on_l4(mode="serverless"),
    # 70B quantised to FP8 at load on four H100s, KEDA on the queue, four nines.
    "llama-70b-fp8-h100": llama_70b_fp8_on_h100(**CLASSIC),
    # An MoE on one H200, weights from S3 (no Hugging Face token).
    "qwen3-moe-h200": Case(
        "Qwen/Qwen3-30B-A3B",
        "H200-SXM-141GB",
        1,
        "bf16",
        (1, 3),
        SLOTargets(ttft_p90_ms=1000, tpot_p90_ms=75, e2e_p95_ms=60000),
        32768,
        {
            **CLASSIC,
            "source_uri": "s3://models-prod/qwen/Qwen3-30B-A3B",
            "served_model_name": "qwen3-30b",
        },
    ),
    # An MoE over two A100s from a PVC: tensor parallel, so shared memory.
    "mixtral-a100-pvc": Case(
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "A100-SXM-80GB",
        2,
        "bf16",
        (1, 2),
        SLOTargets(ttft_p90_ms=800, tpot_p90_ms=60),
        16384,
        {
            **CLASSIC,
            "source_uri": "pvc://model-store/mixtral-8x7b-instruct",
            "served_model_name": "mixtral",
        },
    ),
    # AMD: amd.com/gpu, the AMD GPU operator's node labels, the ROCm vLLM image.
    "llama-70b-mi300x": Case(
        "meta-llama/Llama-3.3-70B-Instruct",
        "MI300X-OAM-192GB",
        1,
        "bf16",
        (1, 4),
        CHAT_SLO,
        16384,
        {
            **CLASSIC,
            "hf_token_secret": "hf-token",
            "autoscaler": "keda",
            "prometheus_url": PROMETHEUS,
        },
    ),
}


def golden_plan(name: str, catalog: Catalog) -> DeploymentPlan:
    case = GOLDEN[name]
    choices = dict(case.choices)
    # Routing is the specification's: its predictions count on it.
    spec = specification(case.slo, case.context_tokens, case.reliability).model_copy(
        update={"prefix_routing": choices.pop("prefix_routing", False)}
    )
    return plan_for(
        option(case.model_id, case.gpu_id, case.tp, case.precision, case.replicas),
        spec,
        catalog.models[case.model_id],
        catalog.gpus[case.gpu_id],
        catalog.k8s[case.gpu_id],
        name,
        NAMESPACE,
        **choices,
    )


def golden_files(name: str, plan: DeploymentPlan) -> dict[str, str]:
    return {"plan.json": plan.model_dump_json(indent=2) + "\n", **planned_files(render(plan))}


def read_folder(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_rendered_manifests_match_the_goldens(name: str, catalog: Catalog) -> None:
    files = golden_files(name, golden_plan(name, catalog))
    folder = GOLDEN_DIR / name
    if REGENERATE:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in set(read_folder(folder)) - set(files):
            (folder / stale).unlink()
        for file_name, text in files.items():
            (folder / file_name).write_text(text, encoding="utf-8")
    assert files == read_folder(folder)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_manifests_pass_schemas_and_policy(name: str, catalog: Catalog) -> None:
    plan = DeploymentPlan.model_validate_json((GOLDEN_DIR / name / "plan.json").read_text())
    rendered = render(plan)
    assert validate(rendered, plan, catalog.planner()) == []
    assert list(yaml.safe_load_all(to_yaml(rendered))) == rendered


def test_vllm_arguments_follow_the_plan(catalog: Catalog) -> None:
    plan = golden_plan("llama-70b-fp8-h100", catalog)
    runtime, service = render(plan)[:2]
    args = runtime["spec"]["containers"][0]["args"]
    assert args == [
        "/mnt/models",
        "--port=8080",
        "--served-model-name=meta-llama/Llama-3.1-70B-Instruct",
        "--tensor-parallel-size=4",
        "--max-model-len=32768",
        "--gpu-memory-utilization=0.9",
        "--max-num-seqs=1024",
        "--max-num-batched-tokens=8192",
        "--quantization=fp8",  # a 16-bit checkpoint quantised at load
        "--kv-cache-dtype=auto",
        "--enable-prefix-caching",
        "--enable-chunked-prefill",
    ]
    resources = service["spec"]["predictor"]["model"]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "4"
    assert service["spec"]["predictor"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.memory": "81559",
    }
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in runtime[
        "spec"
    ]["volumes"]


def test_amd_plan_uses_amd_resources_labels_and_rocm_image(catalog: Catalog) -> None:
    runtime, service = render(golden_plan("llama-70b-mi300x", catalog))[:2]
    assert runtime["spec"]["containers"][0]["image"] == VLLM_IMAGES["amd"]
    predictor = service["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["amd.com/gpu"] == "1"
    assert predictor["nodeSelector"]["amd.com/gpu.product-name"] == "AMD_Instinct_MI300X_OAM"
    assert predictor["tolerations"] == [
        {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_serverless_and_raw_differ_only_where_the_mode_does(catalog: Catalog) -> None:
    raw = {m["kind"]: m for m in render(golden_plan("llama-8b-l4", catalog))}
    knative = {m["kind"]: m for m in render(golden_plan("llama-8b-l4-serverless", catalog))}
    assert "HorizontalPodAutoscaler" in raw and "HorizontalPodAutoscaler" not in knative
    raw_isvc, knative_isvc = raw["InferenceService"], knative["InferenceService"]
    assert raw_isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert raw_isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert knative_isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert "serving.kserve.io/autoscalerClass" not in knative_isvc["metadata"]["annotations"]
    assert knative_isvc["spec"]["predictor"]["scaleMetric"] == "concurrency"
    assert raw["PodMonitor"]["spec"]["podMetricsEndpoints"][0]["port"] == "http1"
    assert knative["PodMonitor"]["spec"]["podMetricsEndpoints"][0]["port"] == "user-port"
    assert raw["ServingRuntime"]["spec"] == knative["ServingRuntime"]["spec"]


def test_keda_scales_the_predictor_on_the_vllm_queue(catalog: Catalog) -> None:
    kinds = {m["kind"]: m for m in render(golden_plan("llama-70b-fp8-h100", catalog))}
    scaled = kinds["ScaledObject"]["spec"]
    assert "HorizontalPodAutoscaler" not in kinds
    assert scaled["scaleTargetRef"]["name"] == "llama-70b-fp8-h100-predictor"
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 6)
    trigger = scaled["triggers"][0]["metadata"]
    assert trigger["query"] == (
        'sum(vllm:num_requests_waiting{namespace="llm-serving",job="llama-70b-fp8-h100"})'
    )


def test_slo_alerts_burn_rates_follow_the_budgets(catalog: Catalog) -> None:
    kinds = {m["kind"]: m for m in render(golden_plan("llama-70b-fp8-h100", catalog))}
    alerts = [r for g in kinds["PrometheusRule"]["spec"]["groups"] for r in g["rules"]]
    by_alert: dict[str, list[str]] = {}
    for rule in alerts:
        if "alert" in rule:
            by_alert.setdefault(rule["alert"], []).append(rule["expr"])
    # p90 latency SLOs have a 10 % budget: a 14.4x burn is impossible, so the tier is left out.
    assert len(by_alert["VllmTTFTBudgetBurn"]) == 3
    assert len(by_alert["VllmErrorBudgetBurn"]) == 4
    assert "> (14.4 * 0.0001)" in by_alert["VllmErrorBudgetBurn"][0]
    assert 'le="0.25"' in next(
        r["expr"] for r in alerts if r.get("record", "").endswith("ttft_bad:ratio_rate30m")
    )


# --- Hostile and bad input ----------------------------------------------------------------

HOSTILE_NAMES = [
    "llama\nkind: Secret",
    "llama\r",
    'llama"',
    "llama'",
    "&anchor",
    "*alias",
    "llama: x",
    "llama #comment",
    "{llama}",
    "[llama]",
    "!!python/object",
    "Llama",
    "-llama",
    "llama_8b",
    "",
    "a" * 54,
]


@pytest.fixture
def plan_data(catalog: Catalog) -> dict[str, Any]:
    return golden_plan("llama-8b-l4", catalog).model_dump(mode="json")


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        DeploymentPlan.model_validate(data)
    return describe(caught.value)


@pytest.mark.parametrize("bad", HOSTILE_NAMES)
def test_hostile_names_are_refused_before_rendering(bad: str, plan_data: dict[str, Any]) -> None:
    assert refused({**plan_data, "name": bad}).startswith("name:")
    if bad != "a" * 54:  # a namespace may be longer than a name
        assert refused({**plan_data, "namespace": bad}).startswith("namespace:")


@pytest.mark.parametrize(
    ("path", "bad", "says"),
    [
        (("model", "served_model_name"), "llama\n- evil", "served_model_name"),
        (("model", "uri"), "hf://org/repo\nkind: Secret", "model source"),
        (("model", "uri"), "https://example.com/model", "model source"),
        (("model", "uri"), "pvc://claim/../etc", "model source"),
        (("labels",), {"team": "a: b"}, "label"),
        (("labels",), {"&x": "y"}, "label key"),
        (("labels",), {"app.kubernetes.io/name": "x"}, "set by Preflight"),
        (("accelerator", "node_labels"), {"gpu": "x\ny"}, "node label"),
        (("vllm", "image"), "vllm/vllm-openai:latest", "not pinned"),
        (("vllm", "image"), "vllm/vllm-openai", "not pinned"),
        (("serving", "prometheus_url"), 'http://x"; drop', "not an http(s) URL"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    path: tuple[str, ...], bad: Any, says: str, plan_data: dict[str, Any]
) -> None:
    data = copy.deepcopy(plan_data)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = bad
    message = refused(data)
    assert message.startswith(".".join(path[:1])), message
    assert says in message


def test_a_token_is_refused_where_a_secret_name_belongs(plan_data: dict[str, Any]) -> None:
    token = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx"
    data = copy.deepcopy(plan_data)
    data["model"]["hf_token_secret"] = token
    message = refused(data)
    assert "looks like a token" in message and token not in message
    data = copy.deepcopy(plan_data)
    data["labels"] = {"token": token}
    assert "looks like a secret" in refused(data)


def test_tp_larger_than_a_node_is_refused(catalog: Catalog, plan_data: dict[str, Any]) -> None:
    data = copy.deepcopy(plan_data)
    data["vllm"]["tensor_parallel_size"] = 16
    data["vllm"]["shm_gib"] = 8
    assert "exceeds the 8 GPUs of one L4-PCIE-24GB node" in refused(data)
    case = GOLDEN["llama-70b-fp8-h100"]
    with pytest.raises(PlanError, match="exceeds the 8 GPUs"):
        plan_for(
            option(case.model_id, case.gpu_id, 16, "fp8", (1, 2)),
            specification(case.slo, 8192),
            catalog.models[case.model_id],
            catalog.gpus[case.gpu_id],
            catalog.k8s[case.gpu_id],
            "too-wide",
            NAMESPACE,
        )


def test_a_model_that_does_not_fit_is_refused(catalog: Catalog, plan_data: dict[str, Any]) -> None:
    model_id, gpu_id = "meta-llama/Llama-3.1-70B-Instruct", "L4-PCIE-24GB"
    with pytest.raises(PlanError, match="does not fit: weights"):
        plan_for(
            option(model_id, gpu_id, 1, "bf16", (1, 2)),
            specification(CHAT_SLO, 8192),
            catalog.models[model_id],
            catalog.gpus[gpu_id],
            catalog.k8s[gpu_id],
            "too-big",
            NAMESPACE,
        )
    # A hand-edited plan is caught by validation, which rechecks the fit.
    plan = DeploymentPlan.model_validate(
        {**plan_data, "model": {**plan_data["model"], "model_id": model_id}}
    )
    problems = validate(render(plan), plan, catalog.planner())
    assert any("does not fit" in p for p in problems), problems


def test_an_accelerator_without_a_pinned_image_needs_one(catalog: Catalog) -> None:
    model_id, gpu_id = "meta-llama/Llama-3.1-8B-Instruct", "Gaudi3-OAM-128GB"
    args = (
        option(model_id, gpu_id, 1, "bf16", (1, 2)),
        specification(CHAT_SLO, 8192),
        catalog.models[model_id],
        catalog.gpus[gpu_id],
        catalog.k8s[gpu_id],
        "gaudi",
        NAMESPACE,
    )
    with pytest.raises(PlanError, match="no pinned vLLM image for intel accelerators"):
        plan_for(*args)
    plan = plan_for(*args, image="registry.example.com/gaudi/vllm:1.22.0")
    assert plan.accelerator.resource_name == "habana.ai/gaudi"
    assert validate(render(plan), plan, catalog.planner()) == []


def test_validation_catches_tampered_manifests(catalog: Catalog) -> None:
    plan = golden_plan("llama-8b-l4", catalog)
    rendered = render(plan)
    runtime, service = rendered[0], rendered[1]
    runtime["spec"]["containers"][0]["args"][3] = "--tensor-parallel-size=16"
    runtime["spec"]["containers"][0]["env"].append({"name": "HF_TOKEN", "value": "secret"})
    service["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] = "2"
    service["spec"]["predictor"]["model"]["cache"] = "yes"
    service["metadata"]["name"] = "Bad_Name"
    problems = validate(rendered, plan)
    expected = [
        "exceeds the 8 GPUs",
        "env HF_TOKEN has a literal value",
        "requests must equal its limits",
        "'cache' was unexpected",
        "is not a DNS-1123 label",
    ]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)


def kinds_of(plan: DeploymentPlan) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in render(plan)}


def schema_problems_of(manifest: dict[str, Any]) -> list[str]:
    """What schema validation (the first part of `validate`) says of one manifest."""
    return schema_problems([manifest])


@pytest.mark.parametrize(
    ("break_it", "says"),
    [
        (
            lambda model: model.__setitem__("storageURI", model.pop("storageUri")),
            "spec.predictor.model: Additional properties are not allowed ('storageURI'",
        ),
        (
            lambda model: model["env"][0]["valueFrom"]["secretKeyRef"].pop("key"),
            "spec.predictor.model.env.0.valueFrom.secretKeyRef: 'key' is a required property",
        ),
        (
            lambda model: model["resources"]["limits"].__setitem__("memory", "24 GiB"),
            "spec.predictor.model.resources.limits.memory:",
        ),
    ],
    ids=["storageURI", "secretKeyRef-without-key", "bad-quantity"],
)
def test_schema_catches_a_broken_inference_service_model(
    break_it: Any, says: str, catalog: Catalog
) -> None:
    plan = golden_plan("llama-8b-l4", catalog)
    service = kinds_of(plan)["InferenceService"]
    assert schema_problems_of(service) == []
    break_it(service["spec"]["predictor"]["model"])
    problems = schema_problems_of(service)
    assert any(says in p for p in problems), problems


def test_schema_catches_wrong_types_in_an_inference_service(catalog: Catalog) -> None:
    plan = golden_plan("llama-8b-l4-serverless", catalog)
    service = kinds_of(plan)["InferenceService"]
    predictor = service["spec"]["predictor"]
    predictor["minReplicas"] = "two"
    predictor["scaleMetric"] = "queue"
    predictor["tolerations"][0]["effect"] = "NoScheduling"
    problems = schema_problems_of(service)
    for text in [
        "spec.predictor.minReplicas: 'two' is not of type 'integer'",
        "spec.predictor.scaleMetric: 'queue' is not one of",
        "spec.predictor.tolerations.0.effect: 'NoScheduling' is not one of",
    ]:
        assert any(text in p for p in problems), (text, problems)


def test_an_llm_inference_service_carries_the_plan(catalog: Catalog) -> None:
    plan = golden_plan("llama-70b-fp8-h100-llmisvc", catalog)
    kinds = kinds_of(plan)
    # KServe's controller creates the autoscaler: Preflight renders none of its own.
    assert sorted(kinds) == [
        "ConfigMap",
        "LLMInferenceService",
        "PodDisruptionBudget",
        "PodMonitor",
        "PrometheusRule",
    ]
    spec = kinds["LLMInferenceService"]["spec"]
    assert spec["parallelism"] == {"tensor": plan.vllm.tensor_parallel_size} == {"tensor": 4}
    assert spec["model"] == {
        "uri": "hf://meta-llama/Llama-3.1-70B-Instruct",
        "name": "meta-llama/Llama-3.1-70B-Instruct",
    }
    assert spec["scaling"]["minReplicas"] == 2 and spec["scaling"]["maxReplicas"] == 6
    assert "keda" in spec["scaling"]["wva"] and "replicas" not in spec
    main = spec["template"]["containers"][0]
    assert main["name"] == "main" and main["image"] == VLLM_IMAGES["nvidia"]
    # The same engine settings as the classic ServingRuntime, which the prediction assumed.
    classic = kinds_of(golden_plan("llama-70b-fp8-h100", catalog))["ServingRuntime"]
    runtime_args = classic["spec"]["containers"][0]["args"]
    additional = next(e["value"] for e in main["env"] if e["name"] == "VLLM_ADDITIONAL_ARGS")
    assert additional.split() == runtime_args[4:]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert spec["template"]["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in spec[
        "template"
    ]["volumes"]
    # Metrics are scraped from the pods KServe labels, under the job the alerts select.
    monitor = kinds["PodMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"]["app.kubernetes.io/part-of"] == (
        "llminferenceservice"
    )
    assert monitor["podMetricsEndpoints"][0]["portNumber"] == 8000
    assert serving_notes(plan)[0] == (
        "served by an LLMInferenceService (serving.kserve.io/v1alpha2) on KServe's vLLM template"
    )
    assert "no ScaledObject of Preflight's" in serving_notes(plan)[1]


def test_fixed_replicas_and_prefix_routing(catalog: Catalog) -> None:
    plan = golden_plan("qwen3-moe-h200-routed", catalog)
    spec = kinds_of(plan)["LLMInferenceService"]["spec"]
    assert spec["replicas"] == 2 and "scaling" not in spec
    assert spec["router"] == {"route": {}, "gateway": {}, "scheduler": {}}
    assert any("InferencePool" in note for note in serving_notes(plan))


def test_what_only_one_serving_api_has_is_refused_for_the_other(
    plan_data: dict[str, Any],
) -> None:
    serverless = copy.deepcopy(plan_data)
    serverless["serving"] |= {"api": "llminferenceservice", "mode": "serverless"}
    serverless["serving"] |= {"autoscaler": "kserve", "min_replicas": 0}
    routed = copy.deepcopy(plan_data)
    routed["serving"] |= {"api": "inferenceservice", "prefix_routing": True}
    for data, says in [
        (serverless, "serverless (Knative) mode is the InferenceService's"),
        (routed, "prefix-cache-aware routing is llm-d's"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(says)):
            DeploymentPlan.model_validate(data)


@pytest.mark.parametrize(
    ("break_it", "says"),
    [
        (
            lambda spec: spec["parallelism"].__setitem__("tensr", 4),
            "spec.parallelism: Additional properties are not allowed ('tensr'",
        ),
        (
            lambda spec: spec["parallelism"].__setitem__("tensor", "4"),
            "spec.parallelism.tensor: '4' is not of type 'integer'",
        ),
        (lambda spec: spec["model"].pop("uri"), "spec.model: 'uri' is a required property"),
        (
            lambda spec: spec["template"]["containers"][0]["resources"]["limits"].__setitem__(
                "memory", "24 GiB"
            ),
            "spec.template.containers.0.resources.limits.memory:",
        ),
        (
            lambda spec: spec["scaling"]["wva"]["keda"].__setitem__("pollingInterval", 0),
            "spec.scaling.wva.keda.pollingInterval: 0 is less than the minimum",
        ),
    ],
    ids=["misspelt", "mistyped", "no-uri", "bad-quantity", "below-minimum"],
)
def test_the_vendored_crd_schema_catches_a_broken_llm_inference_service(
    break_it: Any, says: str, catalog: Catalog
) -> None:
    service = kinds_of(golden_plan("llama-70b-fp8-h100-llmisvc", catalog))["LLMInferenceService"]
    assert schema_problems_of(service) == []
    break_it(service["spec"])
    problems = schema_problems_of(service)
    assert any(says in p for p in problems), problems


def test_replicas_and_scaling_together_are_refused(catalog: Catalog) -> None:
    plan = golden_plan("llama-70b-fp8-h100-llmisvc", catalog)
    rendered = render(plan)
    service = next(m for m in rendered if m["kind"] == "LLMInferenceService")
    service["spec"]["replicas"] = 3
    service["spec"]["parallelism"]["tensor"] = 16
    problems = validate(rendered, plan)
    assert any("replicas and scaling are mutually exclusive" in p for p in problems), problems
    assert any("tensor parallelism 16 exceeds the 8 GPUs" in p for p in problems), problems
    assert any("4 nvidia.com/gpu for tensor parallel 16" in p for p in problems), problems


def test_schema_catches_a_broken_serving_runtime(catalog: Catalog) -> None:
    plan = golden_plan("mixtral-a100-pvc", catalog)
    runtime = kinds_of(plan)["ServingRuntime"]
    container = runtime["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["paht"] = "/health"
    container["ports"][0]["containerPort"] = "8080"
    runtime["spec"]["volumes"][1]["emptyDir"]["medium"] = "memory"
    problems = schema_problems_of(runtime)
    for text in [
        "readinessProbe.httpGet: Additional properties are not allowed ('paht'",
        "spec.containers.0.ports.0.containerPort: '8080' is not of type 'integer'",
        "spec.volumes.1.emptyDir.medium: 'memory' is not one of",
    ]:
        assert any(text in p for p in problems), (text, problems)


@pytest.mark.parametrize(
    ("break_it", "says"),
    [
        (
            lambda trigger: trigger.__setitem__("metaData", trigger.pop("metadata")),
            "Additional properties are not allowed ('metaData'",
        ),
        (
            lambda trigger: trigger.__setitem__("type", "prometheus-query"),
            "spec.triggers.0.type: 'prometheus-query' is not one of",
        ),
        (
            lambda trigger: trigger["metadata"].__setitem__(
                "serverAdress", trigger["metadata"].pop("serverAddress")
            ),
            "spec.triggers.0.metadata: 'serverAddress' is a required property",
        ),
        (
            lambda trigger: trigger["metadata"].__setitem__("threshold", 2),
            "spec.triggers.0.metadata.threshold: 2 is not of type 'string'",
        ),
    ],
    ids=["metaData", "unknown-type", "serverAdress", "threshold-not-string"],
)
def test_schema_catches_a_broken_keda_trigger(break_it: Any, says: str, catalog: Catalog) -> None:
    plan = golden_plan("llama-70b-fp8-h100", catalog)
    scaled = kinds_of(plan)["ScaledObject"]
    assert schema_problems_of(scaled) == []
    break_it(scaled["spec"]["triggers"][0])
    problems = schema_problems_of(scaled)
    assert any(says in p for p in problems), problems


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        (["sum(up)"], "is not valid under any of the given schemas"),
        (None, "is not valid under any of the given schemas"),
        (0.5, "is not valid under any of the given schemas"),
    ],
    ids=["list", "null", "float"],
)
def test_schema_catches_a_prometheus_rule_whose_expr_is_not_promql_text(
    expr: Any, says: str, catalog: Catalog
) -> None:
    plan = golden_plan("llama-8b-l4", catalog)
    rule = kinds_of(plan)["PrometheusRule"]
    assert schema_problems_of(rule) == []
    rule["spec"]["groups"][1]["rules"][0]["expr"] = expr
    problems = schema_problems_of(rule)
    assert any(
        p.startswith(f"PrometheusRule/{rule['metadata']['name']}: spec.groups.1.rules.0.expr: ")
        and says in p
        for p in problems
    ), problems


def test_schema_catches_a_broken_pod_monitor_and_rule(catalog: Catalog) -> None:
    plan = golden_plan("llama-8b-l4", catalog)
    kinds = kinds_of(plan)
    monitor, rule = kinds["PodMonitor"], kinds["PrometheusRule"]
    monitor["spec"]["podMetricsEndpoints"][0]["scheme"] = "grpc"
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
    alert = rule["spec"]["groups"][1]["rules"][0]
    alert["record"] = "also:a:recording_rule"
    alert["labels"]["severity"] = 1
    problems = schema_problems_of(monitor) + schema_problems_of(rule)
    for text in [
        "spec.podMetricsEndpoints.0.scheme: 'grpc' is not one of",
        "spec.podMetricsEndpoints.0.interval: '15 seconds' does not match",
        "spec.groups.1.rules.0: {",
        "spec.groups.1.rules.0.labels.severity: 1 is not of type 'string'",
    ]:
        assert any(text in p for p in problems), (text, problems)


def test_render_revalidates_a_plan_that_skipped_validation(catalog: Catalog) -> None:
    plan = golden_plan("llama-8b-l4", catalog).model_copy(update={"name": "x\nkind: Secret"})
    with pytest.raises(ValidationError):
        render(plan)


def test_yaml_anchors_and_aliases_are_refused() -> None:
    with pytest.raises(ManifestError, match="anchor or alias"):
        manifests_module._parsed("a: &x {b: 1}\nc: *x\n", "test")


# --- Property: every valid plan renders to valid manifests --------------------------------

SAFE = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
LABEL_KEYS = SAFE.map(lambda key: f"team.example.com/{key}")


@st.composite
def plans(draw: st.DrawFn, catalog: Catalog) -> DeploymentPlan:
    gpu_id = draw(st.sampled_from(sorted(catalog.gpus)))
    gpu, k8s = catalog.gpus[gpu_id], catalog.k8s[gpu_id]
    tp = draw(st.sampled_from([t for t in (1, 2, 4, 8) if t <= gpu.gpus_per_node]))
    api = draw(st.sampled_from(["llminferenceservice", "inferenceservice"]))
    mode = "raw" if api == "llminferenceservice" else draw(st.sampled_from(["raw", "serverless"]))
    autoscaler = "kserve" if mode == "serverless" else draw(st.sampled_from(["hpa", "keda"]))
    low = draw(st.integers(0 if mode == "serverless" else 1, 4))
    scheme = draw(st.sampled_from(["hf", "s3", "pvc"]))
    uri = {
        "hf": f"hf://{draw(SAFE)}/{draw(SAFE)}",
        "s3": f"s3://{draw(SAFE)}bucket/{draw(SAFE)}",
        "pvc": f"pvc://{draw(SAFE)}/{draw(SAFE)}",
    }[scheme]
    precision = draw(st.sampled_from(["bf16", "fp8", "int4"]))
    quantization = draw(st.sampled_from([None, "fp8"])) if precision == "fp8" else None
    seqs = draw(st.integers(1, 1024))
    shm = draw(st.integers(1, 16)) if tp > 1 else 0
    cache = draw(st.integers(1, 50))
    targets = {
        "ttft_p90_ms": draw(st.none() | st.floats(1, 60_000)),
        "tpot_p90_ms": draw(st.none() | st.floats(10, 1000)),
        "e2e_p95_ms": draw(st.none() | st.floats(300, 600_000)),
    }
    return DeploymentPlan.model_validate(
        {
            "name": draw(SAFE),
            "namespace": draw(SAFE),
            "deployment_id": draw(SAFE),
            "labels": draw(
                st.dictionaries(SAFE.map(lambda k: f"team.example.com/{k}"), SAFE, max_size=3)
            ),
            "model": {
                "model_id": f"{draw(SAFE)}/{draw(SAFE)}",
                "served_model_name": draw(SAFE),
                "uri": uri,
                "hf_token_secret": draw(st.none() | SAFE) if scheme == "hf" else None,
            },
            "accelerator": {
                "gpu_id": gpu_id,
                "vendor": gpu.vendor,
                "resource_name": k8s.resource_name,
                "node_labels": k8s.node_labels,
                "gpus_per_node": gpu.gpus_per_node,
                "tolerations": [{"key": k8s.resource_name, "effect": "NoSchedule"}],
            },
            "vllm": {
                "tensor_parallel_size": tp,
                "max_model_len": draw(st.integers(256, 131072)),
                "gpu_memory_utilization": draw(st.floats(0.5, 0.95)),
                "max_num_seqs": seqs,
                "max_num_batched_tokens": draw(st.integers(max(seqs, 16), 1 << 20)),
                "precision": precision,
                "quantization": quantization,
                "kv_cache_dtype": draw(st.sampled_from(["auto", "fp8"])),
                "enable_prefix_caching": draw(st.booleans()),
                "enable_chunked_prefill": True,
                "image": VLLM_IMAGES.get(gpu.vendor, "registry.example.com/gaudi/vllm:1.22.0"),
                "cpu": draw(st.integers(1, 64)),
                "memory_gib": shm + draw(st.integers(1, 512)),
                "shm_gib": shm,
                "cache_gib": cache,
                "ephemeral_storage_gib": cache + draw(st.integers(0, 2000)),
                "startup_seconds": draw(st.integers(60, 3600)),
            },
            "serving": {
                "api": api,
                "mode": mode,
                "prefix_routing": api == "llminferenceservice" and draw(st.booleans()),
                "min_replicas": low,
                "max_replicas": draw(st.integers(max(low, 1), 50)),
                "autoscaler": autoscaler,
                "scale_target": draw(st.integers(1, 64)),
                "prometheus_url": PROMETHEUS if autoscaler == "keda" else None,
            },
            "slo": {**targets, "availability": draw(st.floats(0.9, 0.99999))},
        }
    )


def test_every_valid_plan_renders_to_valid_manifests(catalog: Catalog) -> None:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(plan=plans(catalog))
    def check(plan: DeploymentPlan) -> None:
        assert validate(render(plan), plan) == []

    check()


# --- `preflight render`, as a user runs it -------------------------------------------------


def render_cli(
    plan: Path, output: Path, database_url: str, *options: str
) -> subprocess.CompletedProcess[str]:
    return preflight(
        "render", "--plan", str(plan), "-o", str(output), *options, database_url=database_url
    )


@pytest.mark.integration  # a `preflight` process
@pytest.mark.parametrize("name", ["llama-70b-fp8-h100-llmisvc", "llama-70b-fp8-h100"])
def test_render_writes_the_golden_files(name: str, tmp_path: Path, seeded_sqlite_url: str) -> None:
    output = tmp_path / "out"
    plan = GOLDEN_DIR / name / "plan.json"
    result = render_cli(plan, output, seeded_sqlite_url)
    assert result.returncode == 0, result.stderr
    expected = read_folder(GOLDEN_DIR / name)
    del expected["plan.json"]
    assert read_folder(output) == expected
    # Rendering again into the same folder changes nothing.
    again = render_cli(plan, output, seeded_sqlite_url)
    assert again.returncode == 0, again.stderr
    assert read_folder(output) == expected


@pytest.mark.integration  # a `preflight` process
def test_render_serving_chooses_the_kserve_resource(tmp_path: Path, seeded_sqlite_url: str) -> None:
    plan = GOLDEN_DIR / "llama-8b-l4-llmisvc" / "plan.json"
    result = render_cli(plan, tmp_path / "new", seeded_sqlite_url)
    assert result.returncode == 0, result.stderr
    assert "served by an LLMInferenceService (serving.kserve.io/v1alpha2)" in result.stdout
    assert "no HorizontalPodAutoscaler of Preflight's" in result.stdout
    written = yaml.safe_load(
        (tmp_path / "new" / "20-llminferenceservice-llama-8b-l4-llmisvc.yaml").read_text()
    )
    assert written["spec"]["parallelism"]["tensor"] == 1

    classic = render_cli(plan, tmp_path / "old", seeded_sqlite_url, "--serving", "inferenceservice")
    assert classic.returncode == 0, classic.stderr
    assert "InferenceService (serving.kserve.io/v1beta1) with its own ServingRuntime" in (
        classic.stdout
    )
    assert [name.split("-")[1] for name in sorted(read_folder(tmp_path / "old"))[:-1]] == [
        "configmap",
        "servingruntime",
        "inferenceservice",
        "horizontalpodautoscaler",
        "poddisruptionbudget",
        "podmonitor",
        "prometheusrule",
    ]

    serverless = GOLDEN_DIR / "llama-8b-l4-serverless" / "plan.json"
    refused = render_cli(
        serverless, tmp_path / "none", seeded_sqlite_url, "--serving", "llminferenceservice"
    )
    assert refused.returncode == 2
    assert "serverless (Knative) mode is the InferenceService's" in refused.stderr
    assert not (tmp_path / "none").exists()


@pytest.mark.integration  # a `preflight` process
def test_render_refuses_a_hostile_plan_and_writes_nothing(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    data = json.loads((GOLDEN_DIR / "llama-8b-l4" / "plan.json").read_text())
    data["name"] = "llama\nkind: Secret"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(data))
    output = tmp_path / "out"
    result = render_cli(plan, output, seeded_sqlite_url)
    assert result.returncode == 2
    assert (
        "is not a valid deployment plan: name: name 'llama\\nkind: Secret' is not a DNS-1123 label"
        in result.stderr
    )
    assert not output.exists()


@pytest.mark.integration  # a `preflight` process
def test_render_lists_the_problems_of_a_plan_that_does_not_fit(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    data = json.loads((GOLDEN_DIR / "llama-8b-l4" / "plan.json").read_text())
    data["model"]["model_id"] = "meta-llama/Llama-3.1-70B-Instruct"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(data))
    output = tmp_path / "out"
    result = render_cli(plan, output, seeded_sqlite_url)
    assert result.returncode == 2
    assert "not valid; nothing written" in result.stderr
    assert "meta-llama/Llama-3.1-70B-Instruct on 1 x L4-PCIE-24GB does not fit" in result.stderr
    assert not output.exists()


@pytest.mark.integration  # a `preflight` process
def test_render_keeps_out_of_a_folder_with_other_files(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    plan = GOLDEN_DIR / "llama-8b-l4" / "plan.json"
    result = render_cli(plan, output, seeded_sqlite_url)
    assert result.returncode == 2
    assert "holds other files (notes.txt)" in result.stderr
    assert read_folder(output) == {"notes.txt": "mine"}
