"""`preflight cluster gpus`: the accelerators of the cluster Preflight deploys to, node by
node, matched to the catalog, with how many are free now."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.console import catalog_session, fail
from deploy.inventory import Inventory, inventory
from deploy.targets import ClusterError
from kb.catalog import gpu_k8s

app = typer.Typer(add_completion=False, no_args_is_help=True)


# The callback keeps `cluster` a group while it has one command: `preflight cluster gpus`.
@app.callback()
def cluster() -> None:
    """The cluster Preflight deploys to."""


@app.command("gpus")
def gpus(
    context: Annotated[
        str | None, typer.Option(help="kubeconfig context (default: the current one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The inventory as JSON.")] = False,
) -> None:
    """Which GPUs each node has (by its GPU operator's labels), how many are allocatable,
    requested by running pods, and free; taints, cordons and MIG slices."""
    with catalog_session() as session:
        catalog = gpu_k8s(session=session)
    try:
        found = inventory(context, catalog)
    except ClusterError as error:
        raise fail(str(error)) from None
    typer.echo(found.model_dump_json(indent=2) if as_json else report(found))


def report(found: Inventory) -> str:
    kinds = found.kinds
    if not kinds:
        return f"cluster {found.context}: no node offers a GPU"
    lines = [f"cluster {found.context}: {len(kinds)} kind(s) of GPU on {len(found.nodes)} node(s)"]
    for kind in kinds:
        name = kind.gpu_id or f"unknown product {kind.product!r} (not in the catalog)"
        lines.append(
            f"  {name}: {kind.free} of {kind.allocatable} free on {kind.nodes} node(s), "
            f"at most {kind.most_free_on_one_node} on one node"
        )
    lines.append(f"  {'node':24} {'GPU':24} {'alloc':>5} {'used':>5} {'free':>5}  notes")
    for node in found.nodes:
        notes = [*node.taints]
        if not node.schedulable:
            notes.insert(0, "cordoned")
        notes += [f"MIG {profile} x{count}" for profile, count in node.mig.items()]
        row = (
            f"  {node.node:24} {node.gpu_id or node.product:24} {node.allocatable:>5} "
            f"{node.requested:>5} {node.free:>5}  {', '.join(notes)}"
        )
        lines.append(row.rstrip())
    return "\n".join(lines)
