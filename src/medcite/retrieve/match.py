"""Which of a question's concepts a text holds: IDF-weighted matching with morphology and vocabularies.

A question's content words become ``Concept`` objects weighted by their inverse document frequency in the
library. A text holds a concept when it has the word's Snowball stem, one of its vocabulary equivalents (the
library's synonym sets, clinical shorthand, abbreviations its documents define, brand and lay names from the
maintained drug and disease vocabularies), or, for less credit, a word of the same family (a shared stem
prefix: 'pregnant' and 'pregnancy', 'prophylactic' and 'prophylaxis'; Snowball stems them apart). A short word
the library never uses ('eos', 'bicarb', 'subcut') matches the library's words it begins. Words naming a case's
measured findings ('HR', 'Hb') weigh less: they describe the patient, not what is asked. Imports ``store``,
``retrieve.query`` and ``retrieve.question`` only.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import snowballstemmer

from medcite.vocabulary import EVERYDAY_MIN_COUNT, disease_name_count, everyday_count

if TYPE_CHECKING:
    from medcite.retrieve.question import QuestionFrame
    from medcite.retrieve.retriever import Retriever

__all__ = [
    "FAMILY_CREDIT",
    "FINDING_WEIGHT",
    "PREFIX_CREDIT",
    "Concept",
    "TermMatcher",
    "everyday_factor",
    "family_prefix",
    "negated_stems",
    "negation_agreement",
    "stem_set",
    "stem_word",
    "stems_of",
]

FAMILY_CREDIT = 0.7
"""Credit (0-1) for a word of the same family (shared stem prefix) instead of the question's own word."""
PREFIX_CREDIT = 0.8
"""Credit (0-1) for a library word that begins with a short word the library never uses ('eos' -> eosinophil)."""
CLASS_CREDIT = 0.8
"""Credit (0-1) for a drug of the class the question names ('amoxicillin' for 'antibiotics')."""
FINDING_WEIGHT = 0.3
"""Weight factor for a word that names a measured finding of the case ('HR 115': 'HR')."""
FAMILY_MIN_CHARS = 6
"""Stems at least this long get a family prefix: 80% of the stem, at least 5 characters."""
CONVERSATIONAL_MAX_DF = 2
"""A word in at most this many passages of the library ..."""
"""... that occurs at least ``vocabulary.EVERYDAY_MIN_COUNT`` times in everyday English (``everyday_count``) is
conversation ('mom', 'gone', 'shaky'), not a clinical concept the library lacks; it weighs ``CONVERSATIONAL_WEIGHT``."""
CONVERSATIONAL_WEIGHT = 0.1
CLINICAL_MIN_DISEASE_NAMES = 10
"""... unless at least this many disease names (MeSH entry terms, ``vocabulary.disease_name_count``) hold it: 'dental'
(76 names) is a clinical word the library lacks, 'mom' (none) is conversation."""
EVERYDAY_SLOPE = 0.4
"""How much an everyday word's weight falls per tenfold of its everyday-English count above 10,000
(``everyday_factor``); chosen by cross-validation of the passage model (``benchmarks/learn_weights.py``)."""
EVERYDAY_FLOOR = 0.2


def everyday_factor(word: str) -> float:
    """Weight factor (``EVERYDAY_FLOOR``-1) of a word by how common it is in everyday English.

    ``1 - EVERYDAY_SLOPE * (log10(count) - 4)``, clipped: 1 up to 10,000 uses ('insulin', 'chest'), lower for
    everyday words ('take', 'better', 'stop'), which say little about what a clinical question asks.
    """
    count = everyday_count(word)
    if count <= 10_000:
        return 1.0
    return max(EVERYDAY_FLOOR, 1.0 - EVERYDAY_SLOPE * (math.log10(count) - 4.0))


_WORD = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", re.I)
_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=131072)
def stem_word(word: str) -> tuple[str, ...]:
    """Snowball (Porter2) stems of a lower-cased word; hyphenated words also by their parts."""
    if "-" in word:
        return (_STEMMER.stemWord(word), *(_STEMMER.stemWord(part) for part in word.split("-") if part))
    return (_STEMMER.stemWord(word),)


def stem_set(text: str) -> set[str]:
    """Snowball stems of every word of a text (hyphenated words also by their parts)."""
    return {stem for word in _WORD.findall(text) for stem in stem_word(word.lower())}


def stems_of(text: str) -> frozenset[str]:
    """``stem_set`` as a frozenset (cached for repeated texts such as headings and titles)."""
    return _stems_cached(text)


@functools.lru_cache(maxsize=65536)
def _stems_cached(text: str) -> frozenset[str]:
    return frozenset(stem_set(text))


