"""`preflight predict` and `preflight calibrate`: the performance model from the shell."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError

from cli.console import catalog_session, fail
from kb.catalog import (
    gpu_prices,
    gpu_specs,
    measured_points,
    model_specs,
    other_engine_points,
    planner,
)
from kb.names import NameIndex, UnknownNameError
from kb.repository import gpu_names, model_names
from kb.seed import validation_message
from planner.capacity import CapacityOption, CapacitySpec, search
from planner.predict import Planner
from planner.prediction import Prediction, PredictionQuery
from planner.report import calibrate, write
from planner.specs import ArrivalProcess, EngineSettings, KvCacheDtype, Precision

PREDICTED_COLUMNS = (
    "pred_ttft_ms",
    "pred_ttft_p50_ms",
    "pred_ttft_p90_ms",
    "pred_ttft_p99_ms",
    "pred_tpot_ms",
    "pred_tpot_p50_ms",
    "pred_tpot_p90_ms",
    "pred_tpot_p99_ms",
    "pred_e2e_ms",
    "pred_e2e_p90_ms",
    "pred_e2e_p99_ms",
    "pred_output_tokens_per_s",
    "pred_fits",
    "pred_stable",
    "pred_max_sustainable_qps",
    "pred_source",
    "error",
)
QUERY_COLUMNS = (
    "tp",
    "precision",
    "isl",
    "osl",
    "isl_p95",
    "osl_p95",
    "concurrency",
    "fixed_lengths",
    "qps",
    "arrival",
    "burstiness",
    *EngineSettings.model_fields,
)
"""Columns of a query CSV besides the model and GPU names: the query's own field names, the
engine settings under vLLM's names among them."""


def _load() -> tuple[Planner, NameIndex, NameIndex]:
    with catalog_session() as session:
        return planner(session=session), model_names(session=session), gpu_names(session=session)


