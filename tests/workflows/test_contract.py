"""The contract between the API, the workflows and the activities: every Temporal payload in
`workflows.payloads` and every activity in `workflows.calls`, readable without the clients the
activities use; the API and the workflows reach activities only through it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from temporalio import activity

from activities.deploy_steps import DeployActivities
from activities.rehearsal import RehearsalActivities
from activities.session import SessionActivities
from activities.slo import SloActivities
from workflows.calls import DeployCalls, RehearsalCalls, SessionCalls, SloCalls

ACTIVITY_SIDE = ("activities", "kubernetes", "openai", "prometheus_api_client")
"""What an activity imports and neither the API nor a workflow needs."""
CONTRACT_SIDE = (*ACTIVITY_SIDE, "api", "kb", "sqlmodel", "fastapi")


def imported(module: str, among: tuple[str, ...]) -> str:
    probe = (
        "import sys\n"
        f"import {module}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({among!r})))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


@pytest.mark.integration  # a `preflight` process
def test_the_contract_imports_only_domain_types() -> None:
    assert imported("workflows.payloads", CONTRACT_SIDE) == "[]"
    assert imported("workflows.calls", CONTRACT_SIDE) == "[]"


@pytest.mark.integration  # a `preflight` process
@pytest.mark.parametrize("module", ["api.app", "workflows.assistant", "workflows.monitor"])
def test_the_api_and_the_workflows_import_no_activity(module: str) -> None:
    assert imported(module, ACTIVITY_SIDE) == "[]"


@pytest.mark.parametrize(
    ("contract", "implementation"),
    [
        (SessionCalls, SessionActivities),
        (DeployCalls, DeployActivities),
        (RehearsalCalls, RehearsalActivities),
        (SloCalls, SloActivities),
    ],
)
def test_each_call_has_its_implementation_under_the_same_name(
    contract: type, implementation: type
) -> None:
    def names(cls: type) -> set[str]:
        found = set()
        for attribute in vars(cls).values():
            definition = activity._Definition.from_callable(attribute)
            if definition is not None:
                found.add(str(definition.name))
        return found

    assert issubclass(implementation, contract)
    assert names(contract) and names(implementation) == names(contract)
