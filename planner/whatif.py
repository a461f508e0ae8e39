"""What-if: change fields of an intent, pin a model or a GPU, and compare scenarios."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from planner.intent import DeploymentIntent
from planner.recommendation import Recommendations
from planner.specs import Frozen

PINS = {"model": "pinned_models", "gpu": "available_gpus"}
"""Shortcuts: `model=X` plans on X alone; `gpu=Y` on Y alone."""


class WhatIfError(ValueError):
    """A change names no field, or gives a value the field cannot take."""


def with_changes(intent: DeploymentIntent, changes: Mapping[str, Any]) -> DeploymentIntent:
    """`intent` with each dotted field set (`traffic.peak_qps`, `budget.max_monthly_cost_usd`,
    `model`, `gpu`); a null value clears the field. Validated as a whole: nothing changes
    unless every change is valid."""
    values = intent.model_dump()
    for raw_name, value in changes.items():
        name = PINS.get(raw_name, raw_name)
        if raw_name in PINS and isinstance(value, str):
            value = [value]
        *path, last = name.split(".")
        where = values
        model: type[Any] = DeploymentIntent
        for part in path:
            field = model.model_fields.get(part)
            if field is None:
                raise WhatIfError(f"unknown field '{raw_name}'")
            model = _nested_model(field.annotation)
            if not isinstance(where.get(part), dict):
                where[part] = {}
            where = where[part]
        if last not in model.model_fields:
            known = ", ".join(sorted(model.model_fields))
            raise WhatIfError(f"unknown field '{raw_name}'; fields here: {known}")
        where[last] = value
    try:
        return DeploymentIntent.model_validate(values)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(p) for p in problem["loc"])
        raise WhatIfError(f"{field}: {problem['msg']}") from None


def _nested_model(annotation: Any) -> type[Any]:
    for candidate in getattr(annotation, "__args__", (annotation,)):
        if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
            return candidate
    raise WhatIfError("not a nested field")


def _changeable(model: type[Any], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        names.append(prefix + name)  # a nested one whole, too
        for candidate in getattr(field.annotation, "__args__", (field.annotation,)):
            if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                names += _changeable(candidate, f"{prefix}{name}.")
    return names


CHANGEABLE = (*PINS, *_changeable(DeploymentIntent))
"""Every name a change may set: the pins and the intent's fields, nested ones dotted."""


class ScenarioRow(Frozen):
    """The best option of one scenario."""

    scenario: str
    model: str | None
    gpus: str | None
    usd_per_month: float | None
    ttft_p90_ms: float | None
    tpot_p90_ms: float | None
    capacity_qps: float | None
    """Requests/s all peak replicas sustain within the SLOs."""
    quality: float | None
    feasible: int
    differences: list[str]
    """How it differs from the first scenario, in words."""


def compare(scenarios: Sequence[tuple[str, Recommendations]]) -> list[ScenarioRow]:
    rows: list[ScenarioRow] = []
    for name, result in scenarios:
        best = result.options[0] if result.options else None
        o = best.option if best else None
        rows.append(
            ScenarioRow(
                scenario=name,
                model=o.model_id if o else None,
                gpus=f"{o.replicas_for_peak} x {o.tp} x {o.gpu_id} ({o.precision})" if o else None,
                usd_per_month=o.usd_per_month if o else None,
                ttft_p90_ms=o.ttft_ms.p90 if o else None,
                tpot_p90_ms=o.tpot_ms.p90 if o else None,
                capacity_qps=o.max_qps_per_replica * o.replicas_for_peak if o else None,
                quality=best.quality_score if best else None,
                feasible=result.feasible,
                differences=[],
            )
        )
    base = rows[0] if rows else None
    return [row.model_copy(update={"differences": _differences(base, row)}) for row in rows]


def _differences(base: ScenarioRow | None, row: ScenarioRow) -> list[str]:
    if base is None or row is base:
        return []
    found = []
    for name in ("model", "gpus"):
        if getattr(row, name) != getattr(base, name):
            found.append(f"{name}: {getattr(base, name)} -> {getattr(row, name)}")
    for name, unit in (
        ("usd_per_month", "$/month"),
        ("ttft_p90_ms", "ms TTFT p90"),
        ("tpot_p90_ms", "ms TPOT p90"),
        ("capacity_qps", "QPS capacity"),
        ("quality", "MMLU-Pro"),
    ):
        a, b = getattr(base, name), getattr(row, name)
        if a is not None and b is not None and abs(b - a) > 1e-9:
            change = f" ({(b - a) / a:+.0%})" if a else ""
            found.append(f"{unit}: {a:,.1f} -> {b:,.1f}{change}")
        elif (a is None) != (b is None):
            found.append(f"{unit}: {a} -> {b}")
    return found
