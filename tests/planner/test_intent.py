"""Understanding the user: rule extraction on the corpora, the specification with its
defaults, the conversation, recommendations, what-if and compare."""

from __future__ import annotations

import pytest

from bench.intent import INJECTIONS, load, score
from kb.catalog import assistant
from kb.db import session_scope
from planner.assistant import Assistant
from planner.conversation import DONT_KNOW, Conversation, respond
from planner.extract import combine, extract
from planner.intent import BudgetConstraint, DeploymentIntent, TrafficIntent
from planner.specification import SpecificationError, traffic_from_users
from planner.whatif import WhatIfError, compare, with_changes


@pytest.fixture(scope="module")
def helper(seeded_sqlite_url: str) -> Assistant:
    with session_scope(seeded_sqlite_url) as session:
        return assistant(session=session)


def test_rule_extractor_reads_every_field_of_the_corpus(helper: Assistant) -> None:
    entries = load()
    assert len(entries) >= 80
    fields, mistakes = score(entries, helper.read)
    low = {f: (right, n) for f, (right, n) in fields.items() if right / n < 0.95}
    assert not low, "\n".join(mistakes)
    # Every field of the schema that the corpus covers is scored several times.
    assert {"use_case", "concurrent_users", "expected_qps", "budget.max_monthly_cost_usd"} <= set(
        fields
    )


def test_instructions_in_the_text_change_no_field(helper: Assistant) -> None:
    entries = load(INJECTIONS)
    assert len(entries) >= 20
    _, mistakes = score(entries, helper.read)
    assert mistakes == []


def test_numbers_with_units_and_words(helper: Assistant) -> None:
    intent = helper.read(
        "A support chatbot for about 2,000 employees; 3 million requests a day; "
        "under 200 ms to first token; $5k/month; we only have A100s; no AMD; documents up "
        "to 100 pages; Spanish and English; must be Apache-licensed."
    )
    assert intent.use_case == "chatbot"
    assert intent.concurrent_users == 2000
    assert intent.expected_qps == pytest.approx(3e6 / 86400, rel=1e-3)
    assert intent.target_ttft_p90_ms == 200
    assert intent.budget == BudgetConstraint(max_monthly_cost_usd=5000)
    assert intent.available_gpus and all(g.startswith("A100") for g in intent.available_gpus)
    assert intent.gpu_constraints and intent.gpu_constraints.excluded_vendors == ["amd"]
    assert intent.max_context_tokens == 50_000
    assert intent.languages == ["en", "es"]
    assert intent.licenses == ["Apache-2.0"]


def test_nothing_said_leaves_everything_null(helper: Assistant) -> None:
    assert helper.read("hello there") == DeploymentIntent()


def test_an_llm_fills_gaps_but_cannot_invent_or_drop_numbers(helper: Assistant) -> None:
    text = "For our legal department (300, give or take), with answers that start in 500 ms."
    rules = extract(text, helper.vocabulary)
    llm = DeploymentIntent(
        use_case="rag_qa",
        subject_matter="legal",
        concurrent_users=300,  # stated in words the rules do not read: the LLM may fill it
        target_ttft_p90_ms=5000,  # contradicts the rules' 500: the rules' number stays
        expected_qps=42.0,  # invented: dropped
        preferred_models=["meta-llama/Llama-3.1-405B-Instruct"],  # names: rules only
        budget=BudgetConstraint(max_monthly_cost_usd=1e6),  # invented: dropped
    )
    result = combine(text, rules, llm)
    assert rules.concurrent_users is None and result.concurrent_users == 300
    assert rules.target_ttft_p90_ms == result.target_ttft_p90_ms == 500
    assert result.expected_qps is None and result.budget in (None, BudgetConstraint())
    assert result.preferred_models is None
    assert result.subject_matter == "legal" and result.use_case is not None
    assert combine(text, rules, None) == rules


