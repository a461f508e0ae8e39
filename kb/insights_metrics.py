"""The assistant's numbers (kb.insights) as Prometheus metrics, for the API's and the workers'
/metrics. Read from the sessions' recorded events at each scrape, so every process reports
the same totals and a restart loses nothing; Preflight's rules (monitoring/) take the max
across processes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kb.insights import Spread, insights_at

TIME_TO_DEPLOY_BUCKETS = (60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
REPLY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class AssistantMetrics(Collector):
    """Collects from the knowledge base at `url` at each scrape."""

    def __init__(self, url: str) -> None:
        self._url = url

    def collect(self) -> Iterator[Metric]:
        found = insights_at(self._url)
        yield CounterMetricFamily(
            "preflight_sessions", "Assistant sessions started.", value=found.sessions
        )
        by_case = {
            "recommended": ("preflight_sessions_recommended", "Sessions that got options."),
            "accepted": ("preflight_sessions_accepted", "Sessions that selected an option."),
            "spec_edited": (
                "preflight_sessions_spec_edited",
                "Sessions whose generated specification was edited.",
            ),
        }
        for field, (name, text) in by_case.items():
            family = CounterMetricFamily(name, text, labels=["use_case"])
            for case, counts in found.use_cases.items():
                family.add_metric([case], getattr(counts, field))
            yield family
        stages = GaugeMetricFamily(
            "preflight_sessions_in_stage", "Sessions in each stage now.", labels=["stage"]
        )
        for stage, count in found.stages.items():
            stages.add_metric([stage], count)
        yield stages
        deploys = CounterMetricFamily(
            "preflight_deploys", "Deploys by use case and outcome.", labels=["use_case", "outcome"]
        )
        for case, counts in found.use_cases.items():
            deploys.add_metric([case, "succeeded"], counts.deploys_succeeded)
            deploys.add_metric([case, "failed"], counts.deploys_failed)
        yield deploys
        yield _histogram(
            "preflight_time_to_deploy_seconds",
            "First message to the first deploy that passed its checks, per session.",
            found.time_to_deploy_s,
            TIME_TO_DEPLOY_BUCKETS,
        )
        yield _histogram(
            "preflight_reply_latency_seconds",
            "A chat message to its reply.",
            found.reply_latency_s,
            REPLY_BUCKETS,
        )


def _histogram(name: str, text: str, spread: Spread, bounds: Sequence[float]) -> Metric:
    buckets = [(f"{b:g}", sum(v <= b for v in spread.values)) for b in bounds]
    return HistogramMetricFamily(
        name, text, buckets=[*buckets, ("+Inf", spread.count)], sum_value=sum(spread.values)
    )


def exposition(url: str) -> bytes:
    """The assistant's metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AssistantMetrics(url))
    return generate_latest(registry)
