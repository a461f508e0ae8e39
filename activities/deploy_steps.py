"""The deploy saga's steps as activities: check the target, apply (dry run, then real), wait
until Ready, smoke-test the endpoint, and the compensation (roll back).

Refusals the user must act on (missing permissions, a rejected manifest, not Ready in
time) are non-retryable; a dropped connection is retried. A failed apply carries the id
of the deployment it recorded, so the workflow can compensate what got through.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from openai import OpenAI, OpenAIError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from deploy import cluster, gitops, kubeconfig, rollout
from deploy.inventory import inventory
from deploy.targets import ClusterError
from kb.catalog import gpu_k8s
from kb.db import session_scope
from manifests.kinds import serving_ref
from planner.deployment_plan import ServingApi
from settings import Settings
from workflows.calls import DeployCalls
from workflows.payloads import (
    ApplyRequest,
    CapacityCheck,
    CapacityRequest,
    DeployResult,
    DeployTarget,
    ReadyResult,
    RollbackResult,
    SmokeRequest,
    SmokeResult,
    UndoRequest,
    WaitRequest,
    invalid,
)

HEARTBEAT_S = 10.0
"""Wait in slices this long, heartbeating between them, so a dead worker is noticed."""
SMOKE_PROMPT = "Here is a short story about a robot who learns to paint:"
"""A prompt any model continues for a few tokens (an instruction may get an instant stop)."""
SMOKE_TOKENS = 16


class DeployActivities(DeployCalls):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _target(self, target: DeployTarget) -> rollout.ClusterTarget | rollout.GitOpsTarget:
        if target.kind == "gitops":
            if not target.folder:
                raise invalid("a GitOps target needs a folder")
            return rollout.GitOpsTarget(Path(target.folder), target.commit)
        context = kubeconfig.active_context(target.context)
        return rollout.ClusterTarget(kubeconfig.connect(target.context), context)

    @activity.defn
    def serving_api(self, target: DeployTarget) -> ServingApi:
        """Which of KServe's resources for LLMs the cluster serves (API discovery)."""
        cluster_target = self._target(target)
        assert isinstance(cluster_target, rollout.ClusterTarget)
        try:
            return cluster.serving_api(cluster_target.api_client)
        except ClusterError as error:
            raise invalid(str(error)) from None

    @activity.defn
    def check_target(self, request: ApplyRequest) -> str:
        """Permission check: RBAC for every manifest on a cluster; a writable folder for
        GitOps."""
        if request.target.kind == "gitops":
            folder = Path(request.target.folder or "")
            parent = next((p for p in [folder, *folder.parents] if p.exists()), None)
            if parent is None or not os.access(parent, os.W_OK):
                raise invalid(f"cannot write the GitOps folder {folder}")
            return f"{folder} is writable"
        target = self._target(request.target)
        assert isinstance(target, rollout.ClusterTarget)
        try:
            missing = cluster.check_permissions(target.api_client, request.manifests)
        except ClusterError as error:
            raise invalid(str(error)) from None
        if missing:
            raise invalid(str(cluster.PermissionMissing(missing)))
        return f"{len(request.manifests)} objects allowed in {target.context}"

    @activity.defn
    def check_capacity(self, request: CapacityRequest) -> CapacityCheck:
        """Right before apply: the cluster's free GPUs of the plan's kind hold the replicas
        that start now, each on one node; a shortfall refuses, naming what is missing. Not
        checked (and said so) where the nodes cannot be read."""
        with session_scope(self._settings.resolved_database_url) as session:
            catalog = gpu_k8s(session=session)
        try:
            found = inventory(request.target.context, catalog)
        except ClusterError as error:
            return CapacityCheck(checked=False, detail=f"not checked: {error}")
        gpus = found.gpus()
        now = gpus.room(request.gpu_id, request.tp, request.replicas)
        if not now.enough:
            raise invalid(now.sentence())
        peak = gpus.room(request.gpu_id, request.tp, request.peak_replicas)
        tight = "" if peak.enough else f"; at peak, {peak.sentence()}"
        return CapacityCheck(checked=True, detail=now.sentence() + tight)

    @activity.defn
    def apply_manifests(self, request: ApplyRequest) -> DeployResult:
        """Server-side apply (a dry run when asked), or write the GitOps folder; recorded as
        a revision unless a dry run. Waiting for Ready is its own step."""
        try:
            return rollout.deploy(
                request.manifests,
                name=request.name,
                namespace=request.namespace,
                target=self._target(request.target),
                actor=request.actor,
                owner=request.owner,
                dry_run=request.dry_run,
                wait_timeout_s=0,
                database_url=self._settings.resolved_database_url,
            )
        except (cluster.PermissionMissing, cluster.ApplyFailed) as error:
            raise ApplicationError(
                str(error), error.deployment_id, type="InvalidInput", non_retryable=True
            ) from None
        except gitops.GitOpsError as error:
            raise invalid(str(error)) from None

    @activity.defn
    def wait_until_ready(self, request: WaitRequest) -> ReadyResult:
        """Poll the model's (LLM)InferenceService until Ready, heartbeating; not Ready in time
        is final."""
        target = self._target(request.target)
        assert isinstance(target, rollout.ClusterTarget)
        ref = serving_ref(request.kind, request.name, request.namespace)
        deadline = time.monotonic() + request.target.wait_timeout_s
        while True:
            activity.heartbeat()
            left = deadline - time.monotonic()
            try:
                ready = cluster.wait_ready(
                    target.api_client,
                    ref,
                    min(HEARTBEAT_S, max(left, 0.0)),
                    lambda line: activity.heartbeat(line),
                    poll_interval_s=2.0,
                )
            except cluster.NotReady as error:
                if time.monotonic() < deadline:
                    continue
                final = cluster.NotReady(ref, request.target.wait_timeout_s, error.conditions)
                rollout.mark(
                    request.deployment_id,
                    "not_ready",
                    request.actor,
                    str(final),
                    self._settings.resolved_database_url,
                )
                raise invalid(str(final)) from None
            rollout.mark(
                request.deployment_id,
                "ready",
                request.actor,
                ready.url or "",
                self._settings.resolved_database_url,
            )
            return ready

    @activity.defn
    def smoke_test(self, request: SmokeRequest) -> SmokeResult:
        """One streamed completion: the first real TTFT and TPOT of the endpoint."""
        client = OpenAI(
            base_url=request.endpoint.rstrip("/") + "/v1",
            api_key="preflight-smoke",
            timeout=60.0,
            max_retries=0,
        )
        activity.heartbeat()
        started = time.perf_counter()
        arrivals: list[float] = []
        try:
            stream = client.completions.create(
                model=request.model,
                prompt=SMOKE_PROMPT,
                max_tokens=SMOKE_TOKENS,
                temperature=0.0,
                stream=True,
            )
            for chunk in stream:
                activity.heartbeat()
                if chunk.choices and chunk.choices[0].text:
                    arrivals.append(time.perf_counter())
        except OpenAIError as error:
            raise ApplicationError(
                f"smoke request to {request.endpoint} failed: {type(error).__name__}: {error}"
            ) from None
        if not arrivals:
            raise invalid(f"the endpoint {request.endpoint} answered with no tokens")
        tokens = len(arrivals)
        return SmokeResult(
            endpoint=request.endpoint,
            ttft_ms=(arrivals[0] - started) * 1e3,
            tpot_ms=(arrivals[-1] - arrivals[0]) * 1e3 / (tokens - 1) if tokens > 1 else None,
            tokens=tokens,
        )

    @activity.defn
    def roll_back(self, request: UndoRequest) -> RollbackResult:
        """The compensation: restore the revision before, or delete what was created."""
        try:
            return rollout.rollback(
                request.deployment_id,
                actor=request.actor,
                database_url=self._settings.resolved_database_url,
            )
        except rollout.RollbackError as error:
            raise invalid(str(error)) from None