def test_specification_fills_defaults_and_shows_the_traffic_formula(helper: Assistant) -> None:
    spec = helper.specify(DeploymentIntent(use_case="chatbot", concurrent_users=2000))
    template = helper.use_cases["chatbot"]
    steady, peak, formula = traffic_from_users(2000, template)
    assert spec.traffic.steady_qps == pytest.approx(steady)
    assert spec.traffic.peak_qps == pytest.approx(steady * template.peak_factor)
    assert "2,000 users" in spec.traffic_formula and f"{peak:.2f} QPS at peak" in formula
    assert spec.slo.ttft_p90_ms == template.ttft_p90_ms
    assert {"slo.ttft_p90_ms", "priority", "traffic.prompt_tokens_mean"} <= set(spec.defaults)
    assert "concurrent_users" not in spec.defaults and "use_case" not in spec.defaults
    given = helper.specify(
        DeploymentIntent(
            use_case="chatbot",
            expected_qps=10,
            target_ttft_p90_ms=300,
            traffic=TrafficIntent(peak_qps=25),
        )
    )
    assert given.traffic.peak_qps == 25 and given.slo.ttft_p90_ms == 300
    assert "slo.ttft_p90_ms" not in given.defaults
    with pytest.raises(SpecificationError, match="unknown use case 'poetry'"):
        helper.specify(DeploymentIntent(use_case="poetry"))


def test_vendor_and_gpu_constraints_reach_the_search(helper: Assistant) -> None:
    spec = helper.specify(helper.read("A chatbot for 500 people. NVIDIA only, no T4s."))
    assert "MI300X-OAM-192GB" in spec.constraints.excluded_gpus
    assert "T4-PCIE-16GB" in spec.constraints.excluded_gpus
    assert "H100-SXM-80GB" not in spec.constraints.excluded_gpus


def test_conversation_asks_the_most_valuable_questions_and_accepts_i_dont_know(
    helper: Assistant,
) -> None:
    def turn(state: Conversation, message: str) -> tuple[Conversation, object]:
        return respond(state, message, helper.read, helper.use_cases)

    state, first = respond(Conversation(), "hi", helper.read, helper.use_cases)
    assert [q.field for q in first.questions] == ["use_case", "load"]
    assert all(DONT_KNOW in q.quick_answers for q in first.questions)
    state, second = respond(state, "A chatbot for our support team", helper.read, helper.use_cases)
    assert "use_case" in second.changed
    assert [q.field for q in second.questions] == ["load", "budget"]
    state, third = respond(state, "about 2,000 employees", helper.read, helper.use_cases)
    assert third.changed == ["concurrent_users"]
    assert "2,000 users" in third.text and "Updated: concurrent_users" in third.text
    assert [q.field for q in third.questions] == ["budget", "latency"]
    state, fourth = respond(state, "I don't know", helper.read, helper.use_cases)
    assert fourth.questions == [] and fourth.wide
    assert "sensible defaults" in fourth.text
    assert state.intent.concurrent_users == 2000 and state.turns == 4
    # A later number replaces the earlier one; the rest of the intent stays.
    state, fifth = respond(state, "actually 5k users", helper.read, helper.use_cases)
    assert fifth.changed == ["concurrent_users"] and state.intent.use_case == "chatbot"
    assert fifth.specification.traffic.peak_qps > third.specification.traffic.peak_qps


def test_every_quick_answer_answers_its_question(helper: Assistant) -> None:
    """A user who presses a quick answer sees that question settled, never "nothing new"."""
    asked_all = Conversation()
    state, reply = respond(asked_all, "hi", helper.read, helper.use_cases)
    pending = list(reply.questions)
    seen: set[str] = set()
    while pending:
        question = pending.pop(0)
        seen.add(question.field)
        for answer in question.quick_answers:
            if answer == DONT_KNOW:
                continue
            after, answered = respond(state, answer, helper.read, helper.use_cases)
            assert question.field not in after.asked, (question.field, answer)
            assert answered.changed, (question.field, answer)
            if question.field == "latency":
                assert after.intent.target_ttft_p90_ms is not None, answer
        state, reply = respond(state, question.quick_answers[0], helper.read, helper.use_cases)
        pending += [q for q in reply.questions if q.field not in seen and q not in pending]
    assert seen == {"use_case", "load", "budget", "latency"}
    # A sentence keeps its own meaning: an end-to-end target stays one.
    latency_asked = Conversation(asked=["latency"])
    state, _ = respond(
        latency_asked, "whole answers within 5 seconds end to end", helper.read, helper.use_cases
    )
    assert state.intent.target_ttft_p90_ms is None


