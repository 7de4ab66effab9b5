"""Candidate statements and how they are scored: the core of the extractive composer's choices.

A passage is split into quotable units (``quote.split_units``); each unit is scored by the IDF-weighted share
of the question's terms it covers (its passage heading and document title counting less), evidence level,
recommendation-strength markers, recency and fit with the question's intent; units are picked by maximal
marginal relevance (Carbonell & Goldstein 1998) and the bottom line is chosen among the most direct ones.
Imports ``models``, ``intent``, ``quote`` and ``retrieve`` only; ``answer`` builds answers from these choices.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import snowballstemmer

from medcite.intent import (
    ANAPHORIC,
    CHOICE,
    INTENT_HEADINGS,
    INTENT_SECTIONS,
    MODERATE,
    OFF_TOPIC_SECTIONS,
    PRIMARY_SECTION,
    SECTION_CUES,
    STRONG,
    TIME_CUE,
    TIME_WINDOW_CUE,
)
from medcite.models import Audience, Hit, Intent
from medcite.quote import is_list_item, is_option_list, normalise_quote, split_units
from medcite.retrieve import EVIDENCE_PRIOR, Retriever, fts_query, query_terms

__all__ = [
    "BLOCK_ITEM_SLACK",
    "BOTTOM_LINE_MIN_COVERAGE",
    "DUPLICATE_JACCARD",
    "FOLLOW_UP_EMPHASIS",
    "MMR_LAMBDA",
    "TREATMENT_STEMS",
    "Query",
    "Unit",
    "choose_bottom_line",
    "evidence_prior",
    "intent_fit",
    "item_coverage",
    "jaccard",
    "overlaps",
    "reading_grade",
    "score_units",
    "section_of",
    "select_units",
    "stem_set",
    "stem_word",
    "timing_fit",
]

BOTTOM_LINE_MIN_COVERAGE = 0.45
"""A bottom-line statement must itself (heading at 0.75 weight, title at 0.5) cover this fraction of the question."""
BLOCK_ITEM_SLACK = 0.15
"""A list's coverage may fall this much (0-1) below its whole text's toward the mean of its items' coverage."""
DUPLICATE_JACCARD = 0.6
"""Statements whose stem sets overlap this much (Jaccard, 0-1) with a chosen one are near-duplicates."""
MMR_LAMBDA = 0.75
"""Maximal marginal relevance trade-off (Carbonell and Goldstein, SIGIR 1998): 1 = relevance only."""
FOLLOW_UP_EMPHASIS = 2.0
"""In a follow-up, the follow-up's own terms weigh this many times their IDF against the carried-over ones."""

_WORD = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", re.I)
_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem_word(word: str) -> tuple[str, ...]:
    """Snowball (Porter2) stems of a lower-cased word; hyphenated words also by their parts."""
    if "-" in word:
        return (_STEMMER.stemWord(word), *(_STEMMER.stemWord(part) for part in word.split("-") if part))
    return (_STEMMER.stemWord(word),)


def stem_set(text: str) -> set[str]:
    """Snowball stems of every word of a text (hyphenated words also by their parts)."""
    return {stem for word in _WORD.findall(text) for stem in stem_word(word.lower())}


def reading_grade(texts: Sequence[str]) -> float | None:
    """Return the Flesch-Kincaid grade level of the texts (textstat; Kincaid et al. 1975), None when empty."""
    prose = " ".join(t for t in texts if t and not t.lstrip().startswith("|"))
    if not prose.strip():
        return None
    import textstat  # imported on first use: it loads its hyphenation dictionaries (~1 s) at import

    return round(float(textstat.flesch_kincaid_grade(prose)), 1)


# --- Candidate statements --------------------------------------------------------------------------------------


TREATMENT_STEMS = frozenset({"treatment", "treat", "therapi", "manag"})
"""Stems of the words for treatment that stand in for one another when a statement's coverage is scored."""


@dataclass
class Unit:
    """A candidate statement: verbatim text from one passage, with what scoring needs."""

    text: str
    hit: Hit
    is_block: bool
    order: int
    stems: set[str] = field(default_factory=set)
    section: str = ""
    relevance: float = 0.0
    score: float = 0.0


# --- Scoring ---------------------------------------------------------------------------------------------------


