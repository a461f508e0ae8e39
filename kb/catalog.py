"""The knowledge base as the planner sees it: specs, prices and measured rows."""

from __future__ import annotations

import datetime as dt
import gc
import threading
from collections.abc import Iterable

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from kb.db import session_scope
from kb.repository import catalog_revision, require_loaded
from kb.tables import Benchmark, Hardware, Model, Outcome, Price, UseCase
from planner import observed
from planner.assistant import Assistant
from planner.calibration import CalibrationSet, stored_calibration
from planner.capacity import PRICE_STALE_AFTER_DAYS, GpuPrice
from planner.deployment import GpuK8s
from planner.intent import UseCaseProfile
from planner.measured import MeasuredPoint
from planner.predict import Planner
from planner.recommendation import ModelCard
from planner.specs import GpuSpec, ModelSpec
from planner.vocabulary import Vocabulary


def model_spec(model: Model) -> ModelSpec:
    return ModelSpec.model_validate(model.model_dump(include=set(ModelSpec.model_fields)))


def gpu_spec(gpu: Hardware) -> GpuSpec:
    return GpuSpec.model_validate(gpu.model_dump(include=set(GpuSpec.model_fields)))


def model_specs(*, session: Session) -> dict[str, ModelSpec]:
    return {m.id: model_spec(m) for m in session.exec(select(Model))}


def gpu_specs(*, session: Session) -> dict[str, GpuSpec]:
    return {g.id: gpu_spec(g) for g in session.exec(select(Hardware))}


def _fixed_lengths(distribution: str | None) -> bool:
    """vLLM's random dataset draws no spread unless a range ratio says so (its default was 1,
    then 0: both fixed)."""
    text = distribution or ""
    return text == "fixed" or text == "random" or "range_ratio=0" in text


def measured_points(
    *, session: Session, engine: str = "vllm", held_aside: bool = False
) -> list[MeasuredPoint]:
    """Measured rows of one engine (vLLM: the runtime Preflight deploys), closed and open loop,
    with a TTFT and a TPOT (the mean, else the median); `held_aside` gives the rows kept apart
    from every fit and look-up instead of the others."""
    statement = (
        select(Benchmark)
        .where(
            Benchmark.engine == engine,
            Benchmark.kind == "measured",
            Benchmark.split == ("held_aside" if held_aside else "fit"),
            Benchmark.pp == 1,
        )
        .order_by(col(Benchmark.id))
    )
    points = []
    for b in session.exec(statement):
        ttft = b.ttft_mean_ms or b.ttft_p50_ms
        tpot = b.tpot_mean_ms or b.tpot_p50_ms or b.itl_mean_ms
        if ttft is None or tpot is None or (b.concurrency is None and b.qps is None):
            continue
        burstiness = b.burstiness if b.arrival == "gamma" else None
        points.append(
            MeasuredPoint(
                model_id=b.model_id,
                gpu_id=b.gpu_id,
                precision=b.precision,
                tp=b.tp,
                isl=b.isl,
                osl=b.osl,
                concurrency=b.concurrency,
                qps=b.qps,
                arrival_cv2={"constant": 0.0}.get(b.arrival or "", 1.0 / (burstiness or 1.0)),
                num_prompts=b.num_prompts,
                ttft_ms=ttft,
                tpot_ms=tpot,
                statistic="mean" if b.ttft_mean_ms and b.tpot_mean_ms else "median",
                ttft_p90_ms=b.ttft_p90_ms,
                tpot_p50_ms=b.tpot_p50_ms,
                max_num_seqs=b.max_num_seqs,
                max_num_batched_tokens=b.max_num_batched_tokens,
                gpu_memory_utilization=b.gpu_memory_utilization,
                reference=b.id,
                fixed_lengths=_fixed_lengths(b.length_distribution),
                dp=b.dp,
            )
        )
    return points


OTHER_ENGINES = ("sglang", "trtllm")
"""Engines whose rows inform relative decode speed only (vLLM is what Preflight deploys)."""


def other_engine_points(*, session: Session) -> list[MeasuredPoint]:
    return [p for engine in OTHER_ENGINES for p in measured_points(session=session, engine=engine)]


def observed_outcomes(*, session: Session) -> list[observed.Outcome]:
    """Live deployments' checks that have both an observation and a prediction."""
    return [
        observed.Outcome(
            deployment_id=o.deployment_id,
            model_id=o.model_id,
            gpu_id=o.gpu_id,
            precision=o.precision,
            ttft_observed=o.observed_ttft_p90_ms,
            ttft_predicted=o.predicted_ttft_p90_ms,
            tpot_observed=o.observed_tpot_p90_ms,
            tpot_predicted=o.predicted_tpot_p90_ms,
        )
        for o in session.exec(select(Outcome).order_by(col(Outcome.observed_at)))
        if o.observed_ttft_p90_ms
        and o.predicted_ttft_p90_ms
        and o.observed_tpot_p90_ms
        and o.predicted_tpot_p90_ms
    ]