def test_recommendations_explain_cost_slos_and_sources(helper: Assistant) -> None:
    spec = helper.specify(
        helper.read("A chatbot for 2,000 employees, first token under 500 ms, $20k a month.")
    )
    result = helper.recommend(spec)
    assert 1 <= len(result.options) <= 3 and result.feasible > len(result.options)
    assert len({r.option.model_id for r in result.options}) == len(result.options)
    for r in result.options:
        assert r.option.usd_per_month is not None and r.option.usd_per_month <= 20_000
        assert all(margin >= 0 for margin in r.slo_margin.values())
        assert "$" in r.rationale and "margin" in r.rationale
        assert "modelled from measured vLLM runs (median error" in r.rationale
    cheapest = helper.recommend(spec.model_copy(update={"priority": "cost"}))
    costs = [r.option.usd_per_month or 0 for r in cheapest.options]
    assert costs[0] == min(costs)


def test_a_named_model_left_out_is_explained(helper: Assistant) -> None:
    spec = helper.specify(
        helper.read("A chatbot for 1,000 users on L4 GPUs only; we'd like Llama 3.1 405B.")
    )
    result = helper.recommend(spec)
    left = {item.name: item.reason for item in result.left_out}
    assert "meta-llama/Llama-3.1-405B-Instruct" in left
    assert left["meta-llama/Llama-3.1-405B-Instruct"]


def test_nothing_feasible_says_what_to_relax(helper: Assistant) -> None:
    spec = helper.specify(
        helper.read("A chatbot for 50,000 employees with a budget of $100 a month.")
    )
    result = helper.recommend(spec)
    assert result.options == []
    assert any(advice.startswith("raise the budget to $") for advice in result.relax)


def test_what_if_changes_and_compare(helper: Assistant) -> None:
    base = helper.read("A chatbot for 2,000 employees, $50k a month.")
    faster = with_changes(base, {"target_ttft_p90_ms": 150, "traffic.peak_qps": 40})
    assert faster.target_ttft_p90_ms == 150 and faster.traffic and faster.traffic.peak_qps == 40
    assert base.target_ttft_p90_ms is None  # the original is untouched
    pinned = with_changes(base, {"model": "Qwen/Qwen3-8B", "gpu": ["H100-SXM-80GB"]})
    rows = compare(
        [
            ("base", helper.recommend(helper.specify(base))),
            ("pinned", helper.recommend(helper.specify(pinned))),
        ]
    )
    assert rows[1].model == "Qwen/Qwen3-8B" and rows[1].gpus and "H100-SXM-80GB" in rows[1].gpus
    assert rows[0].differences == [] and rows[1].differences
    with pytest.raises(WhatIfError, match="unknown field 'target_ttft'"):
        with_changes(base, {"target_ttft": 100})
    with pytest.raises(WhatIfError, match="target_ttft_p90_ms"):
        with_changes(base, {"target_ttft_p90_ms": -5})


def test_only_models_the_admins_approved_are_recommended(helper: Assistant) -> None:
    approved = frozenset({"Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct"})
    restricted = Assistant(
        planner=helper.planner,
        vocabulary=helper.vocabulary,
        use_cases=helper.use_cases,
        cards=helper.cards,
        prices=helper.prices,
        approved_models=approved,
    )
    spec = restricted.specify(restricted.read("A chatbot for 500 people; we'd like Phi-4."))
    result = restricted.recommend(spec)
    assert result.options and {r.option.model_id for r in result.options} <= approved
    left = {item.name: item.reason for item in result.left_out}
    assert "approved-models list" in left["microsoft/phi-4"]


def test_an_availability_target_keeps_a_spare_replica(helper: Assistant) -> None:
    plain = helper.recommend(helper.specify(helper.read("A chatbot for 200 people.")))
    assert any(r.option.replicas_for_peak == 1 for r in plain.options)
    spare = helper.recommend(helper.specify(helper.read("A chatbot for 200 people, 99.9% uptime.")))
    assert spare.options and all(r.option.min_replicas >= 2 for r in spare.options)
    assert "at least 2 replicas for 99.90% availability" in spare.options[0].rationale
