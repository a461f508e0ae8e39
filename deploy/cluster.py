"""Talking to a Kubernetes API server: permission check, server-side apply, readiness, delete.

Plain functions over the official client's `ApiClient` (raw requests, so the exact calls are
visible and testable). Every error message is built from the API server's own `Status`
message, never from the request, so a bearer token or kubeconfig cannot leak into it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import urllib3
from kubernetes import client

from deploy.targets import ClusterError
from manifests.kinds import SERVING_KINDS, ObjectRef, object_ref
from planner.deployment_plan import SERVING_APIS, ServingApi
from workflows.payloads import AppliedObject, ReadyResult

VERBS = ("get", "create", "patch", "delete")
"""What a deploy and its rollback need: read state, create via apply, change, remove."""

FIELD_MANAGER = "preflight"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


class PermissionMissing(ClusterError):  # noqa: N818  (the name the issue uses)
    """The caller's identity lacks verbs on resources the manifests need; nothing was sent."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__("missing permissions:\n  " + "\n  ".join(missing))


class ApplyFailed(ClusterError):  # noqa: N818
    """The API server refused a request on one object; carries its status and message."""

    def __init__(self, ref: ObjectRef, status: int, message: str) -> None:
        self.ref, self.status, self.server_message = ref, status, message
        super().__init__(f"{ref}: the API server answered {status}: {message}")


class NotReady(ClusterError):  # noqa: N818
    """The model's (LLM)InferenceService did not become Ready in time; carries its last
    conditions."""

    def __init__(self, ref: ObjectRef, timeout_s: float, conditions: list[str]) -> None:
        self.ref, self.conditions = ref, conditions
        last = "; ".join(conditions) or "no conditions reported"
        super().__init__(f"{ref} not Ready after {timeout_s:g} s: {last}")


def check_permissions(
    api_client: client.ApiClient, manifests: list[dict[str, Any]], namespace: str | None = None
) -> list[str]:
    """One SelfSubjectAccessReview per (group, resource, verb, namespace) the manifests
    involve; returns what is missing, e.g. `cannot patch inferenceservices.serving.kserve.io
    in namespace ml`. `namespace` overrides the manifests' own."""
    wanted: dict[tuple[str, str, str], str] = {}
    for ref in map(object_ref, manifests):
        ns = namespace or ref.namespace
        wanted[(ref.group, ref.resource, ns)] = ref.qualified_resource
    missing = []
    for (group, resource, ns), qualified in wanted.items():
        for verb in VERBS:
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "group": group,
                        "resource": resource,
                        "verb": verb,
                        "namespace": ns,
                    }
                },
            }
            status, answer = call(
                api_client,
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                body=review,
            )
            if status >= 300:
                raise ClusterError(f"access review failed ({status}): {_message(answer)}")
            if not (answer.get("status") or {}).get("allowed"):
                missing.append(f"cannot {verb} {qualified} in namespace {ns}")
    return missing


def apply(
    api_client: client.ApiClient,
    manifests: list[dict[str, Any]],
    dry_run: bool,
    field_manager: str = FIELD_MANAGER,
) -> list[AppliedObject]:
    """Server-side apply of each manifest in order; `dry_run` asks the server to validate and
    admit without persisting. Without `force`: a field another manager owns (someone's
    `kubectl edit`, another controller) is a conflict to show the admin, not to overwrite."""
    results = []
    for manifest in manifests:
        ref = object_ref(manifest)
        existing = _get(api_client, ref)
        query = [("fieldManager", field_manager)] + ([("dryRun", "All")] if dry_run else [])
        status, answer = call(
            api_client,
            "PATCH",
            ref.path,
            query=query,
            body=manifest,
            content_type=APPLY_CONTENT_TYPE,
        )
        if status >= 300:
            raise ApplyFailed(ref, status, _message(answer))
        version = (answer.get("metadata") or {}).get("resourceVersion")
        action: Literal["created", "configured", "unchanged"]
        if existing is None:
            action = "created"
        elif dry_run:
            # A dry run persists nothing, so only the content tells whether it would change.
            action = "unchanged" if _content(existing) == _content(answer) else "configured"
        else:
            # The server bumps resourceVersion only when the stored object changed.
            unchanged = version == (existing.get("metadata") or {}).get("resourceVersion")
            action = "unchanged" if unchanged else "configured"
        results.append(
            AppliedObject(
                kind=ref.kind,
                name=ref.name,
                namespace=ref.namespace,
                action=action,
                resource_version=version,
                dry_run=dry_run,
            )
        )
    return results


