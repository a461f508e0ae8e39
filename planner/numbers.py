# ruff: noqa: E501  (patterns read best one per line)
"""Numbers as people write them, read with their unit and the words around them: a budget,
a latency target, a rate of anything counted, a size in tokens, words or pages, a head
count, an availability. One rule per kind, tried in order (`RULES`); the first that fits a
number takes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from planner.quantities import Quantity, quantities
from planner.words import (
    CLAUSE,
    COUNTED,
    NOT_COUNTED,
    PEAK,
    PEOPLE_NOUN,
    SECONDS_PER,
    STEADY,
    TOKENS_PER_PAGE,
    TOKENS_PER_WORD,
)

PERIOD = r"(?P<period>second|sec|s|minute|min|m|hour|hr|h|day|d|night|week|wk|month|mo)s?\b"
RATE = re.compile(
    r"\s*(?:(?P<qps>qps|rps|req/s(?:ec)?|requests?/s(?:ec)?|queries/s)\b|"
    r"(?P<qpm>qpm|rpm|req/min|requests?/min|queries/min)\b|"
    rf"(?P<counted>{COUNTED})"
    rf"(?:(?:/|per\s|a\s|an\s|each\s|every\s|over\s+an?\s|in\s+(?:an?\s|one\s)?|within\s+an?\s"
    r"|on\s+an?\s+(?:[\w-]+\s+){0,2}?)\s*"
    rf"{PERIOD}"
    r"|(?P<daily>daily|hourly|weekly|monthly|nightly)\b"
    r"|every\s+(?P<every>[\w.]+)\s+(?P<unit>second|minute|hour)s?\b))"
)
"""A rate: a number, what it counts, and its period ("200 pull requests an hour", "200 qpm",
"40/min", "1.5M SKUs over a month", "one request every two seconds", "18k calls on a normal
day")."""
RATE_KEY = re.compile(
    r"\b(?:qps|rps|req/s|load|rate|throughput|traffic|volume)\s*[:=]\s*(?:~|about|around)?\s*$"
)
"""A form's field holding a rate in requests per second: "qps: 120"."""


def _clause(lower: str, q: Quantity) -> tuple[str, str]:
    """The words of the quantity's clause before and after it."""
    starts = [m.end() for m in CLAUSE.finditer(lower, 0, q.start)]
    begin = starts[-1] if starts else 0
    following = CLAUSE.search(lower, q.end)
    end = following.start() if following else len(lower)
    return lower[begin : q.start], lower[q.end : end]


PERIOD_WORDS = {"sec": "second", "s": "second", "min": "minute", "m": "minute", "hr": "hour",
                "h": "hour", "d": "day", "wk": "week", "mo": "month", "daily": "day",
                "hourly": "hour", "weekly": "week", "monthly": "month", "nightly": "night"}  # fmt: skip


PERIOD_BEFORE = re.compile(
    r"\b(?:every|each|per|once an?)\s+(?P<period>day|night|hour|week|month)\b[^.;!?\d]{0,25}$"
)
"""The period of a count said before it ("each night ~12k forms", "once a week about 60k")."""


def _period_seconds(word: str) -> float:
    word = word.lower()
    return float(SECONDS_PER.get(PERIOD_WORDS.get(word, word), 1))


def read_numbers(text: str, lower: str, values: dict[str, Any], models: Collection[str]) -> None:
    """Each number of the text, read by the first rule its unit and words fit, into
    `values` (dotted field names; "_..." keys are the rules' own memory); `models` are the
    catalog's model families."""
    previous_end = 0
    values["_text"] = lower
    # "summarise driver incident reports": what is summarised is read, not written, wherever
    # the text names it ("… from the patient's notes. notes avg 6k").
    values["_read"] = {
        m[0].removesuffix("s")  # "summarise articles … article avg 900 tokens"
        for m in OUTPUT_WORDS.finditer(lower)
        if INPUT_VERB.search(lower[: m.start()])
    }
    # A number right after a model's family word is part of its name ("llama 4", "gpt-oss 20b").
    families = "|".join(models) or "(?!)"
    values["_model_name"] = re.compile(rf"\b(?:{families})[\w.-]*(?:\s+\w+)?\s*-?\s*$")
    for q in quantities(text):
        before, after = _clause(lower, q)
        # The words since the previous number (in this clause) describe this one.
        near = before[-max(0, min(40, q.start - previous_end)) :] if q.start > previous_end else ""
        previous_end = q.end
        said = {k: v for k, v in values.items() if not k.startswith("_")}
        for rule in RULES:
            if rule(q, before, near, after, values):
                filled = [
                    k for k, v in values.items() if not k.startswith("_") and said.get(k) != v
                ]
                if filled and isinstance(values[filled[-1]], (int, float)) and q.value:
                    # What a correction replaces: this field, in the unit it was said in.
                    values["_last"] = (filled[-1], values[filled[-1]] / q.value)
                break
    # A steady rate stated next to a peak is the steady rate; alone, the expected rate.
    steady = values.pop("traffic.steady_qps", None)
    peak = values.get("traffic.peak_qps")
    if steady is None and peak is not None and values.get("expected_qps", peak) < peak:
        steady = values.pop("expected_qps")  # "about 3 req/s, peak 15": the usual level
    if steady is not None and peak is None and values.get("expected_qps", steady) > steady:
        # "9 to 11am maybe 25 req/s, the rest of the day more like 6": the other is the peak
        values["traffic.peak_qps"] = peak = values.pop("expected_qps")
    if steady is not None:
        if peak is not None:
            values["traffic.steady_qps"] = steady
        else:
            values.setdefault("expected_qps", steady)


Rule = Callable[[Quantity, str, str, str, dict[str, Any]], bool]
CORRECTED = re.compile(
    r"(?:sorry|actually|i mean|correction|make (?:it|that)|no wait|scratch that|rather|call it"
    r"|go with|let'?s say)"
    r"\W+(?:\w+\W+){0,2}$"
)
"""Words that replace the number said last with this one: "320 agents, no sorry, it's 410",
"32k context, but let's go with 64k", "a hundred dollars a month? Hmm, call it 120"."""
CORRECTED_AFTER = re.compile(r"\s*(?:now|actually|(?:is|would be|will) (?:enough|plenty|do))\b")
"""The same said after it: "410 now", "128k is enough"."""
MAYBE_CORRECTED = re.compile(
    r"(?:\b(?:well|yes)\W+(?:\w+\W+){0,2}|\bor\s+(?:maybe\s+|perhaps\s+)?)$"
)
"""Weaker words, a correction only to a figure close to the first: "45 managers... or 48"
(not "250 seats ... a line or two")."""
UNIT_NEXT = re.compile(
    r"\s*(?!(?:is|all|if|now|actually|would|will|then|and|or|please|tops|total|in total|since|"
    r"counting|including|because|after|with)\b)[a-z$%]"
)


def _corrected(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    """A bare number that corrects the one said last replaces it, in the same unit."""
    last = values.get("_last")
    if last is None or UNIT_NEXT.match(after) or values["_model_name"].search(near):
        return False
    field, scale = last
    said = values.get(field)
    if not isinstance(said, (int, float)) or not said:
        return False
    value = q.value * scale
    close = 0.5 <= value / said <= 2
    # The words just before it, across a comma: "about 120 agents - sorry, 140 since January".
    lookback = values["_text"][max(0, q.start - 30) : q.start]
    if not (
        CORRECTED.search(lookback)
        or CORRECTED_AFTER.match(after)
        or (close and MAYBE_CORRECTED.search(near))
    ):
        return False
    values[field] = round(value) if isinstance(said, int) else value
    return True


CURRENCY = r"eur|euros?|€|£|gbp|pounds?|chf|inr|rs\.?|rupees?|₹|jpy|yen|¥|rmb|cny|yuan|renminbi|r\$|brl|reais|ngn|naira|₦|cad|aud|sgd|kr|sek|nok|dkk"
"""Currencies other than the dollar, before or after an amount ("budget 20000 RMB monthly")."""
FOREIGN_MONEY = re.compile(rf"(?<![a-z])(?:{CURRENCY})\s*$")


def _money(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    # Just before it, across a clause's end: "Rs. 40000/month".
    said_before = values["_text"][max(0, q.start - 12) : q.start]
    if FOREIGN_MONEY.search(said_before) or re.match(rf"\s*(?:{CURRENCY})(?!\w)", after):
        return True  # a budget in another currency: not converted, not read as a rate
    if re.search(
        r"\b(?:bills?|billed|invoices?|charges?) (?:us|me)\s*(?:about|around|roughly|~)?\s*$", near
    ):
        return True  # "openai bills us 30k a month": what is paid today, no budget, no rate
    dollar = near.rstrip().endswith(("$", "usd", "us$")) or re.match(
        r"\s*(?:dollars?|usd|bucks?|\$)(?!\w)", after
    )
    if (
        not dollar
        and re.search(r"budget|spend|\bcap\b", near)
        and re.match(r"\s*(?:/|per\s|a\s)\s*(?:mo|month|quarter|year|yr)\b", after)
    ):
        dollar = True  # "budget 3k/mo": a budget with no currency is in dollars
    keyed = re.search(
        r"\$\s*/\s*(?P<p>hour|hr|h|month|mo)\b\s*(?:max\w*|cap|limit|budget|<=?|:)?\s*$", near
    )
    if keyed:  # "$/hr max 120": the unit named before the number
        hourly = keyed["p"] in {"hour", "hr", "h"}
        values["budget.max_hourly_cost_usd" if hourly else "budget.max_monthly_cost_usd"] = q.value
        return True
    grand = re.match(r"\s*grand\b", after)
    if grand:  # "2 grand a month"
        q, after, dollar = Quantity(q.value * 1000, q.start, q.end), after[grand.end() :], True
    cents = re.match(r"\s*(?:cents?|¢)", after)
    if cents:  # "30 cents per million tokens"
        q, after, dollar = Quantity(q.value / 100, q.start, q.end), after[cents.end() :], True
    if not dollar:
        return False
    if re.match(
        r"[^,;.]{0,20}\b(?:per|a|each) (?:user|seat|head|member|customer)\b", after
    ) or re.search(r"\b(?:per|each) (?:user|seat|head|member|customer)\b[^,;.]{0,30}$", near):
        return True  # "cost per user under 5 cents a month": no total to plan against
    per_tokens = re.match(
        r"[^,;]{0,25}?(?:/|per|a|for)\s*(?:(?P<n>1k|1,000|1000|thousand|one thousand|1m|million|one million|1,000,000|m)\s*)?(?:input |output )?tok(?:en)?s?\b",
        after,
    )
    if per_tokens is None and re.search(
        r"\bper (?:input |output )?tok(?:en)?s?\b|\btok(?:en)?s? (?:price|cost)",
        _sentence(values, q),
    ):
        # "priced per token: $3/M": the unit named before the price
        per_tokens = re.match(r"\s*/\s*(?P<n>1k|1m|m)\b", after)
    if per_tokens:
        scale = per_tokens["n"] or "1"
        per = 1e6 if scale in {"1m", "million", "one million", "1,000,000", "m"} else 1e3
        if scale == "1":
            per = 1.0
        values["budget.cost_per_1k_tokens"] = round(q.value * 1e3 / per, 9)
        return True
    period = re.match(
        r"\s*(?:dollars|usd|bucks|\$)?\s*(?:/|per|a|an|each|every)?\s*(?P<p>month|mo|monthly|quarter|quarterly|year|yr|annually|yearly|annual|hour|hr|h|hourly)\b",
        after,
    )
    if period is None:
        period = re.search(
            r"(?P<p>monthly|quarterly|annual|yearly|hourly)\b[^$]{0,25}$", near.rstrip("$ ")
        )
    kind = period["p"] if period else ""
    if kind in {"hour", "hr", "h", "hourly"}:
        values["budget.max_hourly_cost_usd"] = q.value
    elif kind in {"year", "yr", "annually", "yearly", "annual"}:
        values["budget.max_monthly_cost_usd"] = round(q.value / 12, 2)
    elif kind in {"quarter", "quarterly"}:
        values["budget.max_monthly_cost_usd"] = round(q.value / 3, 2)
    elif kind or re.search(r"budget|spend|cost|pay|afford|cap", before):
        values["budget.max_monthly_cost_usd"] = q.value
    elif "budget.max_monthly_cost_usd" in values:
        values["budget.max_monthly_cost_usd"] = q.value  # "$900/mo, well, make it $1,200"
    return True


TIME_UNIT = re.compile(
    r"\s*(?P<u>ms|msec|millis(?:econds?)?|milliseconds?|s|sec|secs|seconds?|minutes?|mins?)\b"
)


TPOT_WORDS = r"/\s*tok(?:en)?\b|per (?:output )?token|between tokens|inter.token|\btpot(?![a-z])|\bitl(?![a-z])|each token|a token"
TTFT_WORDS = r"(?:first|1st) (?:\w+ )?tok|\bttft(?![a-z])|start|begin|initial|time to first|first (?:word|byte|response)|kick off|show up|appear|latency to first"
WHOLE_WORDS = r"full|complete|wrap\w* up|turnaround|whole|entire|end.to.end|\be2e(?![a-z])|total|finish|done|overall"
E2E_WORDS = rf"{WHOLE_WORDS}|respon|answer|reply|return|generat|latency|within|\bback\b|results?\b|\bready\b"


LATENCY_TARGETS = ("target_tpot_p90_ms", "target_ttft_p90_ms", "target_e2e_latency_p95_ms")
TODAY = r"\b(?:today|currently|at the moment|right now|these days|at present|(?:on|with|via|from) (?:the |their )?(?:api|provider|hosted \w+))\b"
TODAY_BEFORE = re.compile(rf"{TODAY}[^.;,]{{0,14}}$")
TODAY_AFTER = re.compile(rf"[^.;,]{{0,30}}?{TODAY}")
"""What runs today, said next to a figure: "latency today is ~700ms", "(it's ~1.2 s today)",
"~950 ms to first token on the API" describe the service being replaced, not a target."""
TARGET = re.compile(
    r"\b(?:target|goal|aim(?:ing)? for|want|need|should be|must be|has to be)\b[^.;]{0,20}$"
)


def _latency(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    unit = TIME_UNIT.match(after)
    if unit is None:
        # A whole answer's bound in the unit of the latency said just before it: "first
        # token within two seconds, the full function within fifteen".
        last = values.get("_last")
        if (
            last
            and last[0] == "target_ttft_p90_ms"
            and NO_UNIT.match(after)
            and re.search(
                rf"(?:{E2E_WORDS})\w*\s+(?:\w+\s+){{0,2}}(?:within|in|under|inside)\s+$", near
            )
        ):
            values["target_e2e_latency_p95_ms"] = q.value * last[1]
            return True
        return False
    u = unit["u"]
    ms = q.value * (1 if u.startswith("m") and not u.startswith("min") else 1000)
    if u.startswith("min"):
        ms = q.value * 60_000
    if re.match(r"\s+and\s+a\s+half\b", after[unit.end() :]):
        ms *= 1.5  # "within a second and a half"
    # The words since the previous number, else those up to the next: "start within 700 ms
    # and be finished within 6 s", "ttft under 200ms and tpot 15ms", "150ms p90 ttft".
    following = re.split(r"(?<![a-z\d])\d", after[unit.end() :], maxsplit=1)[0]
    # A first token or a token's pace, named on either side, before a whole answer: "latency:
    # 500 ms first token"; the clause's start last: "... finish a 200-word blurb in 6 s".
    specific = ((TPOT_WORDS, "target_tpot_p90_ms"), (TTFT_WORDS, "target_ttft_p90_ms"))
    whole = ((E2E_WORDS, "target_e2e_latency_p95_ms"),)
    # A first token (or a token's pace) named earlier in the clause, with no whole answer
    # named since: "the first token of a suggestion has to arrive within 200ms".
    named = [(m.end(), field) for pattern, field in specific for m in re.finditer(pattern, before)]
    said = max(named, default=None)
    earlier = ((r"", said[1]),) if said and not re.search(WHOLE_WORDS, before[said[0] :]) else ()
    field = next(
        (
            field
            for words, kinds in (
                (near, specific),
                (following, specific),
                (before, earlier),
                (near, whole),
                (following, whole),
                (before, whole),
            )
            for pattern, field in kinds
            if re.search(pattern, words)
        ),
        None,
    )
    # Named by nothing but a correction of the latency said last ("start within half a
    # second? ... okay, let's say three quarters of a second") or a target after what runs
    # today ("~950 ms to first token on the API; target 450 ms").
    last = values.get("_last")
    if field is None and last and last[0] in LATENCY_TARGETS:
        field = last[0] if CORRECTED.search(near) or TARGET.search(near) else None
    if field is None:
        return False
    if TODAY_BEFORE.search(near) or TODAY_AFTER.match(following):
        values["_last"] = (field, ms / q.value)  # what runs now: no target, but its kind
        return True
    values[field] = ms
    return True


def _token_rate(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    per_second = r"\s*(?:/|per|a|each)\s*(?:s|sec|second)\b"
    if not (
        re.match(rf"\s*(?:tokens?|tok){per_second}", after)
        or (
            re.search(r"\btokens?\b", near) and re.match(per_second, after)
        )  # "tokens ... at 30 per second"
    ):
        return False
    if re.search(r"throughput|aggregate|total|overall|in total", before + after):
        return True  # a throughput figure, not a per-stream speed
    values["target_tpot_p90_ms"] = round(1000 / q.value, 2)
    return True


def _rate(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    match = RATE.match(after)
    if match and (
        re.match(rf"\s*(?:active\b|(?:{PEOPLE_NOUN}))", after[match.end() :])
        or re.match(rf"\W*(?:{PEOPLE_NOUN})\s*[:=]\s*~?\s*$", before)
    ):
        # "70k monthly active users", "users: 40k monthly active", "citizens: ~250k a month"
        # are people
        match = None
    if match is None or re.search(NOT_COUNTED, match["counted"] or ""):
        said_before = PERIOD_BEFORE.search(near)
        counted = re.match(rf"\s*{COUNTED}[a-z]+s\b", after)
        if said_before and counted and not re.search(NOT_COUNTED, counted[0]):
            # "each night ~12k claim forms land", "runs every hour over ~2k tickets"
            values["_rate_seconds"] = _period_seconds(said_before["period"])
            _assign_rate(round(q.value / values["_rate_seconds"], 4), near, after[:30], values)
            return True
        if re.match(r"\s*[a-z$%]", after):
            return False
        per = re.search(rf"\b[a-z]+\s*/\s*{PERIOD}\s*[:=]\s*~?\s*$", near)  # "docs/day: 120k"
        if RATE_KEY.search(near) or per:
            values["_rate_seconds"] = _period_seconds(per["period"]) if per else 1.0  # "qps: 120"
            _assign_rate(round(q.value / values["_rate_seconds"], 4), near, after[:30], values)
            return True
        return False
    if match["qps"]:
        seconds = 1.0
    elif match["qpm"]:
        seconds = 60.0
    elif match["daily"]:
        seconds = _period_seconds(match["daily"])
    elif match["every"]:
        every = quantities(match["every"])
        seconds = (every[0].value if every else 1.0) * _period_seconds(match["unit"])
    else:
        seconds = _period_seconds(match["period"])
    values["_rate_seconds"] = seconds
    _assign_rate(round(q.value / seconds, 4), near, after[match.end() : match.end() + 30], values)
    return True


def _assign_rate(rate: float, near: str, following: str, values: dict[str, Any]) -> None:
    """A request rate: a throughput target, the peak, the steady rate or the expected one,
    by the words right after it first (they are its own; those before it may still be the
    last rate's: "3 rps on a normal day and 15 rps in the evening rush"), then those before;
    a second, higher rate after a plain one is its peak ("40/min most of the day, 200/min
    at the opening bell")."""
    if re.search(r"throughput|sustain|handle at least|process at least", near + following):
        values["target_throughput_rps"] = rate
    elif re.match(rf"[^,.;]{{0,8}}(?:{STEADY})", following):
        values["traffic.steady_qps"] = rate
    elif re.match(PEAK_AFTER, following):
        values["traffic.peak_qps"] = rate
    elif re.search(STEADY, near):
        values["traffic.steady_qps"] = rate
    elif (
        re.search(PEAK, near)
        or rate > max(values.get("expected_qps", 0), values.get("traffic.steady_qps", 0)) > 0
    ):
        values["traffic.peak_qps"] = rate
    else:
        values["expected_qps"] = rate


PEAK_AFTER = (
    r"[^,.;]{0,12}(?:at|during|in|around) (?:the )?(?:\w+ )?(?:pe[ae]ks?|busiest|sales|rush|deadlines?)"
    r"|\s*pe[ae]k\b|[^,.;]{0,4}\bat (?:the )?(?:very )?most\b"
)
"""Words right after a rate that make it the peak: "15 rps in the evening rush"."""
NO_UNIT = re.compile(r"\s*(?:$|[,.;)]|(?:at|during|in|around|on|when|for|by|near|each|every)\b)")
"""What follows a bare number that takes the previous rate's unit: nothing, or when it
happens ("peaks of 60 in exam season"), not a unit of its own ("up to 100 pages")."""


def _multiple(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    """ "6 messages per second on a normal evening, and launch weekend could be ten times
    that": a multiple of the rate just said is its peak."""
    rate = values.get("expected_qps") or values.get("traffic.steady_qps")
    if rate is None or not re.match(r"\s*(?:times|x)\s+(?:that|this|as (?:much|many))\b", after):
        return False
    values["traffic.peak_qps"] = round(rate * q.value, 4)
    return True


def _bare_peak(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    """ "... 20 requests per second with peaks at 50": the unit carries over."""
    seconds = values.get("_rate_seconds")
    if re.search(
        r"\bgpus?\b|\bcards?\b|replica|context|\bctx\b|window|\btokens?\b|\bpages?\b|\bwords?\b",
        near,
    ):  # "max gpus/replica: 2", "max context: 8k", "pages per doc: up to 6": a count or a size
        return False
    if (
        seconds
        and re.search(
            r"(?:\bpeak\w*|spik\w*|burst\w*|jump\w*|\bup(?= to)) ?(?:at|of|to|around|near)?\s*(?:about|around|~)?\s*$",
            near,
        )
        and NO_UNIT.match(after)
    ) or (seconds and re.match(r"\s*(?:at\s+)?pe[ae]k\b", after)):  # "40 rps steady, 160 peak"
        values["traffic.peak_qps"] = round(q.value / seconds, 4)
        return True
    if seconds and (
        re.match(rf"\s*(?:{STEADY})", after) or (NO_UNIT.match(after) and re.search(STEADY, near))
    ):  # "2k qps at peak, maybe 600 normally", "quiet afternoons around 15", "off season 15"
        values["traffic.steady_qps"] = round(q.value / seconds, 4)
        return True
    if seconds and NO_UNIT.match(after) and re.search(PEAK, near):
        values["traffic.peak_qps"] = round(q.value / seconds, 4)  # "in summer it's more like 45"
        return True
    return False


def _people(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if re.search(r"\d\s*b$", values["_text"][q.start : q.end]):
        return False  # "granite 3.1 8b for analysts": billions of parameters, not people
    if TIME_UNIT.match(after) or re.match(
        r"\s*-?\s*(?:person|people|strong)\s+(?:startup|company|firm|shop|agency|business)", after
    ):
        return False  # a time; a "15-person startup" is who builds it, not who uses it
    if re.match(r"\s*-\s*strong\b", after):
        values["concurrent_users"] = int(q.value)  # "our 140-strong R&D group"
        return True
    if values["_model_name"].search(near):
        return False  # "llama 4", "gpt-oss 20b": a model's name
    text_before = values["_text"][: q.start]
    if re.match(r"\s*of us\b", after) or (
        re.search(rf"\b(?:{PEOPLE_NOUN})\b", text_before)
        and (
            re.match(r"\s*of (?:them|em|'em)\b", after)
            or re.search(rf"(?:{PEOPLE_NOUN})\s*\(\s*(?:~|about|around|roughly)?\s*$", near)
        )
    ):  # "four of us"; "our engineers, 80 of them"; "agents (~700)", not "a GPU (a 4090)"
        values["concurrent_users"] = int(q.value)
        return True
    if re.search(
        r"(?:^|\n)\s*(?:people|users|headcount|audience|team|who)\s*[:=][^\n:=]{0,40}$", text_before
    ):
        values["concurrent_users"] = int(q.value)  # a form's line: "People: planning officers, 75"
        return True
    if (
        re.match(
            rf"\s*(?:\+\s*)?(?:[a-z\-]+\s+|-){{0,3}}?(?:{PEOPLE_NOUN})\b",
            after,
        )
        and not re.match(
            r"\s*(?:concurrent|simultaneous|parallel)\s+(?:requests|sessions|streams|calls)", after
        )
        and int(q.value) >= 1
        and not re.match(r"\s*(?:\+\s*)?gpus?\b", after)
    ):
        joined = re.search(rf"(?:{PEOPLE_NOUN})\s+(?:and|plus|\+|&)\s+(?:about |around |~)?$", near)
        # "1,800 drivers and 60 dispatchers": both groups use it
        values["concurrent_users"] = int(q.value) + (
            values.get("concurrent_users", 0) if joined else 0
        )
        return True
    if re.search(
        rf"(?:{PEOPLE_NOUN}|user base|audience|team|class|cohort|group|lab|squad|crew)(?:'s)?\s*(?:of|is|are|:|=|—|–|around|about|totals?|numbers?)?\s*(?:about|around|roughly|~|approximately|nearly|over)?\s*$",
        near,
    ):
        values["concurrent_users"] = int(q.value)
        return True
    return False


def _in_flight(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if re.search(r"(?:concurrency|parallel \w+|concurrent \w+)\s*[:=]?\s*~?\s*$", near) or re.match(
        r"\s*(?:in.flight|at once|at any (?:time|moment))\b", after
    ):
        values["traffic.concurrency"] = int(q.value)
        return True
    if re.match(
        r"\s*(?:concurrent|simultaneous|parallel|in.flight)\s+(?:[a-z]+\s+)?(?:requests|reqs?|sessions|streams|calls|generations|conversations|queries)\b"
        r"|\s*(?:[a-z]+\s+)?(?:requests|reqs?|sessions|streams|calls|queries|agents|workers|jobs|runs)\s+(?:in.flight|at once|at the same time|concurrently|in parallel|simultaneously)",
        after,
    ):
        values["traffic.concurrency"] = int(q.value)
        return True
    return False


SIZE_CUE = (
    r"(?:p95|95th|percentile|(?<![a-z])pct|(?<![a-z])avg|average|(?<![a-z])mean|median|typically|outputs?|"
    r"answers?|replies|summary|summaries|inputs?|prompts?)\s*"
    r"(?:of|at|is|are|:|=|around|about|roughly|maybe|perhaps|probably|~|\s|"
    r"(?:small|short|tiny|long|big|large),)*$"  # "prompts are small, ~500"
)
"""Words right before a bare number that make it a size like the last one."""
CONTEXT_BEFORE = (
    r"context(?: window)?(?: length)? of (?:up to )?$|"
    r"(?:\bctx|context(?: window| length| needed| required| size)?|window)\s*[:=(]?\s*(?:~|about|up to)?\s*$|"
    r"(?:context|window)\b[^.]{0,30}?(?:has to be|must be|needs? to be|needs?|should be|of|is)\s+(?:at least\s+)?$"
)
"""Words before a context size given without a unit: "ctx: 8k", "the context has to be at
least 128k"."""
VOLUME = r"\s*(?:per|a|each|every)\s+(?:release|batch|run|project|launch|season|semester|term|cycle|sprint|campaign)\b"
"""What a count of words or tokens is the total of, not the length of one request."""
PER_REQUEST = r"\s*(?:per|a|each|for each)\s+(?:question|prompt|query|request|call)\b"
COLLECTION = r"\s*(?:[\w-]+\s+){0,2}?(?:manual|handbook|wiki|corpus|collection|library|knowledge base|catalog|archive)"


def _tokens(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    pages = re.match(r"\s*(?:-\s*)?pages?\b", after)
    if (
        pages
        and (
            # Thousands of pages are a collection, searched, unless read whole ("summarise
            # whole 1000 page books in one go").
            (q.value >= 1000 and not re.search(r"\b(?:whole|entire|full)\s*$", near))
            or re.match(COLLECTION, after[pages.end() :])
            or (
                re.search(r"retriev|chunks|\bsearch", _sentence(values, q) + after)
                # "the retrieved context is ten pages per question" is what a prompt holds
                and not re.match(PER_REQUEST, after[pages.end() :])
                and not re.search(r"\b(?:prompts?|context)\b", near)
            )
            or RATE.match(after[pages.end() :])
        )
    ):
        return True  # "our 2,000-page product manual" is searched, not read at once
    unit = re.match(
        r"\s*(?:-\s*)?(?:(?P<kind>input|output|prompt|completion|response)\s+)?"
        r"(?:(?P<tokens>tokens?|tok)|(?P<words>words?))\b",
        after,
    )
    if unit and (
        (re.search(r"(?:per|/|for)\s*$", near) and not values.get("_p95_next"))
        or (re.search(r"\ba\s*$", near) and q.value in (1e3, 1e6))
    ):
        return True  # "per 1k tokens", "$2 a million tokens": a price's unit, not a length
    if unit and (RATE.match(after[unit.end() :]) or re.match(VOLUME, after[unit.end() :])):
        return True  # "2M words a month", "~2M words per release": a volume, not a length
    context_word = re.match(
        r"\s*(?:tokens?\s+)?(?:(?:of\s+)?context|ctx)(?:\s+window)?\b|\s*(?:tokens?\s+)?window\b",
        after,
    )
    # A bare number carries the last size's unit ("p95 25k", "answers ~150", "170 out",
    # "output tokens mean 8k"), or the unit of the pair it opens ("mean 1,200 / p95 4,000
    # tokens").
    paired = re.match(
        r"\s*/\s*(?:p95\s*)?~?[\d.,]+k?\s*(?P<unit>tokens?|tok|words?|pages?)\b", after
    )
    carried = ("_output" in values or re.search(r"\btok(?:en)?s?\b", near)) and bool(
        re.search(SIZE_CUE, near)
        or re.match(r"\s*(?:in|out)\b(?! flight)", after)
        or re.match(r"\s*(?:(?:at|in|for)\s+)?(?:the\s+)?(?:p95|95th)(?!\s*[:=]?\s*~?\d)", after)
    )
    keyed = re.search(  # "Tokens: ~500 in / ~550 out", "prompt_avg = ~900"
        r"(?:\btokens?|\b(?:prompt|input|output|completion)s?[_ ](?:avg|mean|average|median|p95|len\w*|size|tokens))\s*[:=]\s*~?\s*$",
        near,
    )
    if not (pages or unit or context_word or carried or keyed or paired):
        if re.search(CONTEXT_BEFORE, near):
            values["max_context_tokens"] = int(q.value)
            return True
        return False
    said = (
        "pages"
        if pages
        else "words"
        if unit and unit["words"]
        else "tokens"
        if unit or context_word  # "~30k context" counts tokens, whatever was said before
        else (paired["unit"] if paired else values.get("_size_unit", "tokens"))
    )
    per = {"pages": TOKENS_PER_PAGE, "words": TOKENS_PER_WORD}.get(said.rstrip("s") + "s", 1)
    unit_match = pages or unit or context_word
    rest = after[unit_match.end() if unit_match else 0 :][:40]
    half = re.match(r"\s+and\s+a\s+half\b", rest)  # "a page and a half"
    tokens_ = round(q.value * (1.5 if half else 1) * per)
    values["_size_unit"] = said
    around = near + " | " + rest
    # "95 % of them are under N": the 95 is the previous number, just before `near`.
    p95 = (
        re.search(r"p95|95(?:th)?\s*%|95th|95 percent", before[-(len(near) + 6) :])
        # "p95" after the unit labels this number, unless a number of its own follows it
        # ("prompts avg 3k tokens p95 9k").
        or re.match(r"\s*(?:at|in|for)?\s*(?:the )?(?:p95|95th)(?!\s*[:=]?\s*~?\d)", rest)
    ) and not re.search(r"(?:mean|avg|average)\s*/\s*p95\s*:?\s*~?$", near)
    if values.pop("_p95_next", False):
        p95 = True  # the second of "mean / p95: 48 / 128"
    if re.search(r"(?:mean|avg|average)\s*/\s*p95\s*:?\s*~?$", near):
        values["_p95_next"] = True
    typical = re.search(
        r"averag|\bavg|\bmean|median|typical|usually|about|around|~|roughly|each", near
    ) and not re.search(r"(?:up to|at most|no more than)\s*$", near)  # "each up to 12 pages"
    is_max = (not typical or re.search(r"\blongest\b[^,.;]{0,20}$", near)) and re.search(
        r"up to|at most|max(?:imum)?|as (?:long|large|big) as|longest|no more than|can reach|can be|"
        r"reaching|context|window|limit|whole|entire|at least|fit",
        around,
    )  # "Longest request: about 40k tokens" is a bound, however rounded
    kind = unit["kind"] if unit else None
    direction = re.match(r"\s*(in|out)\b(?! flight)", rest)
    named = re.match(  # "1k tok prompts, 250 tok answers", "two pages of output"
        r"\s*(?:of\s+(?:the\s+)?)?(?:(?P<input>prompts?|inputs?|questions?)|answers?|outputs?|responses?|replies|summar\w*)\b",
        rest,
    )
    if kind:
        output = kind in {"output", "completion", "response"}
    elif named:
        output = not named["input"]
    elif direction:
        output = direction[1] == "out"
    elif (
        carried
        and not unit
        and not re.search(OUTPUT_WORDS, near)
        and not re.search(INPUT_WORDS, near)
    ):
        output = bool(values["_output"])
    else:
        output = _is_output(near, rest, _sentence(values, q), values)
    # Pages are a context need when the whole document is read at once ("up to 100 pages",
    # "the whole 80-page contract in one request"); otherwise a document's usual size.
    whole = re.search(
        r"(?:whole|entire|full|complete)\b[^.;]{0,40}(?:fit|context|\bctx\b|at once|in one|in a single|in the prompt)|in (?:one|a single) (?:request|go|pass)|at once|(?:has to|must) cover",
        values["_text"],
    )
    # "3 pages of context per question" is what each prompt holds, not a window to fit.
    each = re.match(rf"\s*(?:of\s+(?:context|input|text)\s*)?{PER_REQUEST}", rest)
    if each and not re.search(r"up to|at most|no more than|max(?:imum)?\b|longest", near):
        output = False  # ("up to 24k tokens per request" is a bound, not a size)
    elif (
        context_word
        or (pages and (is_max or whole) and not p95)
        or (is_max and not output and not p95)
    ):
        values["max_context_tokens"] = tokens_
        return True
    values["_output"] = output
    field = f"traffic.{'output' if output else 'prompt'}_tokens_{'p95' if p95 else 'mean'}"
    values[field] = tokens_
    return True


GENERATING = frozenset({"content_generation", "code_generation", "reasoning"})
READING = frozenset({"summarization", "batch_extraction", "translation"})
"""Use cases whose documents are what they read: "the reports average 20 pages" is a prompt."""
NAMED_OUTPUT = (
    r"output|answers?|responses?|replies|reply|completions?|generat|summar(?:y|ies)|writes?|"
    r"produces?|returns?|notes|\bout\b(?! of)|brief\b|briefs|briefing|captions?|labels?|recaps?"
)
"""Words that name an output whatever the use case reads."""
OUTPUT_WORDS = re.compile(
    NAMED_OUTPUT + r"|posts?|articles?|descriptions?|emails?|drafts?|copy|reports?|solutions?|"
    r"blurbs?|bulletins"
)
"""What is made: the outputs named, and the documents a use case that writes them writes."""
INPUT_WORDS = re.compile(
    r"prompts?|inputs?|questions?|requests?|documents?|docs\b|files?\b|context|transcripts?|"
    r"protocols|meetings?|recordings?|quer(?:y|ies)|statements?|judgments?|\bin\b(?= /)"
)
INPUT_VERB = re.compile(
    r"\b(?:summari[sz](?:e|es|ing)|condens(?:e|es|ing)|translat(?:e|es|ing)|classif(?:y|ies|ying)|"
    r"triag(?:e|es|ing)|review(?:s|ing)?|read(?:s|ing)?|translations? of|from)\s+"
    r"(?:(?!(?:into|to|as|for)\b)[~\w'.,-]+\s+){0,3}$"
)
"""A verb whose object is the input (or "from"), right before a noun that is otherwise
written: "summarise driver incident reports", "drafts from the patient's notes" (not
"summarize transcripts into notes")."""


def _sentence(values: dict[str, Any], q: Quantity) -> str:
    """The words of the number's sentence before it."""
    return re.split(r"[.;!?]\s|\n", values["_text"][: q.start])[-1]


def _is_output(near: str, rest: str, sentence: str, values: dict[str, Any]) -> bool:
    """Whether a size describes the output: what it is made into ("into a one-page memo"),
    else the nearest cue since the previous number (a noun the text reads from is an input
    wherever it is named), else the first right after it ("about ten pages each, so prompts
    are long"), else the nearest in the sentence so far ("outputs long, mean 6k tokens"),
    else the previous size's kind, else what a generator is asked for (its output)."""

    reading = values.get("_use_case") in READING

    def nearest(words: str) -> bool | None:
        cues = [
            (
                m.end(),
                m[0].removesuffix("s") not in values["_read"]
                and (not reading or bool(re.fullmatch(NAMED_OUTPUT, m[0]))),
            )
            for m in OUTPUT_WORDS.finditer(words)
        ]
        cues += [(m.end(), False) for m in INPUT_WORDS.finditer(words)]
        return max(cues)[1] if cues else None

    def first(words: str) -> bool | None:
        output, prompt = OUTPUT_WORDS.search(words), INPUT_WORDS.search(words)
        if output is None or prompt is None:
            return None if output is prompt else output is not None
        return output.start() < prompt.start()

    if re.search(r"\binto\s+(?:an?\s+|the\s+)?$", near):
        return True  # "turn each case file into a one-page memo"
    for found in (nearest(near), first(rest[:25]), nearest(sentence)):
        if found is not None:
            return found
    if "_output" in values:
        return bool(values["_output"])
    after = first(rest)
    if after is not None:
        return after
    return values.get("_use_case") in GENERATING


def _percent(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    """An availability: "99.9% uptime", "availability: 99.9", "keep it at 99.9%"; alone,
    a figure of nines is one too (no other target is written that way)."""
    percent = re.match(r"\s*(?:%|percent)", after)
    stated = re.search(
        r"uptime|avail|\bsla\b|\bslo\b|reliab|\bup\b|endpoint|service", near + after[:30]
    )
    alone = q.value >= 99 and (
        not re.search(r"[a-z]", near + after[1:12])
        or (percent and not re.match(r"\s*%\s*of", after))
    )
    nines = q.value >= 99 and q.value != int(q.value)  # 99.9, 99.95: never a count
    if not (percent or (nines and (stated or alone))):
        return False
    if (stated or alone) and 90 <= q.value < 100:
        values["reliability_target"] = q.value / 100
        return True
    return bool(percent)


def _quality(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if re.search(r"mmlu.?pro|quality score|benchmark score", near) and 0 < q.value <= 100:
        values["quality_threshold"] = q.value
        return True
    return False


def _gpu_count(q: Quantity, before: str, near: str, after: str, values: dict[str, Any]) -> bool:
    if re.search(r"gpus? ?(?:per|/) ?(?:replica|instance|pod|node|copy)\s*[:=]\s*$", near):
        values["gpu_constraints.max_gpus_per_replica"] = int(q.value)  # a form's field
        return True
    match = re.match(r"\s*(?:gpus?|cards|accelerators)\b", after)
    if match and re.search(
        r"per (?:replica|instance|pod|node|server|model|copy)|each",
        after[match.end() :][:30] + near,
    ):
        values["gpu_constraints.max_gpus_per_replica"] = int(q.value)
        return True
    return bool(match)


RULES: tuple[Rule, ...] = (
    _corrected,
    _multiple,
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
