# ruff: noqa: E501  (pattern tables read best one pattern per line)
"""Rule-based intent extraction: deterministic, offline, a few milliseconds a turn.

The text loses what addresses the assistant (`honest_text`) and its typos
(`planner.spelling`); numbers are read with their unit and the words around them
(`planner.numbers`); names of models, GPUs, languages and licences are matched against
the catalog; what matters most and the use case are told apart by what the text
describes, not by one keyword. The tables of words live in `planner.words`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from pydantic import ValidationError

from planner.dictation import written
from planner.intent import DeploymentIntent, merged
from planner.numbers import read_numbers
from planner.quantities import quantities
from planner.spelling import corrected
from planner.vocabulary import SIZE, Mention, Vocabulary, name_words, tokens
from planner.words import (
    CLAUSE,
    CODE_ALIASES,
    GATEKEEPERS,
    HEDGE,
    IRRELEVANT,
    LANGUAGE_CODE_LIST,
    LANGUAGE_NAMES,
    LANGUAGES,
    PRIORITY_CUES,
    SUBJECTS,
    USE_CASE_CUES,
)

KNOWN_CODES = frozenset(LANGUAGES.values())
MARKDOWN = re.compile(
    r"\*\*|__|^#{1,6}[ \t]*|(?<=^- )\[[ xX]\][ \t]*|(?<=^\* )\[[ xX]\][ \t]*", re.M
)
"""Markdown's marks, as a ticket or a Notion page has them ("**Users:** 3,500", "## Request",
"- [ ] no AMD"): the words between are read as plain text."""
LANGUAGE_MENTION = re.compile(
    # "Chinese models" are where models come from, and "our German datacenter" where the
    # service runs, not a language either speaks.
    rf"(?<!plain )(?<!plain-)\b(?P<name>{LANGUAGE_NAMES})\b"
    r"(?! (?:models?|llms?|labs?|ones|clouds?|vendors?|providers?|hardware|companies"
    r"|data ?cent(?:er|re)s?|regions?|servers?|hosting)\b)"
)
"""A language named: one pattern for them all (a pattern each would crowd `re`'s cache of
512, and every rule's pattern be compiled anew on every message)."""
CODE = frozenset({"code_completion", "code_generation"})
NEGATION = re.compile(
    r"\b(?:no|not|nope|never|without|except|excluding|excluded?|avoid|avoiding|nothing|"
    r"don'?t|doesn'?t|won'?t|cannot|can'?t|(?:don|doesn|won|can|shouldn|mustn) t|"
    r"rather than|instead of|other than|but not|"
    r"(?:anything|everything|all|any \w+) but|excl|apart from|stay away from|steer clear of|rule out|ban|veto\w*|"
    r"(?:keep|stay|steer) (?:\w+ )?off|off anything|skip|leave out|leaving out|"
    r"(?:is|are|'re|am|was|were|strongly|firmly) against)\b"
)
ONLY = re.compile(r"\b(?:only|just|solely|exclusively)\b")

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
    r"\bsystem\s*:\s*(?:record|set|note|add|remember|update|treat|you)\b|"
    r"\b(?:record|note|remember|log) that (?:the )?(?:user|customer)\b|"
    # Whole words only: "extract assay results" is no "act as", "secretaries" no "secret".
    r"hidden instruction|instruction for the|\bpretend|\bact as\b|you (?:must|should|will) (?:now )?"
    r"(?:set|add|choose|pick|use|approve|deploy|ignore)|\bset (?:the )?\w+(?: \w+)? to\b|"
    r"\badd (?:them|it|\w+)(?: \w+)* to (?:the )?(?:"
    + FIELD_NAMES
    + r")|\bapprove\b|deploy (?:it |now|this)|"
    r"\breveal|\bapi key|\bsecrets?\b|\bpasswords?\b|call the \w+ tool|treat \w+ as|"
    # A form's "use_case: code generation" is the person's own words; other schema names
    # followed by a value are a payload.
    r"(?!use_case\b)(?:"
    + FIELD_NAMES
    + r")\b\s*[:=]|\b(?!use_case\b)(?:"
    + FIELD_NAMES
    + r")\b(?=.*\b(?:to|as|=)\b)",
    re.IGNORECASE,
)
MARKUP = re.compile(
    r"```.*?(?:```|$)|<\|im_start\|>.*?(?:<\|im_end\|>|$)|\[INST\].*?(?:\[/INST\]|$)|"
    r"<(?i:(system|assistant|tool_call|tool|instructions?))>.*?(?:</\1>|$)|</?(?i:user|system|assistant)>|"
    r"<!--.*?(?:-->|$)|\[([A-Z][A-Z _]+)\].*?(?:\[/\2\]|$)|"
    r"\{[^{}]*[\"':][^{}]*\}|^\s*(?i:assistant|system)\s*:.*?$",
    re.DOTALL | re.MULTILINE,
)


