"""Accuracy (cross-validated, held-out model/GPU pairs) and speed of the performance model."""

from __future__ import annotations

import gc
from typing import Any

from bench.seeded import seeded_session
from bench.timing import median_seconds
from kb.catalog import (
    gpu_prices,
    gpu_specs,
    measured_points,
    model_specs,
    other_engine_points,
    planner,
)
from planner.calibration import CalibrationSet, ServingCalibration
from planner.capacity import CapacitySpec, candidates, search
from planner.fit import predict_with, prepare
from planner.measured import in_flight
from planner.predict import ROOFLINE, Planner
from planner.prediction import PredictionQuery
from planner.report import accuracy_table, calibrate

CHAT = CapacitySpec.model_validate(
    {
        "traffic": {
            "prompt_tokens_mean": 1155,
            "prompt_tokens_p95": 4083,
            "output_tokens_mean": 211,
            "output_tokens_p95": 451,
            "steady_qps": 5,
            "peak_qps": 10,
            "burstiness": "medium",
        },
        "slo": {"ttft_p90_ms": 500, "tpot_p90_ms": 50, "e2e_p95_ms": 23050},
        "simulate_top": 0,
    }
)
"""The chatbot template's traffic and SLOs at 10 QPS peak, over the whole catalog; the
simulation of the best options is timed on its own."""


def _one_prediction_s(engine: Planner, query: PredictionQuery) -> float:
    return median_seconds(lambda: engine.predict(query), repeats=5)


