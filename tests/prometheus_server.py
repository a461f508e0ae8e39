"""A real Prometheus (Debian's `prometheus`, installed by `make install` when missing),
scraping the given targets every second; started by the tests that need it."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from activities.rehearsal import start_prometheus


@contextmanager
def prometheus(
    targets: Sequence[str], folder: Path, rule_files: Sequence[Path] = ()
) -> Iterator[str]:
    """Base URL of a Prometheus scraping `targets` (`host:port`), stopped afterwards."""
    server, url = start_prometheus(list(targets), folder, rule_files)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(10)


def wait_for_series(url: str, query: str, timeout_s: float = 60) -> None:
    """Until `query` returns a series."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
        if found["data"]["result"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never answered {query}")


def wait_for_scrapes(url: str, metric: str, samples: int, timeout_s: float = 30) -> None:
    """Until Prometheus holds `samples` scrapes of `metric` (a rate needs two at least)."""
    wait_for_series(url, f"count_over_time({metric}[1m]) >= {samples}", timeout_s)