def planner(*, session: Session, calibration: CalibrationSet | None = None) -> Planner:
    """A planner over the whole catalog, calibrated by the stored fit unless one is given,
    and corrected where live deployments were observed."""
    return Planner(
        models=model_specs(session=session),
        gpus=gpu_specs(session=session),
        calibration=calibration or stored_calibration(),
        measured=measured_points(session=session),
        observed=observed.factors(observed_outcomes(session=session)),
    )


def gpu_prices(*, session: Session, today: dt.date | None = None) -> list[GpuPrice]:
    """Every price, marked stale when older than PRICE_STALE_AFTER_DAYS on `today`."""
    today = today or dt.date.today()
    return [
        GpuPrice(
            gpu_id=p.gpu_id,
            provider=p.provider,
            pricing=p.pricing,
            instance_type=p.instance_type,
            gpus_per_instance=p.gpus_per_instance,
            usd_per_gpu_hour=p.usd_per_gpu_hour,
            source=p.source,
            retrieved=p.retrieved.isoformat(),
            stale=(today - p.retrieved).days > PRICE_STALE_AFTER_DAYS,
        )
        for p in session.exec(select(Price).order_by(col(Price.id)))
    ]


def use_case_profiles(*, session: Session) -> dict[str, UseCaseProfile]:
    return {
        u.id: UseCaseProfile.model_validate(u.model_dump(exclude={"source", "retrieved"}))
        for u in session.exec(select(UseCase).order_by(col(UseCase.id)))
    }


def vocabulary(*, session: Session) -> Vocabulary:
    """The names the intent extractor recognises: catalog models, GPUs and use cases."""
    models = session.exec(select(Model).order_by(col(Model.id))).all()
    gpus = session.exec(select(Hardware).order_by(col(Hardware.id))).all()
    return Vocabulary.build(
        [(m.id, m.aliases, m.params_total_b) for m in models],
        [(g.id, g.vendor, g.aliases) for g in gpus],
        use_case_profiles(session=session).values(),
    )


def model_cards(*, session: Session) -> dict[str, ModelCard]:
    return {
        m.id: ModelCard(
            id=m.id,
            display_name=m.display_name,
            license=m.license,
            license_permissive=m.license_permissive,
            tasks=m.tasks,
            domains=m.domains,
            languages=m.languages,
            max_context_tokens=m.max_context_tokens,
            quality_score=m.quality_score,
        )
        for m in session.exec(select(Model).order_by(col(Model.id)))
    }


def assistant(*, session: Session, approved_models: Iterable[str] | None = None) -> Assistant:
    """The assistant over the whole catalog, calibrated by the stored fit; `approved_models`
    (catalog ids) limits what it recommends."""
    words = vocabulary(session=session)
    return Assistant(
        planner=planner(session=session),
        vocabulary=words,
        use_cases={u.id: u for u in words.use_cases},
        cards=model_cards(session=session),
        prices=gpu_prices(session=session),
        gpu_k8s=gpu_k8s(session=session),
        approved_models=frozenset(approved_models) if approved_models is not None else None,
    )


def gpu_k8s(*, session: Session) -> dict[str, GpuK8s]:
    """How Kubernetes names each accelerator (resource name, node labels)."""
    return {
        h.id: GpuK8s(resource_name=h.k8s_resource, node_labels=h.k8s_node_labels)
        for h in session.exec(select(Hardware).order_by(col(Hardware.id)))
    }


class CatalogCache:
    """The assistant over one knowledge base, built on first use and rebuilt when the catalog
    changes (`kb load`, a price set, a model added: its revision) or the day turns (prices
    age into staleness). Each use costs one small read of the revision."""

    def __init__(self, url: str, approved_models: Iterable[str] | None = None) -> None:
        self._url = url
        self._approved = list(approved_models) if approved_models is not None else None
        self._lock = threading.Lock()
        self._built: tuple[tuple[int, dt.date], Assistant] | None = None

    def get(self) -> Assistant:
        """The current assistant; NotLoadedError, saying what to run, on an empty catalog."""
        # The common case, many threads at once: one small read, no lock.
        try:
            with session_scope(self._url) as session:
                key: tuple[int, dt.date] | None = (
                    catalog_revision(session=session),
                    dt.date.today(),
                )
        except SQLAlchemyError:
            key = None  # no catalog tables yet: the slow path says what to run
        built = self._built
        if key is not None and built is not None and built[0] == key:
            return built[1]
        with self._lock, session_scope(self._url) as session:
            require_loaded(session)
            key = (catalog_revision(session=session), dt.date.today())
            if self._built is None or self._built[0] != key:
                self._built = (key, assistant(session=session, approved_models=self._approved))
                freeze_long_lived()
            return self._built[1]


def freeze_long_lived() -> None:
    """Leave what lives as long as the catalog (and the index and patterns built over it)
    out of full collections, which otherwise walk all of it now and then in the middle of a
    turn, several turns' worth of time. What a previous catalog left in cycles is collected
    first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
