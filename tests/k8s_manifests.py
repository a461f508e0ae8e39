"""Small, realistic manifests of the kinds Preflight renders, for the apply and GitOps tests."""

from __future__ import annotations

import json
from typing import Any


def serving_manifests(
    name: str = "llama-8b", namespace: str = "ml", max_num_seqs: int = 128, alerts: bool = False
) -> list[dict[str, Any]]:
    """A ServingRuntime, an InferenceService using it, an HPA, a PDB and a ServiceMonitor;
    `max_num_seqs` varies the vLLM arguments, `alerts` adds a PrometheusRule."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "preflight"}
    meta = {"name": name, "namespace": namespace, "labels": labels}
    manifests: list[dict[str, Any]] = [
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "ServingRuntime",
            "metadata": {**meta, "name": f"{name}-vllm"},
            "spec": {
                "supportedModelFormats": [{"name": "huggingface", "autoSelect": True}],
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "vllm/vllm-openai:v0.6.3",
                        "args": [
                            "--tensor-parallel-size=1",
                            f"--max-num-seqs={max_num_seqs}",
                            "--gpu-memory-utilization=0.9",
                        ],
                        "env": [
                            {
                                "name": "HF_TOKEN",
                                "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
                            }
                        ],
                        "resources": {
                            "requests": {"nvidia.com/gpu": "1"},
                            "limits": {"nvidia.com/gpu": "1"},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                **meta,
                "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
            },
            "spec": {
                "predictor": {
                    "minReplicas": 1,
                    "maxReplicas": 3,
                    "model": {
                        "modelFormat": {"name": "huggingface"},
                        "runtime": f"{name}-vllm",
                        "storageUri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                    },
                    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
                }
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": f"{name}-predictor",
                },
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": meta,
            "spec": {
                "selector": {"matchLabels": labels},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
            },
        },
    ]
    if alerts:
        manifests.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": meta,
                "spec": {
                    "groups": [
                        {
                            "name": f"{name}-slo",
                            "rules": [
                                {
                                    "alert": "TTFTBudgetBurn",
                                    "expr": "vllm:time_to_first_token_seconds:p90 > 0.5",
                                    "for": "5m",
                                }
                            ],
                        }
                    ]
                },
            }
        )
    return [json.loads(json.dumps(m)) for m in manifests]  # nothing shared, as if parsed
