# ruff: noqa: E501  (pattern tables read best one pattern per line)
"""Rule-based intent extraction: deterministic, offline, a few milliseconds a turn.

Numbers are read with the unit that follows them ("50 QPS", "$5k/month", "200 ms") and
the words around them ("to first token", "per token", "at peak"); names of models, GPUs,
languages and licences are matched against the catalog; the use case is told apart by
what the text describes, not by one keyword.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from planner.intent import DeploymentIntent, merged
from planner.quantities import Quantity, quantities
from planner.vocabulary import Mention, Vocabulary, tokens
from planner.words import (
    LANGUAGES,
    PEAK,
    PEOPLE,
    PRIORITY_CUES,
    SECONDS_PER,
    STEADY,
    SUBJECTS,
    TOKENS_PER_PAGE,
    USE_CASE_CUES,
)

NEGATION = re.compile(
    r"\b(?:no|not|never|without|except|excluding|exclude|avoid|avoiding|nothing|"
    r"don'?t|doesn'?t|won'?t|cannot|can'?t|rather than|instead of|other than|but not)\b"
)
ONLY = re.compile(r"\b(?:only|just|solely|exclusively)\b")
CLAUSE = re.compile(r"\.(?=\s|$)|[;!?\n]|,\s|\bbut\b|\bwhile\b|\band\s+(?=no\b|not\b)")
"""Where a clause ends: negations and units do not reach across it."""

UNIT_PERIOD = r"(?:/|\s*(?:per|a|an|each|every)\s+)\s*(?P<period>second|sec|s|minute|min|hour|hr|h|day|week)s?\b"
FIELD_NAMES = "|".join(
    # snake_case names only: "priority:" is English, "max_monthly_cost_usd" is not.
    sorted(
        {name for name in DeploymentIntent.model_fields if "_" in name}
        | {"max_monthly_cost_usd", "max_hourly_cost_usd", "cost_per_1k_tokens", "peak_qps"},
        key=len,
        reverse=True,
    )
)
INSTRUCTION = re.compile(
    # What addresses the assistant rather than describing the deployment.
    r"ignor\w* (?:all |the |any )?(?:previous|prior|above|earlier|preceding)|ignorez|ignoriere|"
    r"disregard|forget (?:the |all |everything )?(?:above|previous|prior|that)|new instructions?|"
    r"system (?:message|prompt|override)|note to the (?:ai|assistant|model|planner)|"
    r"hidden instruction|instruction for the|pretend|act as|you (?:must|should|will) (?:now )?"
    r"(?:set|add|choose|pick|use|approve|deploy|ignore)|\bset (?:the )?\w+(?: \w+)? to\b|"
    r"\badd (?:them|it|\w+)(?: \w+)* to (?:the )?(?:"
    + FIELD_NAMES
    + r")|approve|deploy (?:it |now|this)|"
    r"reveal|api key|secret|password|call the \w+ tool|treat \w+ as|"
    r"(?:" + FIELD_NAMES + r")\b\s*[:=]|\b(?:" + FIELD_NAMES + r")\b(?=.*\b(?:to|as|=)\b)",
    re.IGNORECASE,
)
MARKUP = re.compile(
    r"```.*?(?:```|$)|<\|im_start\|>.*?(?:<\|im_end\|>|$)|\[INST\].*?(?:\[/INST\]|$)|"
    r"<(?i:(system|assistant|tool_call|tool|instructions?))>.*?(?:</\1>|$)|</?(?i:user|system|assistant)>|"
    r"<!--.*?(?:-->|$)|\[([A-Z][A-Z _]+)\].*?(?:\[/\2\]|$)|"
    r"\{[^{}]*[\"':][^{}]*\}|^\s*(?i:assistant|system)\s*:.*?$",
    re.DOTALL | re.MULTILINE,
)


def honest_text(text: str) -> str:
    """The text without what tries to instruct the assistant: role markup, JSON or code
    payloads, and sentences (or asides) that address the assistant. Only the user's own
    description of the deployment is read for fields."""
    kept, previous = text, ""
    while kept != previous:  # nested payloads come off layer by layer
        previous, kept = kept, MARKUP.sub(" ", kept)
    kept = re.sub(
        r"\([^()]*\)", lambda m: " " if INSTRUCTION.search(m.group()) else m.group(), kept
    )
    sentences = re.split(r"(?<=[.!?])\s+|\n+", kept)
    return " ".join(s for s in sentences if not INSTRUCTION.search(s)).strip()


def extract(text: str, vocabulary: Vocabulary) -> DeploymentIntent:
    """The intent the words state; every other field stays null. Instructions aimed at the
    assistant are not words about the deployment (`honest_text`)."""
    text = honest_text(text)
    lower = text.lower()
    values: dict[str, Any] = {}
    _numbers(text, lower, values)
    _names(text, lower, vocabulary, values)
    _words(lower, values)
    use_case = _use_case(lower, vocabulary)
    if use_case is not None:
        values["use_case"] = use_case
    if values.get("use_case") and len(text) <= 500:
        values["use_case_description"] = text.strip() or None
    return _intent(values)


def _intent(flat: dict[str, Any]) -> DeploymentIntent:
    """The intent of the values read; a value the schema refuses (a 100 % uptime, a zero
    rate) is left out rather than failing the whole turn."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        if value is None or name.startswith("_"):  # "_..." is the rules' own memory
            continue
        if "." in name:
            group, field = name.split(".", 1)
            nested.setdefault(group, {})[field] = value
        else:
            nested[name] = value
    while True:
        try:
            return DeploymentIntent.model_validate(nested)
        except ValidationError as error:
            for problem in error.errors():
                where = nested
                *path, last = [str(part) for part in problem["loc"]]
                for part in path:
                    where = where.get(part, {})
                where.pop(last, None)


