"""`preflight intent | plan | chat | whatif | compare`: from plain words to options.

With `PREFLIGHT_API_URL` set, `plan` and `whatif` ask that server (`cli.remote`); otherwise
they plan here. Both print the same answer, rendered from the JSON the API returns, so the
planner is imported only where this process plans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import remote
from cli.console import fail
from settings import get_settings

if TYPE_CHECKING:
    from planner.intent import DeploymentIntent
    from planner.service import PlanningService

TEXT = Annotated[str, typer.Argument(help="What the deployment is for, in plain words.")]
JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _service() -> PlanningService:
    from planner.service import PlanningService

    return PlanningService(get_settings())


@contextmanager
def _refusals() -> Iterator[None]:
    """The service's refusals as one red line and exit status 2."""
    from kb.repository import NotLoadedError
    from planner.service import PlanningError

    try:
        yield
    except (PlanningError, NotLoadedError) as error:
        raise fail(str(error)) from None


def intent(text: TEXT, as_json: JSON = False) -> None:
    """The DeploymentIntent the words state (fields not stated stay null)."""
    with _refusals():
        result = _service().read(text)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    for name, value in result.model_dump(exclude_none=True).items():
        typer.echo(f"{name}: {value}")


def plan(
    text: TEXT,
    as_json: JSON = False,
    save_plan: Annotated[
        Path | None,
        typer.Option(
            help="Write the chosen option's deployment plan (JSON) to this file "
            "(planned here, from this machine's knowledge base)."
        ),
    ] = None,
    option: Annotated[int, typer.Option(min=1, help="Which option --save-plan takes.")] = 1,
    name: Annotated[str, typer.Option(help="Deployment name (DNS-1123).")] = "llm",
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace.")] = "default",
) -> None:
    """Intent, then specification, then ranked options, with any clarifying questions;
    `--save-plan` writes what `preflight render` and `preflight deploy --plan` take."""
    settings = get_settings()
    if settings.api_url and save_plan is None:
        answer = remote.post(settings, "/plan", {"message": text})
    else:
        answer = _plan_here(text, save_plan, option, name, namespace)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    typer.echo(answer["reply"])
    typer.echo(options_text(answer["recommendations"]))


def _plan_here(
    text: str, save_plan: Path | None, option: int, name: str, namespace: str
) -> dict[str, Any]:
    """What `POST /plan` answers, computed in this process."""
    from pydantic import ValidationError

    from planner.deployment import PlanError

    service = _service()
    with _refusals():
        planned = service.plan(text)
    result = planned.recommendations
    if save_plan is not None:
        if option > len(result.options):
            raise fail(f"--option {option}: there are {len(result.options)} options")
        try:
            chosen = service.assistant().deployment_plan(
                result.options[option - 1], planned.specification, name, namespace
            )
        except (PlanError, ValidationError) as error:
            raise fail(str(error)) from None
        save_plan.write_text(chosen.model_dump_json(indent=2) + "\n")
    return planned.model_dump(mode="json")


def options_text(result: dict[str, Any]) -> str:
    """Ranked options as words, from their JSON (`Recommendations`)."""
    lines = [f"\n{result['feasible']} feasible configurations; the best:"]
    for i, r in enumerate(result["options"], 1):
        lines.append(f"{i}. {r['rationale']}")
    for left in result["left_out"]:
        lines.append(f"- {left['name']} ({left['kind']}) is not among them: {left['reason']}")
    if not result["options"]:
        lines.append("Nothing is feasible. To get an option:")
        lines += [f"- {advice}" for advice in result["relax"]]
    return "\n".join(lines)


