"""People's own words: the sentences of the issue that found the extractor's misses, the
question that follows a reading, and the corpus of users' sentences (tuned and measured
parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.intent import USERS_MEASURE, USERS_TUNE, load, score
from kb.catalog import assistant
from kb.db import session_scope
from planner.assistant import Assistant
from planner.conversation import DONT_KNOW, Conversation, Reply, respond
from planner.intent import BudgetConstraint, DeploymentIntent
from planner.words import SECONDS_PER, TOKENS_PER_PAGE, TOKENS_PER_WORD

VS_CODE = (
    "We need a coding assistant for our 300 developers inside VS Code, completions must feel "
    "instant, we only have A100s and L40S, keep it under $8k a month."
)
DEMO = (
    "We want an internal support chatbot for about 1,000 employees; answers should start "
    "within a second, and the budget is $15,000 a month."
)


@pytest.fixture(scope="module")
def helper(seeded_sqlite_url: str) -> Assistant:
    with session_scope(seeded_sqlite_url) as session:
        return assistant(session=session)


def talk(helper: Assistant, *messages: str) -> tuple[Conversation, Reply]:
    state = Conversation()
    for message in messages:
        state, reply = respond(
            state, message, helper.read, helper.use_cases, helper.vocabulary.gpu_vendors
        )
    return state, reply


def test_completions_inside_vs_code_are_ide_completion(helper: Assistant) -> None:
    state, reply = talk(helper, VS_CODE)
    intent = state.intent
    assert intent.use_case == "code_completion" and intent.concurrent_users == 300
    assert intent.priority == "latency"  # "must feel instant"
    assert intent.budget == BudgetConstraint(max_monthly_cost_usd=8000)
    assert intent.available_gpus == [
        "A100-PCIE-80GB",
        "A100-SXM-40GB",
        "A100-SXM-80GB",
        "L40S-PCIE-48GB",
    ]
    # Speed matters most and no target was said: the next question offers completion's own.
    assert [q.field for q in reply.questions] == ["latency"]
    usual = f"{helper.use_cases['code_completion'].ttft_p90_ms:.0f} ms"  # the template's
    assert f"{usual} is usual" in reply.questions[0].text
    assert f"under {usual}" in reply.questions[0].quick_answers
    # The user answered 200 ms and found nothing feasible: read as coding agents,
    # 67,800-token prompts. Read as IDE completion, the A100s serve it; $8k a month does not
    # pay for 300 developers at that speed, and the answer says what would.
    state, answered = talk(helper, VS_CODE, "200 ms")
    assert state.intent.target_ttft_p90_ms == 200 and answered.questions == []
    assert answered.specification.traffic.prompt_tokens_mean < 4000
    capped = helper.recommend(answered.specification)
    assert not capped.options and capped.relax[0].startswith("raise the budget to $")
    uncapped = VS_CODE.replace(", keep it under $8k a month", "")
    state, answered = talk(helper, uncapped, "200 ms")
    options = helper.recommend(answered.specification).options
    assert options and {o.option.gpu_id for o in options} <= set(intent.available_gpus)


def test_answers_that_start_within_a_second_are_a_ttft_target(helper: Assistant) -> None:
    state, reply = talk(helper, DEMO)
    assert state.intent.target_ttft_p90_ms == 1000
    assert state.intent.concurrent_users == 1000 and state.intent.use_case == "chatbot"
    assert "latency" not in [q.field for q in reply.questions]
    assert helper.recommend(reply.specification).options


def test_a_reading_that_could_be_two_use_cases_asks_which(helper: Assistant) -> None:
    state, reply = talk(helper, "a coding assistant for our developers")
    question = reply.questions[0]
    assert question.field == "use_case"
    code = {helper.use_cases[u].display_name for u in ("code_completion", "code_generation")}
    assert set(question.quick_answers[:2]) == code
    # Meanwhile the likeliest reading is planned, not nothing, and the question says which.
    planned = helper.use_cases[state.intent.use_case or ""].display_name
    assert planned == question.quick_answers[0] and f"I planned for {planned}" in question.text
    other = question.quick_answers[1]
    state, reply = talk(helper, "a coding assistant for our developers", other)
    assert helper.use_cases[state.intent.use_case or ""].display_name == other
    assert state.undecided == [] and "use_case" not in [q.field for q in reply.questions]
    # "I don't know" keeps the likeliest reading and does not ask again.
    state, reply = talk(helper, "a coding assistant for our developers", DONT_KNOW)
    assert helper.use_cases[state.intent.use_case or ""].display_name == planned
    assert "use_case" not in [q.field for q in reply.questions]


def test_a_clear_reading_is_not_asked_about(helper: Assistant) -> None:
    for words, use_case in (
        ("an autocomplete plugin for JetBrains", "code_completion"),
        ("an agent that fixes bugs and opens pull requests", "code_generation"),
        ("translate our support tickets from Japanese to English", "translation"),
    ):
        state, reply = talk(helper, words)
        assert state.intent.use_case == use_case, words
        assert "use_case" not in [q.field for q in reply.questions], words


def test_each_use_case_offers_its_own_latency_targets(helper: Assistant) -> None:
    """The latency question's quick answers sit around the use case's usual TTFT, and each
    one, pressed, sets that target."""
    for use_case, profile in helper.use_cases.items():
        known = DeploymentIntent(
            use_case=use_case,
            concurrent_users=100,
            budget=BudgetConstraint(max_monthly_cost_usd=10_000),
        )
        state = Conversation(intent=known)
        state, reply = respond(state, "ok", helper.read, helper.use_cases)
        [question] = reply.questions
        assert question.field == "latency" and profile.display_name in question.text
        answers = [a for a in question.quick_answers if a != DONT_KNOW]
        targets: list[float] = []
        for answer in answers:
            after, _ = respond(state, answer, helper.read, helper.use_cases)
            assert after.intent.target_ttft_p90_ms is not None, answer
            targets.append(after.intent.target_ttft_p90_ms)
        assert targets[1] == profile.ttft_p90_ms, (use_case, answers)
        assert targets[0] < targets[1] < targets[2], (use_case, answers)


def fields_below(part: Path, helper: Assistant, floor: float) -> tuple[dict[str, str], float]:
    """Fields checked at least five times and read right less often than `floor` on a
    corpus part, and the share of all checks right."""
    fields, _ = score(load(part), helper.read)
    low = {f: f"{r}/{n}" for f, (r, n) in fields.items() if n >= 5 and r / n < floor}
    return low, sum(r for r, _ in fields.values()) / sum(n for _, n in fields.values())


def test_the_tuned_part_stays_read(helper: Assistant) -> None:
    """A floor under what the rules were tuned to (96.6 % of checks; author R's e-mails are
    read at 86 %): a change that loses a family of sentences fails here, with the
    sentences."""
    assert len(load(USERS_TUNE)) >= 2000
    low, right = fields_below(USERS_TUNE, helper, 0.80)
    _, mistakes = score(load(USERS_TUNE), helper.read)
    assert right >= 0.96 and not low, f"{right:.3f} {low}\n" + "\n".join(mistakes)


def test_the_measured_part_stays_read(helper: Assistant) -> None:
    """Sentences the rules were never tuned on, a floor under what they read (92.1 % of
    checks since author Z: R's long e-mails are read at 74.5 %, X's dictation at 87 %).
    Fields only, never sentences: the part stays unseen."""
    assert len(load(USERS_MEASURE)) >= 1000
    low, right = fields_below(USERS_MEASURE, helper, 0.80)
    assert right >= 0.91, f"{right:.3f} {low}"


def test_the_measured_part_clears_the_judges_bar(helper: Assistant) -> None:
    """At least 92 % of the measured checks right (92.1 % on 1,540 sentences by sixteen
    authors): the bar the held-out sets outside the project are judged by."""
    _, right = fields_below(USERS_MEASURE, helper, 0.0)
    assert right >= 0.92, f"{right:.3f}"


@pytest.mark.xfail(strict=True, reason="issue 17's target, not met yet: see make bench")
def test_every_field_reads_right_on_the_measured_part(helper: Assistant) -> None:
    low, _ = fields_below(USERS_MEASURE, helper, 0.95)
    assert not low, low


def test_model_names_as_people_write_them(helper: Assistant) -> None:
    def named(words: str) -> tuple[list[str], list[str]]:
        intent = helper.read(words)
        return intent.preferred_models or [], intent.excluded_models or []

    llama_70b, _ = named("a chatbot, ideally on llama 70b")
    assert "meta-llama/Llama-3.3-70B-Instruct" in llama_70b
    assert "meta-llama/Llama-3.1-70B-Instruct" in llama_70b
    assert not [m for m in llama_70b if "Distill" in m or "8B" in m or "405B" in m]
    coders, _ = named("we'd like qwen coder for it")
    assert coders == ["Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen/Qwen2.5-Coder-7B-Instruct"]
    distills, _ = named("the deepseek distill would do")
    assert distills and all("Distill" in m for m in distills)
    fp8, _ = named("llama 3.3 70b in fp8 please")
    assert fp8 == ["RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"]
    # A list after a negation is ruled out as a whole; a maker only where it is ruled out.
    _, out = named("summaries of board packs: no mixtral, phi or gemma, and nothing from Meta")
    families = {m.split("/")[1].split("-")[0].lower() for m in out}
    assert {"mixtral", "phi", "gemma", "llama"} <= families
    assert named("answers from our Google Drive, with an OpenAI-compatible API") == ([], [])
    # "then" starts what is wanted again: "if that's not possible then X" wants X.
    wanted, refused = named("we'd love codestral; if that's not possible then qwen2.5 coder 7b")
    assert wanted == ["Qwen/Qwen2.5-Coder-7B-Instruct"] and refused == []
    # A size or variant after "or"/"and" is the same family and version; a number of
    # something else is not a version.
    wanted, refused = named("try qwen3 8b or 32b for the drafts, not gpt-oss 20b and 120b")
    assert {"Qwen/Qwen3-8B", "Qwen/Qwen3-32B"} <= set(wanted)
    assert not [m for m in wanted if "Qwen3-" not in m]
    assert refused == ["openai/gpt-oss-120b", "openai/gpt-oss-20b"]
    _, refused = named("for the ticket bot, anything but llama 4 scout or maverick")
    assert {m.split("/")[1].split("-")[2] for m in refused} == {"Scout", "Maverick"}
    wanted, _ = named("llama 3.3 70b and 4 engineers to run it")
    assert wanted and all("Llama-3.3-70B" in m for m in wanted)


def test_numbers_people_and_rates_in_any_words(helper: Assistant) -> None:
    intent = helper.read(
        "Slack bot for our 9k-strong workforce: a couple thousand questions a day, "
        "peaks of 40 a minute at 9am, answers should start within half a second, 2 grand a month"
    )
    assert intent.concurrent_users == 9000
    # A usual level beside a peak is the steady rate, not the expected one.
    assert intent.traffic and intent.traffic.steady_qps == pytest.approx(2000 / 86400, abs=0.005)
    assert intent.traffic.peak_qps == pytest.approx(40 / 60, abs=0.005)
    assert intent.target_ttft_p90_ms == 500
    assert intent.budget == BudgetConstraint(max_monthly_cost_usd=2000)
    form = helper.read(
        "Use case: RAG over manuals\nUsers: ~5k field technicians\nctx: 32k\nqps: 12"
    )
    assert form.use_case == "rag_qa" and form.concurrent_users == 5000
    assert form.max_context_tokens == 32000 and form.expected_qps == 12


def test_typos_are_read_as_the_words_meant() -> None:
    from planner.spelling import corrected

    assert corrected("sumarize calls for our studnets, accurcy above all") == (
        "summarize calls for our students, accuracy above all"
    )
    assert corrected("dont care abt latency") == "dont care about latency"
    # Real words one edit from a known word stay: a changed letter only in long words, and
    # plurals of known words are known.
    kept = "content must finish for 300 lawyers and translators in Polish, one patient chart"
    assert corrected(kept) == kept


def test_head_counts_corrections_and_who_vetoes_in_any_words(helper: Assistant) -> None:
    def users(words: str) -> int | None:
        return helper.read(words).concurrent_users

    # People counted after their noun, by the team, on a form's line, or corrected.
    assert users("completions for our firmware developers, all nineteen of them") == 19
    assert users("a drafting tool; only five of us write the grants") == 5
    assert users("the support team's about seventy, mostly on nights") == 70
    assert users("Tool: policy Q&A\nPeople: claims handlers, 140\nBudget: $3k/month") == 140
    assert users("roughly 60 dispatchers use it... or 65, I'd have to check. yes, 65") == 65
    assert users("about 2k seats, though finance says 2.4k, go with 2.4k") == 2400
    # A correction replaces the figure said last, whatever it counts, in its unit.
    said = helper.read("40 devs. First token within 80 ms... well, 100 is fine. Let's say 100.")
    assert said.concurrent_users == 40 and said.target_ttft_p90_ms == 100
    budget = helper.read("for 12 of us; maybe $300 a month? Hmm, call it 350.")
    assert budget.concurrent_users == 12 and budget.budget
    assert budget.budget.max_monthly_cost_usd == 350
    assert users("Seats: 250\nAnswers: a line or two") == 250  # no correction of 250
    # Decimals in words; a page count of output for a research group is read, not searched.
    uptime = helper.read("a chat assistant that must be up ninety-nine point nine percent")
    assert uptime.reliability_target == pytest.approx(0.999)
    # Words that contain an instruction's letters are no instruction ("extract assay").
    assay = helper.read("biotech: extract assay results from 40k lab reports for 12 chemists")
    assert assay.use_case == "batch_extraction" and assay.concurrent_users == 12
    assert helper.read("a chatbot for our 40 legal secretaries").concurrent_users == 40
    # A person's own form naming the use case is read, the rest of its line with it.
    form = helper.read("use_case=rag_qa; docs=lease agreements; users=70 agents; context=32k")
    assert form.use_case == "rag_qa" and form.concurrent_users == 70
    assert form.max_context_tokens == 32_000
    drafts = helper.read("our research lab drafts abstracts, about one page of output each")
    assert drafts.traffic and drafts.traffic.output_tokens_mean == 500
    # Languages as a list of codes; a legal team that vetoes is not the subject.
    intent = helper.read("help-centre answers in de/fr/it for our insurance customers")
    assert intent.languages == ["de", "fr", "it"] and intent.subject_matter == "insurance"
    vetoed = helper.read("chat assistant for our bank tellers; legal vetoed the gemma licence")
    assert vetoed.subject_matter == "finance"
    assert vetoed.excluded_models and all("gemma" in m for m in vetoed.excluded_models)
    skipped = helper.read("we tried mistral small last spring and it was meh, so skip that one")
    assert skipped.excluded_models and not skipped.preferred_models
    # A GPU count on a form is not a peak rate; a replica that must fit one GPU.
    form = helper.read("task: FAQ bot\nqps: 30\nmax gpus/replica: 4")
    assert form.gpu_constraints and form.gpu_constraints.max_gpus_per_replica == 4
    assert form.traffic is None or form.traffic.peak_qps is None
    one = helper.read("nightly extraction over lab reports, it must fit one GPU")
    assert one.gpu_constraints and one.gpu_constraints.max_gpus_per_replica == 1
    assert helper.read("code-complete for our 12 verilog engineers").use_case == "code_completion"


def test_latencies_prices_and_licences_in_any_order(helper: Assistant) -> None:
    both = helper.read("chat for 40 nurses, we need ttft under 300ms and tpot 20ms")
    assert both.target_ttft_p90_ms == 300 and both.target_tpot_p90_ms == 20
    assert helper.read("autocomplete, can't go over 120ms p90 ttft").target_ttft_p90_ms == 120
    form = helper.read("bot: FAQ\nlatency: 400 ms first token\nquality: highest priority")
    assert form.target_ttft_p90_ms == 400 and form.target_e2e_latency_p95_ms is None
    assert form.priority == "accuracy"
    peaks = helper.read("push notifications: ~3.6k/hour at launch peaks")
    assert peaks.traffic and peaks.traffic.peak_qps == 1 and peaks.expected_qps is None
    slow = helper.read("a tutor bot; first token within a second and a half is fine")
    assert slow.target_ttft_p90_ms == 1500
    assert (
        helper.read(
            "summaries; the whole answer can take a couple of minutes"
        ).target_e2e_latency_p95_ms
        == 120_000
    )
    price = helper.read("batch tagging, no more than a dollar per million tokens")
    assert price.budget and price.budget.cost_per_1k_tokens == pytest.approx(0.001)
    assert helper.read("Batch job: no gemma, open licences only.").licenses == ["permissive"]
    # A size said again replaces the first; "a 100k token window" is no price's unit.
    wider = helper.read("proofs; I'd have said 16k context, but some are long, so go with 48k")
    assert wider.max_context_tokens == 48_000
    assert helper.read("agents; a 100k token window, please").max_context_tokens == 100_000
    enough = helper.read("a 1M context would be nice, but honestly 200k is enough")
    assert enough.max_context_tokens == 200_000


def test_rates_said_as_the_busy_hours_and_the_rest_and_on_forms(helper: Assistant) -> None:
    rush = helper.read("lunchtime we'd see 40 req/s, the rest of the day it's more like 5")
    assert rush.traffic and (rush.traffic.peak_qps, rush.traffic.steady_qps) == (40, 5)
    assert rush.expected_qps is None
    season = helper.read("summer season it's 30 requests a second, off season 4")
    assert season.traffic and (season.traffic.peak_qps, season.traffic.steady_qps) == (30, 4)
    form = helper.read(
        "job: invoice extraction\nfiles/hour: 3600\nmax context: 16k\nprompt_avg = ~900"
    )
    assert form.expected_qps == 1 and form.max_context_tokens == 16_000
    assert form.traffic and form.traffic.peak_qps is None
    assert form.traffic.prompt_tokens_mean == 900


def test_what_is_read_hedges_and_changes_of_mind(helper: Assistant) -> None:
    # What a summary or translation is made from is its input, here and when named again.
    court = helper.read("summarise the ward's handover notes into a short list; two pages each")
    assert court.traffic and court.traffic.prompt_tokens_mean == 1000
    notes = helper.read("draft referral letters from the GP's notes. notes run ~3k tokens")
    assert notes.traffic and notes.traffic.prompt_tokens_mean == 3000
    assert notes.traffic.output_tokens_mean is None
    mails = helper.read("translation of our suppliers' emails into English, avg 400 tokens")
    assert mails.traffic and mails.traffic.prompt_tokens_mean == 400
    # ... but not what it is made into.
    into = helper.read("summarize support calls into notes of about 200 tokens")
    assert into.traffic and into.traffic.output_tokens_mean == 200
    memo = helper.read("turn each case file into a one-page memo")
    assert memo.traffic and memo.traffic.output_tokens_mean == 500
    # Retrieved pages per question are what a prompt holds; a searched collection is not.
    held = helper.read("we retrieve chunks from the wiki, about four pages per question")
    assert held.traffic and held.traffic.prompt_tokens_mean == 4 * TOKENS_PER_PAGE
    assert helper.read("we retrieve answers from 3,000 pages of manuals").traffic is None
    # A hedge set off by commas or dots does not cut its sentence; a correction of a latency
    # said with its unit replaces it.
    hedged = helper.read("fine if it replies within, I guess, a couple of minutes")
    assert hedged.target_e2e_latency_p95_ms == 120_000
    changed = helper.read("first token within a second? hmm, let's say half a second.")
    assert changed.target_ttft_p90_ms == 500
    # Names ruled out on a form, by who is against them, or replaced by what comes instead.
    form = helper.read("Use case: FAQ bot\nExcluded models: qwen, anything phi\nPriority: cost")
    assert form.excluded_models and form.preferred_models is None
    assert {"Qwen/Qwen3-8B", "microsoft/phi-4"} <= set(form.excluded_models)
    against = helper.read("our CTO is firmly against mixtral, so let's keep those out")
    assert against.excluded_models and against.preferred_models is None
    instead = helper.read("I'd have said gemma 2 27b, but that's big; maybe qwen3 8b instead?")
    assert instead.preferred_models == ["Qwen/Qwen3-8B", "Qwen/Qwen3-8B-FP8"]


def test_slang_halves_keyed_forms_and_weekly_people(helper: Assistant) -> None:
    grand = helper.read("a drafting tool for our buyers, we could pay a grand a month")
    assert grand.budget and grand.budget.max_monthly_cost_usd == 1000
    half = helper.read("release notes of a page and a half each")
    assert half.traffic and half.traffic.output_tokens_mean == 750
    form = helper.read("job: translation\nsource_lang: it\ntarget_langs: en, es")
    assert form.languages == ["en", "es", "it"]
    # People who use it each week are its users, not a rate of requests.
    weekly = helper.read("a booking chatbot; roughly five thousand candidates use it each week")
    assert weekly.concurrent_users == 5000 and weekly.expected_qps is None
    visits = helper.read("about 6,000 appointments a day get a summary")
    assert visits.concurrent_users is None
    assert visits.expected_qps == round(6_000 / SECONDS_PER["day"], 4)
    # A head count set off by dashes after its noun; rates "on a normal day" and on the rest.
    nurses = helper.read("our porters — about three hundred of them — want a bot")
    assert nurses.concurrent_users == 300
    days = helper.read("claims notes: 12k claims on a quiet day, 30k on a storm day")
    assert days.traffic and (days.traffic.steady_qps, days.traffic.peak_qps) == (
        round(12_000 / SECONDS_PER["day"], 4),
        round(30_000 / SECONDS_PER["day"], 4),
    )


def test_distills_by_base_and_size_forms_and_countries(helper: Assistant) -> None:
    qwen = "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B"
    assert helper.read("could we try the qwen 14b distill?").preferred_models == [qwen]
    picked = helper.read("one of the r1 distills, in particular the qwen 14b distill")
    assert picked.preferred_models == [qwen]
    based = helper.read("code review bot; no llama-based distills please")
    assert based.excluded_models == [
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    ]
    form = helper.read("prompts ~2k tokens\nanswer mean / p95: 150 / 400 tokens")
    assert form.traffic and (form.traffic.output_tokens_mean, form.traffic.output_tokens_p95) == (
        150,
        400,
    )
    short = helper.read("prompts around 300 tokens, answers probably four hundred")
    assert short.traffic and short.traffic.output_tokens_mean == 400
    # A country is no language: "offices in Germany" asks for none.
    assert helper.read("a chatbot for our 40 offices in Germany and Austria").languages is None
    # A price whose unit was named before it; chat shorthand for a language.
    priced = helper.read("billed per token, so $1.5/M is the most we'd pay")
    assert priced.budget and priced.budget.cost_per_1k_tokens == 0.0015
    assert helper.read("subtitles from spanish to engl").languages == ["en", "es"]
    # Whole documents in the prompt are a context need; a reason is no constraint.
    whole = helper.read(
        "the manuals run about three hundred pages and they want whole ones in the prompt"
    )
    assert whole.max_context_tokens == 300 * TOKENS_PER_PAGE and whole.traffic is None
    reason = helper.read("we'd like qwen3 8b since it fits on a single GPU")
    assert reason.gpu_constraints is None
    assert (
        helper.read("contnet genration for our shop's newsletters").use_case == "content_generation"
    )
    guessed = helper.read("not sure what cards we'll get, maybe L40S? finance decides in May")
    assert guessed.available_gpus is None
    assert helper.read("we have L40S cards").available_gpus


def test_size_caps_origins_and_lists_rule_models_and_gpus_out(helper: Assistant) -> None:
    sizes = {m.id: m.params_b for m in helper.vocabulary.model_names}
    capped = helper.read("an agent for our SREs; avoid anything above 150B parameters")
    assert capped.excluded_models == sorted(m for m, b in sizes.items() if b > 150)
    assert "meta-llama/Llama-3.1-405B-Instruct" in capped.excluded_models
    small = helper.read("ticket triage, nothing over 30b").excluded_models or []
    assert "meta-llama/Llama-3.3-70B-Instruct" in small
    assert "meta-llama/Llama-3.1-8B-Instruct" not in small
    # Where models come from is a rule about makers, not a language asked for.
    compliance = helper.read("chat for the bank's tellers, no Chinese models please")
    out = compliance.excluded_models or []
    assert {"Qwen/Qwen3-8B", "moonshotai/Kimi-K2.5", "zhipuai/GLM-5"} <= set(out)
    assert not [m for m in out if m.startswith(("meta-llama/", "google/"))]
    assert compliance.languages is None
    assert helper.read("translate our manuals into Chinese").languages == ["zh"]
    # A list ruled out goes on past a comma; "neither" rules out what it follows.
    listed = helper.read("Use case: summaries\nAvoid: A10G, L4")
    assert listed.excluded_gpus == ["A10G-PCIE-24GB", "L4-PCIE-24GB"]
    assert listed.available_gpus is None
    neither = helper.read("we can't use T4s, L4 neither")
    assert neither.available_gpus is None and neither.excluded_gpus
    assert "L4-PCIE-24GB" in neither.excluded_gpus


def test_rates_sizes_and_keyed_languages_read_by_their_own_words(helper: Assistant) -> None:
    # The words right after a rate are its own, before those left from the rate before.
    rush = helper.read("about 4 rps on a quiet day and 30 rps in the monday rush").traffic
    assert rush and (rush.steady_qps, rush.peak_qps) == (4, 30)
    typical = helper.read("peaks 40 qps, typical 10").traffic
    assert typical and (typical.steady_qps, typical.peak_qps) == (10, 40)
    monthly = helper.read("use case: chat\nusers: ~12k monthly active")
    assert monthly.concurrent_users == 12_000 and monthly.expected_qps is None
    assert helper.read("the answer can take up to a minute").target_e2e_latency_p95_ms == 60_000
    each = helper.read("a bot over our wiki with 4 pages of context per query")
    assert each.traffic and each.traffic.prompt_tokens_mean == 4 * TOKENS_PER_PAGE
    assert each.max_context_tokens is None
    window = helper.read("contracts run to 40 pages, so we need ~20k context")
    assert window.max_context_tokens == 20_000
    assert helper.read("Task: translation\nSource: de\nTarget: en, fr").languages == [
        "de",
        "en",
        "fr",
    ]
    assert helper.read("Task: chat\nTarget: 300 ms to first token").languages is None
    pair = helper.read("translation between korean and english for our docs")
    assert pair.use_case == "translation"
    long = helper.read("blog posts, each one a couple thousand words long").traffic
    assert long and long.output_tokens_mean == round(2000 * TOKENS_PER_WORD)


def test_lists_vendors_denials_and_sizes_in_peoples_phrasing(helper: Assistant) -> None:
    # A list that ends on its ruling-out is ruled out as a whole.
    refused = helper.read("summaries; mixtral and gemma are not allowed here")
    assert not refused.preferred_models and refused.excluded_models
    assert {m.split("/")[1].split("-")[0] for m in refused.excluded_models} >= {"Mixtral", "gemma"}
    vendors = helper.read("Use case: chat\nExcluded vendors: Intel, AMD")
    assert vendors.gpu_constraints and vendors.gpu_constraints.excluded_vendors == ["amd", "intel"]
    keyed = helper.read("Use case: chat\nGPU vendor: NVIDIA").gpu_constraints
    assert keyed and keyed.vendors == ["nvidia"]
    both = helper.read("a chatbot. no AMD, nvidia only").gpu_constraints
    assert both and (both.vendors, both.excluded_vendors) == (["nvidia"], ["amd"])
    kept = helper.read("a codegen bot, and keep it on nvidia please").gpu_constraints
    assert kept and kept.vendors == ["nvidia"]
    # What a use case is said not to be counts against it.
    fields = helper.read("we do NOT want summaries, pull dates and amounts into JSON")
    assert fields.use_case == "batch_extraction"
    assert helper.read("a quarter million monthly active users").concurrent_users == 250_000
    sizes = helper.read("prompts avg 2k tokens p95 7k").traffic
    assert sizes and (sizes.prompt_tokens_mean, sizes.prompt_tokens_p95) == (2000, 7000)
    assert helper.read("1st token in 150ms please").target_ttft_p90_ms == 150
    assert helper.read("support bot, we can't afford wrong answers").priority == "accuracy"
    assert helper.read("speed doesn't matter at all, what matters is cost").priority == "cost"
    assert helper.read("all we have is A100 80GB PCIe").available_gpus == ["A100-PCIE-80GB"]
    one_card = helper.read("our 40 devs ask it things; it must fit on a single GPU (a 4090)")
    assert one_card.concurrent_users == 40
    hourly = helper.read("about 90 claims in one hour").expected_qps
    assert hourly == pytest.approx(90 / SECONDS_PER["hour"])
    leases = helper.read("pull fields out of leases, each of them up to ten pages long")
    assert leases.max_context_tokens == 10 * TOKENS_PER_PAGE and leases.traffic is None


def test_long_messages_corrections_brands_and_what_a_summary_reads(helper: Assistant) -> None:
    # A correction after a comma, with words after it.
    fixed = helper.read("our help desk (about 80 agents - sorry, 95 since the merger) wants a bot")
    assert fixed.concurrent_users == 95
    assert helper.read("our 140-strong design group wants a chat bot").concurrent_users == 140
    # A vendor naming a GPU's brand rules out that GPU, not the vendor.
    branded = helper.read("summaries, but not on NVIDIA L40S")
    assert branded.excluded_gpus == ["L40S-PCIE-48GB"] and branded.gpu_constraints is None
    assert helper.read("a bot; people shouldn't be kept waiting").priority == "latency"
    assert helper.read("cost is the priority for this one").priority == "cost"
    # A whole answer's bound in the unit the first token's was said in.
    both = helper.read("first token within two seconds, the full function within fifteen")
    assert (both.target_ttft_p90_ms, both.target_e2e_latency_p95_ms) == (2000, 15_000)
    assert helper.read("rag on granite 3.1 8b for our analysts").concurrent_users is None
    named = helper.read("we want gpt oss 120, and exclude the mixtrals")
    assert named.preferred_models == ["openai/gpt-oss-120b"]
    assert named.excluded_models and all("Mixtral" in m for m in named.excluded_models)
    assert helper.read("we have a100s 40gb only").available_gpus == ["A100-SXM-40GB"]
    dropped = helper.read("we tried phi-4 last year - slow, never again. gemma 3 27b maybe")
    assert dropped.excluded_models == ["microsoft/phi-4"]
    # What a summary reads is its prompt, whatever the documents are called.
    reports = helper.read("summarise incident reports; the reports average 12 pages").traffic
    assert reports and reports.prompt_tokens_mean == 12 * TOKENS_PER_PAGE
    assert reports.output_tokens_mean is None


def test_admins_abbreviations_keyed_lists_and_multiples_of_a_rate(helper: Assistant) -> None:
    # Ticket shorthand: "excl", "prio", "lic", "eng", "reqs", "gpu/replica", "$/hr max".
    ticket = helper.read(
        "OPS-71: summ backend for ~450 eng. excl: phi-4, gemma-2-9b. cost prio. "
        "lic permissive. 1 gpu/replica. 32 concurrent reqs. $/hr max 60"
    )
    assert ticket.use_case == "summarization" and ticket.concurrent_users == 450
    assert ticket.excluded_models == ["google/gemma-2-9b-it", "microsoft/phi-4"]
    assert ticket.preferred_models is None and ticket.priority == "cost"
    assert ticket.licenses == ["permissive"]
    assert ticket.gpu_constraints and ticket.gpu_constraints.max_gpus_per_replica == 1
    assert ticket.traffic and ticket.traffic.concurrency == 32
    assert ticket.budget and ticket.budget.max_hourly_cost_usd == 60
    assert helper.read("rag; gpus/replica <= 4").gpu_constraints.max_gpus_per_replica == 4  # type: ignore[union-attr]
    assert helper.read("chat, any model but mistral").excluded_models
    keyed = helper.read("transl. vendors: nvidia, amd. langs de + fr")
    assert keyed.use_case == "translation" and keyed.languages == ["de", "fr"]
    assert keyed.gpu_constraints and keyed.gpu_constraints.vendors == ["amd", "nvidia"]
    price = helper.read("rag endpoint, price cap $0.002/1k tok").budget
    assert price and price.cost_per_1k_tokens == pytest.approx(0.002)
    assert price.max_monthly_cost_usd is None
    # A multiple of the rate just said is its peak; "at the very most" makes a rate the peak.
    busy = helper.read("about 4 requests per second most days, launches bring three times that")
    assert busy.traffic and (busy.traffic.steady_qps, busy.traffic.peak_qps) == (4, 12)
    assert helper.read("maybe 5 queries a second at the very most").traffic.peak_qps == 5  # type: ignore[union-attr]
    # A total per release is a volume, not a prompt; an in-flight count is no flight.
    volume = helper.read("we localize game dialogue, ~3M words per release")
    assert volume.traffic is None or volume.traffic.prompt_tokens_mean is None
    assert helper.read("reasoning, 12 in-flight reqs max").subject_matter is None
    # What an output is said to average is a length, not the code completion use case.
    assert helper.read("capacity review for the chatbot, mean completion ~220 tok").use_case == (
        "chatbot"
    )


def test_counts_said_around_their_period_and_groups_said_together(helper: Assistant) -> None:
    assert helper.read("copy tool for 3 dozen marketers").concurrent_users == 36
    both = helper.read("an assistant for 900 drivers and 40 dispatchers in the app")
    assert both.concurrent_users == 940
    # A period said before the count, and web pages counted as requests.
    nightly = helper.read("extraction: each night ~43.2k claim forms land").expected_qps
    assert nightly == pytest.approx(43_200 / SECONDS_PER["day"], rel=0.02)
    pages = helper.read("translate product pages into German, about 86.4k pages a day")
    assert pages.expected_qps == pytest.approx(86_400 / SECONDS_PER["day"], rel=0.02)
    assert pages.use_case == "translation"
    assert helper.read("discharge notes must go out English to Punjabi").use_case == "translation"


def test_continental_numbers_and_languages_named_in_their_own_words(helper: Assistant) -> None:
    # "1.200" is twelve hundred where a dot groups thousands; "2,5" a decimal comma.
    devs = helper.read(
        "we are needing code autocomplete for 1.200 devs, 2,5 seconds end to end max"
    )
    assert devs.concurrent_users == 1200 and devs.target_e2e_latency_p95_ms == 2500
    assert helper.read("rag, uptime 99,95% please").reliability_target == pytest.approx(0.9995)
    assert helper.read("price cap $0.002/1k tok").budget.cost_per_1k_tokens == 0.002  # type: ignore[union-attr]
    assert helper.read("a portal chatbot, around 3 lakh citizens").concurrent_users == 300_000
    assert helper.read("chatbot for our app, daily users about 8 ribu").concurrent_users == 8000
    spoken = helper.read("Übersetzung DE ↔ EN, and summaries in Português and Javanese")
    assert spoken.languages == ["de", "en", "jv", "pt"]
    assert helper.read("answers in bahasa indonesia, 150 dokter").concurrent_users == 150
    # "No Chinese cloud" is where it runs, not a language; "chat copilot" is a chat assistant.
    assert helper.read("diagnosis support, no Chinese cloud").languages is None
    assert helper.read("chat copilot inside our CRM").use_case == "chatbot"
    assert helper.read("Help tab → opens a chat for customers").use_case == "chatbot"
    assert helper.read("tests bot. Quality is more important than speed").priority == "accuracy"
    # A budget per user plans no total.
    per_user = helper.read("meeting search, cost per user has to stay under 5 cents a month")
    assert per_user.budget is None or per_user.budget.max_monthly_cost_usd is None
    agents = helper.read("coding agent, at peak 200 agent requests in flight at once")
    assert agents.traffic and agents.traffic.concurrency == 200


def test_emails_and_one_liners_round_the_clock_keyed_lines_and_whole_documents(
    helper: Assistant,
) -> None:
    form = helper.read(
        "Hi both,\n\nUse case: internal chat assistant for crew controllers\n"
        "Users: 260 crew controllers, 24/7\nLanguage: English only, but it must cope with jargon"
    )
    assert form.concurrent_users == 260 and form.languages == ["en"]
    assert helper.read("translate docs to 3 langs (de fr nl)").languages == ["de", "fr", "nl"]
    assert helper.read("sql tool for data scientists, ~70 of em").concurrent_users == 70
    assert helper.read("chem problem solver, our lab of 9").concurrent_users == 9
    assert helper.read("reasoning bot for codeforces problems, just for me").concurrent_users == 1
    assert helper.read("translator for our discord, fast pls").priority == "latency"
    assert helper.read("fim, nothing else matters but latency").priority == "latency"
    assert helper.read("please make cost the top priority").priority == "cost"
    assert helper.read("PR review bot. Cost is the driver here.").priority == "cost"
    whole = helper.read("extract fields from filings, ~80 pages each, need whole doc in ctx")
    assert whole.max_context_tokens == 80 * TOKENS_PER_PAGE
    agents = helper.read("coding agent; we'll run up to 32 agents in parallel")
    assert agents.traffic and agents.traffic.concurrency == 32 and agents.concurrent_users is None
    assert helper.read("renewal letters, about 80,000 renewals a month").concurrent_users is None
    assert helper.read("a tutor for about 180 graduates").concurrent_users == 180
    letters = helper.read("help drafting personalised thank-you letters to donors")
    assert letters.use_case == "content_generation"
    assert helper.read("docs chatbot that cites sources for our project").use_case == "rag_qa"


def test_bounds_said_per_request_or_as_the_longest_and_gpu_caps_said_as_a_fit(
    helper: Assistant,
) -> None:
    schema = helper.read("sql agent; contexts get big: up to 24k tokens per request")
    assert schema.max_context_tokens == 24_000
    assert schema.traffic is None or schema.traffic.prompt_tokens_mean is None
    assert helper.read("Longest request: about 40k tokens").max_context_tokens == 40_000
    per_question = helper.read("rag over manuals, 3 pages of context per question").traffic
    assert per_question and per_question.prompt_tokens_mean == 3 * TOKENS_PER_PAGE
    caps = helper.read("nothing larger than what fits in 4 GPUs").gpu_constraints
    assert caps and caps.max_gpus_per_replica == 4
    assert helper.read("Cost per token is the main constraint").priority == "cost"


def test_other_currencies_per_minute_rates_keyed_percentiles_and_native_scripts(
    helper: Assistant,
) -> None:
    # A budget in yuan, naira or rupees is no dollar figure and no rate of requests.
    for said in ("budget 15000 RMB a month", "we can spend ₦900000 monthly", "Rs. 40000/month"):
        money = helper.read(f"summaries of support calls, {said}")
        assert money.expected_qps is None and money.budget is None, said
    assert helper.read("search assistant, about 600 qpm").expected_qps == pytest.approx(10.0)
    assert helper.read("faq bot, 90 req/min at lunch").expected_qps == pytest.approx(1.5)
    keyed = helper.read("use_case: chat\nttft_p90: 800ms\ntpot_p90: 40ms\ne2e_p95: 12s")
    assert keyed.target_ttft_p90_ms == 800 and keyed.target_tpot_p90_ms == 40
    assert keyed.target_e2e_latency_p95_ms == 12_000
    native = helper.read("support replies in Polski, Русский and 日本語")
    assert native.languages == ["ja", "pl", "ru"]
    mix = helper.read("blog writer on mixtral 8x22b please, not the 8x7b")
    assert mix.excluded_models == ["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert mix.preferred_models == ["mistralai/Mixtral-8x22B-Instruct-v0.1"]
    assert helper.read("copy writer for our shoe shop").use_case == "content_generation"
    assert helper.read("hard-maths helper for the olympiad squad").use_case == "reasoning"
    books = helper.read("summarise entire 2000 page novels at once")
    assert books.max_context_tokens == 2000 * TOKENS_PER_PAGE
    assert helper.read("rag over our 2000 page manual").max_context_tokens is None


def test_requirement_lists_everyday_words_and_lists_that_run_into_brackets(
    helper: Assistant,
) -> None:
    suggestion = helper.read(
        "editor plugin; the first token of a completion must land within 150ms"
    )
    assert suggestion.target_ttft_p90_ms == 150 and suggestion.target_e2e_latency_p95_ms is None
    streamed = helper.read("tutor bot, answers should stream at 30+ tokens a second")
    assert streamed.target_tpot_p90_ms == pytest.approx(33.33)
    assert helper.read("faq bot, 2k+ questions an hour").expected_qps == pytest.approx(
        0.56, abs=0.01
    )
    # A family word before another product's number names that product, not the family.
    assert helper.read("autocomplete for 30 devs on 4 rtx 3090s").available_gpus is None
    assert helper.read("Reply to my note: we also need 99.9% uptime").languages is None
    form = helper.read("use case: digest of meeting minutes / users: 20 / priority: accuracy")
    assert form.priority == "accuracy" and form.concurrent_users == 20
    weekly = helper.read("Once a week about 70 thousand claim letters get sorted in a batch")
    assert weekly.expected_qps == pytest.approx(70_000 / 604_800, abs=0.005)
    for said, use_case in (
        ("something that fills in the rest of the line as our 12 analysts type", "code_completion"),
        ("a helper that writes and edits code for our devs and runs the tests", "code_generation"),
        ("a tool that tells me the main points of long board minutes", "summarization"),
        ("fill in our spreadsheets from the scanned receipts", "batch_extraction"),
        ("a model that thinks hard about chemistry puzzles", "reasoning"),
    ):
        assert helper.read(said).use_case == use_case, said
    per_copy = helper.read("two GPUs per copy at most, rag over the wiki").gpu_constraints
    assert per_copy and per_copy.max_gpus_per_replica == 2
    # A ruled-out list goes on through brackets and "incl.": the distills are out too.
    no_llama = helper.read("no Llama models (any size, incl. the Llama-based distills); a chatbot")
    assert no_llama.preferred_models is None
    assert "deepseek-ai/DeepSeek-R1-Distill-Llama-8B" in (no_llama.excluded_models or [])


def test_what_runs_today_is_no_target_and_hosted_models_are_not_catalog_ones(
    helper: Assistant,
) -> None:
    # GPT-4o, GPT-4 and "gpt 4o mini" are hosted models, no gpt-oss; "llama 3" is a version.
    for said in ("support bot, on gpt-4o mini today", "a GPT-4 based helper", "GPT 4o for now"):
        assert helper.read(said).preferred_models is None, said
    llama = helper.read("we'd like llama 3 70b for the chatbot").preferred_models or []
    assert "meta-llama/Llama-3.3-70B-Instruct" in llama
    assert "meta-llama/Llama-3.2-3B-Instruct" not in llama
    # A figure of the service being replaced is no target; the target said after it is.
    moving = helper.read(
        "completion in the IDE: ~800 ms to first token on the API today, want 120 ms"
    )
    assert moving.target_ttft_p90_ms == 120
    bound = helper.read("rag bot; the full answer must come within 3 s (it's ~7 s today)")
    assert bound.target_e2e_latency_p95_ms == 3000
    paid = helper.read("translation; azure bills us 22k a month, self-hosted target $9k a month")
    assert paid.expected_qps is None and paid.traffic is None
    assert paid.budget and paid.budget.max_monthly_cost_usd == 9000
    keyed = helper.read("- use: portal chatbot\n- residents: ~90k a month")
    assert keyed.concurrent_users == 90_000 and keyed.expected_qps is None
    assert helper.read("hr bot, data stays in our French datacenter").languages is None
    assert helper.read("we summarise sales call transcripts").subject_matter is None


def test_dictated_messages_read_as_if_typed(helper: Assistant) -> None:
    """A phone writes down what was said: punctuation said aloud, letters spelt out,
    accelerators and sizes said as numbers, corrections mid-sentence."""
    form = helper.read(
        "use case colon code completion new line seats colon four hundred new line"
        " max context colon thirty two K new line budget colon too thousand dollars a month"
    )
    assert form.use_case == "code_completion" and form.concurrent_users == 400
    assert form.max_context_tokens == 32_000
    assert form.budget and form.budget.max_monthly_cost_usd == 2000
    cards = helper.read("tab complete in v s code um we only have l forty s and a ten g cards")
    assert cards.available_gpus == ["A10G-PCIE-24GB", "L40S-PCIE-48GB"]
    assert helper.read("not on m i three hundred x please, chatbot").excluded_gpus == [
        "MI300X-OAM-192GB"
    ]
    gemma = helper.read("summaries um we'd like gemma three twelve b").preferred_models
    assert gemma == ["google/gemma-3-12b-it"]
    moe = helper.read("translation with quen three thirty b a three b").preferred_models
    assert moe == ["Qwen/Qwen3-30B-A3B"]
    assert helper.read("rag bot, context one twenty eight K").max_context_tokens == 128_000
    fixed = helper.read("faq bot um fifty requests a minute no wait make that eighty")
    assert fixed.expected_qps == pytest.approx(80 / 60, abs=0.01)
    assert helper.read("chat bot um up ninty nine point nine per cent").reliability_target == (
        pytest.approx(0.999)
    )
    # Typed text that looks like none of it stays as it was.
    assert helper.read("colon cancer screening chatbot for 300 nurses").concurrent_users == 300
    assert helper.read("we need a seven b model for chat").preferred_models is None


def test_markdown_from_a_ticket_reads_as_plain_text(helper: Assistant) -> None:
    ticket = helper.read(
        "## Ask: docs assistant\n**Use case:** answers from our runbooks\n**Engineers:** 640"
        "\n- [ ] **Do NOT use:** anything on AMD\n- **Context:** 32k"
    )
    assert ticket.use_case == "rag_qa" and ticket.concurrent_users == 640
    assert ticket.max_context_tokens == 32_000
    assert ticket.gpu_constraints and ticket.gpu_constraints.excluded_vendors == ["amd"]
    # "TL;DR:" labels the message's own summary, not a summarizer.
    assert helper.read("TL;DR: a chatbot for hotel guests").use_case == "chatbot"
