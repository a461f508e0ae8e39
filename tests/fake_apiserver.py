"""A local HTTP endpoint that answers as a Kubernetes API server does, for exactly the calls
Preflight makes: API discovery of a group version, SelfSubjectAccessReview, server-side
apply (with and without dry run), GET and DELETE of namespaced objects. It records every
request so tests can assert what the client sent, and it refuses requests without the
expected bearer token (401) as a real server would.

Server-side apply is simplified: the applied configuration replaces the object's content (not
a field-ownership merge), which is what one field manager applying whole manifests sees.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.conftest import free_port

OBJECT_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)/(?P<name>[^/]+)$"
)
LIST_PATH = re.compile(r"^/api/v1/(?P<resource>nodes|pods)$")
ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
GROUP_VERSION_PATH = re.compile(r"^/apis/(?P<group_version>[^/]+/[^/]+)$")
KSERVE_0_20 = {
    "serving.kserve.io/v1alpha2": {"llminferenceservices": "LLMInferenceService"},
    "serving.kserve.io/v1beta1": {"inferenceservices": "InferenceService"},
}
"""The KServe APIs a cluster with KServe 0.20 serves (among others)."""


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: Any


@dataclass
class FakeApiServer:
    token: str
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """(namespace, resource, name) -> the stored object."""
    denied: set[tuple[str, str, str, str]] = field(default_factory=set)
    """(group, resource, verb, namespace) the caller may not do."""
    failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    """(resource, name) -> (status, message) the next applies of that object answer."""
    real_failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    """The same, for real (not dry-run) applies only: a quota used up between the two."""
    served: dict[str, dict[str, str]] = field(default_factory=lambda: copy.deepcopy(KSERVE_0_20))
    """group/version -> {resource: kind} that discovery lists."""
    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    """What `GET /api/v1/nodes` and `/api/v1/pods` list (`node()` and `pod()` make them)."""
    ready_on_apply: bool = False
    """Report a serving object Ready (with no URL) as soon as it is applied, as KServe's
    controller would on a cluster with no ingress, for whole sessions that must go on."""
    echo_credentials: bool = False
    """Answer every request with a 500 quoting its Authorization header, as a broken proxy
    might, to prove the client's errors blank it out."""
    _version: int = 100
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method in {"PATCH", "DELETE", "PUT", "POST"}]

    def stored(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, resource, name))

    def set_ready(
        self,
        namespace: str,
        name: str,
        ready: bool,
        message: str = "",
        resource: str = "inferenceservices",
    ) -> None:
        """Set an (LLM)InferenceService's Ready condition, as KServe's controller would."""
        with self._lock:
            obj = self.objects[(namespace, resource, name)]
            condition = {"type": "Ready", "status": "True" if ready else "False"}
            if message:
                condition["message"] = message
            if not ready:
                condition["reason"] = "PredictorNotReady"
            obj["status"] = {"conditions": [condition]}
            if ready:
                obj["status"]["url"] = f"http://{name}.{namespace}.example.com"

    # --- the HTTP side -------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        split = urlsplit(raw_path)
        query = parse_qs(split.query)
        content_type = headers.get("content-type")
        body: Any = yaml.safe_load(raw) if raw else None
        self.requests.append(RecordedRequest(method, split.path, query, content_type, body))
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if self.echo_credentials:
            sent = headers.get("authorization", "")
            return 500, _status(500, "InternalError", f"proxy failed with header {sent}")
        if method == "POST" and split.path == ACCESS_REVIEW_PATH:
            attributes = body["spec"]["resourceAttributes"]
            key = tuple(attributes[k] for k in ("group", "resource", "verb", "namespace"))
            answer = copy.deepcopy(body)
            answer["status"] = {"allowed": key not in self.denied}
            return 201, answer
        discovery = GROUP_VERSION_PATH.match(split.path)
        if method == "GET" and discovery and discovery["group_version"] in self.served:
            group_version = discovery["group_version"]
            resources = [
                {"name": name, "kind": kind, "namespaced": True, "verbs": ["get", "patch"]}
                for name, kind in self.served[group_version].items()
            ]
            return 200, {
                "kind": "APIResourceList",
                "groupVersion": group_version,
                "resources": resources,
            }
        listed = LIST_PATH.match(split.path)
        if method == "GET" and listed:
            resource = listed["resource"]
            if ("", resource, "list", "") in self.denied:
                return 403, _status(403, "Forbidden", f"cannot list resource {resource!r}")
            kind = {"nodes": "NodeList", "pods": "PodList"}[resource]
            items = self.nodes if resource == "nodes" else self.pods
            return 200, {"kind": kind, "apiVersion": "v1", "items": copy.deepcopy(items)}
        match = OBJECT_PATH.match(split.path)
        if match is None:
            return 404, _status(404, "NotFound", f"the server could not find {split.path}")
        group_version = f"{match['group']}/{match['version']}"
        if group_version in KSERVE_0_20 and match["resource"] not in self.served.get(
            group_version, {}
        ):
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        key = (match["ns"], match["resource"], match["name"])
        with self._lock:
            if method == "GET":
                found = self.objects.get(key)
                if found is None:
                    return 404, _status(404, "NotFound", f'{key[1]} "{key[2]}" not found')
                return 200, copy.deepcopy(found)
            if method == "DELETE":
                if self.objects.pop(key, None) is None:
                    return 404, _status(404, "NotFound", f'{key[1]} "{key[2]}" not found')
                return 200, _status(200, "Success", "deleted")
            if method == "PATCH":
                return self._apply(key, query, content_type, body)
        return 405, _status(405, "MethodNotAllowed", f"{method} is not supported here")

    def _apply(
        self,
        key: tuple[str, str, str],
        query: dict[str, list[str]],
        content_type: str | None,
        body: Any,
    ) -> tuple[int, dict[str, Any]]:
        if content_type != "application/apply-patch+yaml":
            return 415, _status(415, "UnsupportedMediaType", f"unsupported {content_type}")
        if not query.get("fieldManager"):
            return 422, _status(422, "Invalid", "fieldManager is required for apply patch")
        metadata = body.get("metadata", {})
        if metadata.get("name") != key[2] or metadata.get("namespace", key[0]) != key[0]:
            return 400, _status(400, "BadRequest", "the name of the object does not match")
        if (key[1], key[2]) in self.failures:
            code, message = self.failures[(key[1], key[2])]
            return code, _status(code, "Invalid", message)
        dry_run = query.get("dryRun") == ["All"]
        if not dry_run and (key[1], key[2]) in self.real_failures:
            code, message = self.real_failures[(key[1], key[2])]
            return code, _status(code, "Forbidden", message)
        existing = self.objects.get(key)
        candidate = copy.deepcopy(body)
        if existing is not None:
            kept = {k: existing["metadata"][k] for k in ("uid", "resourceVersion", "generation")}
            candidate["metadata"] = {**candidate["metadata"], **kept}
            if "status" in existing:
                candidate["status"] = existing["status"]
            if candidate == existing:
                return 200, copy.deepcopy(existing)
            candidate["metadata"]["generation"] = kept["generation"] + 1
        else:
            candidate["metadata"].update(uid=str(uuid.uuid4()), generation=1)
        if dry_run:
            return (201 if existing is None else 200), candidate
        self._version += 1
        candidate["metadata"]["resourceVersion"] = str(self._version)
        if self.ready_on_apply and key[1] in ("inferenceservices", "llminferenceservices"):
            candidate["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
        self.objects[key] = candidate
        return (201 if existing is None else 200), copy.deepcopy(candidate)


def node(
    name: str,
    labels: dict[str, str],
    gpus: int,
    resource: str = "nvidia.com/gpu",
    *,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A node as the API server lists it, with `gpus` of `resource` allocatable."""
    allocatable = {"cpu": "96", "memory": "1Ti", **({resource: str(gpus)} if gpus else {})}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {"allocatable": allocatable | (extra or {})},
    }


def pod(
    name: str,
    node_name: str | None,
    gpus: int,
    resource: str = "nvidia.com/gpu",
    phase: str = "Running",
) -> dict[str, Any]:
    """A pod on `node_name` (None: not scheduled yet) asking for `gpus` of `resource`."""
    limits = {resource: str(gpus)}
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            **({"nodeName": node_name} if node_name else {}),
            "containers": [{"name": "main", "resources": {"limits": limits, "requests": limits}}],
        },
        "status": {"phase": phase},
    }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Success" if code < 300 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body = self.server.fake.handle(self.command, self.path, headers, raw)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer  # noqa: N815  (http.server's names)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `requests` instead."""


class _Server(ThreadingHTTPServer):
    fake: FakeApiServer


@contextmanager
def running(token: str) -> Iterator[FakeApiServer]:
    """Start a fake API server on a free port in a thread; stop it afterwards."""
    fake = FakeApiServer(token=token, port=free_port())
    server = _Server(("127.0.0.1", fake.port), _Handler)
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_kubeconfig(path: Path, server_url: str, token: str, context: str = "fake") -> Path:
    """A kubeconfig with one context pointing at `server_url` with a bearer token."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [
            {"name": context, "context": {"cluster": "fake", "user": "tester", "namespace": "ml"}}
        ],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    return path
