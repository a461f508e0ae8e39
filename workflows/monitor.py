"""MonitorWorkflow: the observe stage of a session, a child workflow.

It checks the deployment's SLOs every `interval` on durable timers, tells its parent
session when the status changes, and after `breach_after` breached checks in a row
proposes a fix (more replicas) or a rollback. It continues as new every `checks_per_run`
checks so its history stays short however long it watches.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.calls import SloCalls
    from workflows.payloads import (
        SLO_REPORT_SIGNAL,
        MonitorInput,
        MonitorUpdate,
        SloCheckRequest,
        SloReport,
    )


def proposal(report: SloReport, checks: int) -> str:
    """The right-sizing advice for a sustained breach (always offering the rollback)."""
    advice = " ".join(a.text + "." for a in report.advice) or (
        f"{report.detail}: scale out, or roll back to the previous revision."
    )
    return f"SLO breached in {checks} checks in a row. Proposed: {advice}"


@workflow.defn(sandboxed=False)  # as AssistantWorkflow
class MonitorWorkflow:
    @workflow.run
    async def run(self, monitor: MonitorInput) -> None:
        parent = workflow.get_external_workflow_handle(monitor.parent_id)
        for _ in range(monitor.policy.checks_per_run):
            await workflow.sleep(monitor.policy.interval)
            report = await workflow.execute_activity_method(
                SloCalls.check_slo,
                SloCheckRequest(
                    deployment_id=monitor.deployment_id,
                    targets=monitor.targets,
                    model_name=monitor.model_name,
                    configuration=monitor.configuration,
                    prometheus_url=monitor.prometheus_url,
                    rehearsal=monitor.rehearsal,
                ),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            breached = report.status == "breach"
            monitor.checks += 1
            monitor.consecutive_breaches = monitor.consecutive_breaches + 1 if breached else 0
            sustained = monitor.consecutive_breaches == monitor.policy.breach_after
            if report.status != monitor.last_status or sustained:
                await parent.signal(
                    SLO_REPORT_SIGNAL,
                    MonitorUpdate(
                        report=report,
                        checks=monitor.checks,
                        consecutive_breaches=monitor.consecutive_breaches,
                        proposal=(
                            proposal(report, monitor.consecutive_breaches) if sustained else None
                        ),
                    ),
                )
            monitor.last_status = report.status
        workflow.continue_as_new(monitor)