# ---- numbers -------------------------------------------------------------------------


def _clause(lower: str, q: Quantity) -> tuple[str, str]:
    """The words of the quantity's clause before and after it."""
    starts = [m.end() for m in CLAUSE.finditer(lower, 0, q.start)]
    begin = starts[-1] if starts else 0
    following = CLAUSE.search(lower, q.end)
    end = following.start() if following else len(lower)
    return lower[begin : q.start], lower[q.end : end]


def _period_seconds(word: str) -> float:
    word = word.lower()
    for name, seconds in SECONDS_PER.items():
        if name.startswith(word) or word == name[0] or word in {"hr", "sec", "min"}:
            if word == "hr" and name != "hour":
                continue
            if word == "sec" and name != "second":
                continue
            if word == "min" and name != "minute":
                continue
            return float(seconds)
    return 1.0


def _numbers(text: str, lower: str, values: dict[str, Any]) -> None:
    previous_end = 0
    for q in quantities(text):
        before, after = _clause(lower, q)
        # The words since the previous number (in this clause) describe this one.
        near = before[-max(0, min(40, q.start - previous_end)) :] if q.start > previous_end else ""
        previous_end = q.end
        for rule in RULES:
            if rule(q, before, near, after, values):
                break
    # A steady rate stated next to a peak is the steady rate; alone, the expected rate.
    steady = values.pop("traffic.steady_qps", None)
    if steady is not None:
        if values.get("traffic.peak_qps") is not None:
            values["traffic.steady_qps"] = steady
        else:
            values.setdefault("expected_qps", steady)


Rule = Callable[[Quantity, str, str, str, dict[str, Any]], bool]