def family_prefix(stem: str) -> str | None:
    """The prefix shared by a stem's word family (80% of a stem of 6+ characters, at least 5), else None."""
    if len(stem) < FAMILY_MIN_CHARS or not stem.isalpha():
        return None
    return stem[: max(5, math.ceil(0.8 * len(stem)))]


@dataclass(frozen=True)
class Concept:
    """One content word (or phrase) of a question and what in a text counts as holding it."""

    text: str
    weight: float
    stems: frozenset[str]
    aliases: tuple[frozenset[str], ...] = ()
    family: str | None = None
    prefix: str | None = None
    members: frozenset[str] = frozenset()
    """Stems of the drugs of the class the concept names ('antibiotics': amoxicillin, ...)."""
    is_finding: bool = False
    in_library: bool = True
    is_negated: bool = False
    """The question rules it out ('no DM'): it describes the patient, it is not what is asked."""
    variants: frozenset[frozenset[str]] = frozenset()
    """The aliases that share a word with the question's phrase they stand for ('hypertensive urgency' for
    'hypertensive emergency'): entry terms of one heading that a guideline may tell apart."""

    def strength(self, stems: frozenset[str] | set[str], *, variants: bool = True) -> float:
        """How fully (0-1) a text's stems hold this concept: own stems or an alias 1, family or prefix less.

        ``variants=False`` reads exactly: the concept's own stems or an alias that is not a variant count 1, and
        nothing else counts (no variant, 'hypertensive urgency' for 'hypertensive emergency', which MeSH lists as
        entry terms of one heading; no class, prefix or family credit). ``heading_gap`` was fitted on this reading.
        """
        if self.stems and self.stems <= stems:
            return 1.0
        if not variants:  # the exact reading: own words and true aliases only, no partial credit
            return 1.0 if any(a <= stems for a in self.aliases if a not in self.variants) else 0.0
        if any(alias <= stems for alias in self.aliases):
            return 1.0
        if self.members and self.members & stems:
            return CLASS_CREDIT
        if self.prefix is not None and _begins_one(self.prefix, stems):
            return PREFIX_CREDIT
        if self.family is not None and _begins_one(self.family, stems):
            return FAMILY_CREDIT
        return 0.0


def _begins_one(prefix: str, stems: frozenset[str] | set[str]) -> bool:
    """Whether a stem begins with ``prefix`` (remembered for frozensets: the same texts are asked about often)."""
    if isinstance(stems, frozenset):
        return _begins_one_cached(prefix, stems)
    return any(stem.startswith(prefix) for stem in stems)


@functools.lru_cache(maxsize=262144)
def _begins_one_cached(prefix: str, stems: frozenset[str]) -> bool:
    return any(stem.startswith(prefix) for stem in stems)


