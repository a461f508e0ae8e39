"""The Temporal worker: runs Preflight's workflows and activities.

Start more of these processes to scale out; they share the task queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.knowledge_base import KnowledgeBaseActivities
from settings import Settings, get_settings

log = logging.getLogger("preflight.worker")


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    knowledge_base = KnowledgeBaseActivities(settings.resolved_database_url)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        activities=[knowledge_base.kb_stats],
        activity_executor=executor,
    )


async def run(settings: Settings) -> None:
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(client, settings, executor)
        async with worker:
            log.info(
                "worker polling task queue %r at %s",
                settings.temporal_task_queue,
                settings.temporal_address,
            )
            await stop.wait()
            log.info("worker draining and shutting down")
    # Leaving the block waits for in-flight activities (graceful shutdown).


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
