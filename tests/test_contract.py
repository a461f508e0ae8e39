"""The contract between the API, the workflows and the activities: every Temporal payload in
`workflows.payloads`, readable without the clients the activities use."""

from __future__ import annotations

import subprocess
import sys

ACTIVITY_SIDE = (
    "activities",
    "api",
    "kb",
    "kubernetes",
    "openai",
    "prometheus_api_client",
    "sqlmodel",
    "fastapi",
)


def test_the_contract_imports_only_domain_types() -> None:
    probe = (
        "import sys\n"
        "import workflows.payloads\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({ACTIVITY_SIDE!r})))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
