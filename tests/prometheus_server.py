"""A real Prometheus (Debian's `prometheus`, installed by `make install` when missing),
scraping the given targets every second; started by the tests that need it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port

SCRAPE_INTERVAL_S = 1


@contextmanager
def prometheus(targets: Sequence[str], folder: Path) -> Iterator[str]:
    """Base URL of a Prometheus scraping `targets` (`host:port`), stopped afterwards."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: `make install` installs Debian's package"
    config = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [{"job_name": "vllm", "static_configs": [{"targets": list(targets)}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def wait_for_scrapes(url: str, metric: str, samples: int, timeout_s: float = 30) -> None:
    """Until Prometheus holds `samples` scrapes of `metric` (a rate needs two at least)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        query = f"count_over_time({metric}[1m])"
        found = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
        series = found["data"]["result"]
        if series and float(series[0]["value"][1]) >= samples:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never scraped {metric} {samples} times")
