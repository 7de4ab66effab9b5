"""The extractive composer: which quoted statements answer the question, in context, and in which section.

Candidate statements (``compose.evidence``) are scored by the learned statement model (``UNIT_FEATURES`` weights in
``retrieve/weights.json``). The bottom line is the best statement, joined by at most two more from the same document
when they answer a part of the question the first leaves open (another concept it asks about, or the form it asks
for: a dose, a time, a threshold) and score nearly as well. The other sections take the next best statements that
are about the question's condition (their document leads the evidence or they name its most specific concept) and
its patient (``_off_case``), dropping near-duplicates by maximal marginal relevance (Carbonell and Goldstein, SIGIR
1998), grouped by section cues (``intent.SECTION_CUES``). Every statement keeps its context (heading, lead-in,
parent item, header row, algorithm branch, antecedent sentence). Imports ``models``, ``intent``, ``quote``,
``retrieve`` and ``compose`` modules only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medcite.compose.evidence import Evidence
from medcite.compose.features import RESEARCH_TYPES, UNIT_FEATURES, Candidate, abstract_role, section_of
from medcite.intent import SECTION_ORDER
from medcite.models import EVIDENCE_TYPES, Audience, Intent, Statement
from medcite.quote import normalise_quote
from medcite.retrieve.match import stems_of
from medcite.retrieve.rerank import Model, load_model, title_stems

__all__ = [
    "BOTTOM_LINE_MAX_STATEMENTS",
    "Composition",
    "choose_bottom_line",
    "compose_statements",
    "lead_study",
    "score_candidates",
    "section_of",
    "statement_of",
]

BOTTOM_LINE_MAX_STATEMENTS = 3
_MARKUP = re.compile(r"\*\*|__")
_DEFINITION_HEADING = re.compile(r"\bdefin", re.I)
"""A heading that says it defines ('Definition of Severe Asthma', 'AKI Definition'): structure, not content."""
BOTTOM_LINE_RELATIVE = 0.35
"""A further bottom-line statement needs at least this share (0-1) of the first one's model probability."""
BOTTOM_LINE_FORM_RELATIVE = 0.1
"""... or this share when it has the form the question asks for (a dose, a time, a threshold) and the chosen ones lack
it: 'low-dose colchicine regimen?' gets the regimen row beside the recommendation."""
BOTTOM_LINE_MAX_CHARS = 900
"""A list quoted whole in the bottom line is at most this long (measured: quoting a question's list whole,
nested items included, answers more questions fully; ``benchmarks/learn_weights.py``)."""
SECTION_MIN_COVERAGE = 0.4
"""A section statement holds at least this IDF-weighted share (0-1) of the question with its context and heading.
Measured on the development questions (covered, default library): 0.4 keeps must-term coverage (0.815 against 0.811
at 0.3) with a fifth fewer section statements (4.1 against 5.1 an answer); a physician judged half of them off the
question at 0.3."""
SECTION_MAX_TITLE_GAP = 0.1
"""A section statement's document title holds less than this much less of the question (IDF-weighted, 0-1) than the
best title of the evidence (``title_gap``)."""
SECTION_MIN_RELATIVE = 0.02
"""... and at least this share (0-1) of the best statement's model probability."""
MAX_STATEMENTS = 12
MAX_STATEMENTS_PER_SECTION = 4
MAX_BLOCKS = 1
DUPLICATE_JACCARD = 0.6
MMR_LAMBDA = 0.75
"""Maximal marginal relevance trade-off (Carbonell and Goldstein, SIGIR 1998): 1 = relevance only."""

