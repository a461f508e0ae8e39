"""The deploy stage of a session, as a saga: render and validate (done when selected),
permission check, dry run, free GPUs (a cluster), apply, then wait until ready (a cluster) or
a rehearsal (GitOps), then a smoke test. Each step that leaves something behind registers
its compensation; on any failure the compensations run in reverse order and the session goes
back to explore.

Workflow code: it runs in the session workflow's sandbox and calls activities through the
workflow (`activity`), so its commands are the workflow's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from manifests.kinds import serving_object
    from workflows.calls import DeployCalls, RehearsalCalls
    from workflows.payloads import (
        REHEARSAL,
        ApplyRequest,
        CapacityRequest,
        Configuration,
        Decision,
        DeploymentState,
        DeployTarget,
        RehearsalRequest,
        SessionState,
        SmokeRequest,
        Step,
        WaitRequest,
    )

T = TypeVar("T")
SYSTEM = "preflight"
"""The actor of what the workflow does by itself."""
CAPACITY_CHECK = "capacity-check"
"""Patch: cluster deploys check free GPUs right before apply (sessions from 2026-12-07)."""
REHEARSAL_QPS = 1.0
"""A rehearsal sends a little traffic: at most this many requests a second."""


class RunActivity(Protocol):
    def __call__(
        self,
        activity: Callable[[Any, Any], T],
        argument: Any,
        timeout_s: float,
        heartbeat: bool = False,
    ) -> Awaitable[T]: ...


class StepError(Exception):
    def __init__(self, step: str, message: str, deployment_id: str | None = None) -> None:
        super().__init__(message)
        self.step, self.message, self.deployment_id = step, message, deployment_id


def reason(error: ActivityError) -> tuple[str, str | None]:
    """The message a person can act on, and a deployment id the failure carried."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        details = cause.details
        return cause.message, str(details[0]) if details and details[0] else None
    return f"{type(cause).__name__ if cause else 'error'}: {cause or error}", None


