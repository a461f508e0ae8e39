"""What a load test sends and when: the traffic profile it replays, and a seeded schedule
of requests (arrival time, prompt and output length) drawn from that profile.

A profile file is YAML with a `traffic:` mapping of TrafficIntent fields (the same as a
DeploymentIntent's or a DeploymentSpecification's, so either file works as is):

    traffic:
      prompt_tokens_mean: 200      # required
      prompt_tokens_p95: 600       # optional: without it every prompt has the mean length
      output_tokens_mean: 50       # required
      output_tokens_p95: 150       # optional
      steady_qps: 0.5              # the rate; else the intent's expected_qps, else peak_qps
      burstiness: medium           # low (Poisson), medium or high (gamma gaps); default medium

Other top-level fields are ignored. Arrivals come from the simulator's process (gamma
gaps with the squared CV that the planner assumes for the burstiness); lengths are lognormal
with the profile's mean and p95, clipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.intent import TrafficIntent
from planner.requirements import ARRIVAL_CV2, MAX_QPS, MIN_QPS, TrafficProfile
from planner.simulate import Lengths, arrival_gaps

GAP_BATCH = 256


class ProfileError(ValueError):
    """A profile file that does not describe the traffic to send; names the field."""


class LoadProfile(BaseModel):
    """The traffic a load test offers: lengths and burstiness, at `qps` requests/s."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    traffic: TrafficProfile
    qps: float = Field(ge=MIN_QPS, le=MAX_QPS)


class PlannedRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    at_s: float
    """Seconds after the start of the test."""
    prompt_tokens: int
    output_tokens: int


def load_profile(data: Any, qps: float | None = None) -> LoadProfile:
    """The profile a parsed YAML document describes; `qps` overrides its rate."""
    if not isinstance(data, dict) or not isinstance(data.get("traffic"), dict):
        raise ProfileError("traffic: missing; the profile needs a `traffic:` mapping")
    try:
        t = TrafficIntent.model_validate(data["traffic"])
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(p) for p in ("traffic", *problem["loc"]))
        raise ProfileError(f"{field}: {problem['msg']}") from None
    for name in ("prompt_tokens_mean", "output_tokens_mean"):
        if getattr(t, name) is None:
            raise ProfileError(f"traffic.{name}: missing (a positive number of tokens)")
    expected = data.get("expected_qps")
    if expected is not None and not (isinstance(expected, int | float) and expected > 0):
        raise ProfileError(f"expected_qps: must be a positive number, got {expected!r}")
    rate = qps or t.steady_qps or expected or t.peak_qps
    if rate is None:
        raise ProfileError("traffic.steady_qps: missing (give steady_qps or peak_qps, or --qps)")
    if rate <= 0:
        raise ProfileError(f"qps: must be above 0, got {rate}")
    assert t.prompt_tokens_mean is not None and t.output_tokens_mean is not None
    steady = t.steady_qps or rate
    traffic = TrafficProfile(
        prompt_tokens_mean=t.prompt_tokens_mean,
        prompt_tokens_p95=_p95(t.prompt_tokens_p95, t.prompt_tokens_mean),
        output_tokens_mean=t.output_tokens_mean,
        output_tokens_p95=_p95(t.output_tokens_p95, t.output_tokens_mean),
        steady_qps=steady,
        peak_qps=max(t.peak_qps or steady, steady),
        burstiness=t.burstiness or "medium",
    )
    return LoadProfile(traffic=traffic, qps=float(rate))


def _p95(p95: int | None, mean: int) -> int | None:
    return max(p95, mean) if p95 is not None else None


def schedule(profile: LoadProfile, seed: int) -> Iterator[PlannedRequest]:
    """Requests in arrival order, without end (the caller stops at its duration)."""
    rng = np.random.default_rng(seed)
    t = profile.traffic
    prompts = Lengths(rng, t.prompt_tokens_mean, t.prompt_tokens_p95)
    outputs = Lengths(rng, t.output_tokens_mean, t.output_tokens_p95)
    cv2 = ARRIVAL_CV2[t.burstiness]
    now = 0.0
    while True:
        for gap in arrival_gaps(rng, profile.qps, cv2, GAP_BATCH):
            now += float(gap)
            yield PlannedRequest(
                at_s=now, prompt_tokens=prompts.draw(), output_tokens=outputs.draw()
            )