PAYLOAD_FIELD = re.compile(r"(?!use_case\b)\b(?:" + FIELD_NAMES + r")\s*[:=]", re.IGNORECASE)
FORM_LINE = re.compile(r"^\s*(?:---+\s*$|[\w][\w .\-/]{0,30}\s*[:=])")


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
    lines = [line for line in kept.split("\n") if line.strip()]
    # A block of "key: value" lines holding a schema field is a payload as a whole: its
    # "priority: latency" is not the person's form either.
    dropped: set[int] = set()
    for i, line in enumerate(lines):
        if PAYLOAD_FIELD.search(line):
            start = end = i
            while start > 0 and FORM_LINE.match(lines[start - 1]):
                start -= 1
            while end + 1 < len(lines) and FORM_LINE.match(lines[end + 1]):
                end += 1
            dropped |= set(range(start, end + 1))
    kept = "\n".join(line for i, line in enumerate(lines) if i not in dropped)
    sentences = re.split(r"(?<=[.!?])\s+|\n+", kept)
    # One line a clause, as the person wrote it: a form's fields do not run into each other.
    return "\n".join(s for s in sentences if not INSTRUCTION.search(s)).strip()


def extract(text: str, vocabulary: Vocabulary) -> DeploymentIntent:
    """The intent the words state; every other field stays null. Dictated text is read as if
    typed (`written`); instructions aimed at the assistant are not words about the deployment
    (`honest_text`)."""
    text = HEDGE.sub(" ", corrected(honest_text(written(MARKDOWN.sub("", text)))))
    lower = text.lower()
    values: dict[str, Any] = {"_use_case": _use_case(lower, vocabulary)}
    read_numbers(text, lower, values, {m.family for m in vocabulary.model_names})
    _names(text, lower, vocabulary, values)
    _words(text, lower, values)
    if values["_use_case"] is not None:
        values["use_case"] = values["_use_case"]
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


# ---- names ---------------------------------------------------------------------------


NEGATED_AFTER = re.compile(
    r"^(?:\w+ ){0,2}(?:out\b|is out|are out|excluded|banned|off the table|not wanted|neither\b|"
    r"(?:is |are )?not (?:allowed|permitted|an option)|(?:isn|aren) ?t (?:allowed|permitted|an option)|"
    r"never again|overkill|too (?:big|large|slow|expensive|heavy|pricey)\b)"
)
"""A name ruled out by what follows it: "keep DeepSeek R1 out of it", "gemma is out", "the
405b is overkill", "the distill is too slow"."""
SKIP_THOSE = re.compile(
    r"^\W*(?:(?:so|then|just|please|pls|let'?s|let us)\W+)*"
    r"(?:skip (?:that|this|it|them|those)|(?:leave|keep|rule) (?:that|this|it|them|those)"
    r"(?: ones?)? out|never again)\b"
)
"""A clause that rules out the names the one before it wanted: "we had a rough time with
mixtral last year, so skip that one", "… so let's leave those out", "… , never again"."""
NARROWED = re.compile(r"\b(?:specifically|in particular|namely|especially|ideally)\b")
"""A clause whose names pick some of those said before: "one of the deepseek distills —
specifically the qwen 32b distill"."""
INSTEAD = re.compile(r"\binstead\b(?! of)")
"""A clause whose names replace those the clause before wanted: "I was going to ask for
llama 3.1 70b but that seems like overkill — maybe mistral small instead"."""
GUESSED = re.compile(r"^\W*(?:maybe|perhaps|possibly)\b|\bnot sure\b")
"""A clause that guesses at the hardware rather than says what there is."""
FRESH = frozenset({"then", "but", "instead", "prefer", "so", "only"})
"""Words after a negation that start what is wanted ("if that's not possible then X", "no
amd cards, we only run nvidia")."""


