"""Fit and cross-validate the calibration, and write it with its report (versioned data)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from planner.calibration import BAND_ROWS, CALIBRATION_FILE, CalibrationSet, Residuals
from planner.fit import (
    FitRows,
    cross_validate,
    fit_calibration,
    interpolation_residuals,
    predict_with,
    prepare,
    residual_summary,
    transient,
)
from planner.measured import MeasuredPoint
from planner.predict import Planner
from planner.specs import GpuSpec, ModelSpec

CALIBRATION_VERSION = "2026.12.08-2"
"""Bump when the model's structure or the data it is fitted to changes."""


def _errors(
    rows: FitRows, ttft_s: np.ndarray, tpot_s: np.ndarray, index: np.ndarray
) -> dict[str, object]:
    # A run the model calls overloaded has no predicted latency: it is counted, not averaged.
    overloaded = index & ~np.isfinite(ttft_s)
    stable = index & ~overloaded
    ttft_ape = np.abs(ttft_s[stable] / rows.ttft_s[stable] - 1)
    tpot_ape = np.abs(tpot_s[stable] / rows.tpot_s[stable] - 1)

    def quantile(values: np.ndarray, q: float) -> float | None:
        return float(np.quantile(values, q)) if len(values) else None

    return {
        "rows": int(index.sum()),
        "ttft_mdape": quantile(ttft_ape, 0.5),
        "ttft_p90_ape": quantile(ttft_ape, 0.9),
        "tpot_mdape": quantile(tpot_ape, 0.5),
        "tpot_p90_ape": quantile(tpot_ape, 0.9),
        "predicted_overloaded": int(overloaded.sum()),
    }


def _badness(errors: dict[str, object]) -> float:
    """A pair's worst median error; a pair with runs called overloaded is worst of all."""
    if errors["predicted_overloaded"]:
        return float("inf")
    return max(float(errors[k] or 0.0) for k in ("ttft_mdape", "tpot_mdape"))  # type: ignore[arg-type]


def accuracy_table(rows: FitRows, ttft_s: np.ndarray, tpot_s: np.ndarray) -> dict[str, object]:
    """MdAPE and P90 APE overall, per (model, GPU) pair (the worst first: the larger of its
    two median errors), per model class, per GPU family and per kind of load."""
    if not rows.points:
        return {
            "overall": None,
            "by_pair": [],
            "by_class": {},
            "by_gpu_family": {},
            "by_load": {},
        }
    family = np.array([gpu.split("-")[0] for gpu in rows.gpu])
    loop = np.where(rows.closed, "closed loop", "open loop")
    pairs = [
        {"pair": pair, **_errors(rows, ttft_s, tpot_s, rows.pair == pair)}
        for pair in sorted(set(rows.pair))
    ]
    pairs.sort(key=_badness, reverse=True)
    return {
        "overall": _errors(rows, ttft_s, tpot_s, np.ones(len(rows.points), dtype=bool)),
        "by_pair": pairs,
        "by_class": {
            c: _errors(rows, ttft_s, tpot_s, rows.model_class == c)
            for c in sorted(set(rows.model_class))
        },
        "by_gpu_family": {
            f: _errors(rows, ttft_s, tpot_s, family == f) for f in sorted(set(family))
        },
        "by_load": {k: _errors(rows, ttft_s, tpot_s, loop == k) for k in sorted(set(loop))},
    }


def _open_loop(points: Sequence[MeasuredPoint]) -> list[MeasuredPoint]:
    """The open-loop runs of a replica the planner models (dp 1)."""
    return [p for p in points if not p.closed and p.qps and p.dp == 1]


def open_loop_percentiles(points: Sequence[MeasuredPoint], planner: Planner) -> dict[str, object]:
    """The open-loop runs that print a TPOT median, predicted by the planner itself: TTFT
    p90 (where the run prints it) and TPOT median errors, and how many sustained runs it
    called overloaded."""
    judged = [p for p in _open_loop(points) if p.tpot_p50_ms]
    rows: list[dict[str, object]] = []
    for p in judged:
        result = planner.predict(p.query())
        assert p.tpot_p50_ms
        errors: dict[str, float] = {}
        if result.stable and result.ttft_ms and result.tpot_ms:
            errors["tpot_p50_ape"] = abs(result.tpot_ms.p50 / p.tpot_p50_ms - 1)
            if p.ttft_p90_ms:
                errors["ttft_p90_ape"] = abs(result.ttft_ms.p90 / p.ttft_p90_ms - 1)
        rows.append({"reference": p.reference, "qps": p.qps, "stable": result.stable, **errors})
    stable = [r for r in rows if r["stable"]]

    def median(key: str) -> float | None:
        values = [float(r[key]) for r in stable if key in r]  # type: ignore[arg-type]
        return float(np.median(values)) if values else None

    return {
        "rows": len(rows),
        "ttft_p90_mdape": median("ttft_p90_ape"),
        "tpot_p50_mdape": median("tpot_p50_ape"),
        "predicted_overloaded": len(rows) - len(stable),
        "by_row": rows,
    }


