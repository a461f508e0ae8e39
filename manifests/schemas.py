"""Schema validation of rendered manifests, offline.

Core kinds are checked with kubernetes-validate's bundled OpenAPI schemas; custom resources
(KServe, KEDA, Prometheus Operator) against the schemas under templates/schemas/ (see its
README.md): JSON Schemas (draft 7) written for Preflight from each project's API reference,
or a CRD's own structural schema, vendored. All are strict: an unknown field is an error, as
the API server's strict field validation (kubectl's default) makes it; the hand-written
schemas say so themselves (additionalProperties: false), a vendored one is made to.
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
        schema = document.get("schema") or _strict_crd(document)
        jsonschema.Draft7Validator.check_schema(schema)
        validators[(document["apiVersion"], document["kind"])] = jsonschema.Draft7Validator(schema)
    return validators


def _strict_crd(document: dict[str, Any]) -> dict[str, Any]:
    """A CRD version's `openAPIV3Schema` as a draft-7 schema that validates as the API
    server does: apiVersion and kind fixed, unknown fields refused (the server prunes or,
    with strict field validation, refuses them). CEL rules (`x-kubernetes-validations`) are
    not evaluated; the ones a plan could break are policy checks."""
    schema = _strict(document["openAPIV3Schema"])
    schema["properties"] |= {
        "apiVersion": {"const": document["apiVersion"]},
        "kind": {"const": document["kind"]},
    }
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "spec"})
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """One schema node and those below it, keyword by keyword (a field may be named like
    a keyword: `properties` maps names to schemas)."""
    strict = dict(schema)
    if "properties" in schema:
        strict["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            strict["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        strict["additionalProperties"] = _strict(schema["additionalProperties"])
    if "items" in schema:
        strict["items"] = _strict(schema["items"])
    for keyword in ("anyOf", "allOf", "oneOf"):
        if keyword in schema:
            strict[keyword] = [_strict(s) for s in schema[keyword]]
    if schema.get("nullable") and isinstance(schema.get("type"), str):
        strict["type"] = [schema["type"], "null"]
    return strict


def _path(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top)"