def _money(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    dollar = near.rstrip().endswith(("$", "usd", "us$")) or re.match(
        r"\s*(?:dollars|usd|bucks)\b", after
    )
    if not dollar:
        return False
    per_tokens = re.match(
        r"[^,;]{0,25}?(?:/|per|a|for)\s*(?:(?P<n>1k|1,000|1000|thousand|one thousand|1m|million|one million|1,000,000|m)\s*)?(?:input |output )?tokens?\b",
        after,
    )
    if per_tokens:
        scale = per_tokens["n"] or "1"
        per = 1e6 if scale in {"1m", "million", "one million", "1,000,000", "m"} else 1e3
        if scale == "1":
            per = 1.0
        values["budget.cost_per_1k_tokens"] = round(q.value * 1e3 / per, 9)
        return True
    period = re.match(
        r"\s*(?:dollars|usd|bucks)?\s*(?:/|per|a|an|each|every)?\s*(?P<p>month|mo|monthly|year|yr|annually|yearly|annual|hour|hr|h|hourly)\b",
        after,
    )
    if period is None:
        period = re.search(r"(?P<p>monthly|annual|yearly|hourly)\b[^$]{0,25}$", near)
    kind = period["p"] if period else ""
    if kind in {"hour", "hr", "h", "hourly"}:
        values["budget.max_hourly_cost_usd"] = q.value
    elif kind in {"year", "yr", "annually", "yearly", "annual"}:
        values["budget.max_monthly_cost_usd"] = round(q.value / 12, 2)
    elif kind or re.search(r"budget|spend|cost|pay|afford|cap", before):
        values["budget.max_monthly_cost_usd"] = q.value
    return True


TIME_UNIT = re.compile(
    r"\s*(?P<u>ms|msec|millis(?:econds?)?|milliseconds?|s|sec|secs|seconds?|minutes?|mins?)\b"
)


def _latency(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    unit = TIME_UNIT.match(after)
    if unit is None:
        return False
    u = unit["u"]
    ms = q.value * (1 if u.startswith("m") and not u.startswith("min") else 1000)
    if u.startswith("min"):
        ms = q.value * 60_000
    context = before + " " + after[unit.end() :]
    if re.search(
        r"per (?:output )?token|between tokens|inter.token|\btpot\b|\bitl\b|each token|a token",
        context,
    ):
        values["target_tpot_p90_ms"] = ms
    elif re.search(
        r"first token|\bttft\b|start|begin|initial|time to first|first (?:word|byte|response)|kick off|show up|appear|latency to first",
        context,
    ):
        values["target_ttft_p90_ms"] = ms
    elif re.search(
        r"full|complete|whole|entire|end.to.end|\be2e\b|total|finish|done|overall|respon|answer|reply|return|generat|latency|within",
        context,
    ):
        values["target_e2e_latency_p95_ms"] = ms
    else:
        return False
    return True


def _token_rate(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if not re.match(r"\s*(?:tokens?|tok)\s*(?:/|per|a|each)\s*(?:s|sec|second)\b", after):
        return False
    if re.search(r"throughput|aggregate|total|overall|in total", before + after):
        return True  # a throughput figure, not a per-stream speed
    values["target_tpot_p90_ms"] = round(1000 / q.value, 2)
    return True


def _rate(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    match = re.match(
        r"\s*(?:(?P<qps>qps|rps|req/s|requests?/s(?:ec)?|queries/s)\b|"
        r"(?:(?:api |chat |user |inference )?(?:requests?|queries|calls|prompts|messages|"
        r"conversations|completions|questions|documents|docs|tickets|emails|invoices|"
        r"generations|summaries|translations)\s*)"
        rf"(?:{UNIT_PERIOD}|\s*(?P<daily>daily|hourly)\b|\s*in\s+an?\s+(?P<inp>hour|day|minute)))",
        after,
    )
    if match is None:
        return False
    if match["qps"]:
        seconds = 1.0
    elif match["daily"]:
        seconds = 86400.0 if match["daily"] == "daily" else 3600.0
    else:
        seconds = _period_seconds(match["period"] or match["inp"])
    values["_rate_seconds"] = seconds
    _assign_rate(round(q.value / seconds, 4), near, after[match.end() : match.end() + 30], values)
    return True


def _assign_rate(rate: float, near: str, following: str, values: dict[str, Any]) -> None:
    """A request rate: a throughput target, the peak, the steady rate or the expected one,
    by the words before it first, then those right after."""
    if re.search(r"throughput|sustain|handle at least|process at least", near + following):
        values["target_throughput_rps"] = rate
    elif re.search(STEADY, near):
        values["traffic.steady_qps"] = rate
    elif re.search(PEAK, near) or re.match(r"[^,.;]{0,12}(?:at|during) (?:the )?peaks?", following):
        values["traffic.peak_qps"] = rate
    else:
        values["expected_qps"] = rate


def _bare_peak(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    """ "... 20 requests per second with peaks at 50": the unit carries over."""
    seconds = values.get("_rate_seconds")
    if (
        seconds
        and re.search(r"peaks? (?:at|of|to|around|near)\s*(?:about|around|~)?\s*$", near)
        and not re.match(r"\s*[a-z%$]", after)
    ):
        values["traffic.peak_qps"] = round(q.value / seconds, 4)
        return True
    return False


def _people(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if (
        re.match(
            rf"\s*(?:\+\s*)?(?:[a-z\-]+\s+){{0,3}}?(?:{PEOPLE})\b",
            after,
        )
        and not re.match(
            r"\s*(?:concurrent|simultaneous|parallel)\s+(?:requests|sessions|streams|calls)", after
        )
        and int(q.value) >= 1
        and not re.match(r"\s*(?:\+\s*)?gpus?\b", after)
    ):
        values["concurrent_users"] = int(q.value)
        return True
    if re.search(
        rf"(?:{PEOPLE}|user base|audience|headcount|team)\s+(?:of|is|are|:|around|about|totals?|numbers?)?\s*(?:about|around|roughly|~|approximately|nearly|over)?\s*$",
        near,
    ):
        values["concurrent_users"] = int(q.value)
        return True
    return False


def _in_flight(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if re.match(
        r"\s*(?:concurrent|simultaneous|parallel|in.flight)\s+(?:requests|sessions|streams|calls|generations|conversations|queries)\b"
        r"|\s*(?:requests|sessions|streams|calls|queries)\s+(?:in flight|at once|at the same time|concurrently|in parallel|simultaneously)",
        after,
    ):
        values["traffic.concurrency"] = int(q.value)
        return True
    return False


def _tokens(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    pages = re.match(r"\s*pages?\b", after)
    unit = re.match(
        r"\s*(?:-\s*)?(?:(?P<kind>input|output|prompt|completion|response)\s+)?(?:tokens?|tok)\b",
        after,
    )
    if unit and re.search(r"(?:per|/|a|for)\s*$", near):
        return True  # "per 1k tokens": a price's unit, not a length
    context_word = re.match(r"\s*(?:tokens?\s+)?(?:of\s+)?context(?:\s+window)?\b", after)
    if not (pages or unit or context_word):
        if re.search(
            r"context(?: window)?(?: length)? of (?:up to )?$|context(?: window)? (?:up to|is) $",
            near,
        ):
            values["max_context_tokens"] = int(q.value)
            return True
        return False
    tokens_ = int(q.value * TOKENS_PER_PAGE) if pages else int(q.value)
    unit_match = pages or unit or context_word
    assert unit_match is not None
    rest = after[unit_match.end() :][:40]
    around = near + " | " + rest
    # "95 % of them are under N": the 95 is the previous number, just before `near`.
    p95 = re.search(r"p95|95(?:th)?\s*%|95th|95 percent", before[-(len(near) + 6) :]) or re.match(
        r"\s*(?:at|in|for)?\s*(?:the )?(?:p95|95th)", rest
    )
    is_max = re.search(
        r"up to|at most|max(?:imum)?|as (?:long|large|big) as|longest|no more than|can reach|reaching|context|window|limit",
        around,
    )
    kind = unit["kind"] if unit else None
    output = (
        kind in {"output", "completion", "response"} if kind else _is_output(near, rest, values)
    )
    if pages or context_word or (is_max and not output and not p95):
        values["max_context_tokens"] = tokens_
        return True
    values["_output"] = output
    if output:
        values["traffic.output_tokens_p95" if p95 else "traffic.output_tokens_mean"] = tokens_
    else:
        values["traffic.prompt_tokens_p95" if p95 else "traffic.prompt_tokens_mean"] = tokens_
    return True


OUTPUT_WORDS = re.compile(
    r"output|answers?|responses?|replies|reply|completions?|generat|summar(?:y|ies)|writes?|"
    r"produces?|returns?|notes|posts?|articles?|descriptions?|emails?|drafts?|copy|reports?"
)
INPUT_WORDS = re.compile(
    r"prompts?|inputs?|questions?|requests?|documents?|context|pages?|transcripts?|quer(?:y|ies)"
)


def _is_output(near: str, rest: str, values: dict[str, Any]) -> bool:
    """Whether a token count describes the output: the nearest cue before the number
    decides, else the previous count's kind ("outputs average 4,000 tokens and 95 % are
    under 16,000"), else the first cue after it."""
    cues = [(m.end(), True) for m in OUTPUT_WORDS.finditer(near)]
    cues += [(m.end(), False) for m in INPUT_WORDS.finditer(near)]
    if cues:
        return max(cues)[1]
    if "_output" in values:
        return bool(values["_output"])
    output, prompt = OUTPUT_WORDS.search(rest), INPUT_WORDS.search(rest)
    if output is None:
        return False
    return prompt is None or output.start() < prompt.start()


def _percent(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if not re.match(r"\s*(?:%|percent)", after):
        return False
    if (
        re.search(r"uptime|availab|\bsla\b|\bslo\b|reliab", near + after[:30])
        and 90 <= q.value < 100
    ):
        values["reliability_target"] = q.value / 100
        return True
    return False


def _quality(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if re.search(r"mmlu.?pro|quality score|benchmark score", near) and 0 < q.value <= 100:
        values["quality_threshold"] = q.value
        return True
    return False


def _gpu_count(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    match = re.match(r"\s*(?:gpus?|cards|accelerators)\b", after)
    if match and re.search(
        r"per (?:replica|instance|pod|node|server|model)|each", after[match.end() :][:30] + near
    ):
        values["gpu_constraints.max_gpus_per_replica"] = int(q.value)
        return True
    return bool(match)


RULES: tuple[Rule, ...] = (
    _money,
    _bare_peak,
    _token_rate,
    _latency,
    _rate,
    _in_flight,
    _percent,
    _quality,
    _gpu_count,
    _tokens,
    _people,
)


# ---- names ---------------------------------------------------------------------------


def _negated(words: list[str], mention: Mention, lower_words: str) -> bool:
    window = " ".join(words[max(0, mention.start - 5) : mention.start])
    # A negation before the name, not cancelled by a clause break in between.
    return bool(NEGATION.search(window))


def _names(text: str, lower: str, vocabulary: Vocabulary, values: dict[str, Any]) -> None:
    for clause in CLAUSE.split(lower):
        words = tokens(clause)
        for mention in vocabulary.find(words, vocabulary.models):
            field = "excluded_models" if _negated(words, mention, clause) else "preferred_models"
            values[field] = sorted(set(values.get(field) or ()) | set(mention.ids))
        for mention in vocabulary.find(words, vocabulary.gpus):
            field = "excluded_gpus" if _negated(words, mention, clause) else "available_gpus"
            values[field] = sorted(set(values.get(field) or ()) | set(mention.ids))
        vendors = re.findall(r"\b(nvidia|amd|intel)\b", clause)
        for vendor in vendors:
            window = clause[: clause.index(vendor)][-30:]
            if NEGATION.search(window):
                key = "gpu_constraints.excluded_vendors"
            elif ONLY.search(clause):
                key = "gpu_constraints.vendors"
            else:
                continue
            values[key] = sorted(set(values.get(key) or ()) | {vendor})


# ---- words ---------------------------------------------------------------------------


def _words(lower: str, values: dict[str, Any]) -> None:
    found = sorted({code for name, code in LANGUAGES.items() if re.search(rf"\b{name}\b", lower)})
    if found:
        values["languages"] = found
    licenses = set()
    if re.search(r"apache", lower):
        licenses.add("Apache-2.0")
    if re.search(r"\bmit\b(?:[- ]licen[cs]ed?)?", lower) and re.search(
        r"licen[cs]|\bmit\b or|or \bmit\b", lower
    ):
        licenses.add("MIT")
    if (
        re.search(
            r"open.source|permissive|osi.approved|open.weight\w* (?:and|with) (?:a )?permissive",
            lower,
        )
        and re.search(r"licen[cs]|model", lower)
        and not licenses
    ):
        licenses.add("permissive")
    if licenses:
        values["licenses"] = sorted(licenses)
    for subject, pattern in SUBJECTS.items():
        if re.search(rf"\b(?:{pattern})", lower):
            values["subject_matter"] = subject
            break
    for priority, pattern in PRIORITY_CUES.items():
        if re.search(pattern, lower):
            values["priority"] = priority
            break
    if re.search(
        r"very spiky|spiky|bursty|bursts?\b|spikes?\b|unpredictable (?:traffic|load)|sudden (?:peaks|surges)",
        lower,
    ):
        values["traffic.burstiness"] = "high"
    elif re.search(
        r"(?:steady|flat|constant|even|uniform|predictable) (?:traffic|load|stream|rate)|traffic is (?:steady|flat|constant|even)",
        lower,
    ) and not values.get("traffic.peak_qps"):
        values["traffic.burstiness"] = "low"
    elif re.search(
        r"some peaks|moderate(?:ly)? (?:peaks|spiky|bursty)|occasional (?:peaks|spikes)|daily peaks|business.hours peak",
        lower,
    ):
        values["traffic.burstiness"] = "medium"
    if re.search(
        r"(?:fit on|fits on|runs? on|must fit (?:on|in)) (?:a single|one) (?:gpu|card)|(?:one|a single|1) gpu (?:per|each) (?:replica|instance|pod|copy)|single.gpu (?:replicas?|instances?|deployment)",
        lower,
    ):
        values["gpu_constraints.max_gpus_per_replica"] = 1
    if re.search(r"three nines", lower):
        values["reliability_target"] = 0.999
    elif re.search(r"four nines", lower):
        values["reliability_target"] = 0.9999
    elif re.search(r"two nines", lower):
        values["reliability_target"] = 0.99


DENIED_BEFORE = re.compile(r"(?:\bnot(?: a| an| the| just)?|\bno|\bisn'?t|\bnever|n't)\s*$")
DENIED_AFTER = re.compile(r"^\w*\s+(?:nothing|isn'?t|is not|aren'?t)\b")


def _denied(lower: str, start: int, end: int) -> bool:
    """ "not a summarizer", "doesn't summarize", "summarizes nothing", "translation isn't"."""
    return bool(
        DENIED_BEFORE.search(lower[max(0, start - 12) : start]) or DENIED_AFTER.match(lower[end:])
    )


def _use_case(lower: str, vocabulary: Vocabulary) -> str | None:
    scores: dict[str, float] = {}
    for use_case, cues in USE_CASE_CUES.items():
        score = 0.0
        for pattern, weight in cues:
            match = re.search(pattern, lower)
            if match:
                score += -weight if _denied(lower, match.start(), match.end()) else weight
        if score > 0:
            scores[use_case] = score
    known = {u.id for u in vocabulary.use_cases} or set(USE_CASE_CUES)
    ranked = sorted(
        ((score, use_case) for use_case, score in scores.items() if use_case in known),
        key=lambda pair: (-pair[0], list(USE_CASE_CUES).index(pair[1])),
    )
    return ranked[0][1] if ranked else None


# ---- merging with an LLM's reading ----------------------------------------------------

DERIVED = (1.0, 1e3, 1e-3, 1 / 60, 1 / 3600, 1 / 86400, 1 / 100)
"""How a number in the text may legitimately be rescaled into a field: as written, k or
seconds to ms (and back), per minute/hour/day to per second, percent to a fraction."""


def combine(text: str, rules: DeploymentIntent, llm: DeploymentIntent | None) -> DeploymentIntent:
    """The rules' reading, completed by the LLM's where the rules had nothing.

    Every number the rules read stays as read. An LLM number survives only if the honest
    text holds it (or a plain rescaling of it); names (models, GPUs, languages, licences)
    come from the rules' catalog matching alone. So the LLM can fill gaps (a use case
    described in unusual words, a subject, a priority) but can neither drop nor invent a
    number, and instructions in the text cannot reach it.
    """
    if llm is None:
        return rules
    numbers = [q.value for q in quantities(honest_text(text))]

    def stated(value: float) -> bool:
        return any(
            abs(value - n * scale) <= 0.02 * max(abs(value), 1e-9)
            or (n and abs(value - 1000 / n) <= 0.02 * abs(value))
            for n in numbers
            for scale in DERIVED
        )

    def keep(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            return value if stated(float(value)) else None
        if isinstance(value, list):
            return None  # names are matched against the catalog by the rules alone
        if isinstance(value, dict):
            return {k: keep(v) for k, v in value.items()}
        return value

    checked = {name: keep(value) for name, value in llm.model_dump(exclude_none=True).items()}
    checked.pop("use_case_description", None)
    checked.pop("engine", None)  # engine settings come from the API or a what-if, not chat
    candidate = _intent(
        {
            f"{name}.{sub}" if isinstance(value, dict) else name: v
            for name, value in checked.items()
            for sub, v in (value.items() if isinstance(value, dict) else [(None, value)])
        }
    )
    return merged(candidate, rules)
