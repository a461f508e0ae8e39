"""Numbers as people write them: "2,000", "1.5k", "3 million", "half a million", "a dozen"."""

from __future__ import annotations

import re
from dataclasses import dataclass

MULTIPLIERS = {
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
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_UNIT = "|".join(sorted(UNITS, key=len, reverse=True))
_TENS = "|".join(TENS)
_BELOW_100 = rf"(?:(?:{_TENS})(?:[\s-]+(?:{_UNIT}))?|(?:{_UNIT}))"
_DIGITS = r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_WORD = (
    # "half a", "a quarter of a", "a couple (of)", "a dozen", "a" before a scale word, and
    # "twenty-five", "two hundred and fifty", "hundred".
    r"half\s+an?|(?:a|one)\s+(?:quarter|third|fifth|tenth)\s+of\s+an?|(?:an?\s+)?couple(?:\s+of)?|(?:an?\s+)?dozen|"
    r"an?(?=\s+(?:million|thousand|hundred|billion))|"
    rf"{_BELOW_100}(?:\s+hundred(?:\s+(?:and\s+)?{_BELOW_100})?)?(?:\s+and\s+a\s+half)?|hundred|"
    r"an?(?=\s+(?:second|sec|minute|min)\b)"
)
_SCALE = r"k|thousand|m|mn|million|millions|b|bn|billion"
NUMBER = re.compile(
    rf"(?<![\w.])(?P<value>{_DIGITS}|(?:{_WORD})(?:\s+hundred)?)"
    rf"(?:\s*(?P<scale>{_SCALE})\b)?",
    re.IGNORECASE,
)
ONE_BEFORE_A_UNIT = re.compile(
    r"(?:within|under|in|below|than|inside|about|around|roughly|takes?|most|max)\s+$"
)
"""Where "a second" is one second ("within a second"), not a period ("5 requests a second")."""


FRACTIONS = {"quarter": 0.25, "third": 1 / 3, "fifth": 0.2, "tenth": 0.1}
"""A fraction of a unit: "a fifth of a second"."""
VAGUE = re.compile(r"\b(?:few|several|many|some|couple of)\s+$", re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    value: float
    start: int
    end: int
    """Character span of the number (and its scale word) in the text."""


def _word_value(words: str) -> float | None:
    parts = re.split(r"[\s-]+", words.lower())
    if parts[0] in {"a", "an"} or (parts[0] == "one" and parts[1:2] and parts[1] in FRACTIONS):
        parts = parts[1:] or ["one"]
    if parts[:1] == ["half"]:
        return 0.5
    if parts[:1] and parts[0] in FRACTIONS:
        return FRACTIONS[parts[0]]
    total, current = 0.0, 0.0
    if parts[-3:] == ["and", "a", "half"]:  # "two and a half (thousand)"
        whole = _word_value(" ".join(parts[:-3]))
        return None if whole is None else whole + 0.5
    for part in parts:
        if part in UNITS or part in TENS:
            current += UNITS.get(part, 0) + TENS.get(part, 0)
        elif part == "couple":
            current += 2
        elif part == "dozen":
            current = (current or 1) * 12
        elif part == "hundred":
            current = (current or 1) * 100
        elif part not in {"and", "of"}:
            return None
    return total + current


def quantities(text: str) -> list[Quantity]:
    """Every number in `text`, scaled ("1.5k" is 1500), in order."""
    found = []
    for match in NUMBER.finditer(text):
        raw = match["value"]
        if VAGUE.search(text[: match.start()]) and not raw[0].isdigit():
            continue  # "a few hundred", "several dozen": too vague to size on
        if raw[0].isdigit() or raw[0] == ".":
            value = float(raw.replace(",", ""))
        else:
            word = _word_value(raw)
            if word is None:
                continue
            if word == 1 and not (
                match["scale"] or ONE_BEFORE_A_UNIT.search(text[: match.start()].lower())
            ):
                continue  # "a", "one" alone are rarely quantities
            value = word
        if match["scale"]:
            value *= MULTIPLIERS[match["scale"].lower()]
        found.append(Quantity(value, match.start(), match.end()))
    return found
