"""A PubMed query from a clinical question: its concepts, joined as PubMed expects, filtered and ordered by evidence.

The question's concepts are the ones retrieval found (``retrieve.match`` via ``answer.retrieve_evidence``), each
with its weight in the library (an inverse document frequency). The query keeps the concepts that name the topic:

- a concept inside a negation ("no evidence of vertebral osteomyelitis on imaging", "without fever") is dropped:
  the question says it is absent, and searching for it finds the wrong papers;
- a concept whose weight is below ``MIN_CONCEPT_WEIGHT`` (a word in over a third of the library's passages:
  "evidence", "patient") names no topic and is dropped;
- words that stand next to each other in the question form one unit ("spinal implant", "sinus tract"), which
  PubMed's Automatic Term Mapping reads as a phrase or maps to MeSH;
- each unit is ORed with its synonyms from the library's vocabulary (MeSH entry terms, drug names; the
  retriever's ``Vocabulary.equivalents``), at most ``MAX_SYNONYMS``, leaving out the unit's own inflections and
  abbreviations (shorthand, or up to four capitals: 'tx', 'HF'), which PubMed reads ambiguously.

Units are ANDed, unquoted, so PubMed's own translation (ESearch's ``QueryTranslation``) maps them to MeSH. The
evidence filters are PubMed's publication types and subsets (PubMed Help, "Filters"): practice guidelines first,
then systematic reviews and meta-analyses, then randomized controlled trials, then any other study, each with an
abstract and not about animals only (PubMed's "Humans" filter expression). When too little is found, the query is
relaxed in steps: the least important unit (lowest weight) is dropped, one at a time, down to ``MIN_UNITS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from medcite.retrieve.match import stems_of
from medcite.retrieve.query import ABBREVIATIONS

__all__ = [
    "EVIDENCE_TIERS",
    "HUMANS_WITH_ABSTRACT",
    "MIN_CONCEPT_WEIGHT",
    "PubMedQuery",
    "QueryUnit",
    "build_pubmed_query",
    "relaxations",
]

MIN_CONCEPT_WEIGHT = 1.0
"""Concept weights are ln(N/df) over the library's passages; below 1.0 the word is in over 1/e (37%) of them."""
MAX_SYNONYMS = 3
MIN_UNITS = 2
EVIDENCE_TIERS: tuple[tuple[str, str], ...] = (
    ("Practice guideline", "(guideline[pt] OR practice guideline[pt])"),
    ("Systematic review or meta-analysis", "(systematic[sb] OR meta-analysis[pt])"),
    ("Randomized controlled trial", "randomized controlled trial[pt]"),
    ("Other study", ""),
)
"""(label, PubMed filter) in the order their records are taken."""
HUMANS_WITH_ABSTRACT = "hasabstract NOT (animals[mh] NOT humans[mh])"
"""Records with an abstract, excluding those indexed as about animals only (PubMed's Humans filter)."""
_NEGATION_CUE = re.compile(
    r"\b(?:no|not|never|without|denies|deny|denied|negative for|free of|absence of|ruled out|rules out)\b", re.I
)
_CLAUSE_END = re.compile(r"[,;.?!:()]|\bbut\b|\bhowever\b|\bwhereas\b", re.I)
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")
_SHORT_CAPITALS = re.compile(r"[A-Z0-9]{1,4}")
_MEASUREMENT = re.compile(r"\s*[:=]?\s*[<>]?\d")


@dataclass(frozen=True)
class QueryUnit:
    """One searched concept: its words as asked, their synonyms, and its importance (summed weights)."""

    text: str
    synonyms: tuple[str, ...] = ()
    weight: float = 0.0

    def as_query(self) -> str:
        """``(text OR synonym ...)``, unquoted so that PubMed's Automatic Term Mapping maps each."""
        terms = [self.text, *self.synonyms]
        return "(" + " OR ".join(terms) + ")"


@dataclass(frozen=True)
class PubMedQuery:
    """A PubMed query built from a question: the units searched and what was dropped, and why."""

    units: tuple[QueryUnit, ...]
    dropped: tuple[tuple[str, str], ...] = field(default=())
    """``(words, reason)``: 'negated' or 'too common'."""

    @property
    def text(self) -> str:
        """The topic part of the query (units ANDed), without evidence filters."""
        return " AND ".join(unit.as_query() for unit in self.units)

    def with_filter(self, tier_filter: str) -> str:
        """The query with an evidence tier's filter and the humans-with-abstract filter."""
        parts = [f"({self.text})", tier_filter, HUMANS_WITH_ABSTRACT] if self.units else []
        return " AND ".join(part for part in parts if part)


