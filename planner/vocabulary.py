"""The names the extractor recognises in free text: models, GPUs, use cases."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from planner.intent import UseCaseProfile

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*")
MAX_NAME_TOKENS = 8
PRECISIONS: dict[str, frozenset[str]] = {
    # A precision as people say it, and the words of checkpoint names that carry it.
    "fp8": frozenset({"fp8"}),
    "fp4": frozenset({"fp4", "nvfp4"}),
    "nvfp4": frozenset({"nvfp4"}),
    "int4": frozenset({"int4", "awq", "w4a16"}),
    "awq": frozenset({"awq"}),
    "w4a16": frozenset({"w4a16"}),
}
VARIANTS = frozenset({"distill", "coder", "small", "nemo", "mini"})
"""Words that make another model of a family: "qwen 2.5 7b" is not the Coder, "deepseek r1"
not a distill. Unsaid, they rule a model out (unless the family alone is named)."""
SIZE = re.compile(r"(?:\d+x)?\d+(?:\.\d+)?[bm]")
"""A parameter count ("8x7b" for experts x size); one no name of the family carries
("DeepSeek R1 671B") is not held against a model."""
VERSION = re.compile(r"\d+(?:\.\d+)*")
"""A version as said: "3", "3.1"."""
MAKERS = {
    "meta": "llama",
    "google": "gemma",
    "microsoft": "phi",
    "alibaba": "qwen",
    "ibm": "granite",
    "moonshot": "kimi",
    "zhipu": "glm",
    "openai": "gpt",
}
"""A maker named for its models ("nothing from Meta"): the extractor takes it only where it
is ruled out, since "Google Drive" or "an OpenAI-compatible API" name no model."""
ORIGINS = {"chinese": frozenset({"qwen", "deepseek", "kimi", "glm", "minimax"})}
"""Families by where their makers are, as compliance rules name them ("no Chinese models"):
Alibaba (Qwen), DeepSeek, Moonshot (Kimi), Zhipu (GLM) and MiniMax are Chinese labs. Taken,
like a maker, only where ruled out."""
ORIGIN_NOUNS = frozenset({"model", "models", "llm", "llms", "lab", "labs", "ones", "weights"})
LINKS = frozenset({"in", "at", "with"})
"""Words between a name and its precision: "llama 3.3 70b in fp8"."""


def _starts_version(word: str, words: frozenset[str]) -> bool:
    """Whether `word` is a major version some of `words` carry a minor of ("3" of "3.1")."""
    return any(w.startswith(word + ".") for w in words)


def _another_version(word: str, own: frozenset[str]) -> bool:
    """A version said after a family word that none of the family's names carries, nor
    starts ("3" starts "3.1"): "gpt-4o" and "gpt 4" are not gpt-oss, "llama 2" no Llama 3."""
    return (
        bool(re.fullmatch(r"\d[\w.]*", word))
        and not SIZE.fullmatch(word)
        and word not in own
        and not _starts_version(word, own)
    )


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; dots stay inside version numbers ("3.1")."""
    return _TOKEN.findall(text.lower())


def key(name: str) -> str:
    """What a name looks like once case, spaces, hyphens and slashes no longer matter."""
    return "-".join(tokens(name))


def name_words(text: str, families: frozenset[str]) -> list[str]:
    """Tokens of a model name as written, a family glued to its version split off
    ("qwen2.5" is qwen, 2.5; "llama3.1-8b" is llama, 3.1, 8b) and plurals of variants
    singular ("distills")."""
    words = []
    for token in tokens(text):
        glued = re.fullmatch(r"([a-z]+)(\d+(?:\.\d+)*)", token)
        if glued and glued[1] in families:
            words += [glued[1], glued[2]]
        elif token.endswith("s") and token[:-1] in families:
            words.append(token[:-1])  # "the mixtrals"
        elif "." in token and not re.fullmatch(r"[a-z]?\d+(?:\.\d+)*", token):
            words += token.split(".")  # "quantized.w4a16"
        else:
            singular = token[:-2] if token.endswith("ed") else token[:-1]  # "distills", "distilled"
            words.append(singular if singular in VARIANTS else token)
    return words