def predict(
    model: Annotated[str | None, typer.Option(help="Model name or alias.")] = None,
    gpu: Annotated[str | None, typer.Option(help="GPU name or alias.")] = None,
    tp: Annotated[int, typer.Option(min=1, help="Tensor-parallel degree.")] = 1,
    precision: Annotated[Precision | None, typer.Option(help="Weight precision.")] = None,
    isl: Annotated[int | None, typer.Option(min=1, help="Input tokens per request.")] = None,
    osl: Annotated[int | None, typer.Option(min=1, help="Output tokens per request.")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Requests in flight.")] = None,
    fixed_lengths: Annotated[
        bool, typer.Option(help="Closed loop: every request exactly --isl/--osl (waves).")
    ] = False,
    qps: Annotated[float | None, typer.Option(min=0.0, help="Arrivals per second.")] = None,
    input_csv: Annotated[Path | None, typer.Option("--input", help="CSV of queries.")] = None,
    output_csv: Annotated[Path | None, typer.Option("--output", help="CSV to write.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    simulate: Annotated[
        bool, typer.Option(help="Simulate step by step (bursts, length spread) instead.")
    ] = False,
    arrival: Annotated[
        ArrivalProcess, typer.Option(help="Open-loop arrivals: poisson, constant or gamma.")
    ] = "poisson",
    burstiness: Annotated[
        float,
        typer.Option(help="Gamma shape of arrival gaps (vLLM's --burstiness): below 1 bursty."),
    ] = 1.0,
    isl_p95: Annotated[int | None, typer.Option(min=1, help="p95 input tokens.")] = None,
    osl_p95: Annotated[int | None, typer.Option(min=1, help="p95 output tokens.")] = None,
    max_num_seqs: Annotated[int | None, typer.Option(help="vLLM --max-num-seqs.")] = None,
    max_num_batched_tokens: Annotated[
        int | None, typer.Option(help="vLLM --max-num-batched-tokens.")
    ] = None,
    max_model_len: Annotated[int | None, typer.Option(help="vLLM --max-model-len.")] = None,
    gpu_memory_utilization: Annotated[
        float | None, typer.Option(help="vLLM --gpu-memory-utilization.")
    ] = None,
    kv_cache_dtype: Annotated[
        KvCacheDtype | None, typer.Option(help="vLLM --kv-cache-dtype: auto or fp8.")
    ] = None,
    enable_prefix_caching: Annotated[
        bool | None, typer.Option(help="vLLM --enable-prefix-caching (on by default).")
    ] = None,
    prefix_cache_hit_rate: Annotated[
        float | None, typer.Option(help="Expected share of prompt tokens found in the cache.")
    ] = None,
) -> None:
    """Predict TTFT/TPOT/E2E, throughput and memory for one configuration, or a CSV of them."""
    engine, models, gpus = _load()
    if input_csv is not None:
        if output_csv is None:
            raise fail("--input needs --output")
        count, errors = predict_csv(engine, models, gpus, input_csv, output_csv)
        typer.echo(f"wrote {count} rows to {output_csv} ({errors} with an error column)")
        return
    missing = [
        name
        for name, value in (("--model", model), ("--gpu", gpu), ("--isl", isl), ("--osl", osl))
        if value is None
    ]
    if missing:
        raise fail(f"missing {', '.join(missing)} (or use --input rows.csv --output out.csv)")
    assert model is not None and gpu is not None
    settings = {
        "max_num_seqs": max_num_seqs,
        "max_num_batched_tokens": max_num_batched_tokens,
        "max_model_len": max_model_len,
        "gpu_memory_utilization": gpu_memory_utilization,
        "kv_cache_dtype": kv_cache_dtype,
        "enable_prefix_caching": enable_prefix_caching,
        "prefix_cache_hit_rate": prefix_cache_hit_rate,
    }
    try:
        query = PredictionQuery.model_validate(
            {
                "model_id": models.resolve(model),
                "gpu_id": gpus.resolve(gpu),
                "tp": tp,
                "precision": precision,
                "isl": isl,
                "osl": osl,
                "concurrency": concurrency,
                "fixed_lengths": fixed_lengths,
                "qps": qps,
                "arrival": arrival,
                "burstiness": burstiness,
                "isl_p95": isl_p95,
                "osl_p95": osl_p95,
            }
            | {k: v for k, v in settings.items() if v is not None}
        )
    except (UnknownNameError, ValidationError) as error:
        raise fail(_message(error)) from None
    result = engine.simulate(query) if simulate else engine.predict(query)
    if as_json:
        typer.echo(json.dumps(result.report(), indent=2))
    else:
        typer.echo(summary(result))


def summary(result: Prediction) -> str:
    q = result.query
    head = f"{q.model_id} on {q.tp} x {q.gpu_id} ({result.precision})"
    if not result.fits:
        return f"{head}: does not fit: {result.memory.reason}"
    load = f"{head}, isl {q.isl} / osl {q.osl}, " + (
        f"concurrency {q.concurrency}" if q.concurrency else f"{q.qps} QPS"
    )
    most = result.max_sustainable_qps
    limit = f" (one replica sustains at most {most:.2f} requests/s)" if most is not None else ""
    if not (result.stable and result.ttft_ms and result.tpot_ms and result.e2e_ms):
        return (
            f"{load}\n  OVERLOADED    one replica sustains at most {most or 0:.2f} requests/s: "
            "the queue grows without bound, so no latency holds (add replicas or lower the load)"
        )
    lines = [
        load,
        f"  source        {result.source} ({result.method})",
        f"  TTFT ms       mean {result.ttft_ms.mean:8.1f}  p50 {result.ttft_ms.p50:8.1f}  "
        f"p90 {result.ttft_ms.p90:8.1f}  p99 {result.ttft_ms.p99:8.1f}",
        f"  TPOT ms       mean {result.tpot_ms.mean:8.2f}  p50 {result.tpot_ms.p50:8.2f}  "
        f"p90 {result.tpot_ms.p90:8.2f}  p99 {result.tpot_ms.p99:8.2f}",
        f"  E2E ms        mean {result.e2e_ms.mean:8.0f}  p90 {result.e2e_ms.p90:8.0f}  "
        f"p95 {result.e2e_ms.p95:8.0f}  p99 {result.e2e_ms.p99:8.0f}",
        f"  throughput    {result.output_tokens_per_s:.0f} output tokens/s, "
        f"{result.requests_per_s:.2f} requests/s{limit}",
        f"  memory        {result.memory.weights_gb_per_gpu:.1f} GB weights/GPU "
        f"({result.memory.weights_basis}), KV cache {result.memory.kv_cache_gb_per_gpu:.1f} GB/GPU "
        f"= {result.memory.kv_capacity_tokens} tokens",
    ]
    if result.observed:
        lines.append(f"  observed      {result.observed}")
    if result.extrapolated:
        lines.append(f"  EXTRAPOLATED  {result.extrapolated}")
    if result.uncertainty:
        u = result.uncertainty
        lines.append(
            f"  uncertainty   TTFT {u.ttft_low_ms:.0f}-{u.ttft_high_ms:.0f} ms, "
            f"TPOT {u.tpot_low_ms:.1f}-{u.tpot_high_ms:.1f} ms ({u.basis})"
        )
    return "\n".join(lines)


def _message(error: Exception) -> str:
    return validation_message(error) if isinstance(error, ValidationError) else str(error)


def _row_query(row: dict[str, str], models: NameIndex, gpus: NameIndex) -> PredictionQuery:
    """One CSV row as a query: model and GPU names resolved, every other known column that is
    filled passed as it is (blank cells take the defaults)."""
    values: dict[str, object] = {
        name: row[name] for name in QUERY_COLUMNS if (row.get(name) or "").strip()
    }
    values["model_id"] = models.resolve(row.get("model_id") or "")
    values["gpu_id"] = gpus.resolve(row.get("gpu") or row.get("gpu_id") or "")
    return PredictionQuery.model_validate(values)


def _cells(r: Prediction) -> dict[str, str]:
    """The predicted columns of one row."""
    cells = {
        "pred_fits": str(r.fits).lower(),
        "pred_stable": str(r.stable).lower(),
        "pred_max_sustainable_qps": f"{r.max_sustainable_qps:.3f}" if r.max_sustainable_qps else "",
        "pred_source": r.source,
        "error": "" if r.fits else f"does not fit: {r.memory.reason}",
    }
    if not (r.fits and r.ttft_ms and r.tpot_ms and r.e2e_ms):
        return cells
    numbers = {
        "pred_ttft_ms": r.ttft_ms.mean,
        "pred_ttft_p50_ms": r.ttft_ms.p50,
        "pred_ttft_p90_ms": r.ttft_ms.p90,
        "pred_ttft_p99_ms": r.ttft_ms.p99,
        "pred_tpot_ms": r.tpot_ms.mean,
        "pred_tpot_p50_ms": r.tpot_ms.p50,
        "pred_tpot_p90_ms": r.tpot_ms.p90,
        "pred_tpot_p99_ms": r.tpot_ms.p99,
        "pred_e2e_ms": r.e2e_ms.mean,
        "pred_e2e_p90_ms": r.e2e_ms.p90,
        "pred_e2e_p99_ms": r.e2e_ms.p99,
    }
    cells.update({name: f"{value:.3f}" for name, value in numbers.items()})
    if r.output_tokens_per_s:
        cells["pred_output_tokens_per_s"] = f"{r.output_tokens_per_s:.1f}"
    return cells


def predict_csv(
    engine: Planner, models: NameIndex, gpus: NameIndex, source: Path, target: Path
) -> tuple[int, int]:
    """Predict every row; a row that cannot be predicted gets `error` and the rest go on."""
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    queries: list[PredictionQuery | None] = []
    problems: list[str] = []
    for row in rows:
        try:
            queries.append(_row_query(row, models, gpus))
            problems.append("")
        except (UnknownNameError, ValidationError) as error:
            queries.append(None)
            problems.append(_message(error))
    results = iter(engine.predict_many([q for q in queries if q is not None]))
    errors = 0
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, [*fields, *(c for c in PREDICTED_COLUMNS if c not in fields)]
        )
        writer.writeheader()
        for row, query, problem in zip(rows, queries, problems, strict=True):
            out = dict(row) | (_cells(next(results)) if query is not None else {"error": problem})
            writer.writerow(out)
            errors += bool(out.get("error"))
    return len(rows), errors


def calibrate_command() -> None:
    """Fit the performance model to the measured vLLM rows, cross-validate, and store it."""
    with catalog_session() as session:
        points = measured_points(session=session)
        held = measured_points(session=session, held_aside=True)
        others = other_engine_points(session=session)
        models, gpus = model_specs(session=session), gpu_specs(session=session)
    calibration, report = calibrate(points, models, gpus, others, held)
    write(calibration, report)
    overall = report["cross_validated"]["overall"]  # type: ignore[index]
    held = report["held_aside"]["overall"]  # type: ignore[index]
    typer.echo(
        f"calibration {calibration.version}: {report['rows_fitted']} rows; "
        f"cross-validated TTFT MdAPE {overall['ttft_mdape']:.1%}, "
        f"TPOT MdAPE {overall['tpot_mdape']:.1%}"
        + (
            f"; held-aside rows ({held['rows']}) TTFT MdAPE {held['ttft_mdape']:.1%}, "
            f"TPOT MdAPE {held['tpot_mdape']:.1%}, {held['predicted_overloaded']} called "
            "overloaded"
            if held and held["ttft_mdape"] is not None
            else ""
        )
    )


def capacity(
    spec_file: Annotated[Path, typer.Option("--spec", help="YAML capacity specification.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    top: Annotated[int, typer.Option(min=1, help="Options to show.")] = 10,
) -> None:
    """Every feasible (model, GPU, TP, precision) for a traffic profile and SLOs, cheapest first."""
    try:
        spec = CapacitySpec.model_validate(yaml.safe_load(spec_file.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise fail(f"{spec_file}: {_message(error)}") from None
    with catalog_session() as session:
        engine = planner(session=session)
        prices = gpu_prices(session=session)
        models, gpus = model_names(session=session), gpu_names(session=session)
    c = spec.constraints
    try:
        resolved = c.model_copy(
            update={
                "models": [models.resolve(m) for m in c.models] if c.models is not None else None,
                "excluded_models": [models.resolve(m) for m in c.excluded_models],
                "gpus": [gpus.resolve(g) for g in c.gpus] if c.gpus is not None else None,
                "excluded_gpus": [gpus.resolve(g) for g in c.excluded_gpus],
            }
        )
    except UnknownNameError as error:
        raise fail(str(error)) from None
    result = search(engine, spec.model_copy(update={"constraints": resolved}), prices)
    if as_json:
        typer.echo(json.dumps(result.report(), indent=2))
        return
    typer.echo(f"{len(result.options)} feasible options, {len(result.infeasible)} infeasible")
    for o in result.options[:top]:
        typer.echo(option_line(o))


def option_line(o: CapacityOption) -> str:
    """One option in words: what runs where, what it costs, what it achieves at peak."""
    if o.price is not None and o.usd_per_month is not None:
        cost = (
            f"${o.usd_per_month:,.0f}/month ({o.price.provider} {o.price.pricing}, "
            f"{o.price.instance_type}, price of {o.price.as_of})"
        )
    else:
        cost = "price unknown"
    replicas = f"{o.replicas_for_peak} replica{'s' if o.replicas_for_peak > 1 else ''}"
    simulated = {
        True: ", simulation meets the SLOs",
        False: ", simulation MISSES an SLO",
        None: "",
    }[o.simulated_slo_met]
    return (
        f"  {o.model_id} ({o.precision}) on {replicas} x {o.tp} {o.gpu_id}: {cost}; "
        f"{o.max_qps_per_replica:.2f} QPS per replica (bound by {o.binding_slo}); at peak "
        f"TTFT p90 {o.ttft_ms.p90:.0f} ms, TPOT p90 {o.tpot_ms.p90:.1f} ms{simulated}"
    )