LEAD_STUDY_DEPTH = 3
"""When a research abstract leads the evidence and it is a case report, the bottom line comes from the first stronger
document (``models.EVIDENCE_TYPES`` order) among the first this-many ranked ones: a review or guideline outranks a
case report (issue 14)."""
ROLE_LOGIT = {"conclusions": 1.5, "results": 0.75, "background": -1.5, "methods": -1.5}
"""Score a research abstract's statement gains by its part (``features.abstract_role``): conclusions and results
before methods and background. Set by hand: the default library the statement model learns on has no abstracts."""
CONSUMER_LOGIT = 2.0
"""Score a consumer-health statement gains for patients (about e^2 = 7 times the odds): consumer sources lead."""
PLAIN_LOGIT = 1.0
"""Score the plainest statement gains for patients (``plainness`` 1), plain words first."""

_CONFLICT, _NUMERIC_MISS, _OTHER_DRUG, _TITLE_GAP = (
    UNIT_FEATURES.index(name) for name in ("negation_conflict", "numeric_miss", "other_drug_only", "title_gap")
)
_FALLBACK_WEIGHTS = {"passage_score": 1.0, "cover_all": 2.0, "cover_heading": 1.0, "key_cover": 1.0, "strong": 0.3}
"""Used only when no statement model is shipped (a development checkout before ``learn_weights.py --write``)."""


@dataclass
class Composition:
    """The statements an extractive answer is made of: the bottom line and the sections' statements."""

    bottom: list[Candidate]
    sections: list[tuple[str, list[Candidate]]]
    probabilities: np.ndarray
    best: Candidate | None
    lead: str | None = None
    """The lead study's document id when research abstracts lead the evidence (``lead_study``), else None."""


def plainness(text: str) -> float:
    """How plain a statement reads (0-1): short words in short sentences score high.

    A cheap stand-in for readability formulas (Flesch 1948): 1 at 4 letters a word and 12 words a sentence or
    less, falling to 0 at 8 letters a word or 40 words a sentence.
    """
    words = re.findall(r"[A-Za-z]+", text)
    if not words:
        return 0.0
    sentences = max(1, len(re.findall(r"[.!?](?:\s|$)", text)))
    letters = sum(len(word) for word in words) / len(words)
    per_sentence = len(words) / sentences
    return max(0.0, 1.0 - max(0.0, (letters - 4.0) / 4.0) - max(0.0, (per_sentence - 12.0) / 28.0))


def score_candidates(evidence: Evidence, model: Model | None = None, audience: Audience = "clinician") -> np.ndarray:
    """Model scores ``(len(units),)`` of the evidence's candidate statements (higher is better).

    ``model`` overrides the shipped statement model (cross-validation). For patients, consumer-health statements
    gain ``CONSUMER_LOGIT`` and plain ones up to ``PLAIN_LOGIT`` (the default library, which the model learns on,
    has no consumer sources, so these are set by hand).
    """
    if not evidence.units:
        return np.zeros(0)
    model = model or load_model("unit")
    if model is None:
        weights = np.array([_FALLBACK_WEIGHTS.get(name, 0.0) for name in UNIT_FEATURES])
        scores = evidence.features @ weights
    else:
        scores = model.score(evidence.features, UNIT_FEATURES)
    roles = [abstract_role(unit) for unit in evidence.units]
    if any(roles):
        scores = scores + np.array([ROLE_LOGIT.get(role or "", 0.0) for role in roles])
    if audience == "patient":
        scores = scores + np.array(
            [
                CONSUMER_LOGIT * (unit.hit.evidence_type == "consumer") + PLAIN_LOGIT * plainness(unit.text)
                for unit in evidence.units
            ]
        )
    return scores


def _softmax(scores: np.ndarray) -> np.ndarray:
    if not len(scores):
        return scores
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def _overlaps(a: Candidate, b: Candidate) -> bool:
    """Whether two statements quote the same words (one holds the other, or they share most stems)."""
    x, y = normalise_quote(a.text), normalise_quote(b.text)
    if x in y or y in x:
        return True
    union = a.stems | b.stems
    return bool(union) and len(a.stems & b.stems) / len(union) >= DUPLICATE_JACCARD


