"""`preflight load`: benchmark an OpenAI-compatible endpoint with a traffic profile."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Annotated

import typer
import yaml

from cli.console import fail
from emulator.loadgen import EndpointError, LoadReport, Progress, Target, probe, run_load
from planner.loadplan import LoadProfile, ProfileError, load_profile

UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_duration(text: str, option: str = "--duration") -> float:
    """Seconds in `60s`, `2m`, `1h` or a bare number of seconds (`90`)."""
    match = DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{option} {text!r}: expected a positive time such as 60s, 2m or 90")
    return float(match.group(1)) * UNITS[match.group(2)]


def read_profile(path: Path, qps: float | None) -> LoadProfile:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise fail(f"{path}: {error}") from None
    try:
        return load_profile(data, qps)
    except ProfileError as error:
        raise fail(f"{path}: {error}") from None


def _show(progress: Progress) -> None:
    ttft = f"{progress.ttft_p50_ms:,.0f} ms" if progress.ttft_p50_ms is not None else "-"
    typer.echo(
        f"{progress.elapsed_s:6.1f}s sent {progress.sent} done {progress.done} "
        f"in flight {progress.in_flight} errors {progress.errors} TTFT p50 {ttft}",
        err=True,
    )


def load(
    url: Annotated[str, typer.Option(help="OpenAI API root, e.g. http://host:8000/v1.")],
    profile: Annotated[
        Path, typer.Option(help="YAML with a `traffic:` mapping (an intent or spec works).")
    ],
    duration: Annotated[str, typer.Option(help="How long to send: 60s, 2m or 90.")] = "60s",
    model: Annotated[
        str | None, typer.Option(help="Model name (default: the first served).")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key.")
    ] = None,
    qps: Annotated[float | None, typer.Option(min=0.001, help="Override the rate.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of arrivals, lengths and prompts.")] = 0,
    max_in_flight: Annotated[int, typer.Option(min=1, help="Most requests open at once.")] = 256,
    grace: Annotated[
        str, typer.Option(help="How long to wait for requests still open at the end.")
    ] = "30s",
    ignore_eos: Annotated[
        bool, typer.Option(help="Ask for exactly max_tokens (ignore_eos, min_tokens).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    output: Annotated[Path | None, typer.Option(help="Also write the JSON report here.")] = None,
) -> None:
    """Replay a traffic profile (Poisson or bursty arrivals, lognormal lengths) against an
    endpoint's /v1/completions and report TTFT, TPOT, E2E and throughput."""
    try:
        duration_s, grace_s = parse_duration(duration), parse_duration(grace, "--grace")
    except ValueError as error:
        raise fail(str(error)) from None
    traffic = read_profile(profile, qps)
    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise fail(f"--api-key-env {api_key_env}: that environment variable is not set")
    try:
        served = asyncio.run(probe(url, api_key, model))
    except EndpointError as error:
        raise fail(str(error)) from None
    target = Target(base_url=url, model=served, api_key=api_key, exact_lengths=ignore_eos)
    report = asyncio.run(
        run_load(target, traffic, duration_s, seed, max_in_flight, grace_s, on_progress=_show)
    )
    if output is not None:
        output.write_text(report.model_dump_json(indent=2) + "\n")
    typer.echo(report.model_dump_json(indent=2) if as_json else summary(report))


def summary(report: LoadReport) -> str:
    lines = [
        f"{report.model} at {report.url}: {report.completed} of {report.sent} requests "
        f"completed in {report.elapsed_s:.1f} s ({report.requests_per_s:.2f} req/s, "
        f"{report.output_tokens_per_s:.1f} output tokens/s); offered {report.profile.qps:g} QPS "
        f"({report.profile.traffic.burstiness} burstiness), seed {report.seed}"
    ]
    for name, stats in (("TTFT", report.ttft_ms), ("TPOT", report.tpot_ms), ("E2E", report.e2e_ms)):
        if stats is not None:
            lines.append(
                f"  {name}: mean {stats.mean:,.1f} p50 {stats.p50:,.1f} p90 {stats.p90:,.1f} "
                f"p95 {stats.p95:,.1f} p99 {stats.p99:,.1f} ms"
            )
    if report.errors or report.incomplete:
        lines.append(f"  errors {report.errors or 'none'}, incomplete {report.incomplete}")
    if report.delayed_by_max_in_flight:
        lines.append(
            f"  {report.delayed_by_max_in_flight} arrivals waited for --max-in-flight: "
            "less than the profile's load was offered"
        )
    if report.short_outputs:
        lines.append(f"  {report.short_outputs} outputs ended early (the server ignored EOS hints)")
    return "\n".join(lines)
