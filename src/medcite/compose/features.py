"""Candidate statements of an evidence set and their features, for the learned statement ranker.

Every passage of the evidence is cut into quotable units with their context (``quote.split_passage``); each
unit gets a feature row (``UNIT_FEATURES``, each 0-1): how much of the question the unit with its context,
heading and document title holds; whether it has the form the question asks for (a dose for a dosing question,
a time for a 'when', a threshold for a target, a drug for 'which drug', a recommendation for a yes/no); how
many distinct drugs it names and whether it names a drug of a class the question asks about ('abx' ->
amoxicillin) rather than only the class word; whether what the question rules out ('no comorbidities') the
statement also rules out ('Without Comorbidities') or names plainly ('patients with comorbidities');
recommendation strength; whether a stated threshold fits the case's values; the kind of unit; and how its
passage ranked. ``UNIT_FEATURES`` weights are learned by ``benchmarks/learn_weights.py`` (listwise, cross-
validated by question). Imports ``models``, ``intent``, ``quote`` and ``retrieve`` only.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medcite.intent import (
    CHOICE,
    INTENT_HEADINGS,
    INTENT_SECTIONS,
    MODERATE,
    POPULATION,
    PRIMARY_SECTION,
    SECTION_CUES,
    STRONG,
)
from medcite.models import Hit, Intent
from medcite.quote import Piece, is_anaphoric, split_passage
from medcite.retrieve.match import TermMatcher, negated_stems, negation_agreement, stem_set, stems_of
from medcite.retrieve.question import QuestionFrame
from medcite.retrieve.rerank import numeric_fit, rank_feature, title_stems

__all__ = [
    "RESEARCH_TYPES",
    "UNIT_FEATURES",
    "Candidate",
    "abstract_role",
    "candidate_units",
    "section_of",
    "unasked_qualifier",
    "unit_features",
]

UNIT_FEATURES: tuple[str, ...] = (
    "passage_score",
    "passage_rank",
    "retrieved",
    "doc_top",
    "cover_text",
    "cover_context",
    "cover_all",
    "cover_heading",
    "key_cover",
    "key_cover_local",
    "intent_heading",
    "strong",
    "moderate",
    "negative",
    "has_dose",
    "has_time",
    "has_threshold",
    "has_drug",
    "form_dose",
    "form_time",
    "form_threshold",
    "form_options",
    "form_yes_no",
    "form_actions",
    "numeric_fit",
    "numeric_miss",
    "kind_sentence",
    "kind_item",
    "kind_list",
    "kind_row",
    "kind_table",
    "kind_step",
    "kind_algorithm",
    "length",
    "bare_anaphora",
    "cover_title",
    "early_in_document",
    "nested_block",
    "list_items",
    "population_mismatch",
    "context_novelty",
    "off_intent",
    "unasked_qualifier",
    "item_cover_mean",
    "drug_count",
    "class_member",
    "negation_agree",
    "negation_conflict",
    "heading_gap",
    "title_gap",
    "other_drug_only",
)
"""Names of the statement features, in the order of ``unit_features``' columns. ``heading_gap``: how much more of
the question (IDF-weighted, 0-1) the best-matching heading of the same document holds than the unit's own heading
(a 'Hypertensive Urgency' list when the guideline has a 'Hypertensive Emergency' table), not counting variants
(``Concept.variants``: MeSH lists 'hypertensive urgency' and 'hypertensive emergency' as entry terms of one heading;
a guideline that heads its sections with each tells them apart).
``title_gap``: the same for document titles across the evidence (a statement from an asthma guideline when a
COPD guideline is there). ``other_drug_only``: the question names a drug and the statement, with its context and
heading, names drugs but not that one (a denosumab line for an alendronate question)."""

_DOSE = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:-|–|to)?\s?\d*(?:\.\d+)?\s?(?:mg|mcg|µg|g|units?|u|iu|ml|mmol|meq)\b(?:/(?:kg|day|h|hr|min))?"
    r"|\b\d+(?:\.\d+)?\s?(?:mg|mcg|µg|units?|ml)/kg\b",
    re.I,
)
_TIME = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:-|–|to)?\s?\d*\s?(?:h|hr|hrs|hours?|min|minutes?|days?|weeks?|months?|years?|seconds?)\b"
    r"|\bwithin\b|\bbefore\b|\bafter\b|\buntil\b|\bonce\b|\bfirst hour\b",
    re.I,
)
_THRESHOLD = re.compile(r"[<>≤≥]=?\s?\d|\b(?:at least|more than|less than|above|below|exceeds?)\s+\d|\d\s?%", re.I)
_NEGATIVE = re.compile(
    r"\bnot (?:be )?(?:routinely )?(?:recommended|indicated|used|given|offered)|\bnot recommended|\bavoid|\bdo not\b"
    r"|\bdon't\b|\bcontraindicat|\bagainst\b|\bshould not\b|\bno (?:evidence|benefit|role)\b|\bharm\b",
    re.I,
)
_KINDS = ("sentence", "item", "list", "row", "table", "step", "algorithm")


_ROLE_LABELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("conclusions", re.compile(r"conclusion|interpretation|implication|relevance|summary|take-?home", re.I)),
    ("results", re.compile(r"result|finding|outcome|main (outcome|measure)", re.I)),
    (
        "methods",
        re.compile(
            r"method|design|setting|participant|patient|subject|material|intervention|measure|procedure|selection"
            r"|data (source|extraction|synthesis|collection)|search|eligibility|population|sample|analysis",
            re.I,
        ),
    ),  # fmt: skip
    (
        "background",
        re.compile(r"background|introduction|context|objective|aim|purpose|rationale|importance|goal", re.I),
    ),
)
_CONCLUSION_CUE = (
    r"^(in conclusion|in summary|overall|taken together|these (findings|results|data)|our (findings|results|data)"
    r"|we conclude)|\b(suggest|indicate|support)s? that\b"
)
_METHODS_CUE = (
    r"^(we (conducted|performed|searched|enrolled|randomi[sz]ed|recruited|analy[sz]ed|included|used|retrospectively"
    r"|prospectively)|this (was|is) a|a total of|patients were|participants were|data were|in this (study|trial)"
    r"|the (primary|secondary) (objective|outcome|endpoint) (was|is))"
)
_BACKGROUND_CUE = (
    r"^(the (aim|objective|purpose) of|to (evaluate|assess|determine|investigate|compare|examine)"
    r"|we (aimed|sought|hypothesi[sz]ed)|little is known|it is (unknown|unclear))"
)
_ROLE_SENTENCE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("conclusions", re.compile(_CONCLUSION_CUE, re.I)),
    ("methods", re.compile(_METHODS_CUE, re.I)),
    ("background", re.compile(_BACKGROUND_CUE, re.I)),
)
RESEARCH_TYPES = frozenset(
    {"systematic_review", "meta_analysis", "rct", "observational", "review", "case_report", "other"}
)
"""Evidence types of research articles (``models.EVIDENCE_TYPES``): a study's abstract or article, not a guideline,
a protocol or a consumer page. 'other' is a PubMed record of no telling publication type."""


def abstract_role(unit: Candidate) -> str | None:
    """The part of a research abstract a statement comes from ('background', 'methods', 'results', 'conclusions').

    None when it is not a research abstract or nothing says. Structured abstracts name the part in their
    label (the passage heading: 'METHODS', 'Design, Setting, and Participants', 'Conclusions and Relevance');
    in unstructured ones a sentence's opening says it ('We conducted ...', 'The aim of ...', 'In conclusion').
    """
    if unit.hit.evidence_type not in RESEARCH_TYPES:
        return None
    label = unit.hit.section.split(" > ")[-1]
    for role, cue in _ROLE_LABELS:
        if label and cue.search(label):
            return role
    for role, cue in _ROLE_SENTENCE:
        if cue.search(unit.text):
            return role
    return None


_QUALIFIER = re.compile(
    r"\b(?:for|in|among)\s+(?:selected\s+|adult\s+|older\s+|hospitali[sz]ed\s+|critically ill\s+)?(?:patients|adults"
    r"|children|women|men|those|individuals|people|persons)\s+(?:with|who|without|on|at|having|presenting|undergoing)"
    r"\s+((?:[\w\-/≥≤<>=.]+\s*){1,6})",
    re.I,
)


def unasked_qualifier(text: str, question: set[str]) -> float:
    """1 when a statement applies to patients the question did not describe, else 0.

    'For patients with PE and hemodynamic compromise' answers for another group than a question on PE in general:
    the words after 'for/in patients with|who|without ...' are compared with the question's: when most of
    them (4+ letters) are absent, the statement answers for another group.
    """
    for match in _QUALIFIER.finditer(text):
        words = [stem for stem in stem_set(match.group(1)) if len(stem) >= 4 and stem.isalpha()]
        if words and sum(stem not in question for stem in words) / len(words) > 0.5:
            return 1.0
    return 0.0


def _item_cover_mean(matcher: TermMatcher, piece: Piece, heading: frozenset[str], title: frozenset[str]) -> float:
    """Mean coverage (0-1) of a list's top-level items, each read with the list's context, heading and title.

    A list answers only as well as its items do: one item's words must not carry a list of unrelated items.
    """
    context = stem_set(" ".join(piece.context))
    items = [line for line in piece.text.splitlines() if line[:1] in "-*+•" or line[:1].isdigit()]
    if not items:
        return 0.0
    return sum(matcher.coverage(stem_set(item) | context, (heading, 0.75), (title, 0.5)) for item in items) / len(items)


def _novelty(context: frozenset[str], question: set[str]) -> float:
    """Share (0-1) of a statement's context words (4+ letters) the question does not use.

    A statement on a branch the question never raised ('Antiphospholipid syndrome? YES') answers another case.
    """
    words = [stem for stem in context if len(stem) >= 4 and stem.isalpha()]
    return sum(stem not in question for stem in words) / len(words) if words else 0.0


def _passage_number(passage_id: str) -> int:
    """The 0-based position of a passage in its document ('<doc_id>#p<n>')."""
    _, _, number = passage_id.rpartition("#p")
    return int(number) if number.isdigit() else 0


@dataclass
class Candidate:
    """A candidate statement: a unit of one evidence passage, with its hit and passage rank."""

    piece: Piece
    hit: Hit
    passage_rank: int
    retrieved: bool
    order: int
    stems: frozenset[str] = field(default_factory=frozenset)
    context_stems: frozenset[str] = field(default_factory=frozenset)
    score: float = 0.0

    @property
    def text(self) -> str:
        """The statement text (verbatim)."""
        return self.piece.text


@functools.lru_cache(maxsize=16384)
def _pieces(text: str) -> tuple[Piece, ...]:
    return tuple(split_passage(text))


def candidate_units(hits: Sequence[Hit], retrieved_ids: frozenset[str] | set[str]) -> list[Candidate]:
    """Every quotable unit of the evidence passages, in evidence order (passage rank, then passage order)."""
    units: list[Candidate] = []
    for rank, hit in enumerate(hits, start=1):
        for piece in _pieces(hit.text):
            units.append(
                Candidate(
                    piece=piece,
                    hit=hit,
                    passage_rank=rank,
                    retrieved=hit.passage_id in retrieved_ids,
                    order=len(units),
                    stems=stems_of(piece.text),
                    context_stems=stems_of(" ".join(piece.context)) if piece.context else frozenset(),
                )
            )
    return units


def section_of(unit: Candidate, intent: Intent) -> str:
    """The answer section a statement belongs in: cues in its text, then its context, then its heading."""
    heading = unit.hit.section.split(" > ")[-1] if unit.hit.section else ""
    if unit.piece.is_block and unit.piece.kind != "list":  # a table or algorithm: where its heading puts it
        for title, cue in SECTION_CUES:
            if title != "Pitfalls" and cue.search(heading):
                return title
        return PRIMARY_SECTION[intent] if intent != "overview" else "Key points"
    if CHOICE.search(unit.text) and not SECTION_CUES[0][1].search(unit.text):
        return "Treatment"  # "First-line: amoxicillin 500 mg ..." is a treatment choice before it is a dose
    for source in (unit.text, " ".join(unit.piece.context), heading):
        for title, cue in SECTION_CUES:
            if cue.search(source):
                return title
    if re.search(r"treat|therap|manag|recommend|antibiotic|agent|drug", unit.text + " " + heading, re.I):
        return "Treatment"
    return PRIMARY_SECTION[intent] if intent != "overview" else "Key points"


def unit_features(
    frame: QuestionFrame,
    matcher: TermMatcher,
    units: Sequence[Candidate],
    passage_scores: dict[str, float],
    drugs: frozenset[str],
) -> np.ndarray:
    """Feature rows ``(len(units), len(UNIT_FEATURES))`` float64 for one question's candidate statements.

    Args:
        frame: The parsed question.
        matcher: Its concepts weighted in the library.
        units: The candidates (``candidate_units``).
        passage_scores: Passage id -> its score from the passage ranker (siblings not ranked: absent).
        drugs: Lower-cased names of single drugs the library's vocabulary knows (``Vocabulary.agent_names()``).
    """
    rows = np.zeros((len(units), len(UNIT_FEATURES)))
    if not units:
        return rows
    values = list(passage_scores.values())
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    spread = (high - low) or 1.0
    top_doc = units[0].hit.doc_id
    heading_cue = INTENT_HEADINGS.get(frame.intent)
    form = frame.form
    asked_population = bool(POPULATION.search(frame.text))
    question_stems = stem_set(frame.text)
    fitting = {PRIMARY_SECTION[frame.intent], *INTENT_SECTIONS.get(frame.intent, ())}
    class_concepts = [concept for concept in matcher.concepts if concept.members]
    negated = negated_stems(frame.text)
    heading_cover: dict[str, float] = {}
    best_heading: dict[str, float] = {}
    title_cover: dict[str, float] = {}
    for unit in units:
        if unit.hit.doc_id not in title_cover:
            title_cover[unit.hit.doc_id] = matcher.coverage(title_stems(unit.hit))
        section = unit.hit.section
        if section not in heading_cover:
            heading_cover[section] = matcher.coverage(stems_of(section), variants=False)
        best_heading[unit.hit.doc_id] = max(best_heading.get(unit.hit.doc_id, 0.0), heading_cover[section])

    best_title = max(title_cover.values())
    asked_drugs = [c for c in matcher.concepts if not c.is_finding and c.text.lower() in drugs]
    for i, unit in enumerate(units):
        hit, piece = unit.hit, unit.piece
        heading, title = stems_of(hit.section), title_stems(hit)
        with_context = unit.stems | unit.context_stems
        full = f"{' '.join(piece.context)} {piece.text}"
        has_dose = bool(_DOSE.search(piece.text))
        has_time = bool(_TIME.search(piece.text))
        has_threshold = bool(_THRESHOLD.search(piece.text))
        words = re.findall(r"[a-z][a-z\-]+", piece.text.lower())
        named = {word for word in words if word in drugs}
        other_drug_only = False
        if asked_drugs:
            around = re.findall(r"[a-z][a-z\-]+", f"{hit.section} {' '.join(piece.context)}".lower())
            if named or any(word in drugs for word in around):
                stems_all = with_context | heading
                other_drug_only = not any(c.strength(stems_all) >= 0.7 for c in asked_drugs)
        has_drug = bool(named)
        strong = bool(STRONG.search(full))
        moderate = bool(MODERATE.search(full))
        negative = bool(_NEGATIVE.search(piece.text))
        # A stratum's threshold often stands in the context ('HEART Score 4–6:') or the heading ('SBP > 220 mmHg').
        fit, miss = numeric_fit(
            frame.facts, f"{hit.section}\n{' '.join(piece.context)}\n{piece.text}", hit.title, labels=frame.labels
        )
        score = passage_scores.get(hit.passage_id)
        kind = [1.0 if piece.kind == k else 0.0 for k in _KINDS]
        rows[i] = (
            0.0 if score is None else (score - low) / spread,
            rank_feature(unit.passage_rank),
            1.0 if unit.retrieved else 0.0,
            1.0 if hit.doc_id == top_doc else 0.0,
            matcher.coverage(unit.stems),
            matcher.coverage(with_context),
            matcher.coverage(with_context, (heading, 0.75), (title, 0.5)),
            matcher.coverage(heading),
            matcher.key_coverage(with_context | heading | title),
            matcher.key_coverage(with_context | heading),
            1.0 if heading_cue is not None and heading_cue.search(hit.section) else 0.0,
            1.0 if strong else 0.0,
            1.0 if moderate else 0.0,
            1.0 if negative else 0.0,
            1.0 if has_dose else 0.0,
            1.0 if has_time else 0.0,
            1.0 if has_threshold else 0.0,
            1.0 if has_drug else 0.0,
            1.0 if form == "dose" and has_dose else 0.0,
            1.0 if form in ("time", "duration") and has_time else 0.0,
            1.0 if form == "threshold" and has_threshold else 0.0,
            1.0 if form == "options" and has_drug else 0.0,
            1.0 if form == "yes_no" and (strong or moderate or negative) else 0.0,
            1.0 if form == "actions" and piece.kind in ("list", "step", "item") else 0.0,
            fit,
            miss,
            *kind,
            min(math.log(1 + len(piece.text.split())) / math.log(200), 1.0),
            1.0 if is_anaphoric(piece.text) and not piece.context else 0.0,
            matcher.coverage(title),
            1.0 / (1.0 + _passage_number(hit.passage_id) / 5.0),
            1.0 if piece.is_block and any(line[:1].isspace() for line in piece.text.splitlines()) else 0.0,
            min(len(piece.text.splitlines()) / 8.0, 1.0) if piece.kind == "list" else 0.0,
            1.0 if not asked_population and POPULATION.search(f"{full} {hit.section}") else 0.0,
            _novelty(unit.context_stems, question_stems),
            0.0 if frame.intent == "overview" or section_of(unit, frame.intent) in fitting else 1.0,
            unasked_qualifier(piece.text, question_stems),
            _item_cover_mean(matcher, piece, heading, title) if piece.kind == "list" else 0.0,
            min(len(named) / 3.0, 1.0),
            1.0
            if any(c.members and c.members & unit.stems and not c.stems <= unit.stems for c in class_concepts)
            else 0.0,
            *negation_agreement(negated, f"{hit.section}\n{full}", with_context | heading),
            best_heading[hit.doc_id] - heading_cover[hit.section],
            best_title - title_cover[hit.doc_id],
            1.0 if other_drug_only else 0.0,
        )
    return rows