def _negated(words: list[str], mention: Mention) -> bool:
    """A negation in the five words before the name, with nothing wanted said between
    ("if that's not possible then X" wants X), or one right after ("keep X out of it")."""
    window = " ".join(words[max(0, mention.start - 7) : mention.start])
    negations = list(NEGATION.finditer(window))
    if negations and not FRESH & set(window[negations[-1].end() :].split()):
        return True
    return bool(NEGATED_AFTER.match(" ".join(words[mention.end : mention.end + 6])))


VENDORS = frozenset({"nvidia", "amd", "intel"})
VENDOR_ONLY = (
    r"(?:\b(?:(?:has to|must|should|needs? to) (?:be|run|stay) (?:on )?|"
    r"(?:keep|kept|stay|stays|run|runs) (?:it |them |everything )?on (?:an? )?)|"
    r"\b(?=\w+ (?:shop|house)\b))"
)
"""What makes a vendor the only one: "keep it on nvidia", "we're an nvidia shop" (followed
by the vendor)."""
VENDOR_LIST = re.compile(
    r"(?<!excluded )(?<!excluded_)(?<!no )\bvendors?\s*[:=]\s*(?:nvidia|amd|intel)"
    r"(?:\s*(?:,|/|\+|&|\band\b|\bor\b)\s*(?:nvidia|amd|intel))*"
)
"""A form's vendors, the only ones: "GPU vendor: NVIDIA", "vendors: nvidia, amd"."""
SIZE_CAP = re.compile(
    r"\b(?:(?P<none>nothing|none|no (?:models?|llms?|checkpoints?))|anything|everything|any models?|models?)"
    r"\s+(?:that'?s\s+|that is\s+)?(?:over|above|bigger than|larger than|more than|beyond|>)\s*"
    r"(?P<size>\d+(?:\.\d+)?)\s*(?:b|bn|billion)\b"
)
"""A cap on model size: "nothing over 100B params", "avoid anything above 200b"."""
LISTED = frozenset({
    "or", "and", "nor", "the", "any", "anything", "all", "models", "ones",
    # "no llama models (any version, incl. the distills)", "as well as deepseek"
    "including", "incl", "includes", "plus", "also", "as", "well", "even", "whole", "family",
    "version", "versions", "size", "sizes", "variants",
})  # fmt: skip


def _ruled_out(words: list[str], mentions: list[Mention], carried: bool = False) -> list[bool]:
    """Whether each name is ruled out: by a negation next to it, as the list that follows
    one ("no mixtral, phi or gemma", "don't give me H100 or H200"), or as the list that
    ends on one ("glm-5 and minimax m2.5 are excluded"); `carried`: a list ruled out at the
    end of the clause before."""
    flags, listing, since = [], carried, 0  # `since`: where the words after the last name start
    for mention in mentions:
        listed = listing and set(words[since : mention.start]) <= LISTED
        if listed and words[mention.end : mention.end + 1] in (["only"], ["preferred"]):
            listed = False  # "no AMD, nvidia only" wants the one after the list
        negated = listed or _negated(words, mention)
        flags.append(negated)
        since, listing = mention.end, negated
    for i in range(len(mentions) - 2, -1, -1):
        after = mentions[i + 1]
        if (
            flags[i + 1]
            and set(words[mentions[i].end : after.start]) <= LISTED
            and NEGATED_AFTER.match(" ".join(words[after.end : after.end + 6]))
        ):
            flags[i] = True
    return flags


def _ends_ruled_out(mentions: list[Mention], flags: list[bool], words: list[str]) -> bool:
    """Whether the clause ends on a name ruled out, or on list words after one: its list
    may go on after the comma ("Avoid: A10G, L4", "no llama models (any version, incl.
    the distills)")."""
    return (
        bool(mentions)
        and flags[-1]
        and (mentions[-1].end >= len(words) - 1 or set(words[mentions[-1].end :]) <= LISTED)
    )


def _add(values: dict[str, Any], field: str, ids: Iterable[str]) -> None:
    values[field] = sorted(set(values.get(field) or ()) | set(ids))


def _drop(values: dict[str, Any], field: str, ids: set[str]) -> None:
    values[field] = sorted(set(values.get(field) or ()) - ids) or None


