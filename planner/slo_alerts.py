"""Multi-window, multi-burn-rate SLO alerts on vLLM's own metrics (the SRE workbook's
recipe), as PromQL for a PrometheusRule.

A latency SLO such as "TTFT p90 within 500 ms" says that 90 % of requests are served
within the target, so its error budget is the other 10 %; the error SLO's budget is
1 - availability. A tier pages (or opens a ticket) when both its long and its short window
burn the budget faster than its factor; tiers whose threshold would exceed 100 % of
requests can never fire and are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TTFT_BUCKETS_S: tuple[float, ...] = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5),
    *(10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
)
TPOT_BUCKETS_S: tuple[float, ...] = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5),
    *(10.0, 20.0, 40.0, 80.0),
)
E2E_BUCKETS_S: tuple[float, ...] = (
    *(0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0),
    *(120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0),
)
"""Histogram buckets of vLLM's V1 engine (vllm/v1/metrics/loggers.py): an alert counts the
requests under one bucket boundary, so a target between two is measured at the nearer one
(and the alert says which)."""


@dataclass(frozen=True)
class Histogram:
    key: str
    title: str
    metric: str
    quantile: float
    buckets_s: tuple[float, ...]


HISTOGRAMS = (
    Histogram("ttft", "TTFT", "vllm:time_to_first_token_seconds", 0.90, TTFT_BUCKETS_S),
    # Per request (its mean time per output token), the way the planner's TPOT is defined;
    # vllm:inter_token_latency_seconds counts every token instead.
    Histogram("tpot", "TPOT", "vllm:request_time_per_output_token_seconds", 0.90, TPOT_BUCKETS_S),
    Histogram("e2e", "E2E latency", "vllm:e2e_request_latency_seconds", 0.95, E2E_BUCKETS_S),
)


@dataclass(frozen=True)
class BurnTier:
    severity: str
    long_window: str
    short_window: str
    burn_rate: float


TIERS = (
    BurnTier("page", "1h", "5m", 14.4),  # 2 % of a 30-day budget in an hour
    BurnTier("page", "6h", "30m", 6.0),  # 5 % in six hours
    BurnTier("ticket", "1d", "2h", 3.0),  # 10 % in a day
    BurnTier("ticket", "3d", "6h", 1.0),  # 10 % in three days
)


@dataclass(frozen=True)
class Objective:
    """One SLO, with what the PrometheusRule records and alerts on."""

    key: str
    alert: str
    summary: str
    budget: float
    budget_percent: str
    record: str
    """Recording rule name without its window, e.g. `...:ratio_rate` + `5m`."""
    ratios: list[dict[str, str]]
    """Recording rules: `record` and `expr` of the bad-request ratio per window."""
    alerts: list[dict[str, str]]
    """Alert rules: `severity`, `long_window`, `short_window`, `burn_rate`,
    `budget_lasts_days` (of a 30-day budget, at that burn rate) and `expr`."""
    required_series: str
    """The series the ratio cannot do without: a latency SLO's histogram bucket, or the
    error counter (vLLM creates it at 0)."""


def measurable(target_s: float, buckets_s: tuple[float, ...]) -> bool:
    """Whether a histogram with these buckets can tell requests within `target_s` apart."""
    return target_s >= buckets_s[0] * (1 - 1e-9)


def nearest_bucket(target_s: float, buckets_s: tuple[float, ...]) -> float:
    """The bucket boundary nearest `target_s`, by ratio (250 ms for 300, 50 ms for 40)."""
    return min(buckets_s, key=lambda b: abs(math.log(b / target_s)))


def objectives(
    selector: str,
    latency_targets_ms: dict[str, float | None],
    availability: float,
) -> list[Objective]:
    """Every SLO with a target: latency ones by key (ttft, tpot, e2e), and errors.
    `selector` is the PromQL label matcher of this deployment's series."""
    found = []
    for h in HISTOGRAMS:
        target_ms = latency_targets_ms.get(h.key)
        if target_ms is None:
            continue
        if not measurable(target_ms / 1000, h.buckets_s):
            raise ValueError(
                f"{h.title} target {target_ms:g} ms is below vLLM's smallest {h.metric} bucket "
                f"({h.buckets_s[0]:g} s); no alert could measure it"
            )
        # Prometheus writes bucket bounds the way Python's repr does (0.5, 1.0, 10.0).
        le = nearest_bucket(target_ms / 1000, h.buckets_s)
        bucket = f'{h.metric}_bucket{{{selector},le="{le!r}"}}'
        good = f"sum by (namespace, job) (rate({bucket}[W]))"
        total = f"sum by (namespace, job) (rate({h.metric}_count{{{selector}}}[W]))"
        share = f"p{round(h.quantile * 100)}"
        measured = "" if math.isclose(le * 1000, target_ms) else f" (counted at {le * 1000:g} ms)"
        found.append(
            _objective(
                h.key,
                f"{h.title} {share} within {target_ms:g} ms{measured}",
                round(1 - h.quantile, 9),
                f"1 - ({good} / {total})",
                selector,
                bucket,
            )
        )
    # `error` is a request the engine failed (vLLM answers 500). `abort` is a client that
    # cancelled (a user's stop button) and `repetition` a degenerate output: not failures of
    # the service.
    requests = "vllm:request_success_total"
    errors = f'{requests}{{{selector},finished_reason="error"}}'
    failed = f"sum by (namespace, job) (rate({errors}[W]))"
    total = f"sum by (namespace, job) (rate({requests}{{{selector}}}[W]))"
    found.append(
        _objective(
            "errors",
            f"{availability * 100:g} % of requests without an engine error",
            round(1 - availability, 9),
            f"{failed} / {total}",
            selector,
            errors,
        )
    )
    return found


