"""Right-sizing advice (planner/rightsizing.py) from what a deployment shows."""

from __future__ import annotations

import pytest

from planner.rightsizing import Deployed, advise

DEPLOYED = Deployed(
    replicas=4,
    min_replicas=1,
    max_qps_per_replica=5.0,
    usd_per_replica_hour=2.0,
    peak_qps=20.0,
    prompt_tokens=1000,
    output_tokens=200,
)
TARGETS = {"ttft_p90_ms": 500.0, "tpot_p90_ms": 50.0}


def measured(rate: float, ttft: float, tpot: float, **more: float) -> dict[str, float]:
    tokens = {"prompt_tokens_per_s": 1000 * rate, "output_tokens_per_s": 200 * rate}
    return {"requests_per_s": rate, "ttft_p90_ms": ttft, "tpot_p90_ms": tpot, **tokens, **more}


def test_a_breach_scales_out_by_the_worse_of_latency_and_load() -> None:
    (advice,) = advise(measured(14.0, 1000.0, 40.0, replicas=4), TARGETS, DEPLOYED)
    assert advice.kind == "scale_out" and advice.replicas == 8  # TTFT at 2x its target
    assert "ttft_p90_ms at 200% of target" in advice.text and "roll back" in advice.text
    assert advice.usd_per_month_change == pytest.approx(4 * 2.0 * 730)


def test_queueing_without_a_breach_also_scales_out() -> None:
    found = advise(measured(16.0, 300, 30, queue_depth=20, running=10), TARGETS, DEPLOYED)
    assert [a.kind for a in found] == ["scale_out"]
    assert found[0].replicas == 5 and "20 requests waiting" in found[0].text


def test_low_utilization_with_wide_margins_scales_in_with_the_saving() -> None:
    (advice,) = advise(measured(3.0, 100.0, 10.0), TARGETS, DEPLOYED)
    assert advice.kind == "scale_in" and advice.replicas == 1
    assert advice.usd_per_month_change == pytest.approx(-3 * 2.0 * 730)
    assert "saving $4,380/month" in advice.text


def test_no_advice_when_the_size_is_right_or_nothing_was_measured() -> None:
    assert advise(measured(12.0, 350.0, 40.0), TARGETS, DEPLOYED) == []
    assert advise({}, TARGETS, DEPLOYED) == []


def test_traffic_unlike_the_specification_suggests_an_update() -> None:
    drifted = measured(12.0, 350.0, 40.0) | {"prompt_tokens_per_s": 12.0 * 3000}
    (advice,) = advise(drifted, TARGETS, DEPLOYED)
    assert advice.kind == "update_spec"
    assert "traffic.prompt_tokens_mean 1,000 -> 3,000" in advice.text
