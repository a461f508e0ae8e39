"""Measured serving rows from CSV files: the shared sample (`../shared/data/measured`) and the
public vLLM measurements Preflight sourced itself (`kb/data/measurements`), each row with its
provenance, as raw records for the seed to validate."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

MEASURED_RETRIEVED = dt.date(2026, 12, 6)
"""When the measured CSVs (a snapshot of aiconfigurator-core 0.12.0's sample, corrected on
2026-12-06: DP-attention concurrency, replica size) and the public rows were taken in."""
PUBLIC = "measurements/*.csv"
"""Public measurements, under the curated data folder."""

_ROW_ID = re.compile(r"\bid (\S+)\s*$")


def _stated(value: str | None) -> str | None:
    """A degree the measured files state; blank or 0 means they do not."""
    return None if value in (None, "", "0") else value


def sample_rows(path: Path) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            match = _ROW_ID.search(row.get("source", ""))
            source_row = match.group(1) if match else f"line{line}"
            raw = {
                "id": f"{row.get('engine')}:{source_row}",
                "engine": row.get("engine"),
                "engine_version": row.get("engine_version"),
                "model_id": row.get("model_id"),
                "gpu_id": row.get("gpu"),
                "precision": row.get("precision"),
                "tp": row.get("tp"),
                "pp": row.get("pp"),
                # A few rows of the source state no attention data-parallel degree (0).
                "dp": _stated(row.get("dp")),
                "gpus": _stated(row.get("gpus")),
                "isl": row.get("isl"),
                "osl": row.get("osl"),
                "concurrency": row.get("concurrency"),
                # The sample reports one TTFT and one TPOT per run: the mean over its requests.
                "ttft_mean_ms": row.get("ttft_ms"),
                "tpot_mean_ms": row.get("tpot_ms"),
                "kind": "measured",
                "source": row.get("source"),
                "measured_on": row.get("measured") or None,
                "retrieved": MEASURED_RETRIEVED,
            }
            rows.append((f"{path.name}: line {line} ('{raw['id']}')", raw))
    return rows


def _blank(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


def _month(value: str | None) -> str | None:
    """A run date; a month alone (`2025-05`) counts from its first day."""
    value = _blank(value)
    return f"{value}-01" if value and len(value) == 7 else value


def _arrival(burstiness: str | None) -> tuple[str | None, str | None]:
    """`constant`, or vLLM's gamma shape (1 is Poisson); what is neither is left for the
    record's validation to name."""
    if burstiness is None:
        return "poisson", None
    if burstiness == "constant":
        return "constant", None
    try:
        poisson = float(burstiness) == 1.0
    except ValueError:
        return "gamma", burstiness
    return ("poisson", None) if poisson else ("gamma", burstiness)


def _tokens(value: str | None) -> object:
    """A mean token count (sources print fractions) as whole tokens."""
    try:
        return round(float(value or ""))
    except ValueError:
        return value


def public_rows(path: Path) -> list[tuple[str, object]]:
    """Rows of a public-measurements CSV (the columns of kb/data/measurements/README.md)."""
    rows: list[tuple[str, object]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            cell = {key: _blank(value) for key, value in row.items()}
            closed = cell["load_kind"] == "closed"
            arrival, burstiness = _arrival(cell["burstiness"]) if not closed else (None, None)
            caching = cell["prefix_caching"]
            raw = {
                "id": cell["id"],
                "split": cell["split"],
                "engine": cell["engine"],
                "engine_version": cell["engine_version"],
                "model_id": cell["model_id"],
                "gpu_id": cell["gpu"],
                "precision": cell["precision"],
                "tp": cell["tp"],
                "pp": 1,
                "dp": 1,
                "gpus": cell["tp"],
                "isl": _tokens(cell["isl"]),
                "osl": _tokens(cell["osl"]),
                "length_distribution": cell["length_distribution"],
                "num_prompts": cell["num_prompts"],
                "concurrency": cell["concurrency"] if closed else None,
                "qps": None if closed else cell["request_rate"],
                "arrival": arrival,
                "burstiness": burstiness,
                "ttft_mean_ms": cell["ttft_mean_ms"],
                "ttft_p50_ms": cell["ttft_median_ms"],
                "ttft_p90_ms": cell["ttft_p90_ms"],
                "ttft_p99_ms": cell["ttft_p99_ms"],
                "tpot_mean_ms": cell["tpot_mean_ms"],
                "tpot_p50_ms": cell["tpot_median_ms"],
                "tpot_p90_ms": cell["tpot_p90_ms"],
                "tpot_p99_ms": cell["tpot_p99_ms"],
                "itl_mean_ms": cell["itl_mean_ms"],
                "e2e_mean_ms": cell["e2e_mean_ms"],
                "e2e_p50_ms": cell["e2e_median_ms"],
                "e2e_p90_ms": cell["e2e_p90_ms"],
                "e2e_p99_ms": cell["e2e_p99_ms"],
                "requests_per_s": cell["request_throughput"],
                "output_tokens_per_s": cell["output_throughput"],
                "max_num_seqs": cell["max_num_seqs"],
                "max_num_batched_tokens": cell["max_num_batched_tokens"],
                "gpu_memory_utilization": cell["gpu_memory_utilization"],
                "kv_cache_dtype": cell["kv_cache_dtype"],
                "prefix_caching": None if caching is None else caching == "on",
                "note": cell["note"],
                "kind": "measured",
                "source": cell["source"],
                "measured_on": _month(cell["measured"]),
                "retrieved": MEASURED_RETRIEVED,
            }
            rows.append((f"{path.name}: line {line} ('{raw['id']}')", raw))
    return rows
