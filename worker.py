"""The Temporal worker: runs Preflight's workflows and activities.

Start more of these processes to scale out; they share the task queue (on one machine, give
each its own PREFLIGHT_WORKER_METRICS_PORT, or 0).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.deploy_steps import DeployActivities
from activities.knowledge_base import KnowledgeBaseActivities
from activities.metrics import ActivityMetrics, serve
from activities.rehearsal import RehearsalActivities
from activities.session import SessionActivities
from activities.slo import SloActivities
from settings import Settings, get_settings
from workflows.assistant import AssistantWorkflow
from workflows.client import connect, register_search_attributes
from workflows.monitor import MonitorWorkflow

log = logging.getLogger("preflight.worker")


WORKFLOWS = [AssistantWorkflow, MonitorWorkflow]


def activities(settings: Settings) -> list[Callable[..., Any]]:
    """Every activity, bound to its dependencies."""
    knowledge_base = KnowledgeBaseActivities(settings.resolved_database_url)
    session, deploy = SessionActivities(settings), DeployActivities(settings)
    session.warm()
    slo, rehearsal = SloActivities(settings), RehearsalActivities(settings)
    return [
        knowledge_base.kb_stats,
        session.converse,
        session.evaluate,
        session.compare_scenarios,
        session.prepare_deployment,
        session.record_event,
        session.record_events,
        deploy.serving_api,
        deploy.check_target,
        deploy.check_capacity,
        deploy.apply_manifests,
        deploy.wait_until_ready,
        deploy.smoke_test,
        deploy.roll_back,
        slo.check_slo,
        rehearsal.start_rehearsal,
        rehearsal.stop_rehearsal,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    executor: ThreadPoolExecutor,
    bound: list[Callable[..., Any]] | None = None,
) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=activities(settings) if bound is None else bound,
        activity_executor=executor,
        interceptors=[ActivityMetrics()],
    )


async def run(settings: Settings) -> None:
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    if port:
        try:
            serve(host, port, settings.resolved_database_url)
        except OSError as error:
            raise SystemExit(
                f"preflight worker: cannot serve /metrics on {host}:{port} ({error.strerror}); "
                "set PREFLIGHT_WORKER_METRICS_PORT to a free port, or 0 for none"
            ) from None
    client = await connect(settings)
    await register_search_attributes(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(client, settings, executor)
        async with worker:
            log.info(
                "worker polling task queue %r at %s; metrics %s",
                settings.temporal_task_queue,
                settings.temporal_address,
                f"at http://{host}:{port}/metrics" if port else "off",
            )
            await stop.wait()
            log.info("worker draining and shutting down")
        # Leaving the block waits for in-flight activities (graceful shutdown).
    # Rehearsals are this machine's processes: they go with the worker that started them.
    RehearsalActivities(settings).stop_all()


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