def guard_alerts(selector: str, objectives: list[Objective]) -> list[dict[str, str]]:
    """Alerts that say when the SLO alerts themselves are blind: vLLM not scraped, or a
    series they count on missing (a vLLM upgrade that moved its buckets or names)."""
    missing = " or ".join(f"absent({o.required_series})" for o in objectives)
    # vLLM creates its series at start-up, so a scraped replica without one is a mismatch.
    scraped = f"(count(up{{{selector}}} == 1) > 0)"
    return [
        {
            "alert": "VllmScrapeFailing",
            "expr": f"up{{{selector}}} == 0",
            "for": "10m",
            "severity": "ticket",
            "summary": "Prometheus cannot scrape vLLM's /metrics; the SLO alerts are blind",
        },
        {
            "alert": "VllmSLOSeriesMissing",
            "expr": f"({missing}) and on () {scraped}",
            "for": "30m",
            "severity": "ticket",
            "summary": (
                "vLLM is scraped but a series the SLO alerts count on is missing "
                "(did a vLLM upgrade change its histogram buckets or metric names?)"
            ),
        },
    ]


def _objective(
    key: str, summary: str, budget: float, ratio: str, selector: str, required: str
) -> Objective:
    record = f"namespace_job:vllm_{key}_bad:ratio_rate"
    # Every deployment records under the same names; its alerts read only its own series.
    series = f"{record}{{W}}{{{{{selector}}}}}"
    tiers = [t for t in TIERS if t.burn_rate * budget < 1]
    windows = sorted(
        {w for t in tiers for w in (t.long_window, t.short_window)}, key=_window_seconds
    )
    return Objective(
        key=key,
        alert=f"Vllm{'Error' if key == 'errors' else key.upper()}BudgetBurn",
        summary=summary,
        budget=budget,
        budget_percent=f"{budget * 100:g} %",
        record=record,
        ratios=[{"record": record + w, "expr": ratio.replace("[W]", f"[{w}]")} for w in windows],
        alerts=[
            {
                "severity": t.severity,
                "long_window": t.long_window,
                "short_window": t.short_window,
                "burn_rate": _number(t.burn_rate),
                "budget_lasts_days": f"{30 / t.burn_rate:.1f}",
                "expr": " and ".join(
                    f"{series.format(W=w)} > ({_number(t.burn_rate)} * {_number(budget)})"
                    for w in (t.long_window, t.short_window)
                ),
            }
            for t in tiers
        ],
        required_series=required,
    )


def _number(value: float) -> str:
    """A short decimal for PromQL and people (0.1, not 0.09999999999999998)."""
    return f"{value:.6g}"


def _window_seconds(window: str) -> int:
    unit = {"m": 60, "h": 3600, "d": 86400}[window[-1]]
    return int(window[:-1]) * unit