class _Weights:
    """Inverse document frequencies of query stems, read from the library (cached per library version)."""

    _cache: dict[tuple[int, int, str], float] = {}

    def __init__(self, retriever: Retriever) -> None:
        self.store = retriever.store
        self.version = self.store.library_version()
        self.n_passages = max(self.store.count_passages(), 1)

    def idf(self, term: str) -> float:
        key = (id(self.store), self.version, term.lower())
        if key not in self._cache:
            match = fts_query([term])
            df = self.store.count_fts_matches(match) if match else 0
            self._cache[key] = math.log(1.0 + self.n_passages / (1.0 + df))  # BM25-style IDF, always > 0
        return self._cache[key]


@dataclass
class Query:
    """The question's own stems weighted by IDF, and vocabulary aliases that stand in for some of them.

    An alias (e.g. the stems of 'DKA') found in a text counts as the own terms it expands
    ('diabetic ketoacidosis'), so a passage in shorthand covers the question as fully as one in full words.
    """

    weights: dict[str, float]
    aliases: list[tuple[frozenset[str], frozenset[str]]]
    total: float
    emphasised: frozenset[str] = frozenset()  # a follow-up's own stems

    @classmethod
    def build(cls, question: str, retriever: Retriever, *, emphasis: str = "") -> Query:
        """Weigh the question's stems by IDF in the library; ``emphasis`` (a follow-up's words) counts double."""
        expanded = retriever.normalize(question)
        idf = _Weights(retriever)
        emphasised = stem_set(" ".join(query_terms(emphasis))) if emphasis else set()
        weights: dict[str, float] = {}
        for term in expanded.terms:
            stems = stem_set(term) - set(weights)
            for stem in stems:
                factor = FOLLOW_UP_EMPHASIS if stem in emphasised else 1.0
                weights[stem] = factor * idf.idf(term) / len(stems)
        aliases = []
        for expansion in expanded.expansions:
            stands_for = {stem for term in retriever.vocabulary.equivalents(expansion) for stem in stem_set(term)}
            covered = frozenset(stands_for & set(weights))
            if covered:
                aliases.append((frozenset(stem_set(expansion)), covered))
        # Guidelines say "management" or "therapy" where a question says "treatment" (plain English, not a
        # clinical fact): any of these words covers the others.
        for stem in TREATMENT_STEMS & set(weights):
            aliases += [(frozenset({other}), frozenset({stem})) for other in sorted(TREATMENT_STEMS - {stem})]
        return cls(
            weights=weights,
            aliases=aliases,
            total=max(sum(weights.values()), 1e-9),
            emphasised=frozenset(emphasised & set(weights)),
        )

    def key_coverage(self, stems: set[str], *, n_terms: int = 2) -> float:
        """Fraction (0-1) of the weight of the question's ``n_terms`` most specific terms (highest IDF) in ``stems``.

        The most specific terms usually name the condition and the intervention; a statement that misses
        them ("hydroxyethyl starches for acute resuscitation" for a pancreatitis question) answers another
        question even when it shares many common words.
        """
        if not self.weights:
            return 1.0
        key = sorted(self.weights, key=lambda stem: (-self.weights[stem], stem))[:n_terms]
        found = self._found(stems)
        return sum(self.weights[stem] for stem in key if stem in found) / sum(self.weights[stem] for stem in key)

    def found(self, stems: set[str]) -> set[str]:
        """The question's stems that ``stems`` hold, directly or through a vocabulary alias."""
        return self._found(stems)

    def _found(self, stems: set[str]) -> set[str]:
        found = {stem for stem in self.weights if stem in stems}
        for alias, covered in self.aliases:
            if alias <= stems:
                found |= covered
        return found

    def coverage(self, body: set[str], *contexts: set[str] | float) -> float:
        """IDF-weighted fraction (0-1) of the question's terms found in ``body``.

        ``contexts`` alternate stem sets and weights (0-1): a term missing from the body but found in a
        context set (a heading, a title) counts at that set's weight; the first matching set wins.
        """
        found = self._found(body)
        score = sum(self.weights[stem] for stem in found)
        for position in range(0, len(contexts) - 1, 2):
            stems, factor = contexts[position], contexts[position + 1]
            extra = self._found(stems) - found  # type: ignore[arg-type]
            score += factor * sum(self.weights[stem] for stem in extra)  # type: ignore[operator]
            found |= extra
        return min(score / self.total, 1.0)


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity (0-1) of two stem sets; 0 when either is empty."""
    return len(a & b) / len(a | b) if a and b else 0.0


def section_of(unit: Unit, intent: Intent) -> str:
    """The answer section a statement belongs in, from cues in its text, then in its passage heading."""
    heading = unit.hit.section.split(" > ")[-1] if unit.hit.section else ""
    if unit.is_block:  # a table or algorithm belongs where its heading puts it, whatever words it contains
        for title, cue in SECTION_CUES:
            if title != "Pitfalls" and cue.search(heading):
                return title
        return PRIMARY_SECTION[intent] if intent != "overview" else "Key points"
    if CHOICE.search(unit.text) and not SECTION_CUES[0][1].search(unit.text):
        return "Treatment"  # "First-line: amoxicillin 500 mg ..." is a treatment choice before it is a dose
    for title, cue in SECTION_CUES:
        if cue.search(unit.text):
            return title
    for title, cue in SECTION_CUES:
        if cue.search(heading):
            return title
    if re.search(r"treat|therap|manag|recommend|antibiotic|agent|drug", unit.text + " " + heading, re.I):
        return "Treatment"
    return PRIMARY_SECTION[intent] if intent != "overview" else "Key points"


def evidence_prior(evidence_type: str, audience: Audience) -> float:
    """Evidence-level prior (0-1); consumer-health sources rank first for patients."""
    if audience == "patient" and evidence_type == "consumer":
        return 1.0
    return EVIDENCE_PRIOR.get(evidence_type, 0.0)


def score_units(query: Query, hits: Sequence[Hit], intent: Intent, audience: Audience, extra: set[str]) -> list[Unit]:
    """Split hits into candidate statements and score each (coverage, rank, evidence, strength, recency, fit)."""
    top_score = max((h.score for h in hits if h.passage_id not in extra), default=1.0) or 1.0
    units: list[Unit] = []
    order = 0
    for hit in hits:
        heading, title = stem_set(hit.section), stem_set(hit.title)
        for text, is_block in split_units(hit.text):
            unit = Unit(text=text, hit=hit, is_block=is_block, order=order, stems=stem_set(text))
            order += 1
            unit.relevance = query.coverage(unit.stems, heading, 0.75, title, 0.5)
            unit.section = section_of(unit, intent)
            strength = 0.2 if STRONG.search(text) else 0.08 if MODERATE.search(text) else 0.0
            rank_factor = 0.0 if hit.passage_id in extra else hit.score / top_score
            recency = 0.05 * min(max(((hit.year or 2000) - 2000) / 25.0, 0.0), 1.0)
            fit = 0.1 if unit.section == PRIMARY_SECTION[intent] else 0.0
            block_penalty = 0.15 if is_block and intent not in ("dosing", "diagnosis") else 0.0
            unit.score = (
                0.55 * unit.relevance
                + 0.2 * rank_factor
                + 0.1 * evidence_prior(hit.evidence_type, audience)
                + strength
                + recency
                + fit
                - block_penalty
            )
            units.append(unit)
    return units


def overlaps(unit: Unit, other: Unit) -> bool:
    """Whether two statements quote the same words (one contains the other within a passage)."""
    if unit.hit.passage_id != other.hit.passage_id:
        return normalise_quote(unit.text) == normalise_quote(other.text)
    a, b = normalise_quote(unit.text), normalise_quote(other.text)
    return a in b or b in a


def select_units(units: list[Unit], *, limit: int, chosen: Sequence[Unit] = ()) -> list[Unit]:
    """Pick up to ``limit`` units by maximal marginal relevance, dropping near-duplicates of chosen ones."""
    picked: list[Unit] = []
    pool = sorted(units, key=lambda u: (-u.score, u.order))
    taken = list(chosen)
    while pool and len(picked) < limit:
        best: tuple[float, Unit] | None = None
        for unit in pool:
            similarity = max((jaccard(unit.stems, other.stems) for other in taken), default=0.0)
            if similarity >= DUPLICATE_JACCARD or any(overlaps(unit, other) for other in taken):
                continue
            value = MMR_LAMBDA * unit.score - (1 - MMR_LAMBDA) * similarity
            if best is None or value > best[0]:
                best = (value, unit)
        if best is None:
            break
        picked.append(best[1])
        taken.append(best[1])
        pool.remove(best[1])
    return picked


def intent_fit(unit: Unit, intent: Intent, *, headings: bool = True) -> float:
    """How well a statement's section and heading fit what the question asks for (-0.25 to 0.25).

    A treatment question is answered by a treatment or dosing statement under a treatment heading, not by
    a test to skip ("Do NOT routinely obtain sputum Gram stain ...") that shares its words.
    """
    primary = PRIMARY_SECTION[intent]
    fitting = INTENT_SECTIONS.get(intent, (primary,))
    value = 0.1 if unit.section == primary else 0.05 if unit.section in fitting else 0.0
    heading = INTENT_HEADINGS.get(intent) if headings else None
    if heading is not None and heading.search(unit.hit.section):
        return value + 0.15  # the guideline files it under the question's topic, whatever words it uses
    if intent != "overview" and unit.section not in fitting and unit.section in OFF_TOPIC_SECTIONS:
        value -= 0.25
    return value


def item_coverage(query: Query, unit: Unit, *context: set[str] | float) -> float:
    """Mean coverage (0-1) of a list's top-level items, each read with the list's lead-in line.

    A list answers only as well as its items do on average: one item's words must not carry a list of
    unrelated items ("No dose titration required." under another drug's heading). Tables and algorithm
    blocks get their whole text's coverage.
    """
    if not is_option_list(unit.text):
        return query.coverage(unit.stems, *context)
    lines = unit.text.splitlines()
    lead, items = ("", lines) if is_list_item(lines[0]) else (lines[0], lines[1:])
    items = [item for item in items if not item[:1].isspace()] or items
    return sum(query.coverage(stem_set(f"{lead} {item}"), *context) for item in items) / len(items)


def timing_fit(unit: Unit) -> float:
    """Bonus (0-0.4) for a statement that answers 'when': a time window or onset time beats a bare duration.

    A heading that names the window ("Time Windows") counts most: the guideline files the answer there.
    """
    if TIME_WINDOW_CUE.search(unit.hit.section.split(" > ")[-1]):
        return 0.4
    if TIME_WINDOW_CUE.search(unit.text):
        return 0.3
    return 0.1 if TIME_CUE.search(unit.text) else 0.0


def choose_bottom_line(query: Query, units: list[Unit], intent: Intent, *, timing: bool = False) -> list[Unit]:
    """Choose the 1-2 most direct statements: they name the question's terms themselves and carry weight.

    Candidates are prose or short option lists that do not lean on an earlier sentence ('These ...').
    A second statement is added only from the same document and when nearly as good as the first.
    """
    scored: list[tuple[float, Unit]] = []
    for unit in units:
        if unit.is_block and not is_option_list(unit.text):
            continue
        if ANAPHORIC.match(unit.text):
            continue
        # A guideline passage names its topic in the document title ("... Community-acquired Pneumonia"),
        # its setting in the heading ("Outpatient Treatment") and the choice in its own words.
        context = (stem_set(unit.hit.section), 0.75, stem_set(unit.hit.title), 0.5)
        direct = query.coverage(unit.stems, *context)
        if unit.is_block:
            direct = min(direct, max(item_coverage(query, unit, *context), direct - BLOCK_ITEM_SLACK))
        if direct < BOTTOM_LINE_MIN_COVERAGE:
            continue
        strength = 1.0 if STRONG.search(unit.text) else 0.4 if MODERATE.search(unit.text) else 0.0
        value = (
            direct
            + 0.3 * query.key_coverage(unit.stems | stem_set(unit.hit.section) | stem_set(unit.hit.title))
            + 0.3 * strength
            + (0.15 if CHOICE.search(unit.text) else 0.0)
            + intent_fit(unit, intent, headings=not timing)
            + (timing_fit(unit) if timing else 0.0)
            + 0.1 * EVIDENCE_PRIOR.get(unit.hit.evidence_type, 0.0)
            + 0.2 * (unit.score - 0.55 * unit.relevance > 0.3)  # a retrieved passage, not only a sibling
            + 0.1 * query.coverage(stem_set(unit.hit.title))  # the guideline about the topic first
        )
        scored.append((value, unit))
    scored.sort(key=lambda item: (-item[0], item[1].order))
    if not scored:
        return []
    first_value, first = scored[0]
    chosen = [first]
    for value, unit in scored[1:]:
        if value < 0.85 * first_value:
            break
        # A follow-up's own words ('pregnancy') that the first statement answers must be in the second too,
        # or the bottom line would mix the follow-up's answer with general advice.
        needed = query.emphasised & (first.stems | stem_set(first.hit.section))
        if (
            unit.hit.doc_id == first.hit.doc_id
            and needed <= unit.stems | stem_set(unit.hit.section)
            and not overlaps(unit, first)
            and jaccard(unit.stems, first.stems) < DUPLICATE_JACCARD
        ):
            chosen.append(unit)
            break
    return chosen
