"""Right-sizing advice from what a live deployment shows.

- A breach, or requests queueing, asks for more replicas (or another configuration).
- Low utilization with every SLO far inside its target allows fewer replicas, with the
  saving at the deployment's price.
- Traffic unlike the specification's suggests updating the specification, so the next
  plan sizes for what really comes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from planner.specs import Frozen

TARGET_UTILIZATION = 0.7
"""Share of a replica's SLO-bound capacity to plan for: the rest absorbs bursts."""
LOW_UTILIZATION = 0.4
WIDE_MARGIN = 0.3
"""Every measured SLO at least this far (as a share of its target) inside it."""
TRAFFIC_DRIFT = 0.25
"""Relative difference between observed and specified traffic worth an update."""
HOURS_PER_MONTH = 730.0


class Deployed(Frozen):
    """What runs, and what the plan expected of it."""

    replicas: int
    min_replicas: int = 1
    max_qps_per_replica: float | None = None
    """What one replica sustains within every SLO (the capacity search's answer)."""
    usd_per_replica_hour: float | None = None
    peak_qps: float
    prompt_tokens: int
    output_tokens: int
    prompt_tokens_p95: int | None = None
    output_tokens_p95: int | None = None
    """The spec's length spread: tail latencies (E2E p95 above all) depend on it."""


class Advice(Frozen):
    kind: Literal["scale_out", "scale_in", "update_spec"]
    text: str
    replicas: int | None = None
    usd_per_month_change: float | None = None
    """Negative: a saving."""


def advise(
    measured: Mapping[str, float], targets: Mapping[str, float], deployed: Deployed
) -> list[Advice]:
    found: list[Advice] = []
    rate = measured.get("requests_per_s")
    replicas = max(round(measured.get("replicas", deployed.replicas)), 1)
    capacity = deployed.max_qps_per_replica
    ratios = {n: measured[n] / t for n, t in targets.items() if n in measured and t > 0}
    worst = max(ratios.values(), default=0.0)
    queueing = measured.get("queue_depth", 0.0) > 0.5 * max(measured.get("running", 0.0), 1.0)

    def change(new: int) -> float | None:
        price = deployed.usd_per_replica_hour
        return None if price is None else (new - replicas) * price * HOURS_PER_MONTH

    if worst > 1.0 or queueing:
        by_latency = math.ceil(replicas * max(worst, 1.0))
        by_load = math.ceil(rate / (capacity * TARGET_UTILIZATION)) if rate and capacity else 0
        new = max(replicas + 1, by_latency, by_load)
        why = (
            ", ".join(f"{n} at {r:.0%} of target" for n, r in ratios.items() if r > 1)
            or f"{measured.get('queue_depth', 0):.0f} requests waiting"
        )
        found.append(
            Advice(
                kind="scale_out",
                text=f"{why}: scale out from {replicas} to {new} replicas, or roll back to "
                "the previous revision",
                replicas=new,
                usd_per_month_change=change(new),
            )
        )
    elif rate is not None and capacity and ratios:
        utilization = rate / (replicas * capacity)
        margin = 1 - worst
        new = max(deployed.min_replicas, math.ceil(rate / (capacity * TARGET_UTILIZATION)), 1)
        if utilization < LOW_UTILIZATION and margin > WIDE_MARGIN and new < replicas:
            saving = change(new)
            money = f", saving ${-saving:,.0f}/month" if saving is not None else ""
            found.append(
                Advice(
                    kind="scale_in",
                    text=f"{utilization:.0%} utilized with every SLO at least {margin:.0%} "
                    f"inside its target: {new} replicas instead of {replicas}{money} "
                    "(or a cheaper GPU: re-plan with the observed traffic)",
                    replicas=new,
                    usd_per_month_change=saving,
                )
            )
    found += _spec_drift(measured, rate, deployed)
    return found


def _spec_drift(
    measured: Mapping[str, float], rate: float | None, deployed: Deployed
) -> list[Advice]:
    if not rate:
        return []
    observed = {
        "traffic.peak_qps": (rate, deployed.peak_qps),
        "traffic.prompt_tokens_mean": (
            measured.get("prompt_tokens_per_s", 0.0) / rate or None,
            deployed.prompt_tokens,
        ),
        "traffic.output_tokens_mean": (
            measured.get("output_tokens_per_s", 0.0) / rate or None,
            deployed.output_tokens,
        ),
    }
    changes = {
        name: value
        for name, (value, specified) in observed.items()
        if value is not None
        and (abs(value / specified - 1) > TRAFFIC_DRIFT)
        and (name != "traffic.peak_qps" or value > specified)  # below peak is normal
    }
    if not changes:
        return []
    listed = ", ".join(f"{n} {observed[n][1]:,.4g} -> {v:,.4g}" for n, v in sorted(changes.items()))
    return [
        Advice(
            kind="update_spec",
            text=f"the traffic differs from the specification: update {listed} and re-plan",
        )
    ]
