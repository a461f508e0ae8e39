"""`preflight render`: a deployment plan to validated Kubernetes manifests in a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from cli.console import catalog_session, fail
from deploy.gitops import planned_files
from kb.catalog import gpu_specs, model_specs
from manifests.render import ManifestError, render, serving_notes, validate
from planner.calibration import stored_calibration
from planner.deployment_plan import DeploymentPlan, ServingApi, describe
from planner.predict import Planner


def checked_manifests(
    plan_file: Path, serving: ServingApi | None = None
) -> tuple[DeploymentPlan, list[dict[str, Any]]]:
    """The plan's manifests (served by `serving`, else as the plan says), rendered and
    validated (schemas, policy, memory fit); a clear error, and nothing else, when anything
    is wrong."""
    try:
        text = plan_file.read_text(encoding="utf-8")
    except OSError as error:
        raise fail(f"cannot read {plan_file}: {error.strerror}") from None
    try:
        plan = DeploymentPlan.model_validate_json(text)
        if serving is not None:
            fields = plan.model_dump()
            fields["serving"]["api"] = serving
            plan = DeploymentPlan.model_validate(fields)
    except ValidationError as error:
        raise fail(f"{plan_file} is not a valid deployment plan: {describe(error)}") from None
    try:
        manifests = render(plan)
    except ManifestError as error:
        raise fail(str(error)) from None
    with catalog_session() as session:
        catalog = Planner(
            models=model_specs(session=session),
            gpus=gpu_specs(session=session),
            calibration=stored_calibration(),
        )
    problems = validate(manifests, plan, catalog)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise fail(f"the manifests of {plan.name} are not valid; nothing written:\n{listed}")
    return plan, manifests


def render_command(
    plan_file: Annotated[Path, typer.Option("--plan", help="Deployment plan (JSON).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder to write the manifests into.")
    ],
    serving: Annotated[
        ServingApi | None,
        typer.Option(
            "--serving",
            help="llminferenceservice (KServe 0.17 and later) or inferenceservice (a "
            "ServingRuntime and an InferenceService, for older clusters); default: the plan's.",
        ),
    ] = None,
) -> None:
    """Render a deployment plan, validate it (schemas, policy, memory fit) and write one
    YAML file per manifest plus a kustomization.yaml; nothing is written if it is invalid."""
    plan, manifests = checked_manifests(plan_file, serving)
    files = planned_files(manifests)
    if output.exists() and not output.is_dir():
        raise fail(f"{output} is a file, not a folder")
    # Files left from another render (another autoscaler, say) would be applied by mistake.
    stray = sorted({p.name for p in output.iterdir()} - set(files)) if output.is_dir() else []
    if stray:
        raise fail(f"{output} holds other files ({', '.join(stray)}); choose an empty folder")
    output.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (output / name).write_text(content, encoding="utf-8")
    typer.echo(f"wrote {len(files)} files to {output}: {', '.join(files)}")
    for note in serving_notes(plan):
        typer.echo(f"  {note}")