@dataclass
class DeploySaga:
    state: SessionState
    """The session's state, changed in place: its deployment's steps and its stage."""
    target: DeployTarget
    rehearse: bool
    activity: RunActivity
    log: Callable[[str, str, str], None]
    undo: Callable[[str, str], Awaitable[str]]
    """Roll a deployment back (or delete a first one): its compensation."""
    stop_rehearsal: Callable[[], Awaitable[str]]
    configuration: Callable[[], Configuration]

    async def run(self, approved: Decision) -> bool:
        """Deploy what was approved; False (the stage back to explore) after a failed step
        and its compensations."""
        prepared, target, spec = self.state.prepared, self.target, self.state.specification
        assert prepared is not None and spec is not None
        plan = prepared.plan
        deployment = DeploymentState(target=target.label, name=plan.name, namespace=plan.namespace)
        self.state.deployment = deployment
        request = ApplyRequest(
            target=target,
            manifests=prepared.manifests,
            name=plan.name,
            namespace=plan.namespace,
            actor=approved.approver,
            owner=self.state.owner,
            dry_run=True,
        )
        compensations: list[tuple[str, Callable[[], Awaitable[str]]]] = []

        def undo_deploy(deployment_id: str) -> None:
            compensations.append(("rollback", lambda: self.undo(deployment_id, SYSTEM)))

        async def step(name: str, call: Callable[[], Awaitable[T]], done: Callable[[T], str]) -> T:
            try:
                result = await call()
            except ActivityError as error:
                message, deployment_id = reason(error)
                raise StepError(name, message, deployment_id) from None
            deployment.steps.append(Step(name=name, status="ok", detail=done(result)))
            return result

        try:
            deployment.steps += [
                Step(
                    name="render",
                    status="ok",
                    detail="; ".join([f"{len(prepared.manifests)} manifests", *prepared.notes]),
                ),
                Step(name="validate", status="ok", detail="schemas, policy and memory fit"),
            ]
            await step(
                "permission check",
                lambda: self.activity(DeployCalls.check_target, request, 60),
                str,
            )
            await step(
                "dry run",
                lambda: self.activity(DeployCalls.apply_manifests, request, 300),
                lambda r: (
                    f"{len(r.applied) or len((r.files and r.files.changed) or [])} objects accepted"
                ),
            )
            if target.kind == "cluster" and workflow.patched(CAPACITY_CHECK):
                # Right before apply: approval may have waited days while the GPUs filled.
                capacity = CapacityRequest(
                    target=target,
                    gpu_id=plan.accelerator.gpu_id,
                    tp=plan.vllm.tensor_parallel_size,
                    replicas=plan.serving.replicas_at_start,
                    peak_replicas=plan.serving.max_replicas,
                )
                checked = await step(
                    "capacity check",
                    lambda: self.activity(DeployCalls.check_capacity, capacity, 120),
                    lambda r: r.detail,
                )
                if not checked.checked:
                    deployment.steps[-1] = Step(
                        name="capacity check", status="skipped", detail=checked.detail
                    )
            real = request.model_copy(update={"dry_run": False})
            try:
                applied = await step(
                    "apply",
                    lambda: self.activity(DeployCalls.apply_manifests, real, 300),
                    lambda r: f"revision {r.revision} on {r.target}",
                )
            except StepError as failure:
                if failure.deployment_id:
                    undo_deploy(failure.deployment_id)
                raise
            assert applied.deployment_id is not None
            deployment.deployment_id, deployment.revision = applied.deployment_id, applied.revision
            undo_deploy(applied.deployment_id)
            self.log(
                approved.approver, "deployed", f"revision {applied.revision} to {target.label}"
            )
            endpoint = target.endpoint
            if target.kind == "cluster":
                served = serving_object(prepared.manifests)
                assert served is not None
                wait = WaitRequest(
                    target=target,
                    deployment_id=applied.deployment_id,
                    name=plan.name,
                    namespace=plan.namespace,
                    actor=SYSTEM,
                    kind=served["kind"],
                )
                ready = await step(
                    "wait ready",
                    lambda: self.activity(
                        DeployCalls.wait_until_ready,
                        wait,
                        target.wait_timeout_s + 120,
                        heartbeat=True,
                    ),
                    lambda r: f"Ready after {r.waited_s:.0f} s at {r.url}",
                )
                endpoint = ready.url or endpoint
            elif self.rehearse:
                rehearsal = RehearsalRequest(
                    deployment_id=applied.deployment_id,
                    configuration=self.configuration(),
                    served_model_name=plan.model.served_model_name,
                    traffic=spec.traffic,
                    qps=min(spec.traffic.steady_qps, REHEARSAL_QPS),
                )
                deployment.rehearsal = await step(
                    "rehearsal",
                    lambda: self.activity(
                        RehearsalCalls.start_rehearsal, rehearsal, 180, heartbeat=True
                    ),
                    lambda r: (
                        f"{REHEARSAL}: emulator at {r.endpoint}, Prometheus at "
                        f"{r.prometheus_url}, {rehearsal.qps:.2g} requests/s shaped like the spec"
                    ),
                )
                compensations.append(("stop rehearsal", self.stop_rehearsal))
                endpoint = deployment.rehearsal.endpoint
            else:
                deployment.steps.append(
                    Step(
                        name="wait ready",
                        status="skipped",
                        detail="GitOps: the cluster's GitOps controller applies the folder",
                    )
                )
            self.state.stage = "validate"
            if endpoint:
                smoke = SmokeRequest(endpoint=endpoint, model=plan.model.served_model_name)
                deployment.smoke = await step(
                    "smoke test",
                    lambda: self.activity(DeployCalls.smoke_test, smoke, 120, heartbeat=True),
                    lambda r: (
                        f"TTFT {r.ttft_ms:,.0f} ms, TPOT "
                        + (f"{r.tpot_ms:,.1f} ms" if r.tpot_ms is not None else "n/a")
                        + f" over {r.tokens} tokens"
                    ),
                )
            else:
                deployment.steps.append(
                    Step(name="smoke test", status="skipped", detail="no endpoint to reach yet")
                )
        except StepError as failure:
            deployment.steps.append(
                Step(name=failure.step, status="failed", detail=failure.message)
            )
            deployment.status, deployment.error = "failed", f"{failure.step}: {failure.message}"
            self.log(SYSTEM, "deploy_failed", deployment.error)
            for name, undo in reversed(compensations):
                try:
                    deployment.compensations.append(
                        Step(name=name, status="ok", detail=await undo())
                    )
                except ActivityError as error:
                    deployment.compensations.append(
                        Step(name=name, status="failed", detail=reason(error)[0])
                    )
            if compensations:
                self.log(
                    SYSTEM, "compensated", "; ".join(s.detail for s in deployment.compensations)
                )
            self.state.stage = "explore"
            return False
        deployment.status = "deployed"
        first = deployment.smoke
        self.log(
            SYSTEM,
            "validated",
            f"first real TTFT {first.ttft_ms:,.0f} ms at {first.endpoint}"
            if first
            else "no endpoint to smoke-test",
        )
        return True
