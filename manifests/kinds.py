"""The Kubernetes kinds Preflight renders, and where each lives in the API.

A fixed table instead of the discovery API: Preflight only ever sends these kinds, the table
needs no round trip (nor discovery's cache file in /tmp), and a manifest of any other kind is
refused before anything reaches the cluster. Every kind here is namespaced.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from planner.k8s_names import DNS1123_LABEL, DNS1123_SUBDOMAIN, MAX_LABEL_VALUE, MAX_SUBDOMAIN

RESOURCES: dict[tuple[str, str], str] = {
    # (API group, kind) -> resource (plural) name
    ("", "ConfigMap"): "configmaps",
    ("", "Service"): "services",
    ("", "ServiceAccount"): "serviceaccounts",
    ("", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("apps", "Deployment"): "deployments",
    ("serving.kserve.io", "ServingRuntime"): "servingruntimes",
    ("serving.kserve.io", "InferenceService"): "inferenceservices",
    ("serving.kserve.io", "LLMInferenceService"): "llminferenceservices",
    ("autoscaling", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("keda.sh", "ScaledObject"): "scaledobjects",
    ("policy", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("monitoring.coreos.com", "ServiceMonitor"): "servicemonitors",
    ("monitoring.coreos.com", "PodMonitor"): "podmonitors",
    ("monitoring.coreos.com", "PrometheusRule"): "prometheusrules",
}

APPLY_ORDER: dict[str, int] = {
    # Objects others refer to first: a runtime before the service that names it, the service
    # before what scales, guards or watches it. Also the prefix of GitOps file names.
    "ServiceAccount": 5,
    "ConfigMap": 5,
    "PersistentVolumeClaim": 5,
    "ServingRuntime": 10,
    "InferenceService": 20,
    "LLMInferenceService": 20,
    "Deployment": 20,
    "Service": 25,
    "HorizontalPodAutoscaler": 30,
    "ScaledObject": 30,
    "PodDisruptionBudget": 40,
    "ServiceMonitor": 50,
    "PodMonitor": 50,
    "PrometheusRule": 60,
}


SERVING_KINDS: dict[str, tuple[str, str]] = {
    # A plan's serving API -> (apiVersion, kind) of the object whose Ready condition and URL
    # say the model is served.
    "llminferenceservice": ("serving.kserve.io/v1alpha2", "LLMInferenceService"),
    "inferenceservice": ("serving.kserve.io/v1beta1", "InferenceService"),
}


def serving_object(manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest of the object that serves the model, if the manifests hold one."""
    kinds = set(SERVING_KINDS.values())
    return next((m for m in manifests if (m.get("apiVersion"), m.get("kind")) in kinds), None)


def serving_ref(kind: str, name: str, namespace: str) -> ObjectRef:
    """Where the object of `kind` that serves the model lives."""
    api_version = next(v for v, k in SERVING_KINDS.values() if k == kind)
    return object_ref(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
        }
    )


class UnsupportedManifestError(ValueError):
    """A manifest Preflight does not know how to send (unknown kind, missing name, ...)."""


class ObjectRef(BaseModel, frozen=True):
    """Where one manifest's object lives in the API."""

    api_version: str
    kind: str
    name: str
    namespace: str
    resource: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def path(self) -> str:
        prefix = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        return f"{prefix}/namespaces/{self.namespace}/{self.resource}/{self.name}"

    @property
    def qualified_resource(self) -> str:
        """`inferenceservices.serving.kserve.io`, as kubectl and RBAC spell it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def object_ref(manifest: dict[str, Any]) -> ObjectRef:
    """The API location of `manifest`, or UnsupportedManifestError saying what is wrong."""
    api_version = manifest.get("apiVersion")
    kind = manifest.get("kind")
    metadata = manifest.get("metadata") or {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise UnsupportedManifestError("a manifest lacks apiVersion or kind")
    if not isinstance(name, str) or not name:
        raise UnsupportedManifestError(f"a {kind} manifest lacks metadata.name")
    if not isinstance(namespace, str) or not namespace:
        raise UnsupportedManifestError(f"{kind} {name} lacks metadata.namespace")
    # Names become URL path segments and file names: these shapes rule out `/`, `..`.
    if len(name) > MAX_SUBDOMAIN or not DNS1123_SUBDOMAIN.match(name):
        raise UnsupportedManifestError(f"{kind} name {name!r} is not a DNS-1123 subdomain")
    if len(namespace) > MAX_LABEL_VALUE or not DNS1123_LABEL.match(namespace):
        raise UnsupportedManifestError(
            f"{kind} {name}: namespace {namespace!r} is not a DNS-1123 label"
        )
    resource = RESOURCES.get((api_version.rpartition("/")[0], kind))
    if resource is None:
        known = ", ".join(sorted({k for _, k in RESOURCES}))
        raise UnsupportedManifestError(
            f"{kind} ({api_version}) is not a kind Preflight sends: {known}"
        )
    return ObjectRef(
        api_version=api_version, kind=kind, name=name, namespace=namespace, resource=resource
    )