def run() -> dict[str, object]:
    with seeded_session() as session:
        points = measured_points(session=session)
        held = measured_points(session=session, held_aside=True)
        others = other_engine_points(session=session)
        models, gpus = model_specs(session=session), gpu_specs(session=session)
        engine = planner(session=session)
        prices = gpu_prices(session=session)
    _, report = calibrate(points, models, gpus, others, held)
    rows = prepare(points, models, gpus)
    roofline = CalibrationSet(
        version="roofline",
        fitted_at="",
        fitted_on="datasheets",
        default=ROOFLINE,
        serving=ServingCalibration(first_wave_weight=0.0),
    )
    roofline_ttft, roofline_tpot = predict_with(rows, roofline)
    # One prediction: the median over single predictions of many different configurations
    # (every 10th measured row asked as a query, and open-loop variants on A100s).
    queries = [p.query() for p in points[::10]] + [
        PredictionQuery(
            model_id=p.model_id,
            gpu_id="A100-SXM-80GB",
            tp=max(p.tp, 4),
            precision="bf16" if p.precision == "bf16" else "fp8",
            isl=p.isl,
            osl=p.osl,
            qps=in_flight(p) / 20,
        )
        for p in [p for p in points if p.closed][5::20]
    ]
    # The fits above leave a large heap behind; keep the garbage collector's sweeps of it
    # out of the timings of what follows.
    gc.collect()
    gc.freeze()
    per_query = sorted(_one_prediction_s(engine, q) for q in queries)
    one_prediction_s = per_query[len(per_query) // 2]
    # The search, and the ten best options built as a person would read them: each repeat a
    # question the catalog has not answered (another SLO), and then the same traffic at
    # another load, which is sized from what the first search found.
    slo, traffic = CHAT.slo, CHAT.traffic
    new_targets = (slo.model_copy(update={"tpot_p90_ms": 50 + i / 100}) for i in range(1, 99))
    new_loads = (traffic.model_copy(update={"peak_qps": 10 + i}) for i in range(1, 99))

    def new_question() -> object:
        return search(engine, CHAT.model_copy(update={"slo": next(new_targets)}), prices).options[
            :10
        ]

    def another_load() -> object:
        spec = CHAT.model_copy(update={"traffic": next(new_loads)})
        return search(engine, spec, prices).options[:10]

    search_s = median_seconds(new_question, repeats=7)
    sized_s = median_seconds(another_load, repeats=7)
    bursty = PredictionQuery(
        model_id="meta-llama/Llama-3.1-8B-Instruct",
        gpu_id="H100-SXM-80GB",
        isl=1155,
        osl=211,
        isl_p95=4083,
        osl_p95=451,
        qps=8.0,
        arrival="gamma",
        burstiness=0.25,
    )
    simulation_s = median_seconds(lambda: engine.simulate(bursty), repeats=3)
    cross_validated, held_aside = report["cross_validated"], report["held_aside"]
    open_loop = report["held_aside_open_loop_percentiles"]
    overload = report["held_aside_overload"]
    return {
        "reproduce": "make bench (the same fit and report: preflight calibrate, which writes "
        "planner/data/calibration_report.json)",
        "rows_fitted": report["rows_fitted"],
        "rows_excluded": len(report["rows_excluded"]),  # type: ignore[arg-type]
        "verdict": verdict(cross_validated, held_aside, open_loop, overload),  # type: ignore[arg-type]
        "cross_validated": cross_validated,
        "held_aside": held_aside,
        "held_aside_open_loop_percentiles": open_loop,
        "held_aside_overload": overload,
        "roofline_baseline": accuracy_table(rows, roofline_ttft, roofline_tpot),
        "one_prediction_median_ms": round(one_prediction_s * 1e3, 3),
        "full_catalog_search_median_ms": round(search_s * 1e3, 1),
        "full_catalog_search_another_load_median_ms": round(sized_s * 1e3, 1),
        "full_catalog_candidates": len(candidates(engine, CHAT.constraints)),
        "one_simulation_400_requests_median_ms": round(simulation_s * 1e3, 1),
        "targets": {
            **TARGETS,
            "one_prediction_ms": 2.0,
            "full_catalog_search_ms": 200.0,
        },
    }


TARGETS = {
    "ttft_mdape": 0.20,
    "tpot_mdape": 0.10,
    "worst_pair_mdape": 0.35,
    "open_loop_ttft_p90_mdape": 0.25,
    "open_loop_tpot_p50_mdape": 0.12,
}
"""Issue 15's bars: closed-loop pairs, and open-loop runs judged by TTFT p90 and TPOT median."""


def verdict(
    cross_validated: dict[str, Any],
    held_aside: dict[str, Any],
    open_loop: dict[str, Any],
    overload: dict[str, Any],
) -> dict[str, bool]:
    """Each bar, met or not, on the rows each is judged on; a run called overloaded that
    the server sustained fails its bar, and so does a run whose queue grew called
    sustainable."""

    def within(errors: dict[str, Any] | None) -> bool:
        return bool(
            errors
            and not errors["predicted_overloaded"]
            and errors["ttft_mdape"] <= TARGETS["ttft_mdape"]
            and errors["tpot_mdape"] <= TARGETS["tpot_mdape"]
        )

    def worst_pair(table: dict[str, Any]) -> bool:
        return all(
            not p["predicted_overloaded"]
            and max(p["ttft_mdape"], p["tpot_mdape"]) <= TARGETS["worst_pair_mdape"]
            for p in table["by_pair"]
        )

    return {
        "cross_validated_medians": within(cross_validated["overall"]),
        "cross_validated_worst_pair": worst_pair(cross_validated),
        "held_aside_medians": within(held_aside["overall"]),
        "held_aside_worst_pair": worst_pair(held_aside),
        "held_aside_open_loop": bool(
            open_loop["rows"]
            and not open_loop["predicted_overloaded"]
            and open_loop["ttft_p90_mdape"] <= TARGETS["open_loop_ttft_p90_mdape"]
            and open_loop["tpot_p50_mdape"] <= TARGETS["open_loop_tpot_p50_mdape"]
        ),
        "held_aside_overload": not (
            overload["queued_called_sustainable"] or overload["kept_up_called_overloaded"]
        ),
    }
