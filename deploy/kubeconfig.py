"""Which cluster to talk to: kubeconfig (optionally one named context) or the in-cluster
service account, and whether any is configured at all (else Preflight uses GitOps mode)."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from deploy.targets import ClusterError


def cluster_configured() -> bool:
    """Whether a kubeconfig or an in-cluster service account is there (else GitOps mode)."""
    kubeconfig = os.environ.get("KUBECONFIG") or config.KUBE_CONFIG_DEFAULT_LOCATION
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    paths = [Path(p).expanduser() for p in kubeconfig.split(os.pathsep) if p]
    return in_cluster or any(p.is_file() for p in paths)


IN_CLUSTER = "in-cluster"
"""The context name Preflight records for a service account's in-cluster configuration."""


def active_context(context: str | None = None) -> str:
    """The context a deploy goes to, by name, so a rollback later reaches the same cluster
    even if the kubeconfig's current context changed meanwhile."""
    if context:
        return context
    try:
        _, active = config.list_kube_config_contexts(config_file=_kubeconfig_path())  # type: ignore[no-untyped-call]
    except ConfigException:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return IN_CLUSTER
        raise ClusterError("no kubeconfig context and not running in a cluster") from None
    return str(active["name"])


def connect(context: str | None = None) -> client.ApiClient:
    """An ApiClient from the kubeconfig (optionally one context), or in-cluster config."""
    if context == IN_CLUSTER:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)
    try:
        api_client: client.ApiClient = config.new_client_from_config(
            config_file=_kubeconfig_path(), context=context
        )  # type: ignore[no-untyped-call]
        return api_client
    except ConfigException as error:
        # The exception names the problem (no file, no such context), not the file's contents.
        raise ClusterError(f"no usable Kubernetes configuration: {error}") from None


def _kubeconfig_path() -> str | None:
    # The client reads KUBECONFIG once, at import; read it at call time instead (the client
    # merges a `:`-separated list itself).
    return os.environ.get("KUBECONFIG") or None
