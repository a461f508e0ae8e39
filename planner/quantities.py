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
WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "dozen": 12,
    "half": 0.5,
    "quarter": 0.25,
}
_DIGITS = r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_WORD = (
    r"half\s+an?|a\s+quarter\s+of\s+an?|an?(?=\s+(?:million|thousand|hundred|dozen|billion))|"
    + "|".join(w for w in WORDS if w not in {"half", "quarter", "a", "an"})
)
_SCALE = r"k|thousand|m|mn|million|millions|b|bn|billion"
NUMBER = re.compile(
    rf"(?<![\w.])(?P<value>{_DIGITS}|(?:{_WORD})(?:\s+hundred)?)"
    rf"(?:\s*(?P<scale>{_SCALE})\b)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Quantity:
    value: float
    start: int
    end: int
    """Character span of the number (and its scale word) in the text."""


def _word_value(words: str) -> float | None:
    parts = words.lower().split()
    if parts[:1] == ["half"]:
        return 0.5
    if parts[:2] == ["a", "quarter"]:
        return 0.25
    total = 1.0
    for part in parts:
        if part not in WORDS:
            return None
        total = total * WORDS[part] if part in {"hundred", "dozen"} else WORDS[part]
    return total


def quantities(text: str) -> list[Quantity]:
    """Every number in `text`, scaled ("1.5k" is 1500), in order."""
    found = []
    for match in NUMBER.finditer(text):
        raw = match["value"]
        if raw[0].isdigit() or raw[0] == ".":
            value = float(raw.replace(",", ""))
        else:
            word = _word_value(raw)
            if word is None or (word == 1 and not match["scale"]):
                continue  # "a", "one" alone are rarely quantities
            value = word
        if match["scale"]:
            value *= MULTIPLIERS[match["scale"].lower()]
        found.append(Quantity(value, match.start(), match.end()))
    return found
