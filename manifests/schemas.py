"""Schema validation of rendered manifests, offline.

Core kinds are checked with kubernetes-validate's bundled OpenAPI schemas; custom resources
(KServe, KEDA, Prometheus Operator) against JSON Schemas (draft 7) written for Preflight from
each project's API reference, kept under templates/schemas/ (see its README.md). Both are
strict: an unknown field is an error, as the API server's strict field validation (kubectl's
default) makes it; the hand-written schemas say so themselves (additionalProperties: false).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "templates" / "schemas"
KUBERNETES_VERSION = "1.33"
"""The oldest Kubernetes release KServe 0.20 supports; the core schemas are checked as of it."""


def schema_problems(manifests: Sequence[dict[str, Any]]) -> list[str]:
    """Every schema violation, as `Kind/name: path: message`."""
    return [problem for m in manifests for problem in _problems(m)]


def _problems(manifest: dict[str, Any]) -> list[str]:
    kind, api_version = manifest.get("kind"), manifest.get("apiVersion")
    metadata = manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    where = f"{kind}/{name}"
    crd = crd_schemas().get((str(api_version), str(kind)))
    if crd is not None:
        errors = sorted(crd.iter_errors(manifest), key=lambda e: list(e.absolute_path))
        return [f"{where}: {_path(e.absolute_path)}: {e.message}" for e in errors]
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{where}: {_path(error.path)}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no schema for {api_version} {kind}; it cannot be validated"]
    return []


@cache
def crd_schemas() -> dict[tuple[str, str], Any]:
    """A validator per (apiVersion, kind) from the schema files: each names its source
    (x-preflight-source), the apiVersion and kind it validates, and the schema itself."""
    validators = {}
    for path in sorted(SCHEMAS_DIR.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if not document.get("x-preflight-source"):
            raise ValueError(f"{path.name}: no x-preflight-source header")
        schema = document["schema"]
        jsonschema.Draft7Validator.check_schema(schema)
        validators[(document["apiVersion"], document["kind"])] = jsonschema.Draft7Validator(schema)
    return validators


def _path(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top)"
