"""Text as a phone writes down what was said: spoken punctuation ("users colon five
hundred new line budget ..."), names spelt out letter by letter ("v s code", "p c i e"),
accelerators and model sizes said as numbers ("h one hundred", "l forty s", "twelve b"),
and the homophones dictation picks ("too thousand"). Each is written the way the extractor
reads the typed form; nothing else changes.
"""

from __future__ import annotations

import re

SPOKEN_MARKS = {"new line": "\n", "next line": "\n", "colon": ": ", "comma": ", ", "slash": "/ "}
"""Punctuation said aloud: "users colon fifteen thousand new line budget colon ..."."""
SPOKEN = re.compile(rf"\s*\b({'|'.join(SPOKEN_MARKS)})\b\s*", re.I)
SPELT = re.compile(r"\b(?:[a-z] ){1,4}[a-z]\b(?! [a-z]\b)", re.I)
"""Letters said one by one: "v s code", "p c i e", "m m l u"."""
SPELT_WORDS = frozenset({"vs", "pcie", "sxm", "nvl", "mmlu", "gpu", "gpus", "api", "ide", "faq"})
"""What spelt letters are joined into (others, like "q and a", stay as said)."""
NUMBER = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "twelve": 12, "fourteen": 14, "sixteen": 16, "seventeen": 17,
    "twenty": 20, "twenty two": 22, "twenty four": 24, "twenty seven": 27, "thirty": 30,
    "thirty two": 32, "forty": 40, "seventy": 70, "seventy two": 72, "ninety": 90,
    "one hundred": 100, "one twenty": 120, "two hundred": 200, "two thirty five": 235,
    "three hundred": 300, "four oh five": 405,
}  # fmt: skip
"""Numbers as model sizes and accelerator names are said."""
_NUMBER = "|".join(sorted(NUMBER, key=len, reverse=True))
ACCELERATOR = re.compile(
    r"\b(?P<letter>h|a|l|b|t|m i|mi)[ -]"
    r"(?P<number>one hundred|two hundred|three hundred|ten|forty|four)"
    r"(?:[ -](?P<suffix>s|g|x))?(?P<plural>s)?\b",
    re.I,
)
"""An accelerator said aloud: "h one hundred", "a one hundred", "l forty s", "a ten g",
"l four", "b two hundred", "t four", "m i three hundred x"."""
KNOWN_ACCELERATORS = frozenset({
    "h100", "h200", "a100", "a10g", "l40s", "l40", "l4", "b200", "b300", "t4", "mi300x",
})  # fmt: skip
SIZE = re.compile(rf"\b(?P<prefix>(?<=b )a )?(?P<number>{_NUMBER})[ -]b\b", re.I)
"""A parameter count said aloud: "twelve b", "seventy b", and after one "a three b" (an MoE's
active parameters: "thirty b a three b")."""
VERSION = re.compile(
    r"\b(?P<family>llama|lama|qwen|quen|gemma|granite|phi|mistral|deepseek|glm|kimi|gpt oss)"
    r" (?P<major>one|two|three|four|five)(?: point (?P<minor>one|two|three|five))?\b",
    re.I,
)
"""A version said after a family: "gemma three", "granite three point three"."""
_ONES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
DIGITWISE_K = re.compile(
    rf"\b(?:(?P<hundreds>{'|'.join(_ONES)}) )?(?P<tens>{'|'.join(_TENS)})"
    rf"(?: (?P<ones>{'|'.join(_ONES)}))? k\b",
    re.I,
)
"""A size in thousands said aloud: "sixty four K", and digit by digit "one twenty eight K"
(128k) and "two fifty six k"."""
SPLIT_NAMES = re.compile(
    r"\b(jet) (brains)\b|\b(deep) (seek)\b|\b(open) (ai)\b|\b(intelli) (j)\b", re.I
)
"""Names dictation writes as two words: "jet brains", "deep seek"."""
HOMOPHONES = re.compile(r"\btoo (?=hundred|thousand|million|k\b)", re.I)
""""too thousand dollars": two."""
PER_CENT = re.compile(r"\bper cent\b", re.I)


def written(text: str) -> str:
    """`text` with what dictation writes as words written as typed. Typed text comes through
    unchanged: the patterns need words no typist uses there, and punctuation said aloud is
    taken only from a text that says it twice ("colon" alone may be the organ)."""
    if len(SPOKEN.findall(text)) >= 2:
        text = SPOKEN.sub(lambda m: SPOKEN_MARKS[m[1].lower()], text)
    text = SPELT.sub(_spelt, text)
    text = ACCELERATOR.sub(_accelerator, text)
    text = VERSION.sub(_version, text)
    text = SIZE.sub(lambda m: f"{'a' if m['prefix'] else ''}{NUMBER[m['number'].lower()]}b", text)
    text = DIGITWISE_K.sub(_digitwise, text)
    text = SPLIT_NAMES.sub(lambda m: "".join(part for part in m.groups() if part), text)
    return PER_CENT.sub("percent", HOMOPHONES.sub("two ", text))


def _spelt(match: re.Match[str]) -> str:
    joined = match.group().replace(" ", "")
    return joined if joined.lower() in SPELT_WORDS else match.group()


def _accelerator(match: re.Match[str]) -> str:
    """Its form factor, spelt out after it ("p c i e"), was joined already (`SPELT`)."""
    letter = match["letter"].replace(" ", "")
    name = f"{letter}{NUMBER[match['number'].lower()]}{match['suffix'] or ''}".lower()
    return f"{name}{match['plural'] or ''}" if name in KNOWN_ACCELERATORS else match.group()


def _version(match: re.Match[str]) -> str:
    major = NUMBER[match["major"].lower()]
    minor = f".{NUMBER[match['minor'].lower()]}" if match["minor"] else ""
    return f"{match['family']} {major}{minor}"


def _digitwise(match: re.Match[str]) -> str:
    hundreds = _ONES.index(match["hundreds"].lower()) + 1 if match["hundreds"] else 0
    tens = (_TENS.index(match["tens"].lower()) + 2) * 10
    ones = _ONES.index(match["ones"].lower()) + 1 if match["ones"] else 0
    return f"{hundreds * 100 + tens + ones}k"