def _is_bottom_line_eligible(unit: Candidate) -> bool:
    if unit.piece.kind in ("table", "algorithm"):
        return False
    if abstract_role(unit) in ("background", "methods"):  # a study's aim or design answers nothing
        return False
    return not (unit.piece.kind == "list" and len(unit.text) > BOTTOM_LINE_MAX_CHARS)


def _held(evidence: Evidence, units: Sequence[Candidate]) -> set[int]:
    """Indexes of the question's concepts the units hold (with their context, heading and document title).

    A CAP guideline's regimen holds 'CAP', so its sputum-test advice adds no part of the question.
    """
    held: set[int] = set()
    for unit in units:
        stems = unit.stems | unit.context_stems | stems_of(unit.hit.section) | title_stems(unit.hit)
        for index, concept in enumerate(evidence.matcher.concepts):
            if concept.strength(stems) >= 0.7:
                held.add(index)
    return held


def _form_fit(evidence: Evidence, unit: Candidate) -> bool:
    row = evidence.features[unit.order]
    return any(
        row[UNIT_FEATURES.index(name)] > 0
        for name in ("form_dose", "form_time", "form_threshold", "form_options", "form_yes_no")
    )


def lead_study(evidence: Evidence) -> str | None:
    """The document id of the study a research question's bottom line quotes, or None when no abstract leads.

    When the best-ranked passage is a research abstract's (PubMed, PMC, PubMedQA), the question is answered by the
    study the retriever ranks first, as a reader of a search's results would: its findings, not a sentence of
    another abstract that happens to share more words. A case report leading yields to the first stronger research
    article or guideline (``models.EVIDENCE_TYPES`` order) among the first ``LEAD_STUDY_DEPTH`` ranked documents.
    """
    ranked: dict[str, str] = {}  # document id -> evidence type, in rank order
    for hit in evidence.hits:
        if hit.passage_id in evidence.retrieved_ids:
            ranked.setdefault(hit.doc_id, hit.evidence_type)
    documents = list(ranked.items())
    if not documents or documents[0][1] not in RESEARCH_TYPES:
        return None
    lead, kind = documents[0]
    if kind == "case_report":
        for doc_id, other in documents[1:LEAD_STUDY_DEPTH]:
            stronger = EVIDENCE_TYPES.index(other) < EVIDENCE_TYPES.index(kind)
            if stronger and (other in RESEARCH_TYPES or other == "guideline"):
                return doc_id
    return lead


def _lead_units(eligible: list[Candidate], lead: str | None) -> list[Candidate]:
    """The eligible statements of the lead study (``lead_study``): its results and conclusions when it labels them."""
    if lead is None:
        return eligible
    own = [u for u in eligible if u.hit.doc_id == lead]
    findings = [u for u in own if abstract_role(u) in ("results", "conclusions")]
    return findings or own or eligible


def choose_bottom_line(evidence: Evidence, probabilities: np.ndarray, lead: str | None = None) -> list[Candidate]:
    """The bottom line: the best eligible statement, then up to two more that answer what it leaves open.

    A definition question's bottom line is the best sentence that defines its term ('Septic shock is a subset of
    sepsis in which ...'), when the evidence holds one. When a research abstract leads the evidence, the bottom line
    comes from the lead study's (``lead``, from ``lead_study``) results and conclusions.
    """
    eligible = _lead_units([u for u in evidence.units if _is_bottom_line_eligible(u)], lead)
    if not eligible:
        return []
    ordered = sorted(eligible, key=lambda u: (-probabilities[u.order], u.order))
    defining = _defining_statement(evidence, ordered, probabilities)  # 'What is septic shock?'
    if defining is not None:
        return [defining]
    first = ordered[0]
    chosen = [first]
    for unit in ordered[1:]:
        if len(chosen) == BOTTOM_LINE_MAX_STATEMENTS:
            break
        if probabilities[unit.order] < BOTTOM_LINE_FORM_RELATIVE * probabilities[first.order]:
            break
        if unit.hit.doc_id != first.hit.doc_id or any(_overlaps(unit, other) for other in chosen):
            continue
        if any(normalise_quote(unit.text) in normalise_quote(other.text) for other in chosen):
            continue
        if evidence.features[unit.order, _CONFLICT] > 0:
            continue  # it names plainly what the question rules out ('no MRSA risk factors': a de-escalation list)
        new_concepts = _held(evidence, [unit]) - _held(evidence, chosen)
        adds_form = _form_fit(evidence, unit) and not any(_form_fit(evidence, other) for other in chosen)
        relative = probabilities[unit.order] / probabilities[first.order]
        # The form the question asks for (a dose, a time, a threshold) is worth a lower bar than another concept.
        if (adds_form and relative >= BOTTOM_LINE_FORM_RELATIVE) or (new_concepts and relative >= BOTTOM_LINE_RELATIVE):
            chosen.append(unit)
    return chosen