def _with_sizes(
    vocabulary: Vocabulary, words: list[str], models: list[Mention], last: tuple[str, ...]
) -> list[Mention]:
    """The mentions, and "the 32b" said alone as a model of the family named before it."""
    taken = {i for m in models for i in range(m.start, m.end)}
    sizes = []
    for i in range(1, len(words)):
        if words[i - 1] == "the" and i not in taken and SIZE.fullmatch(words[i]):
            before = [m.ids for m in models if m.end <= i]
            ids = vocabulary.at_size(words[i], before[-1] if before else last)
            if ids:
                sizes.append(Mention(ids, i, i + 1))
    return sorted([*models, *sizes], key=lambda m: m.start)


def _names(text: str, lower: str, vocabulary: Vocabulary, values: dict[str, Any]) -> None:
    families = frozenset(m.family for m in vocabulary.model_names)
    # The last clause ended on a list of models, GPUs or vendors ruled out.
    carried = gpus_carried = vendors_carried = False
    wanted: set[str] = set()  # the names the last clause with names wanted
    last: tuple[str, ...] = ()  # the models the last name said meant
    for clause in CLAUSE.split(lower):
        words, model_words = tokens(clause), name_words(clause, families)
        models = _with_sizes(vocabulary, model_words, vocabulary.find_models(clause), last)
        last = models[-1].ids if models else last
        if SKIP_THOSE.match(clause) and wanted:
            _drop(values, "preferred_models", wanted)
            _add(values, "excluded_models", wanted)
        flags = _ruled_out(model_words, models, carried)
        earlier = set(wanted)
        if models and wanted and INSTEAD.search(clause) and not all(flags):
            _drop(values, "preferred_models", wanted)
        if models:
            wanted = set()
        for mention, negated in zip(models, flags, strict=True):
            if mention.by_maker and not negated:
                continue  # "Meta" is a model family only in "nothing from Meta"
            field = "excluded_models" if negated else "preferred_models"
            picked, said = set(mention.ids), earlier | wanted
            if not negated and NARROWED.search(clause) and picked < said:
                _drop(values, field, said - picked)
                wanted -= said - picked
            _add(values, field, picked)
            if not negated:
                wanted |= picked
        # A clause of list words alone ("incl.") passes a ruled-out list on.
        carried = _ends_ruled_out(models, flags, model_words) or (
            carried and not models and set(model_words) <= LISTED
        )
        for cap in SIZE_CAP.finditer(clause):
            rest = " ".join(tokens(clause[cap.end() :]))
            if cap["none"] or NEGATION.search(clause[: cap.start()]) or NEGATED_AFTER.match(rest):
                _add(values, "excluded_models", vocabulary.larger_than(float(cap["size"])))
        gpus = vocabulary.find(words, vocabulary.gpus)
        gpu_flags = _ruled_out(words, gpus, gpus_carried)
        for mention, negated in zip(gpus, gpu_flags, strict=True):
            if not negated and GUESSED.search(clause):
                continue  # "not sure about hardware yet, maybe A10Gs?" has none yet
            _add(values, "excluded_gpus" if negated else "available_gpus", mention.ids)
        gpus_carried = _ends_ruled_out(gpus, gpu_flags, words)
        # "no NVIDIA B200" rules out the B200 alone.
        branded = {i for m in gpus for i in range(m.start - 1, m.end)}
        vendors = [
            Mention((v,), i, i + 1)
            for i, v in enumerate(words)
            if v in VENDORS and i not in branded
        ]
        vendor_flags = _ruled_out(words, vendors, vendors_carried)
        for mention, negated in zip(vendors, vendor_flags, strict=True):
            vendor = mention.ids[0]
            if negated:
                key = "gpu_constraints.excluded_vendors"
            elif ONLY.search(clause) or re.search(rf"{VENDOR_ONLY}{vendor}\b", clause):
                key = "gpu_constraints.vendors"
            else:
                continue
            _add(values, key, {vendor})
        vendors_carried = _ends_ruled_out(vendors, vendor_flags, words)
    for keyed in VENDOR_LIST.finditer(lower):
        _add(values, "gpu_constraints.vendors", set(tokens(keyed[0])) & VENDORS)


# ---- words ---------------------------------------------------------------------------


