"""What a worker does, for its /metrics: each activity attempt's duration and outcome (the
chat's LLM turns, the capacity math, manifest applies, SLO checks), and the worker process.
Counted in this process since it started; Prometheus' rate() spans restarts. The assistant's
own numbers (kb.insights_metrics) are served beside them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, start_http_server
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from kb.insights_metrics import AssistantMetrics

ACTIVITY_SECONDS = Histogram(
    "preflight_worker_activity_seconds",
    "One activity attempt, by activity and outcome: completed; refused (bad input, not "
    "retried); failed (retried by the workflow's policy); cancelled.",
    ["activity", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=None,  # served by the worker's own registry (serve), not the process default
)


class ActivityMetrics(Interceptor):
    """Times every activity attempt into ACTIVITY_SECONDS."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Timed(next)


class _Timed(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started, outcome = time.perf_counter(), "failed"
        try:
            result = await super().execute_activity(input)
            outcome = "completed"
            return result
        except ApplicationError as error:
            outcome = "refused" if error.non_retryable else "failed"
            raise
        except (asyncio.CancelledError, CancelledError):
            outcome = "cancelled"
            raise
        finally:
            ACTIVITY_SECONDS.labels(activity.info().activity_type, outcome).observe(
                time.perf_counter() - started
            )


def serve(host: str, port: int, database_url: str) -> None:
    """The worker's /metrics on `host:port` (a daemon thread): its activities, its process,
    and the assistant's numbers from the knowledge base at `database_url`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ACTIVITY_SECONDS)
    registry.register(AssistantMetrics(database_url))
    ProcessCollector(registry=registry)
    start_http_server(port, addr=host, registry=registry)
