"""Words as people type them, read as the words they mean: "sumarize", "studnets",
"transaltion", "accurcy" and "abt" before the extractor reads them.

A word is corrected only to a word the extractor knows (`KNOWN`), only when it is one edit
away (a letter left out, added or two swapped; a letter changed only in long words), only
when exactly one known word is that close, and only when it is long enough that one edit
rarely makes another real word (`MIN_LENGTH`).
"""

from __future__ import annotations

import re
from functools import cache

KNOWN = frozenset({
    "summarize", "summarise", "summarizes", "summarises", "summarizing", "summarising",
    "summary", "summaries", "summarizer", "summariser", "translate", "translates",
    "translating", "translation", "translations", "translator", "extract", "extraction",
    "extracting", "classify", "classification", "classifier", "autocomplete",
    "autocompletion", "completion", "completions", "generate", "generates", "generating",
    "generation", "generator", "reasoning", "reason", "problem", "problems", "solving",
    "solver", "assistant", "chatbot", "conversation", "conversational", "support",
    "customer", "customers", "students", "engineers", "developers", "employees", "analysts",
    "agents", "users", "people", "latency", "accuracy", "accurate", "quality", "correct",
    "correctness", "cheap", "cheapest", "cheaper", "expensive", "budget", "month",
    "monthly", "hour", "hourly", "second", "seconds", "minute", "minutes", "daily",
    "weekly", "requests", "request", "queries", "messages", "tickets", "documents",
    "descriptions", "description", "product", "products", "context", "tokens", "token",
    "million", "thousand", "hundred", "availability", "uptime", "priority", "instant",
    "realtime", "really", "around", "about", "important", "matters", "doesn't", "response",
    "responses", "answer", "answers", "first", "within", "under", "maximum", "minimum",
    "average", "distill", "distilled", "suggestions", "suggestion", "knowledge", "manuals",
    "handbook", "policies", "policy", "contracts", "insurance", "hospital", "patients",
    "university", "ecommerce", "marketing", "security", "government", "science", "finance",
    "education", "gaming", "travel", "medical", "legal", "throughput", "concurrent",
    "concurrency", "parallel", "speed", "fast", "quickly", "quick", "faster", "fastest",
    "snappy", "english", "from", "the", "with", "hotel", "pension", "active", "complete",
    "doctors", "nurses", "records", "biotech", "invoice", "invoices", "spanish", "french",
    "german", "portuguese", "italian", "japanese", "chinese", "russian", "arabic", "turkish",
    "vietnamese", "korean", "content", "nothing", "nvidia", "microsoft", "google",
    "immediately", "models", "players", "articles", "article",
})  # fmt: skip
"""The words the extractor's rules are written with. (Not the languages: "finish" is one
edit from "finnish".)"""
REAL = frozenset({"germany", "javanese"})
"""Real words one edit from a known one, never corrected to it ("in Germany" is no German,
Javanese no Japanese)."""
SHORTHAND = {
    "abt": "about",
    "teh": "the",
    "frm": "from",
    "ppl": "people",
    "wrds": "words",
    "lat": "latency",
    "engl": "english",
    "lama": "llama",
    "quen": "qwen",
    "ninty": "ninety",
}
"""Chat shorthand, and misspellings too short to correct by one edit ("lama 3.2 3b"), that
the rules would otherwise not read."""
MIN_LENGTH = 5
MIN_SUBSTITUTED = 8
WORD = re.compile(r"[A-Za-z][A-Za-z']+")


def corrected(text: str) -> str:
    """The text with each mistyped word replaced by the known word it is one edit from."""
    return WORD.sub(lambda m: _word(m.group()), text)


def _word(word: str) -> str:
    lower = word.lower()
    if lower in SHORTHAND:
        return SHORTHAND[lower]
    if (
        len(lower) < MIN_LENGTH
        or lower in REAL
        or KNOWN & {lower, lower.removesuffix("s"), lower + "s"}
    ):
        return word  # known, or the plural or singular of a known word ("translators")
    meant = _meant(lower)
    return meant if meant is not None else word


@cache
def _meant(word: str) -> str | None:
    close = [
        known for known in KNOWN if abs(len(known) - len(word)) <= 1 and _one_edit(word, known)
    ]
    return close[0] if len(close) == 1 else None


def _one_edit(a: str, b: str) -> bool:
    """Whether `a` becomes `b` by one deletion, insertion, substitution or swap of two
    neighbouring letters."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            # A changed letter too often makes another real word ("content", "context").
            return len(a) >= MIN_SUBSTITUTED
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]