def _words(text: str, lower: str, values: dict[str, Any]) -> None:
    found = {LANGUAGES[m["name"]] for m in LANGUAGE_MENTION.finditer(lower)}
    # A form's "Languages: en, fr", "pairs: de-en, fr-en", "src_lang: de", "tgt_langs: en, fr",
    # and "Target: en" where the line holds nothing but codes.
    for keyed in re.finditer(
        r"(?m)(?:\b|_)(?:languages?|pairs?|langs?|(?:target|source)(?=\s*:\s*[a-z]{2}(?:\s*[,/]\s*[a-z]{2})*\s*$))"
        r"\s*[:(]\s*((?:[a-z]{2}(?:-[a-z]{2})?(?:\s*[,/+&-]\s*|\s+(?:and\s+|or\s+)?))*[a-z]{2}\b)",
        lower,
    ):
        found |= set(re.findall(r"\b[a-z]{2}\b", keyed[1])) & KNOWN_CODES
    for listed in LANGUAGE_CODE_LIST.findall(text):
        # "PT-BR" is Portuguese in Brazil; "EN-JA" two languages.
        regions = re.sub(
            r"-([A-Za-z]{2})\b",
            lambda m: "" if m[1].lower() not in KNOWN_CODES else " " + m[1],
            listed,
        )
        codes = [
            c for c in re.findall(r"\b[A-Za-z]{2}\b", regions) if c.lower() not in {"to", "in"}
        ]
        meant = {CODE_ALIASES.get(c.lower(), c.lower()) for c in codes}
        a_list = len(codes) >= 3 and meant <= KNOWN_CODES
        joined = "+" in listed and meant <= KNOWN_CODES  # "en + ar": prose joins no words so
        # An arrow in words joins codes only: "up to my" is no language.
        worded = re.search(r"\binto\b|\bto\b", listed) and meant <= KNOWN_CODES
        arrow = re.search(r"->|<->|<>|→|=>", listed) or worded
        if arrow or a_list or joined or all(c.isupper() for c in codes):
            found |= meant & KNOWN_CODES
    if found:
        values["languages"] = sorted(found)
    licenses = set()
    if re.search(r"apache", lower):
        licenses.add("Apache-2.0")
    if re.search(r"\bmit\b(?:[- ]licen[cs]ed?)?", lower) and re.search(
        r"licen[cs]|\blic\b|\bmit\b or|or \bmit\b", lower
    ):
        licenses.add("MIT")
    if (
        re.search(
            r"open.source|permis+ive|osi.approved|open.weight\w* (?:and|with) (?:a )?permissive|open licen[cs]",
            lower,
        )
        and re.search(r"licen[cs]|\blic\b|model", lower)
        and not licenses
    ):
        licenses.add("permissive")
    if licenses:
        values["licenses"] = sorted(licenses)
    about = GATEKEEPERS.sub(" ", lower)
    named = {
        subject: len(set(re.findall(rf"\b(?:{pattern})", about)))
        for subject, pattern in SUBJECTS.items()
    }
    most = max(named.values())
    # Code is its own subject: a game studio's completion plugin is about code, not games.
    if most and values.get("_use_case") not in CODE:
        values["subject_matter"] = next(s for s, n in named.items() if n == most)
    priority = _priority(lower)
    if priority:
        values["priority"] = priority
    if re.search(
        r"very spiky|spiky|bursty|(?:bursts?|spikes?)\b(?!\s+(?:\w+\s+)?(?:to|of|at|up|around|near|over|~|\d))|unpredictable (?:traffic|load)|sudden (?:peaks|surges)",
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
    one_gpu = re.search(
        r"\bsingle gpu\b|fits? on a single one\b|(?:fit on|fits on|runs? on|must fit(?: on| in(?:to)?)?|on) (?:a single|one) (?:gpu|card|(?:[a-z]+ ){0,2}[a-z]*\d+\w*)|(?:one|(?:a )?single|1) gpu (?:per|each) (?:replica|instance|pod|copy)|single.gpu (?:replicas?|instances?|deployment)",
        lower,
    )
    # Not a reason given for a model: "gpt-oss 20b, because it runs on one card".
    if one_gpu and not re.search(r"\b(?:because|since|as) it (?:\w+ )?$", lower[: one_gpu.start()]):
        values["gpu_constraints.max_gpus_per_replica"] = 1
    # "fit on 2 gpus", "max 4 per replica", "1 gpu/replica", "GPUs per replica: up to 8".
    at_most = re.search(
        r"fits? (?:on|in|into) (\d) gpus|(?:max(?:imum)?|at most|up to) (\d) (?:gpus )?per (?:replica|instance|pod)|"
        r"\b(\d) gpus? ?(?:/|per) ?(?:replica|instance|pod)|"
        r"gpus? ?(?:/|per) ?(?:replica|instance|pod)\s*(?:[:=]|<=?|≤)?\s*(?:up to|at most|max\w*)?\s*(\d)\b",
        lower,
    )
    if at_most:
        values["gpu_constraints.max_gpus_per_replica"] = int(next(g for g in at_most.groups() if g))
    if values.get("concurrent_users") is None and re.search(
        r"\b(?:just|only) (?:for )?me\b|\bsolo\b|\bby myself\b", lower
    ):
        values["concurrent_users"] = 1  # "just for me": one user
    nines = re.search(r"\b(two|three|four|five|2|3|4|5) nines\b", lower)
    if nines:
        count = {"two": 2, "three": 3, "four": 4, "five": 5}.get(nines[1]) or int(nines[1])
        values["reliability_target"] = round(1 - 10**-count, count)


def _priority(lower: str) -> str | None:
    """What matters most: a form's "Priority: quality" (on a line, or after a "/"), else the first thing said to matter
    once what is said not to matter is set aside ("speed doesn't matter, the correctness
    of the patches does" is accuracy)."""
    keyed = re.search(
        r"(?:^|[/;|•]|\s-\s)\s*prio(?:rity)?\s*:\s*(cost|latency|speed|accuracy|quality|balanced)\b",
        lower,
        re.MULTILINE,
    )
    if keyed:
        return {"speed": "latency", "quality": "accuracy"}.get(keyed[1], keyed[1])
    said = re.sub(IRRELEVANT, " ", lower)
    found = []
    for priority, pattern in PRIORITY_CUES.items():
        match = re.search(pattern, said)
        if match and not _denied(said, match.start(), match.end()):
            found.append((match.start(), priority))
    return min(found)[1] if found else None


DENIED_BEFORE = re.compile(
    r"(?:\bnot|\bno|\bnothing|\bisn'?t|\bnever|n't|\bdont|\bwont)"
    r"(?:\s+(?:a|an|the|just|want|need|any|about|for|do|doing|writing|open\w*|touch\w*)){0,2}\s*$"
)
DENIED_AFTER = re.compile(
    r"^\w*\s+(?:nothing|(?:isn'?t|is not|aren'?t)\b(?!\s+(?:there|ready|read|fast|quick|instant|urgent)\b))"
)
"""After the cue: "translation isn't the job"; not "the completion isn't there in time"."""


def _denied(lower: str, start: int, end: int) -> bool:
    """ "not a summarizer", "doesn't summarize", "summarizes nothing", "translation isn't"."""
    return bool(
        DENIED_BEFORE.search(lower[max(0, start - 24) : start]) or DENIED_AFTER.match(lower[end:])
    )


CLOSE = 0.75
"""A runner-up whose cues weigh at least this share of the best one's is a likely reading
too: the conversation asks which one is meant."""
MAX_LIKELY = 3


def _ranked_use_cases(lower: str, known: Collection[str]) -> list[tuple[float, str]]:
    """(weight of cues, use case), heaviest first; ties go to the earlier template."""
    scores: dict[str, float] = {}
    for use_case, cues in USE_CASE_CUES.items():
        score = 0.0
        for pattern, weight in cues:
            match = re.search(pattern, lower)
            if match:
                score += -weight if _denied(lower, match.start(), match.end()) else weight
        if score > 0 and use_case in (known or USE_CASE_CUES):
            scores[use_case] = score
    return sorted(
        ((score, use_case) for use_case, score in scores.items()),
        key=lambda pair: (-pair[0], list(USE_CASE_CUES).index(pair[1])),
    )


def _use_case(lower: str, vocabulary: Vocabulary) -> str | None:
    ranked = _ranked_use_cases(lower, {u.id for u in vocabulary.use_cases})
    return ranked[0][1] if ranked else None


def likely_use_cases(text: str, known: Collection[str]) -> list[str]:
    """The use cases the words could describe: the best reading and the runners-up close
    to it (at most three); one when the words are clear, none when they say nothing."""
    ranked = _ranked_use_cases(corrected(honest_text(text)).lower(), known)
    if not ranked:
        return []
    best = ranked[0][0]
    return [use_case for score, use_case in ranked[:MAX_LIKELY] if score >= CLOSE * best]


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