def chat() -> None:
    """An interactive conversation: describe the deployment, answer the questions, and
    type `options` to see what fits (Ctrl-D to leave)."""
    from kb.repository import NotLoadedError
    from planner.conversation import DONT_KNOW, Conversation
    from planner.recommendation import Recommendations
    from planner.service import PlanningError

    service = _service()
    state = Conversation()
    options: Recommendations | None = None
    typer.echo("Describe what you want to deploy. `options` shows what fits; Ctrl-D leaves.")
    while True:
        try:
            message = input("> ").strip()
        except EOFError:
            typer.echo("")
            return
        if not message:
            continue
        if message.lower() in {"options", "recommend", "plan"} and options is not None:
            typer.echo(options_text(options.model_dump(mode="json")))
            continue
        try:
            turn = service.turn(state, message)
        except (PlanningError, NotLoadedError) as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            continue
        state, reply = turn.conversation, turn.reply
        options = turn.recommendations or service.assistant().recommend(
            reply.specification, wide=reply.wide
        )
        typer.echo(reply.text)
        for q in reply.questions:
            answers = " | ".join(a for a in q.quick_answers if a != DONT_KNOW)
            typer.echo(f"  ({answers} | {DONT_KNOW})")


WHAT_IF = "what if"
SPEC = Annotated[Path, typer.Option("--spec", help="A YAML DeploymentIntent.")]
SETS = Annotated[
    list[str] | None,
    typer.Option("--set", help="field=value (dotted fields; `model=` and `gpu=` pin)."),
]


def _read_yaml(path: Path) -> Any:
    import yaml  # here: `preflight plan` reads no YAML (17 ms of its start)

    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise fail(f"{path}: {error}") from None


def _read_intent(path: Path) -> DeploymentIntent:
    from pydantic import ValidationError

    from planner.intent import DeploymentIntent

    try:
        return DeploymentIntent.model_validate(_read_yaml(path))
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(p) for p in problem["loc"])
        raise fail(f"{path}: {field}: {problem['msg']}") from None


def whatif(spec_file: SPEC, sets: SETS = None, as_json: JSON = False) -> None:
    """Re-plan a specification with changed fields, side by side with the original."""
    import yaml

    changes: dict[str, Any] = {}
    for item in sets or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise fail(f"--set {item!r}: expected field=value")
        value = yaml.safe_load(raw) if raw.strip() else None
        if isinstance(value, str) and "," in value:
            value = [v.strip() for v in value.split(",")]
        changes[name.strip()] = value
    settings = get_settings()
    if settings.api_url:
        body = {
            "intent": _read_yaml(spec_file),
            "scenarios": [{"name": WHAT_IF, "changes": changes}],
        }
        rows = remote.post(settings, "/whatif", body)["scenarios"]
    else:
        base = _read_intent(spec_file)
        with _refusals():
            found = _service().compare(base, [(WHAT_IF, changes)], baseline="as specified")
        rows = [r.model_dump(mode="json") for r in found]
    _print_comparison(rows, as_json)


def compare_command(
    specs: Annotated[list[Path], typer.Argument(help="Two or more YAML DeploymentIntents.")],
    as_json: JSON = False,
) -> None:
    """The best option of each scenario, side by side, with the differences."""
    if len(specs) < 2:
        raise fail("compare needs at least two specification files")
    intents = [(p.stem, _read_intent(p)) for p in specs]
    with _refusals():
        rows = _service().compare_intents(intents)
    _print_comparison([r.model_dump(mode="json") for r in rows], as_json)


def _print_comparison(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Scenario rows (`ScenarioRow` as JSON) as JSON or as words."""
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        cost = row["usd_per_month"]
        price = f"${cost:,.0f}/month" if cost is not None else "no option"
        typer.echo(f"{row['scenario']}: {row['model'] or '-'} on {row['gpus'] or '-'}, {price}")
        if row["ttft_p90_ms"] is not None and row["tpot_p90_ms"] is not None:
            typer.echo(
                f"  TTFT p90 {row['ttft_p90_ms']:,.0f} ms, TPOT p90 {row['tpot_p90_ms']:,.1f} ms, "
                f"capacity {row['capacity_qps'] or 0:,.1f} QPS, "
                f"MMLU-Pro {row['quality'] or '?'}"
            )
        for difference in row["differences"]:
            typer.echo(f"  {difference}")