@dataclass(frozen=True)
class ModelName:
    """A catalog model as its name reads: its family word and every word of the name."""

    id: str
    family: str
    words: frozenset[str]
    params_b: float = 0.0
    """Parameters in billions, all experts counted ("nothing over 100B params")."""

    @classmethod
    def of(cls, model_id: str, families: frozenset[str], params_b: float = 0.0) -> ModelName:
        words = name_words(model_id.rsplit("/", 1)[-1], families)
        if words[0] == "meta":  # "Meta-Llama-3.1-8B"
            words = words[1:]
        return cls(model_id, words[0], frozenset(words), params_b)

    def meant_by(self, said: list[str], family_words: frozenset[str], versions: bool) -> bool:
        """Whether words naming this family (`said`, family first) mean this model;
        `family_words` are the words of the family's names. With `versions` False a version
        said ("llama 3") may stand for its minor ones (3.1)."""
        rest = set(said[1:])
        if rest and (self.words & VARIANTS) - rest:
            return False
        for word in rest:
            if word in PRECISIONS:
                if not self.words & PRECISIONS[word]:
                    return False
            elif word in self.words:
                continue
            elif not versions and re.fullmatch(r"\d+", word):
                if not _starts_version(word, self.words):
                    return False
            elif word in family_words or not SIZE.fullmatch(word):
                return False
        return True


@dataclass(frozen=True)
class Mention:
    ids: tuple[str, ...]
    start: int
    end: int
    """Token positions of the mention."""
    by_maker: bool = False
    """Named by its maker ("Meta") or its makers' origin ("Chinese models"), not by itself."""


