"""The multi-turn conversation: each message updates the intent; missing essentials become
questions (at most two a turn, the most valuable first); "I don't know" takes the
defaults and widens the options. Pure, so the CLI and the workflow share it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from planner.extract import likely_use_cases
from planner.intent import (
    DeploymentIntent,
    DeploymentSpecification,
    UseCaseProfile,
    changes,
    merged,
)
from planner.specification import specify
from planner.specs import Frozen

MAX_QUESTIONS = 2
DONT_KNOW = "I don't know"
UNSURE = re.compile(
    r"^\W*(?:i\s+)?(?:(?:really\s+)?(?:don'?t|do not|dunno)(?:\s+really)?\s+know|not sure|"
    r"no idea|unsure|no preference|whatever|you (?:decide|choose|pick)|(?:any|either) is fine|"
    r"doesn'?t matter|idk|pass|skip)\b",
    re.IGNORECASE,
)


class Question(Frozen):
    field: str
    """What the answer fills (a DeploymentIntent field, or `load` for users or QPS)."""
    text: str
    quick_answers: list[str]
    """Answers a user can pick; "I don't know" is always one of them."""


class Reply(Frozen):
    text: str
    questions: list[Question]
    changed: list[str]
    """Intent fields this turn changed (dotted names)."""
    specification: DeploymentSpecification
    wide: bool
    """The user left essentials open: show more options than usual."""


class Conversation(Frozen):
    intent: DeploymentIntent = DeploymentIntent()
    unknown: list[str] = []
    """Questions the user answered with "I don't know": defaults stand, not asked again."""
    asked: list[str] = []
    """The questions of the last reply, which an "I don't know" answers."""
    undecided: list[str] = []
    """Use cases the words could equally describe (the intent holds the likeliest): the
    next question asks which one is meant. Empty once the words are clear."""
    turns: int = 0


def _has_load(intent: DeploymentIntent) -> bool:
    t = intent.traffic
    return bool(
        intent.concurrent_users
        or intent.expected_qps
        or intent.target_throughput_rps
        or (t and (t.peak_qps or t.steady_qps or t.concurrency))
    )


def _questions(
    intent: DeploymentIntent,
    unknown: list[str],
    undecided: list[str],
    use_cases: Mapping[str, UseCaseProfile],
) -> list[Question]:
    """Missing essentials, most valuable first: what it does decides the SLO template and
    the models; the load decides the size; the budget and the latency only refine (the
    latency first when the person said speed matters most)."""
    load = Question(
        field="load",
        text="How many people will use it, or how many requests per second do you expect at "
        "the busiest time?",
        quick_answers=["100 users", "1,000 users", "10,000 users", "10 QPS", DONT_KNOW],
    )
    budget = Question(
        field="budget",
        text="Is there a monthly budget for the GPUs?",
        quick_answers=["$2,000 a month", "$10,000 a month", "$50,000 a month", DONT_KNOW],
    )
    latency = _latency_question(use_cases.get(intent.use_case or ""))
    refinements = [(intent.budget is None, budget), (_no_latency_target(intent), latency)]
    if intent.priority == "latency":
        refinements.reverse()
    candidates = [
        (intent.use_case is None or len(undecided) > 1, _use_case_question(undecided, use_cases)),
        (not _has_load(intent), load),
        *refinements,
    ]
    return [q for missing, q in candidates if missing and q.field not in unknown]


def _no_latency_target(intent: DeploymentIntent) -> bool:
    return intent.target_ttft_p90_ms is None and intent.target_e2e_latency_p95_ms is None


def _use_case_question(undecided: list[str], use_cases: Mapping[str, UseCaseProfile]) -> Question:
    """What it will do: among the readings the words allow, or among every use case."""
    if len(undecided) > 1:
        names = [use_cases[u].display_name for u in undecided]
        listed = ", ".join(names[:-1]) + " or " + names[-1]
        return Question(
            field="use_case",
            text=f"Which is it closest to: {listed}? I planned for {names[0]} for now.",
            quick_answers=[*names, DONT_KNOW],
        )
    return Question(
        field="use_case",
        text="What will it do? For example, chat with users, answer questions from your "
        "documents, complete code in the editor, summarize, translate, or extract fields in "
        "batches.",
        quick_answers=[u.display_name for u in use_cases.values()] + [DONT_KNOW],
    )


def _latency_question(profile: UseCaseProfile | None) -> Question:
    """How soon answers must start, offering targets around the use case's usual one (150 ms
    for code completion, seconds for batch work)."""
    if profile is None:
        return Question(
            field="latency",
            text="How quickly must answers start to appear (time to first token)?",
            quick_answers=["under 200 ms", "under 1 second", "within 5 seconds", DONT_KNOW],
        )
    usual = profile.ttft_p90_ms
    return Question(
        field="latency",
        text=f"How quickly must answers start to appear (time to first token)? For "
        f"{profile.display_name}, {_duration(usual)} is usual.",
        quick_answers=[
            f"under {_duration(usual / 2)}",
            f"under {_duration(usual)}",
            f"within {_duration(usual * 2)}",
            DONT_KNOW,
        ],
    )


def _duration(ms: float) -> str:
    """A round time people say: 75 ms, 500 ms, 1 second, 2.5 seconds, 60 seconds."""
    if ms < 1000:
        step = 25 if ms < 200 else 50
        return f"{max(step, round(ms / step) * step):.0f} ms"
    seconds = round(ms / 500) / 2
    return "1 second" if seconds == 1 else f"{seconds:g} seconds"


ANSWER_FRAMES = {"latency": "time to first token {}"}
"""How a short reply with a number reads as the answer to the question just asked: after "how
quickly must answers start?", "under 1 second" is a TTFT target, not an end-to-end one."""
SHORT_ANSWER_WORDS = 4