def _negated_spans(question: str) -> list[tuple[int, int]]:
    """Character spans from each negation cue to the end of its clause."""
    spans = []
    for cue in _NEGATION_CUE.finditer(question):
        end = _CLAUSE_END.search(question, cue.end())
        spans.append((cue.start(), end.start() if end else len(question)))
    return spans


def build_pubmed_query(
    question: str, concepts: Sequence[object], equivalents: Callable[[str], Sequence[str]] = lambda _term: ()
) -> PubMedQuery:
    """Build the query for ``question`` from its concepts and the library's ``equivalents(term)`` (best first).

    ``concepts`` are ``retrieve.match.Concept`` objects (``text``, ``weight``, ``is_negated``).

    Clinicians' shorthand is spelled out first (``retrieve.query.ABBREVIATIONS``: 'abx' -> 'antibiotics'), since
    PubMed does not read it; a word followed by a number ('HR 115', 'Hb 7.8') is a measurement, not the topic.
    """
    spans = _negated_spans(question)
    words = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(question)]
    lowered = [word.lower() for word, _, _ in words]
    kept: list[tuple[int, QueryUnit]] = []  # (word index, unit)
    dropped: list[tuple[str, str]] = []
    for concept in concepts:
        text = str(getattr(concept, "text", "")).strip()
        if not text:
            continue
        first = text.lower().split()[0]
        index = next((i for i, word in enumerate(lowered) if word == first), None)
        start = words[index][1] if index is not None else -1
        end = words[index + len(text.split()) - 1][2] if index is not None else -1
        weight = float(getattr(concept, "weight", 0.0))
        if bool(getattr(concept, "is_negated", False)) or any(a <= start < b for a, b in spans):
            dropped.append((text, "negated"))
        elif weight < MIN_CONCEPT_WEIGHT:
            dropped.append((text, "too common"))
        elif index is not None and _MEASUREMENT.match(question, end):
            dropped.append((text, "a measurement"))
        elif index is not None:
            spelled = ABBREVIATIONS.get(text.lower())
            name = spelled[0] if spelled else text
            others = _synonyms(name, equivalents(name))
            kept.append((index, QueryUnit(name, others, weight)))
    kept.sort(key=lambda item: item[0])
    units: list[QueryUnit] = []
    previous_end = -1
    previous_plain = False
    for index, unit in kept:
        plain = not unit.synonyms and unit.text.lower() == lowered[index]
        between = question[previous_end : words[index][1]] if previous_end >= 0 else ","
        if units and plain and previous_plain and between.strip() == "":  # 'spinal implant': one unit
            last = units[-1]
            units[-1] = QueryUnit(f"{last.text} {unit.text}", (), last.weight + unit.weight)
        else:
            units.append(unit)
        previous_end = words[index + len(unit.text.split()) - 1][2] if plain else words[index][2]
        previous_plain = plain
    return PubMedQuery(tuple(units), tuple(dropped))


def _synonyms(name: str, candidates: Sequence[str]) -> tuple[str, ...]:
    """Up to ``MAX_SYNONYMS`` of ``candidates``, none an inflection of ``name`` or of one kept, none an abbreviation."""
    seen = [stems_of(name)]
    kept: list[str] = []
    for term in candidates:
        stems = stems_of(term)
        if term.lower() in ABBREVIATIONS or _SHORT_CAPITALS.fullmatch(term) or not stems or stems in seen:
            continue
        seen.append(stems)
        kept.append(term)
        if len(kept) == MAX_SYNONYMS:
            break
    return tuple(kept)


def relaxations(query: PubMedQuery) -> list[tuple[PubMedQuery, str]]:
    """The query, then each relaxed step with what it did: the least important unit dropped, down to ``MIN_UNITS``."""
    steps = [(query, "as built")]
    current = query
    while len(current.units) > MIN_UNITS:
        weakest = min(current.units, key=lambda unit: unit.weight)
        current = PubMedQuery(
            tuple(unit for unit in current.units if unit is not weakest),
            (*current.dropped, (weakest.text, "relaxed")),
        )
        steps.append((current, f"dropped the least specific concept, {weakest.text!r}"))
    return steps