@dataclass
class TermMatcher:
    """The question's concepts with their IDF weights; scores how much of the question a text holds."""

    concepts: list[Concept]
    total: float = field(init=False)

    def __post_init__(self) -> None:
        self.total = max(sum(concept.weight for concept in self.concepts), 1e-9)

    @classmethod
    def build(cls, frame: QuestionFrame, retriever: Retriever, *, text: str | None = None) -> TermMatcher:
        """Weigh the content words of ``text`` (default: the question's focus) by IDF in the retriever's library.

        Raises:
            QueryError: The text has nothing to search for.
        """
        source = text if text is not None else frame.focus
        expanded = retriever.normalize(source)
        idf = retriever.idf
        vocabulary = retriever.vocabulary
        words = [m.group(0) for m in re.finditer(r"\w+(?:[-.'’/]\w+)*", source)]
        phrase_aliases = _phrase_aliases(words, vocabulary)
        phrase_words = {word for phrase, _, _ in phrase_aliases for word in phrase.split()}
        denied = negated_stems(source)
        concepts: list[Concept] = []
        seen: set[frozenset[str]] = set()
        for term in _split_unknown_compounds(expanded.terms, retriever):
            stems = frozenset(stem_set(term))
            if not stems or stems in seen:
                continue
            seen.add(stems)
            equivalents = vocabulary.equivalents(term)
            surfaces = [(equivalent, frozenset(stem_set(equivalent))) for equivalent in equivalents]
            surfaces += [(equivalent, alias) for key, equivalent, alias in phrase_aliases if term.lower() in key]
            surfaces = [(equivalent, alias) for equivalent, alias in surfaces if alias and alias != stems]
            aliases = [alias for _, alias in surfaces]
            variants = {
                alias
                for key, _, alias in phrase_aliases
                if term.lower() in key and alias in aliases and alias & stem_set(key) and not stem_set(key) <= alias
            }
            df = retriever.document_frequency(term)
            family = None
            if len(stems) == 1:
                family = family_prefix(next(iter(stems)))
            prefix = None
            lowered = term.lower()
            # A short word the library never (or, for an abbreviation, hardly) uses matches the words it begins:
            # 'eos' -> eosinophils, 'bicarb' -> bicarbonate, 'NEWS' -> NEWS2.
            rare = df == 0 or (term.isupper() and df < 3)
            if rare and lowered.isalpha() and 3 <= len(lowered) <= 6:
                prefix_df = retriever.document_frequency(lowered, prefix=True)
                prefix = lowered if prefix_df else None
            # One-word drug names only: 'polymyxin b' must not make every 'b' an antibiotic.
            names = list(vocabulary.members_of(term))
            for equivalent in equivalents:  # 'abx' -> 'antibiotics' -> the library's antibiotics
                names += vocabulary.members_of(equivalent)
            members = {stem for drug in names if " " not in drug and len(drug) >= 4 for stem in stem_word(drug)}
            alias_weight = _alias_idf([equivalent for equivalent, _ in surfaces], retriever)
            alias_weight = alias_weight or (idf(lowered, prefix=True) if prefix else 0.0)
            in_library = bool(df or alias_weight or members)
            weight = idf(term) if df and not prefix else alias_weight or idf(term)
            if (
                df <= CONVERSATIONAL_MAX_DF
                and not aliases
                and everyday_count(lowered) >= EVERYDAY_MIN_COUNT
                and disease_name_count(lowered) < CLINICAL_MIN_DISEASE_NAMES
            ):
                weight = CONVERSATIONAL_WEIGHT * (weight or idf(term))
                in_library = True  # conversation the library need not hold, not a concept it lacks
            elif not in_library:
                weight = math.log(1.0 + retriever.n_passages)  # unknown to the library: as rare as can be
            elif lowered not in phrase_words:  # 'heart' in 'heart failure' names a disease, not small talk
                weight *= everyday_factor(lowered)
            is_finding = lowered in frame.findings
            is_negated = bool(stems) and stems <= denied
            if is_finding:
                weight *= FINDING_WEIGHT
            concepts.append(
                Concept(
                    text=term,
                    weight=weight,
                    stems=stems,
                    aliases=tuple(dict.fromkeys(aliases)),
                    family=family,
                    prefix=prefix,
                    members=frozenset(members),
                    is_finding=is_finding,
                    in_library=in_library,
                    is_negated=is_negated,
                    variants=frozenset(variants),
                )
            )
        return cls(concepts=concepts)

    def strengths(self, stems: frozenset[str] | set[str]) -> list[float]:
        """Per-concept match strengths (0-1) for a text's stems, in concept order."""
        return [concept.strength(stems) for concept in self.concepts]

    def coverage(
        self,
        body: frozenset[str] | set[str],
        *contexts: tuple[frozenset[str] | set[str], float],
        variants: bool = True,
    ) -> float:
        """IDF-weighted fraction (0-1) of the question held by ``body``.

        Each ``(stems, factor)`` context (a heading, a title) adds what the body lacks at ``factor`` (0-1) of its
        weight; the best source of each concept counts. ``variants=False``: see ``Concept.strength``.
        """
        score = 0.0
        for concept in self.concepts:
            best = concept.strength(body, variants=variants)
            for stems, factor in contexts:
                if best >= 1.0:
                    break
                best = max(best, factor * concept.strength(stems, variants=variants))
            score += concept.weight * best
        return min(score / self.total, 1.0)

    def key_concepts(self, n: int = 2) -> list[Concept]:
        """The ``n`` most specific concepts (highest weight; findings and ruled-out ones last): usually the topic."""
        return sorted(self.concepts, key=lambda c: (c.is_finding or c.is_negated, -c.weight, c.text))[:n]

    def key_coverage(self, stems: frozenset[str] | set[str], n: int = 2) -> float:
        """Weighted fraction (0-1) of the ``n`` most specific concepts that ``stems`` hold."""
        key = self.key_concepts(n)
        total = sum(c.weight for c in key)
        return sum(c.weight * c.strength(stems) for c in key) / total if total else 1.0

    def missing(self, stems: frozenset[str] | set[str], *, min_strength: float = 0.5) -> list[Concept]:
        """Concepts (not findings) a text does not hold, most specific first."""
        return [
            c
            for c in sorted(self.concepts, key=lambda c: -c.weight)
            if not c.is_finding and c.strength(stems) < min_strength
        ]

    def prefix_query(self) -> str | None:
        """An FTS5 query of the concepts' family and short-word prefixes ('"pregnan"*'), None when there are none."""
        parts = []
        for concept in self.concepts:
            for prefix in (concept.prefix, concept.family):
                if prefix:
                    parts.append('"' + prefix.replace('"', '""') + '"*')
        return " OR ".join(dict.fromkeys(parts)) or None