QUEUED = 10.0
"""A run whose first tokens (p90 where printed) come this many times later than in the
lowest-rate run of its configuration had a queue that grew: more load than it served."""


def overload_verdicts(points: Sequence[MeasuredPoint], planner: Planner) -> dict[str, object]:
    """Every open-loop run whose queue grew (`QUEUED`; short runs too, since a growing queue
    shows before it settles) that the planner calls sustainable, and every run long enough
    to settle (`transient`) that kept up and that the planner calls overloaded: a short run
    that kept up may only not have filled its cache yet."""
    runs = sorted(_open_loop(points), key=lambda p: p.qps or 0.0)

    def first_token(p: MeasuredPoint) -> float:
        return p.ttft_p90_ms or p.ttft_ms

    def configuration(p: MeasuredPoint) -> tuple[str, str, int, str]:
        return p.model_id, p.gpu_id, p.tp, p.precision

    lowest: dict[tuple[str, str, int, str], float] = {}
    for p in runs:
        lowest.setdefault(configuration(p), first_token(p))
    verdicts = [
        (p, first_token(p) >= QUEUED * lowest[configuration(p)], planner.predict(p.query()).stable)
        for p in runs
    ]
    return {
        "runs": len(runs),
        "queued": sum(queued for _, queued, _ in verdicts),
        "queued_called_sustainable": [
            {"reference": p.reference, "qps": p.qps}
            for p, queued, stable in verdicts
            if queued and stable
        ],
        "kept_up_called_overloaded": [
            {"reference": p.reference, "qps": p.qps}
            for p, queued, stable in verdicts
            if not queued and not stable and transient(p) is None
        ],
    }


def calibrate(
    points: Sequence[MeasuredPoint],
    models: Mapping[str, ModelSpec],
    gpus: Mapping[str, GpuSpec],
    other_engines: Sequence[MeasuredPoint] = (),
    held_aside: Sequence[MeasuredPoint] = (),
) -> tuple[CalibrationSet, dict[str, object]]:
    """Fit on vLLM `points`; other engines' points inform only relative decode speed; the
    `held_aside` rows are never fitted: the report gives the fit's error on them."""
    rows = prepare(points, models, gpus)
    others = prepare(other_engines, models, gpus)
    held = prepare(held_aside, models, gpus)
    cv_ttft, cv_tpot = cross_validate(rows, others)
    calibration = fit_calibration(rows, version=CALIBRATION_VERSION, other_engines=others)

    def interpolate(
        below: MeasuredPoint, middle: MeasuredPoint, above: MeasuredPoint
    ) -> tuple[float, float]:
        held_out = Planner(dict(models), dict(gpus), calibration, measured=[below, above])
        result = held_out.predict(middle.query())
        assert result.ttft_ms is not None and result.tpot_ms is not None
        return result.ttft_ms.mean, result.tpot_ms.mean

    interpolated_ttft, interpolated_tpot = interpolation_residuals(rows, interpolate)
    residuals: dict[str, Residuals] = {
        "ttft": residual_summary(cv_ttft / rows.ttft_s),
        "tpot": residual_summary(cv_tpot / rows.tpot_s),
        "ttft_interpolated": residual_summary(interpolated_ttft),
        "tpot_interpolated": residual_summary(interpolated_tpot),
    }
    for size_class in sorted(set(rows.model_class)):
        members = rows.model_class == size_class
        if members.sum() >= BAND_ROWS:
            for metric, cv, measured in (
                ("ttft", cv_ttft, rows.ttft_s),
                ("tpot", cv_tpot, rows.tpot_s),
            ):
                residuals[f"{metric}/{size_class}"] = residual_summary(
                    cv[members] / measured[members]
                )
    calibration = calibration.model_copy(update={"residuals": residuals})
    planner = Planner(dict(models), dict(gpus), calibration)
    report = {
        "version": CALIBRATION_VERSION,
        "rows_fitted": len(rows.points),
        "other_engine_rows_used": len(others.points),
        "rows_excluded": [
            {"reference": p.reference, "reason": reason} for p, reason in rows.excluded
        ],
        "cross_validated": accuracy_table(rows, cv_ttft, cv_tpot),
        "held_aside": accuracy_table(held, *predict_with(held, calibration)),
        "held_aside_open_loop_percentiles": open_loop_percentiles(held.points, planner),
        "held_aside_overload": overload_verdicts(held_aside, planner),
        "residuals": {k: v.model_dump() for k, v in residuals.items()},
    }
    return calibration, report


def write(
    calibration: CalibrationSet, report: Mapping[str, object], path: Path = CALIBRATION_FILE
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration.model_dump_json(indent=2) + "\n")
    report_path = path.with_name("calibration_report.json")
    stamped = {"written": dt.date.today().isoformat(), **report}
    report_path.write_text(json.dumps(stamped, indent=2) + "\n")
