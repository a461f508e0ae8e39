"""Prefix-cache hits as routing makes them plausible: blind routing finds a conversation's
prefix on one replica in N, prefix-aware routing (llm-d) finds it wherever it went; sizing
and hit rate settle together, and the plan renders the router the prediction counted on."""

from __future__ import annotations

import pytest

from kb.catalog import assistant
from kb.db import session_scope
from manifests.render import render
from planner.assistant import Assistant
from planner.capacity import CapacityOption, CapacitySpec, SearchConstraints, search
from planner.deployment import plan_for
from planner.intent import DeploymentIntent
from planner.recommendation import Recommendation
from planner.requirements import SLOTargets, TrafficProfile
from planner.specs import EngineSettings
from planner.whatif import with_changes

LLAMA_8B, H100 = "meta-llama/Llama-3.1-8B-Instruct", "H100-SXM-80GB"


@pytest.fixture(scope="module")
def helper(seeded_sqlite_url: str) -> Assistant:
    with session_scope(seeded_sqlite_url) as session:
        return assistant(session=session)


def long_prompts(hit_rate: float, routed: bool) -> CapacitySpec:
    """Document questions: long prompts, most of each one sent before (the document)."""
    return CapacitySpec(
        traffic=TrafficProfile(
            prompt_tokens_mean=4000,
            prompt_tokens_p95=8000,
            output_tokens_mean=150,
            output_tokens_p95=300,
            steady_qps=20,
            peak_qps=40,
        ),
        slo=SLOTargets(ttft_p90_ms=800, tpot_p90_ms=50),
        constraints=SearchConstraints(models=[LLAMA_8B], gpus=[H100]),
        engine=EngineSettings(prefix_cache_hit_rate=hit_rate),
        prefix_routing=routed,
        simulate_top=1,
    )


def by_config(helper: Assistant, spec: CapacitySpec) -> dict[tuple[int, str], CapacityOption]:
    return {(o.tp, o.precision): o for o in search(helper.planner, spec, helper.prices).options}


def test_blind_routing_counts_one_hit_in_n_replicas_and_routing_counts_them_all(
    helper: Assistant,
) -> None:
    none, blind, routed = (
        by_config(helper, long_prompts(rate, on))
        for rate, on in ((0.0, False), (0.8, False), (0.8, True))
    )
    assert none.keys() == blind.keys() == routed.keys()
    for config, option in blind.items():
        # The hit rate the option was sized with is the one its own replica count leaves.
        assert option.prefix_cache_hit_rate == pytest.approx(0.8 / option.replicas_for_peak)
        assert routed[config].prefix_cache_hit_rate == 0.8
        assert none[config].prefix_cache_hit_rate == 0.0
        assert (
            routed[config].replicas_for_peak
            <= option.replicas_for_peak
            <= none[config].replicas_for_peak
        )
        # One replica sees every request: routing changes nothing; over more it does.
        more = option.replicas_for_peak > 1
        assert (routed[config].max_qps_per_replica > option.max_qps_per_replica) == more
    cheapest = {
        name: min(o.usd_per_month or 0 for o in found.values())
        for name, found in (("none", none), ("blind", blind), ("routed", routed))
    }
    # Spread over four replicas, blind routing keeps a fifth of the hits: it saves little;
    # routing by prefix saves a quarter of the bill.
    assert cheapest["routed"] < 0.8 * cheapest["blind"] <= 0.8 * cheapest["none"]
    # The simulation checks the option at the hit rate it was sized with.
    first = next(iter(search(helper.planner, long_prompts(0.8, False), helper.prices).options))
    assert first.simulated_slo_met is not None


def test_routing_asked_for_in_the_intent_is_predicted_with_and_rendered(
    helper: Assistant,
) -> None:
    intent = DeploymentIntent.model_validate(
        {
            "use_case": "rag_qa",
            "traffic": {"steady_qps": 20, "peak_qps": 40},
            "priority": "cost",
            "engine": {"prefix_cache_hit_rate": 0.8},
            "available_gpus": [H100],
        }
    )
    spec = helper.specify(with_changes(intent, {"prefix_routing": True}))  # a what-if
    assert spec.prefix_routing
    chosen: Recommendation = helper.recommend(spec).options[0]
    assert chosen.option.prefix_cache_hit_rate == 0.8
    assert "with 80% of prompt tokens from the prefix cache" in chosen.rationale
    blind = helper.recommend(helper.specify(intent)).options[0]
    assert blind.option.replicas_for_peak > 1
    assert "prefix-aware routing (llm-d) would find it all" in blind.rationale
    plan = helper.deployment_plan(chosen, spec, "docs-qa", "ml")
    assert plan.serving.prefix_routing
    [llmisvc] = [m for m in render(plan) if m["kind"] == "LLMInferenceService"]
    assert llmisvc["spec"]["router"]["scheduler"] == {}
    classic = plan_for(
        chosen.option,
        spec.model_copy(update={"prefix_routing": False}),
        helper.planner.models[chosen.option.model_id],
        helper.planner.gpus[chosen.option.gpu_id],
        helper.gpu_k8s[chosen.option.gpu_id],
        "docs-qa",
        "ml",
    )
    assert (
        "router"
        not in next(m for m in render(classic) if m["kind"] == "LLMInferenceService")["spec"]
    )