def _split_unknown_compounds(terms: Sequence[str], retriever: Retriever) -> list[str]:
    """The terms, each hyphenated one the library never holds, nor any equivalent of it, replaced by its parts.

    'clot-busting', 'moderate-high' and '10-yr' are written ad hoc; the library holds 'clot', 'moderate' and
    'high', and 'yr' is shorthand for 'year'. Numbers alone are dropped ('10'); a known compound ('COVID-19',
    'CHA2DS2-VASc', 'beta-lactam') stays whole.
    """
    out: list[str] = []
    for term in terms:
        if "-" not in term or retriever.document_frequency(term) or retriever.vocabulary.equivalents(term):
            out.append(term)
            continue
        parts = [part for part in term.split("-") if part and not part.replace(".", "").isdigit()]
        out.extend(parts if parts else [term])
    return out


def _phrase_aliases(words: Sequence[str], vocabulary) -> list[tuple[str, str, frozenset[str]]]:
    """Equivalents of the question's multi-word phrases ('heart attack'): (phrase lower-cased, equivalent, stems)."""
    found: list[tuple[str, str, frozenset[str]]] = []
    for size in (4, 3, 2):
        for start in range(0, max(0, len(words) - size + 1)):
            phrase = " ".join(words[start : start + size])
            for equivalent in vocabulary.equivalents(phrase):
                stems = frozenset(stem_set(equivalent))
                if stems:
                    found.append((phrase.lower(), equivalent, stems))
    return found


def _alias_idf(equivalents: Iterable[str], retriever: Retriever) -> float:
    """The IDF of the rarest equivalent the library holds (a word the library lacks takes its equivalent's weight).

    Equivalents are looked up as written, every word in the passage ('alteplase' for 'tPA'): the full-text index
    stems what it is given, so a Snowball stem ('alteplas') would miss the word it came from.
    """
    best = 0.0
    for equivalent in equivalents:
        terms = _WORD.findall(equivalent)  # a hyphenated word stays one phrase ('t-pa')
        if not terms:
            continue
        df = retriever.document_frequency(" ".join(terms), all_words=True)
        if df:
            best = max(best, math.log(1.0 + retriever.n_passages / (1.0 + df)))
    return best


_NEGATED = re.compile(
    r"\b(?:no|without|non|denies|denied|negative for|free of|absence of)[\s-]+(?:known |prior |history of |h/o )?"
    r"([a-z][a-z]{3,}|(?-i:[A-Z][A-Z0-9]+)\b)",
    re.I,
)
_NEGATOR = frozenset({"no", "without", "non", "not", "absence", "absent", "free", "negative", "denies", "denied"})
_WORDS = re.compile(r"[a-z][a-z0-9]*", re.I)
NEGATION_WINDOW = 5
"""Words after a negation cue that it rules out: NegEx's window (Chapman et al., "A simple algorithm for identifying
negated findings and diseases in discharge summaries", J Biomed Inform 2001), long enough for 'Without Risk Factors
for MRSA'."""
_EXCEPTION = frozenset({"except", "excluding", "unless"})
"""Exception cues: what follows them in the clause is ruled out ('withheld ..., except in ... those with diabetes
mellitus'), as NegEx's pre-negation triggers rule out what follows (Chapman et al., J Biomed Inform 2001)."""
EXCEPTION_WINDOW = 8
"""Words after an exception cue that it still rules out, within its clause (a list of exceptions runs longer than
NegEx's five-word window)."""
_CLAUSE_END = re.compile(r"[.;!?](?:\s|$)|\n")


def negated_stems(question: str) -> frozenset[str]:
    """Stems of what a question rules out: the word after 'no', 'without', 'non-', 'denies' ('no comorbidities')."""
    return frozenset(stem for match in _NEGATED.finditer(question) for stem in stem_word(match.group(1).lower()))


def negation_agreement(
    negated: frozenset[str], text: str, stems: frozenset[str] | set[str] | None = None
) -> tuple[float, float]:
    """``(agree, conflict)``, each 0 or 1: does a text rule out a negated concept too, or name it plainly?

    'Without Comorbidities' agrees with 'no comorbidities', as does an exception ('except in ... those with
    diabetes' with 'no diabetes'); 'patients with comorbidities' conflicts.
    """
    if not negated or (stems is not None and not negated & stems):  # ``stems``: the text's, when already known
        return 0.0, 0.0
    agree = conflict = False
    for clause in _CLAUSE_END.split(text):
        words = [word.lower() for word in _WORDS.findall(clause)]
        for index, word in enumerate(words):
            if stem_word(word)[0] not in negated:
                continue
            if _NEGATOR & set(words[max(0, index - NEGATION_WINDOW) : index]) or _EXCEPTION & set(
                words[max(0, index - EXCEPTION_WINDOW) : index]
            ):
                agree = True
            else:
                conflict = True
    return float(agree), float(conflict and not agree)