def _defining_statement(
    evidence: Evidence, ordered: Sequence[Candidate], probabilities: np.ndarray
) -> Candidate | None:
    """The statement that best defines a definition question's term, or None.

    First a statement under a heading that says it defines the term ('Definition of Severe Asthma'), the first one
    in the passage that defines (``evidence.definition``) or opens with the term; then the most probable statement
    of the dictionary shape elsewhere ('Septic shock is a subset of sepsis ...'). A list's lead-in counts as its
    text ('AKI is defined as any of the following:').
    """
    pattern = evidence.definition
    if pattern is None:
        return None
    term = evidence.frame.term
    term_stems = stems_of(term)
    opening = re.compile(rf"(?:the |an? )?{re.escape(term)}\b", re.I)
    best: tuple[tuple[bool, bool, bool, int, float], Candidate] | None = None
    for unit in ordered:
        if unit.piece.kind not in ("sentence", "item", "list"):
            continue
        texts = (unit.text, *unit.piece.context[-1:])
        defines = any(pattern.search(_MARKUP.sub("", text).lstrip("-•* ")) for text in texts)
        heading = unit.hit.section.split(" > ")[-1]
        under = bool(_DEFINITION_HEADING.search(heading)) and term_stems <= stems_of(unit.hit.section)
        if not (defines or under):
            continue
        rank = (unit.order, 0.0) if under else (0, -probabilities[unit.order])  # a section reads in its order
        key = (not under, not defines, not opening.match(unit.text), *rank)
        if best is None or key < best[0]:
            best = (key, unit)
    return best[1] if best else None


def statement_of(unit: Candidate, citations: list[int]) -> Statement:
    """A ``Statement`` for a candidate: its text, with its context.

    The context is the passage's last heading (when it adds words the statement lacks), then the unit's own.
    """
    context: list[str] = []
    heading = unit.hit.section.split(" > ")[-1].strip() if unit.hit.section else ""
    if heading and not stems_of(heading) <= (unit.stems | unit.context_stems):
        context.append(heading)
    context += [piece for piece in unit.piece.context if piece]
    return Statement(text=unit.text, citations=citations, context=context)


def _off_case(row: np.ndarray) -> bool:
    """Whether a statement is for another patient than the question's, from its feature row (``UNIT_FEATURES``).

    It names plainly what the question rules out (``negation_conflict``: a regimen for adults with comorbidities
    when the question says none), its stratum's threshold excludes the case's value (``numeric_miss``: the K > 5.0
    branch for a K of 3.2), it names other drugs than the one asked about (``other_drug_only``), or its document's
    title holds clearly less of the question than another's (``title_gap``). A physician judged 90 section
    statements of medcite's answers that passed the first test (27 misleading): the other three marked 10 of the
    misleading ones and 4 of the 63 others (development and outside questions, 2026-12-03).
    """
    return bool(
        row[_CONFLICT] > 0 or row[_NUMERIC_MISS] > 0 or row[_OTHER_DRUG] > 0 or row[_TITLE_GAP] >= SECTION_MAX_TITLE_GAP
    )


