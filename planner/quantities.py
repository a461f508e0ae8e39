"""Numbers as people write them: "2,000", "1.5k", "3 million", "half a million", "a dozen",
"a hundred and forty", "two thousand two hundred", "a million and a half", "a dozen and a
half", "three quarters of a second", "twenty-odd"."""

from __future__ import annotations

import re
from dataclasses import dataclass

MULTIPLIERS = {
    "dozen": 12,  # "3 dozen marketers"
    "ribu": 1e3,  # Indonesian: "8 ribu"
    "lakh": 1e5,  # Indian: "3 lakh citizens"
    "lakhs": 1e5,
    "crore": 1e7,
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "million": 1e6,
    "millions": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
}
UNITS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
FRACTIONS = {"half": 0.5, "quarter": 0.25, "quarters": 0.25, "third": 1 / 3, "thirds": 1 / 3,
             "fifth": 0.2, "tenth": 0.1}  # fmt: skip
"""A share of a unit: "a fifth of a second", "three quarters of a page"."""
_NUMBER_WORD = "|".join(
    sorted([*UNITS, *TENS, *SCALES, "hundred", "dozen", "couple"], key=len, reverse=True)
)
_FRACTION = "|".join(sorted(FRACTIONS, key=len, reverse=True))
_GLUE = r"(?:[\s-]+(?:and\s+a\s+half|and|odd|of)\b)?"
_DIGIT_WORD = "zero|oh|one|two|three|four|five|six|seven|eight|nine"
_TAIL = (
    rf"(?:[\s-]+(?:and\s+a\s+half|odd)\b|(?<=couple)\s+of\b"
    rf"|\s+point(?:[\s-]+(?:{_DIGIT_WORD})\b)+)?"
)
"""After the last number word only these ("twenty-odd", "a million and a half", "a couple
of", "ninety-nine point nine five"): a trailing "of" or "and" belongs to the sentence ("eleven
of them", "four of us")."""
_DIGITS = (
    r"\d+(?:,\d{3})+(?:\.\d+)?|"
    # Continental formats: "1.200 devs" in thousands, "2,5 seconds" a decimal comma.
    r"(?P<dotted>[1-9]\d{0,2}(?:\.\d{3})+)(?![\d.,])|(?P<comma>\d+,\d{1,2})(?![\d,])|"
    r"\d+(?:\.\d+)?|\.\d+"
)
_WORDS = (
    # A share of a unit: "half a", "three quarters of a", "a fifth of an", "a quarter" (million).
    rf"(?:(?:an?|one|{'|'.join(UNITS)})\s+)?(?:{_FRACTION})"
    rf"(?:\s+(?:of\s+)?an?(?=\s)|(?=\s+(?:{'|'.join(SCALES)}|sec|second|min|minute)s?\b))|"
    # A run of number words ("a hundred and forty", "a million and a half", "twenty-odd"),
    # "a"/"an" only before a number word, or before a unit in "within a second".
    rf"(?:an?\s+)?(?:{_NUMBER_WORD})(?:(?:[\s-]+and\s+an?\b|{_GLUE})[\s-]+(?:{_NUMBER_WORD}))*{_TAIL}(?:\s+of(?=\s+(?:{_NUMBER_WORD})))?|"
    r"an?(?=\s+(?:second|sec|minute|min|page|dollar|buck|grand)\b)"
)
_SCALE = r"k|thousand|m|mn|million|millions|b|bn|billion|dozen|ribu|lakhs?|crore"
NUMBER = re.compile(
    rf"(?<![\w.])(?P<value>{_DIGITS}|{_WORDS})(?!(?:st|nd|rd|th)\b)(?:\s*(?P<scale>{_SCALE})\b)?",
    re.IGNORECASE,
)
ONE_BEFORE_A_UNIT = re.compile(
    r"(?:within|under|in|below|than|inside|about|around|roughly|takes?|most|max|up to)\s+$"
)
"""Where "a second" is one second ("within a second", "up to a minute"), not a period ("5
requests a second")."""
VAGUE = re.compile(r"\b(?:few|several|many|some|couple of)\s+$", re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    value: float
    start: int
    end: int
    """Character span of the number (and its scale word) in the text."""


SHARE = re.compile(
    rf"^(?:(?P<count>an?|one|{'|'.join(UNITS)})\s+)?(?P<share>{_FRACTION})(?:\s+(?:of\s+)?an?)?$"
)
"""A share of a unit: "half a", "three quarters of a", "a fifth of an", "a quarter" (of the
scale that follows: "a quarter million")."""


def _word_value(words: str) -> float | None:
    """The value of number words: units and tens add up, "hundred" and "dozen" multiply,
    "thousand" and larger close a group; "and a half" is half of the last unit said."""
    lower = words.lower()
    if lower in {"a", "an"}:
        return 1.0  # "within a second"
    share = SHARE.match(lower)
    if share:
        count = share["count"]
        return (UNITS.get(count, 1) if count else 1) * FRACTIONS[share["share"]]
    whole, _, decimals = lower.partition(" point ")
    if decimals:  # "ninety-nine point nine five": each word after "point" a digit
        digits = [str(UNITS.get(d, 0)) for d in re.split(r"[\s-]+", decimals.strip())]
        head = _word_value(whole)
        return None if head is None else head + float("0." + "".join(digits))
    parts = [p for p in re.split(r"[\s-]+", lower) if p not in {"and", "of", "odd", "a", "an"}]
    total, current, last = 0.0, 0.0, 1.0
    for part in parts:
        if part in UNITS or part in TENS:
            current += UNITS.get(part, 0) + TENS.get(part, 0)
        elif part == "couple":
            current += 2
        elif part == "hundred":
            current, last = (current or 1) * 100, 100
        elif part == "dozen":
            total, current, last = total + (current or 1) * 12, 0, 12
        elif part in SCALES:
            total, current, last = total + (current or 1) * SCALES[part], 0, SCALES[part]
        elif part == "half":  # "and a half": half of the last unit said
            if current:
                current += 0.5
            else:
                total += 0.5 * last
        else:
            return None
    return total + current


ROUND_THE_CLOCK = re.compile(r"\b24\s*[/x]\s*7\b")
"""When it runs ("24/7"), not how many."""


def quantities(text: str) -> list[Quantity]:
    """Every number in `text`, scaled ("1.5k" is 1500), in order."""
    found = []
    clock = {i for m in ROUND_THE_CLOCK.finditer(text) for i in range(m.start(), m.end())}
    for match in NUMBER.finditer(text):
        raw = match["value"]
        if match.start() in clock:
            continue
        if VAGUE.search(text[: match.start()]) and not raw[0].isdigit():
            continue  # "a few hundred", "several dozen": too vague to size on
        if match["dotted"]:
            value = float(raw.replace(".", ""))  # "1.200 devs": dots group thousands
        elif match["comma"]:
            value = float(raw.replace(",", "."))  # "2,5 seconds": a decimal comma
        elif raw[0].isdigit() or raw[0] == ".":
            value = float(raw.replace(",", ""))
        else:
            word = _word_value(raw)
            if word is None:
                continue
            if (
                word == 1
                and not (
                    match["scale"]
                    or ONE_BEFORE_A_UNIT.search(text[: match.start()].lower())
                    # "a page", "a one-page brief", "a grand a month"
                    or re.match(r"(?:\s+|-)(?:pages?|dollar|buck|grand)\b", text[match.end() :])
                )
            ):
                continue  # "a", "one" alone are rarely quantities
            value = word
        if match["scale"]:
            value *= MULTIPLIERS[match["scale"].lower()]
        # "25+ tokens a second", "1k+ requests": at least the number, read as the number.
        plus = re.match(r"\+(?!\s*\d)", text[match.end() :])
        found.append(Quantity(value, match.start(), match.end() + (1 if plus else 0)))
    return found