def _framed(message: str, asked: list[str]) -> str:
    words = message.split()
    if len(words) > SHORT_ANSWER_WORDS or not any(c.isdigit() for c in message):
        return message  # a sentence of its own says what it means
    for field in asked:
        if field in ANSWER_FRAMES:
            return ANSWER_FRAMES[field].format(message)
    return message


def respond(
    state: Conversation,
    message: str,
    understand: Callable[[str], DeploymentIntent],
    use_cases: Mapping[str, UseCaseProfile],
    gpu_vendors: Mapping[str, str] | None = None,
) -> tuple[Conversation, Reply]:
    """One turn: the new state and the reply. `understand` reads a message into an intent
    (the rules, or the rules with an LLM)."""
    unknown, undecided = list(state.unknown), list(state.undecided)
    if UNSURE.match(message.strip()):
        unknown += [field for field in state.asked if field not in unknown]
        intent = state.intent
        if "use_case" in state.asked:
            undecided = []  # the likeliest reading stands
    else:
        intent = merged(state.intent, understand(_framed(message, state.asked)))
        likely = likely_use_cases(message, use_cases)
        if likely:  # the words say what it does: as clearly as they say it
            undecided = likely if len(likely) > 1 else []
            if intent.use_case not in likely:
                undecided = []  # read otherwise (an LLM's reading, an intent given)
    changed = changes(state.intent, intent)
    specification = specify(intent, use_cases, gpu_vendors)
    questions = _questions(intent, unknown, undecided, use_cases)[:MAX_QUESTIONS]
    reply = Reply(
        text=_text(specification, use_cases, changed, unknown, questions),
        questions=questions,
        changed=changed,
        specification=specification,
        wide=bool(unknown),
    )
    new_state = Conversation(
        intent=intent,
        unknown=unknown,
        asked=[q.field for q in questions],
        undecided=undecided,
        turns=state.turns + 1,
    )
    return new_state, reply


def summary(spec: DeploymentSpecification, use_cases: Mapping[str, UseCaseProfile]) -> str:
    """The specification in two lines, defaults marked with an asterisk."""

    def mark(name: str) -> str:
        return "*" if name in spec.defaults else ""

    t, slo = spec.traffic, spec.slo
    users = f"{spec.concurrent_users:,} users, " if spec.concurrent_users else ""
    budget = (
        f"budget ${spec.constraints.max_monthly_cost_usd:,.0f}/month"
        if spec.constraints.max_monthly_cost_usd
        else "no budget cap"
    )
    gpus = ", ".join(spec.constraints.gpus) if spec.constraints.gpus else "any GPU"
    return (
        f"{use_cases[spec.use_case].display_name}{mark('use_case')}: {users}"
        f"{t.steady_qps:.2f} QPS steady{mark('traffic.steady_qps')}, "
        f"{t.peak_qps:.2f} at peak{mark('traffic.peak_qps')}; prompts ~{t.prompt_tokens_mean:,} "
        f"tokens{mark('traffic.prompt_tokens_mean')}, answers ~{t.output_tokens_mean:,}"
        f"{mark('traffic.output_tokens_mean')}.\n"
        f"TTFT p90 <= {slo.ttft_p90_ms:,.0f} ms{mark('slo.ttft_p90_ms')}, TPOT p90 <= "
        f"{slo.tpot_p90_ms:,.0f} ms{mark('slo.tpot_p90_ms')}, E2E p95 <= "
        f"{slo.e2e_p95_ms:,.0f} ms{mark('slo.e2e_p95_ms')}; {budget}; {gpus}; priority "
        f"{spec.priority}{mark('priority')}. (* = default)"
    )


def _text(
    spec: DeploymentSpecification,
    use_cases: Mapping[str, UseCaseProfile],
    changed: list[str],
    unknown: list[str],
    questions: list[Question],
) -> str:
    lines = []
    shown = [name for name in changed if name != "use_case_description"]
    if shown:
        lines.append("Updated: " + ", ".join(shown) + ".")
    elif unknown:
        lines.append("No problem: I'll use sensible defaults and show a wider set of options.")
    else:
        lines.append("Nothing new in that message for the specification.")
    lines.append(summary(spec, use_cases))
    lines.append(f"Load: {spec.traffic_formula}.")
    lines += [q.text for q in questions]
    return "\n".join(lines)