def _mmr(
    units: list[Candidate], probabilities: np.ndarray, *, limit: int, chosen: Sequence[Candidate]
) -> list[Candidate]:
    picked: list[Candidate] = []
    taken = list(chosen)
    pool = sorted(units, key=lambda u: (-probabilities[u.order], u.order))
    top = max((probabilities[u.order] for u in pool), default=1.0) or 1.0
    while pool and len(picked) < limit:
        best: tuple[float, Candidate] | None = None
        for unit in pool:
            if any(_overlaps(unit, other) for other in taken):
                continue
            union = [len(unit.stems | o.stems) or 1 for o in taken]
            similarity = max((len(unit.stems & o.stems) / n for o, n in zip(taken, union, strict=True)), default=0.0)
            value = MMR_LAMBDA * math.log(probabilities[unit.order] / top + 1e-12) - (1 - MMR_LAMBDA) * 10 * similarity
            if best is None or value > best[0]:
                best = (value, unit)
        if best is None:
            break
        picked.append(best[1])
        taken.append(best[1])
        pool.remove(best[1])
    return picked


def compose_statements(
    evidence: Evidence, intent: Intent, audience: Audience, *, model: Model | None = None
) -> Composition:
    """Choose the bottom line and the sections' statements of an extractive answer.

    ``model`` overrides the shipped statement model (cross-validation).

    Returns:
        The ``Composition``; ``bottom`` is empty when the evidence has no quotable statement.
    """
    scores = score_candidates(evidence, model, audience)
    probabilities = _softmax(scores)
    lead = lead_study(evidence)
    bottom = choose_bottom_line(evidence, probabilities, lead)
    if not bottom:
        return Composition(bottom=[], sections=[], probabilities=probabilities, best=None, lead=lead)
    first = bottom[0]
    key = evidence.matcher.key_concepts(1)
    documents = {u.hit.doc_id for u in bottom}
    cover = UNIT_FEATURES.index("cover_all")
    best_p = probabilities[first.order]
    pool = []
    for unit in evidence.units:
        if unit in bottom or any(_overlaps(unit, other) for other in bottom):
            continue
        if evidence.features[unit.order, cover] < SECTION_MIN_COVERAGE:
            continue
        if probabilities[unit.order] < SECTION_MIN_RELATIVE * best_p:
            continue
        if _off_case(evidence.features[unit.order]):
            continue
        stems = unit.stems | unit.context_stems | stems_of(unit.hit.section)
        about = unit.hit.doc_id in documents or (key and key[0].strength(stems) >= 0.7)
        if not about:
            continue  # a statement from a document about another condition must name the question's
        if unit.piece.kind in ("table", "algorithm") and len(unit.text) > 1400:
            continue
        pool.append(unit)
    blocks = _mmr([u for u in pool if u.piece.is_block and u.piece.kind != "list"], probabilities,
                  limit=MAX_BLOCKS, chosen=bottom)  # fmt: skip
    prose = [u for u in pool if not (u.piece.is_block and u.piece.kind != "list")]
    body = blocks + _mmr(prose, probabilities, limit=MAX_STATEMENTS - len(blocks), chosen=[*bottom, *blocks])
    grouped: dict[str, list[Candidate]] = {}
    for unit in sorted(body, key=lambda u: (-probabilities[u.order], u.order)):
        title = section_of(unit, intent)
        if len(grouped.setdefault(title, [])) < MAX_STATEMENTS_PER_SECTION:
            grouped[title].append(unit)
    order = SECTION_ORDER[intent]
    sections = [
        (title, sorted(grouped[title], key=lambda u: u.order))
        for title in sorted(grouped, key=lambda t: (order.index(t) if t in order else len(order), t))
    ]
    return Composition(bottom=bottom, sections=sections, probabilities=probabilities, best=first, lead=lead)