def wait_ready(
    api_client: client.ApiClient,
    ref: ObjectRef,
    timeout_s: float,
    on_progress: Callable[[str], None] = lambda _: None,
    poll_interval_s: float = 2.0,
) -> ReadyResult:
    """Poll the model's (LLM)InferenceService until its Ready condition is True; report each
    change of its conditions through `on_progress`; NotReady with the last conditions on
    timeout."""
    name, namespace = ref.name, ref.namespace
    started = time.monotonic()
    last: list[str] = []
    while True:
        found = _get(api_client, ref)
        conditions = (found or {}).get("status", {}).get("conditions") or []
        summary = [_condition(c) for c in conditions] if found else ["not found yet"]
        if summary != last:
            on_progress("; ".join(summary) or "waiting for the first status")
            last = summary
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            url = (found or {}).get("status", {}).get("url")
            waited = time.monotonic() - started
            return ReadyResult(
                name=name, namespace=namespace, conditions=summary, url=url, waited_s=waited
            )
        if time.monotonic() - started >= timeout_s:
            raise NotReady(ref, timeout_s, last)
        time.sleep(poll_interval_s)


def delete(api_client: client.ApiClient, manifests: Iterable[dict[str, Any]]) -> list[str]:
    """Delete each manifest's object, last applied first; already gone counts as done.
    Returns what was deleted."""
    deleted = []
    for ref in reversed([object_ref(m) for m in manifests]):
        status, answer = call(api_client, "DELETE", ref.path)
        if status == 404:
            continue
        if status >= 300:
            raise ApplyFailed(ref, status, _message(answer))
        deleted.append(str(ref))
    return deleted


def read(api_client: client.ApiClient, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The live object a manifest describes, or None when there is none."""
    return _get(api_client, object_ref(manifest))


def serving_api(api_client: client.ApiClient) -> ServingApi:
    """Which of KServe's resources for LLMs the cluster serves, the newest when both (from
    API discovery); a ClusterError naming both when it serves neither."""
    for api in SERVING_APIS:
        api_version, kind = SERVING_KINDS[api]
        status, answer = call(api_client, "GET", f"/apis/{api_version}")
        if status == 200 and any(r.get("kind") == kind for r in answer.get("resources") or []):
            return api
    wanted = " nor ".join(f"{k} ({v})" for v, k in SERVING_KINDS.values())
    raise ClusterError(f"the cluster serves neither {wanted}: is KServe installed?")


def served(api_client: client.ApiClient, api_version: str) -> bool:
    """Whether the cluster serves an API group version (e.g. KServe's CRDs are installed)."""
    path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    return call(api_client, "GET", path)[0] == 200


def _get(api_client: client.ApiClient, ref: ObjectRef) -> dict[str, Any] | None:
    status, answer = call(api_client, "GET", ref.path)
    if status == 404:
        return None
    if status >= 300:
        raise ApplyFailed(ref, status, _message(answer))
    return answer


def call(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: dict[str, Any] | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    """One call through the client's own auth and transport; (status, decoded JSON body)."""
    request = api_client.param_serialize(
        method,
        path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    try:
        response = api_client.call_api(*request, _request_timeout=30)
        response.read()  # type: ignore[no-untyped-call]
    except urllib3.exceptions.HTTPError as error:
        host = api_client.configuration.host
        raise ClusterError(
            f"cannot reach the API server at {host}: {type(error).__name__}"
        ) from None
    raw: bytes = response.data or b"{}"
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = {"message": f"non-JSON answer ({len(raw)} bytes)"}
    if not isinstance(decoded, dict):
        return response.status, {}
    if response.status >= 300 and isinstance(decoded.get("message"), str):
        decoded["message"] = _without_credentials(decoded["message"], api_client)
    return response.status, decoded


def _without_credentials(text: str, api_client: client.ApiClient) -> str:
    """Belt and braces: should a server or proxy ever echo the credential, blank it out."""
    for value in (api_client.configuration.api_key or {}).values():
        token = str(value).removeprefix("Bearer ").strip()
        if len(token) >= 8:
            text = text.replace(token, "[redacted]")
    return text


def _message(status_body: dict[str, Any]) -> str:
    return str(status_body.get("message") or status_body.get("reason") or "no message")


def _condition(condition: dict[str, Any]) -> str:
    text = f"{condition.get('type')}={condition.get('status')}"
    if condition.get("reason"):
        text += f" ({condition['reason']})"
    if condition.get("message"):
        text += f": {condition['message']}"
    return text


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the fields the server changes on every write."""
    metadata = {
        k: v
        for k, v in (obj.get("metadata") or {}).items()
        if k not in {"resourceVersion", "managedFields", "generation"}
    }
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": metadata}