@dataclass(frozen=True)
class Vocabulary:
    """Catalog names, keyed by `key(name)`.

    A GPU family word ("A100") names every variant of the family; a specific name
    ("A100 40GB") only its own.
    """

    models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Exact names (ids and aliases): what a what-if's `model=` may say."""
    model_names: tuple[ModelName, ...] = ()
    """Every model by family, for names as people write them ("llama 70b", "qwen coder")."""
    gpus: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gpu_vendors: dict[str, str] = field(default_factory=dict)
    use_cases: tuple[UseCaseProfile, ...] = ()

    @classmethod
    def build(
        cls,
        models: Iterable[tuple[str, Iterable[str], float]],
        gpus: Iterable[tuple[str, str, Iterable[str]]],
        use_cases: Iterable[UseCaseProfile] = (),
    ) -> Vocabulary:
        """From (id, aliases, billions of parameters) of models and (id, vendor, aliases) of
        GPUs."""
        # Ids and aliases claim a name outright; a repository name without its
        # organisation only where nothing claims it (as in kb.names).
        model_list = [(model_id, tuple(names), params) for model_id, names, params in models]
        model_names: dict[str, set[str]] = {}
        short: dict[str, set[str]] = {}
        for model_id, model_aliases, _ in model_list:
            for name in (model_id, *model_aliases):
                model_names.setdefault(key(name), set()).add(model_id)
            short.setdefault(key(model_id.rsplit("/", 1)[-1]), set()).add(model_id)
        for name, ids in short.items():
            model_names.setdefault(name, ids)
        gpu_names: dict[str, set[str]] = {}
        vendors = {}
        for gpu_id, vendor, aliases in gpus:
            vendors[gpu_id] = vendor
            family = tokens(gpu_id)[0]
            gpu_names.setdefault(family, set()).add(gpu_id)
            # A family named without its generation ("Gaudi" for Gaudi3).
            bare = family.rstrip("0123456789")
            if len(bare) >= 4 and bare != family:
                gpu_names.setdefault(bare, set()).add(gpu_id)
            for name in (gpu_id, *aliases):
                if key(name) != family:
                    gpu_names.setdefault(key(name), set()).add(gpu_id)
            memory = re.search(r"\d+gb", gpu_id.lower())
            if memory:  # "A100 80GB" names every A100 with 80 GB
                gpu_names.setdefault(f"{family}-{memory[0]}", set()).add(gpu_id)
                # ... and "A100 80GB PCIe" the one its id writes "A100-PCIE-80GB".
                form = [t for t in tokens(gpu_id)[1:] if t != memory[0]]
                if form:
                    gpu_names.setdefault("-".join([family, memory[0], *form]), set()).add(gpu_id)
        model_ids = [model_id for model_id, _, _ in model_list]
        families = frozenset(
            re.sub(r"\d.*", "", tokens(i.rsplit("/", 1)[-1].removeprefix("Meta-"))[0])
            for i in model_ids
        )
        return cls(
            models={k: tuple(sorted(v)) for k, v in model_names.items() if len(v) == 1},
            model_names=tuple(ModelName.of(i, families, p) for i, _, p in model_list),
            gpus={k: tuple(sorted(v)) for k, v in gpu_names.items()},
            gpu_vendors=vendors,
            use_cases=tuple(use_cases),
        )

    def find(self, words: list[str], names: dict[str, tuple[str, ...]]) -> list[Mention]:
        """Longest names first, without overlaps; a plural "s" is forgiven ("A100s")."""
        found = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_NAME_TOKENS, len(words) - i), 0, -1):
                candidate = "-".join(words[i : i + n])
                ids = names.get(candidate)
                if ids is None and candidate.endswith("s"):
                    ids = names.get(candidate[:-1])
                if ids is None and n > 1 and words[i].endswith("s"):  # "A100s 40GB"
                    ids = names.get("-".join([words[i][:-1], *words[i + 1 : i + n]]))
                if ids is not None and not self._other_product(words, i, n, names):
                    found.append(Mention(ids, i, i + n))
                    i += n
                    break
            else:
                i += 1
        return found

    @staticmethod
    def _other_product(words: list[str], i: int, n: int, names: dict[str, tuple[str, ...]]) -> bool:
        """A family word followed by a model number none of its names carries names another
        product: "rtx 4090s" are no RTX PRO 6000."""
        number = words[i + n] if n == 1 and i + 1 < len(words) else ""
        if not re.fullmatch(r"\d{3,5}[a-z]{0,3}", number):
            return False
        prefix = f"{words[i]}-{number.rstrip('s')}"
        return not any(name.startswith(prefix) for name in names)

    def find_models(self, text: str) -> list[Mention]:
        """Models as people name them: a family word and what follows it that names a
        model (version, size, variant, precision). Each names every catalog model it can
        mean: "llama 3.3 70b" the instruct model and its FP8 checkpoint, "qwen coder" both
        Coders, "the deepseek distill" every distill, "phi" the whole family; a precision
        said narrows it ("llama 3.3 70b in fp8")."""
        families = frozenset(m.family for m in self.model_names)
        words = name_words(text, families)
        found, i = [], 0
        while i < len(words):
            start = i
            if words[i] in {"r1", "distill"}:  # "r1 distill llama 8b", "no distills"
                said = ["deepseek", words[i]]
                if i >= 2 and words[i - 1] == "based" and words[i - 2] in families:
                    said.append(words[i - 2])  # "the llama-based R1 distills"
                    start = i - 2
            elif words[i] in MAKERS and MAKERS[words[i]] in families:
                found.append(Mention(self._meant([MAKERS[words[i]]]), i, i + 1, by_maker=True))
                i += 1
                continue
            elif words[i] in ORIGINS and words[i + 1 : i + 2] and words[i + 1] in ORIGIN_NOUNS:
                origin = ORIGINS[words[i]]
                ids = tuple(sorted(m.id for m in self.model_names if m.family in origin))
                found.append(Mention(ids, i, i + 2, by_maker=True))
                i += 2
                continue
            elif words[i] in families and words[i + 1 : i + 2] != ["based"]:
                said = [words[i]]  # ("qwen-based ones" are some other family's models)
            else:
                i += 1
                continue
            # What the family's own names hold continues the name: "qwen3 32b fp8".
            own = self._family_words(said[0])
            i += 1
            if i < len(words) and _another_version(words[i], own):
                continue  # "gpt-4o", "llama 2": a model of the name the catalog lacks
            while i < len(words):
                if words[i] in LINKS and i + 1 < len(words) and words[i + 1] in PRECISIONS:
                    i += 1
                version = _starts_version(words[i], own)  # "llama 3"
                if f"{words[i]}b" in own and re.fullmatch(r"\d+", words[i]) and not version:
                    words[i] += "b"  # "gpt oss 120": a size of the family, its "b" unsaid
                said_of_family = words[i] in own or version
                if not (said_of_family or words[i] in PRECISIONS or SIZE.fullmatch(words[i])):
                    break
                said.append(words[i])
                i += 1
            if said[0] != "deepseek" and words[i : i + 1] in (["r1"], ["distill"]):
                # "the qwen 32b distill": a distill of that family and size
                said = ["deepseek", "distill", *said]
                while words[i : i + 1] in (["r1"], ["distill"]):
                    i += 1
            ids = self._meant(said)
            if ids:
                found.append(Mention(ids, start, i))
            # "llama 3.1 8b or 70b", "Llama 4 Maverick or Scout": a size or variant after
            # "or"/"and" names another model of the same family and version. (A bare number
            # there is something else, "llama 70b and 3 engineers"; a family word starts a
            # name of its own, "llama 3.1 70b or llama 3.3 70b".)
            versions = [w for w in said[1:] if VERSION.fullmatch(w)]
            while ids and words[i : i + 1] in (["or"], ["and"]):
                j = i + 1
                while j < len(words) and not (VERSION.fullmatch(words[j]) or words[j] in families):
                    if not (words[j] in own or words[j] in PRECISIONS or SIZE.fullmatch(words[j])):
                        break
                    j += 1
                ids = self._meant([said[0], *versions, *words[i + 1 : j]]) if j > i + 1 else ()
                if ids:
                    found.append(Mention(ids, i + 1, j))
                    i = j
        return found

    def at_size(self, size: str, like: tuple[str, ...] = ()) -> tuple[str, ...]:
        """ "the 32b" said alone: the model of that size, of the family, version and variant
        of the models `like` it named before ("qwen2.5 coder 7b or maybe the 32b"); with
        none named, the models of that size if one family has them ("the 405b")."""
        before = [m for m in self.model_names if m.id in like]
        if before:
            shared = frozenset.intersection(*(m.words for m in before))
            kept = [w for w in shared if w in VARIANTS or (VERSION.fullmatch(w) and w != size)]
            return self._meant([before[0].family, *sorted(kept), size])
        sized = [m for m in self.model_names if size in m.words]
        families = {m.family for m in sized}
        return tuple(sorted(m.id for m in sized)) if len(families) == 1 else ()

    def larger_than(self, billions: float) -> tuple[str, ...]:
        """The models with more parameters than `billions` ("nothing over 100B params")."""
        return tuple(sorted(m.id for m in self.model_names if m.params_b > billions))

    def _family_words(self, family: str) -> frozenset[str]:
        return frozenset().union(*(m.words for m in self.model_names if m.family == family))

    def _meant(self, said: list[str]) -> tuple[str, ...]:
        family = [m for m in self.model_names if m.family == said[0]]
        if said[0] == "deepseek" and said[1:2] == ["distill"]:
            family = [m for m in self.model_names if "distill" in m.words]
        words = frozenset().union(*(m.words for m in family))
        for versions in (True, False):
            ids = tuple(sorted(m.id for m in family if m.meant_by(said, words, versions)))
            if ids:
                return ids
        return ()
