"""Abstention: whether the library covers what a question asks, judged on the evidence and the composed answer.

medcite abstains instead of answering from evidence that does not address the question: the condition, or the
aspect asked (an exacerbation rather than stable disease, children rather than adults, a dose the source never
gives). ``abstention_score`` is the probability (0-1) that the question is not covered, from a logistic model
over features of the question's concepts and of the best statement (``ABSTAIN_FEATURES``), learned with
cross-validation by ``benchmarks/learn_weights.py``; ``compose`` abstains at ``ABSTAIN_THRESHOLD`` or above.
Imports ``retrieve`` and ``compose`` modules only.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING

import numpy as np

from medcite.compose.evidence import Evidence
from medcite.compose.extractive import Composition
from medcite.compose.features import _DOSE, _TIME, UNIT_FEATURES, Candidate
from medcite.errors import QueryError
from medcite.models import Hit
from medcite.retrieve.match import TermMatcher, negated_stems, stems_of
from medcite.retrieve.question import NumericFact, fits, numeric_conditions
from medcite.retrieve.rerank import load_model, title_stems
from medcite.vocabulary import disease_names_in

if TYPE_CHECKING:
    from medcite.retrieve import Retriever

__all__ = [
    "ABSTAIN_FEATURES",
    "ABSTAIN_THRESHOLD",
    "abstention_features",
    "abstention_model",
    "abstention_score",
    "abstention_threshold",
    "scope_exclusion",
    "scope_objects",
    "undosed_agents",
    "child_outside_population",
    "condition_outside_sources",
]

ABSTAIN_THRESHOLD = 0.5
"""Abstain when the probability that the question is not covered is at least this (0-1), unless the shipped
abstention model carries its own threshold (chosen by cross-validation: the most uncovered questions abstained
with at most 5% of covered ones)."""

CONDITION_MENTION = 0.5
"""Weighted share (0-1) of a condition name's concepts a document must hold to mention it
(``condition_outside_sources``): 'kidney disease' counts, 'hepatorenal syndrome' by 'syndrome' alone does not."""

TOPIC_TITLE_COVERAGE = 0.2
"""IDF-weighted share (0-1) of the question that the best statement's document title and keywords must hold for
that document to count as being about the question's topic (``abstention_score``)."""

ABSTAIN_FEATURES: tuple[str, ...] = (
    "best_cover_all",
    "best_key_cover",
    "best_probability",
    "bottom_cover",
    "missing_weight",
    "absent_weight",
    "top_passage_cover",
    "doc_title_cover",
    "max_missing",
    "key_missing",
    "form_missing",
    "child_mismatch",
    "follow_up",
    "absent_abbreviation",
    "title_gap",
    "top_passage_score",
)
"""Names of the abstention features (each 0-1 except ``top_passage_score``). ``absent_abbreviation``: the question
uses an abbreviation (three or more capitals) the library never does ('AECOPD', 'SAVR'), which usually names a topic
it does not hold. ``title_gap``: the best statement's ``title_gap`` (another document of the evidence is more about
the question by its title, yet the answer quotes this one). ``top_passage_score``: the passage ranker's score of the
best passage retrieved (a linear score, ``retrieve/rerank.py``); it is high when one passage holds the question's
concepts the way the passages answering the development questions do."""

_ABBREVIATION = re.compile(r"[A-Z][A-Z0-9]{2,}s?")
_CHILD = re.compile(
    r"\b(child|children|childhood|pediatric|paediatric|infant|infants|toddler|newborn|neonat\w*|adolescen\w*"
    r"|teen|teenager|kid|kids|boy|girl|son|daughter|baby|babies|school-age|preschool)\b",
    re.I,
)
"""Words that put a question or a statement in children (product language for the population asked about)."""
_CHILD_PATIENT = re.compile(
    r"\b(child(?!-pugh)|children|childhood|pediatric|paediatric|infants?|toddlers?|newborns?|neonat\w*|adolescen\w*"
    r"|teens?|teenagers?|school-age|preschool\w*)\b",
    re.I,
)
"""Words that make the patient a child; relations ('my son', 'baby aspirin', 'mother of a 2-year-old') do not, and
'Child-Pugh' names a score."""
_AGE_NAME = re.compile(r"\b(?:age|aged|ages|adults?|older|younger)\b|" + _CHILD.pattern, re.I)
"""Names of a stated range that make it an age range of the population ('children aged 6-11 years'), not a duration."""
_FALLBACK = {"best_cover_all": -8.0, "missing_weight": 4.0, "absent_weight": 4.0}
_FALLBACK_BIAS = 3.0


def abstention_features(evidence: Evidence, composition: Composition, *, follow_up: bool = False) -> np.ndarray:
    """The abstention feature row ``(len(ABSTAIN_FEATURES),)`` of a composed answer."""
    matcher = evidence.matcher
    row = np.zeros(len(ABSTAIN_FEATURES))
    best = composition.best
    if best is None:
        row[ABSTAIN_FEATURES.index("missing_weight")] = 1.0
        return row
    features = evidence.features[best.order]
    held = set()
    for unit in composition.bottom:
        held |= unit.stems | unit.context_stems | stems_of(unit.hit.section) | stems_of(unit.hit.title)
    total = matcher.total
    missing = sum(c.weight for c in matcher.concepts if not c.is_finding and c.strength(held) < 0.5)
    absent = sum(c.weight for c in matcher.concepts if not c.in_library)
    top = evidence.hits[0] if evidence.hits else None
    heaviest = max((c.weight for c in matcher.concepts), default=1.0) or 1.0
    missing_concepts = [c for c in matcher.concepts if not c.is_finding and c.strength(held) < 0.5]
    key = matcher.key_concepts(1)
    form = evidence.frame.form
    bottom_text = " ".join(u.text for u in composition.bottom)
    form_missing = (
        (form == "dose" and not _DOSE.search(bottom_text))
        or (form in ("time", "duration") and not _TIME.search(bottom_text))
        or (form == "threshold" and not re.search(r"\d", bottom_text))
    )
    age = evidence.frame.age_years
    # Broader than ``asks_about_a_child`` (relations such as 'my son' count): the feature the shipped model was
    # fitted on; the rule ``child_outside_population`` uses the narrower test.
    child = (age is not None and age < 18) or bool(_CHILD.search(evidence.frame.text))
    child_mismatch = child and not any(
        _CHILD.search(f"{u.hit.section} {u.text} {' '.join(u.piece.context)}") for u in composition.bottom
    )
    row[:] = (
        features[UNIT_FEATURES.index("cover_all")],
        features[UNIT_FEATURES.index("key_cover")],
        float(composition.probabilities[best.order]),
        matcher.coverage(held),
        min(missing / total, 1.0),
        min(absent / total, 1.0),
        matcher.coverage(stems_of(f"{top.section} {top.text}"), (stems_of(top.title), 0.5)) if top else 0.0,
        max((matcher.coverage(stems_of(h.title)) for h in evidence.hits[:3]), default=0.0),
        max((c.weight for c in missing_concepts), default=0.0) / heaviest,
        1.0 if key and key[0].strength(held) < 0.5 else 0.0,
        1.0 if form_missing else 0.0,
        1.0 if child_mismatch else 0.0,
        1.0 if follow_up else 0.0,
        1.0 if any(not c.in_library and _ABBREVIATION.fullmatch(c.text) for c in matcher.concepts) else 0.0,
        features[UNIT_FEATURES.index("title_gap")],
        max(evidence.passage_scores.values(), default=0.0),
    )
    return row


def abstention_model(composition: Composition) -> str:
    """Which shipped abstention model judges a composed answer: 'abstain_research' or 'abstain'.

    'abstain_research' when a research abstract leads the evidence (``Composition.lead``) and that model is shipped,
    else 'abstain' (fitted on guideline questions).

    Research questions ('Does X improve Y in Z?') hold more specific words than a guideline answers, and an
    abstract's findings hold fewer of them, so the guideline-fitted model abstained on a third of PubMedQA questions
    whose own abstract ranked first; ``benchmarks/learn_weights.py --models abstain_research`` fits the other.
    """
    if composition.lead is not None and load_model("abstain_research") is not None:
        return "abstain_research"
    return "abstain"


@functools.lru_cache(maxsize=4)
def abstention_threshold(model: str = "abstain") -> float:
    """The threshold ``compose`` abstains at: the shipped model's cross-validated one, else ``ABSTAIN_THRESHOLD``.

    Read once per model (the shipped ``weights.json`` does not change while medcite runs).
    """
    import json
    from importlib import resources

    try:
        data = json.loads(resources.files("medcite.retrieve").joinpath("weights.json").read_text(encoding="utf-8"))
        return float(data[model]["threshold"])
    except (OSError, KeyError, TypeError, ValueError):
        return ABSTAIN_THRESHOLD


def abstention_score(evidence: Evidence, composition: Composition, *, follow_up: bool = False) -> float:
    """Probability (0-1) that the library does not cover the question, by the model ``abstention_model`` chooses.

    Abstain at ``abstention_threshold(model)``.

    1 outright when the best statement, with its context, heading and document title, holds neither of the
    question's two most specific concepts and its document's title and keywords hold less than
    ``TOPIC_TITLE_COVERAGE`` of the question: it answers something else (a rule, not fitted). The title guard
    keeps case vignettes answered whose heaviest words are comorbidities or shorthand ('HTN + DM', 'x5 yrs')
    while the leading guideline is about their topic. The research model decides alone: it was fitted without the
    rule, and an abstract's title is a study's, not a topic's.
    """
    row = abstention_features(evidence, composition, follow_up=follow_up)
    if not evidence.matcher.concepts or row[ABSTAIN_FEATURES.index("absent_weight")] >= 1.0:
        return 1.0  # not one of the question's words is in the library (another script, another language)
    best = composition.best
    kind = abstention_model(composition)
    if (
        kind == "abstain"
        and best is not None
        and row[ABSTAIN_FEATURES.index("best_key_cover")] <= 0.0
        and evidence.matcher.coverage(title_stems(best.hit)) < TOPIC_TITLE_COVERAGE
    ):
        return 1.0
    model = load_model(kind)
    if model is None:
        weights = np.array([_FALLBACK.get(name, 0.0) for name in ABSTAIN_FEATURES])
        bias = _FALLBACK_BIAS
    else:
        names = list(model.names)
        weights = np.array([model.weights[names.index(n)] if n in names else 0.0 for n in ABSTAIN_FEATURES])
        bias = float(model.weights[names.index("bias")]) if "bias" in names else 0.0
    value = float(row @ weights + bias)
    return 1.0 / (1.0 + math.exp(-value))


# --- Scope exclusions --------------------------------------------------------------------------------------------

_EXCLUDES_AFTER = re.compile(
    r"\b(?:does|do|did) not (?:specifically |fully )?(?:address|cover|include|provide|discuss|make)\b"
    r"(?P<object>[^.;]*)",
    re.I,
)
_EXCLUDED_BEFORE = re.compile(
    r"(?P<object>[^.;:]*?)\b(?:is|are|was|were) (?:outside (?:of )?(?:the |its )?scope|beyond (?:the |its )?scope"
    r"|out of scope|addressed (?:in|by) (?:a |the )?separate|not (?:addressed|covered) (?:in|by) (?:this|these))",
    re.I,
)
_OBJECT_LEAD = re.compile(
    r"^\s*(?:(?:a|any|the)\s+)?(?:(?:specific|detailed|explicit|formal)\s+)*(?:(?:treatment|clinical|management)\s+)?"
    r"(?:recommendations?|guidance|protocols?|advice)?\s*(?:(?:for|on|regarding|about|specific to|in|to)\s+)?",
    re.I,
)
_OBJECT_SPLIT = re.compile(
    r"\(|\)|,|;|\bor\b|\be\.g\.|\bsuch as\b|\bincluding\b|\bwhich\b|\bas these\b|\bdue to\b|\bbecause\b", re.I
)
_DOCUMENT_SUBJECT = re.compile(
    r"\b(?:guidelines?|recommendations?|document|panel|statement|consensus|report|module|it|this|these|they)\s*$"
    r"|\b(?:the|this|these) (?:\w+ ){0,3}(?:guidelines?|recommendations?|document|panel|statement|consensus|report)\b",
    re.I,
)
SCOPE_OBJECT_COVERAGE = 0.5
"""IDF-weighted share (0-1) of an excluded topic ('cancer-associated VTE') the question must hold for a source's
scope exclusion to apply to it."""
SCOPE_KEY_STRENGTH = 0.7
"""... and the excluded topic must hold one of the question's two most specific concepts at least this fully (0-1)."""


def scope_objects(text: str) -> list[str]:
    """The topics a sentence says its source does not cover, each alternative separately.

    'The guideline does not address cancer-associated VTE (separate ASH 2021 guideline), pregnancy-associated
    VTE, or catheter-related VTE.' -> ['cancer-associated VTE', 'separate ASH 2021 guideline', 'pregnancy-associated
    VTE', 'catheter-related VTE']; also '... were outside the scope', '... are addressed in separate ...'. 'Does not
    address' counts only when its subject is the source itself (``_DOCUMENT_SUBJECT``: 'The guideline', 'These
    recommendations'), not a score or a tool ('GBS does not include endoscopic findings'). The cues are the wording
    guidelines use in their scope and limitations sections, not medical content.
    """
    lowered = text.lower()
    if "not " not in lowered and "scope" not in lowered and "separate" not in lowered:
        return []  # neither cue can match: skip the regular expressions (this runs on every statement)
    objects = [
        m.group("object")
        for m in _EXCLUDES_AFTER.finditer(text)
        if _DOCUMENT_SUBJECT.search(re.split(r"[.;:]", text[max(0, m.start() - 80) : m.start()])[-1])
    ]
    objects += [m.group("object") for m in _EXCLUDED_BEFORE.finditer(text)]
    topics: list[str] = []
    for found in objects:
        for part in _OBJECT_SPLIT.split(_OBJECT_LEAD.sub("", found, count=1)):
            part = part.strip(" -*")
            if part and part not in topics:
                topics.append(part)
    return topics


def scope_exclusion(evidence: Evidence, composition: Composition, retriever: Retriever) -> Candidate | None:
    """The statement in which the source the answer would quote says it does not cover what the question asks.

    'cancer-associated VTE - DOAC or LMWH?' on a library whose VTE guideline says 'The guideline does not address
    cancer-associated VTE' abstains citing that sentence instead of quoting the guideline's other advice. Applies
    when the statement is in the best statement's document, the question holds at least ``SCOPE_OBJECT_COVERAGE``
    of the excluded topic (IDF-weighted in the library) and the topic holds one of the question's two most
    specific concepts (the topic the question holds most of wins), unless the best statement is another one
    holding at least as much of the question (with its context, heading and title) as the exclusion does. A
    narrower exclusion ('duration for complicated UTI caused by multidrug-resistant organisms') does not apply to
    a broader question ('How should complicated UTI be treated?').
    """
    best = composition.best
    if best is None:
        return None
    cover = UNIT_FEATURES.index("cover_all")
    matcher = evidence.matcher
    asked = set(stems_of(evidence.frame.text))
    for concept in matcher.concepts:
        asked |= concept.stems
        for alias in concept.aliases:
            asked |= alias
    key = [c for c in matcher.key_concepts(2) if not c.is_finding]
    found: Candidate | None = None
    found_coverage = 0.0
    for unit in evidence.units:
        if unit.hit.doc_id != best.hit.doc_id or unit.piece.kind not in ("sentence", "item"):
            continue
        for topic in scope_objects(unit.text):
            stems = stems_of(topic)
            if not any(c.strength(stems) >= SCOPE_KEY_STRENGTH for c in key):
                continue
            try:
                excluded = TermMatcher.build(evidence.frame, retriever, text=topic)
            except QueryError:
                continue
            coverage = excluded.coverage(asked)
            if coverage >= SCOPE_OBJECT_COVERAGE and coverage > found_coverage:
                found, found_coverage = unit, coverage
    if found is None or found is best or scope_objects(best.text):
        return found
    # A statement that holds more of the question than the exclusion answers it ('azathioprine with allopurinol:
    # absolute contraindication' after 'no specific recommendations for organ transplant recipients').
    if evidence.features[best.order, cover] >= evidence.features[found.order, cover]:
        return None
    return found


DOSE_STRENGTH = 0.7
"""How fully (0-1) a statement with its context and heading must hold a drug to count as giving its dose."""


def undosed_agents(evidence: Evidence) -> tuple[str, ...]:
    """The drugs a dosing question names when the evidence gives a dose for none of them; else ().

    'nitrofurantoin dose and duration for uncomplicated cystitis?' on a library that names nitrofurantoin only as
    suitable for cystitis abstains instead of quoting another drug's regimen: the issue's 'a dose the source never
    gives'. A dose is a number with a unit (``features._DOSE``) in a sentence, list item, table row or step that,
    with its context and heading, names the drug (a list counts whole: its items often give the dose without
    repeating the name; a whole table does not: its dose may belong to another row).
    """
    if evidence.frame.form != "dose" or not evidence.agents:
        return ()
    asked = [c for c in evidence.matcher.concepts if c.text in evidence.agents]
    for unit in evidence.units:
        if unit.piece.kind == "table" or not _DOSE.search(unit.text):
            continue
        stems = unit.stems | unit.context_stems | stems_of(unit.hit.section)
        if any(c.strength(stems) >= DOSE_STRENGTH for c in asked):
            return ()
    return evidence.agents


def asks_about_a_child(evidence: Evidence) -> bool:
    """Whether the question is about a child.

    An age under 18 in the case, or, with no age given, a word that makes the patient a child ('pediatric',
    ``_CHILD_PATIENT``).
    """
    age = evidence.frame.age_years
    if age is not None:
        return age < 18
    return bool(_CHILD_PATIENT.search(evidence.frame.text))


def child_outside_population(
    evidence: Evidence, composition: Composition, retriever: Retriever
) -> tuple[Hit, float | None] | None:
    """``(hit, age)``: a passage of the best statement's document when it does not address the child asked about.

    The hit is of the document the search ranks first instead when that one leaves the child out too.

    '6 yo, 20 kg, CAP ... Amoxicillin dose?' on a library whose pneumonia guidelines are for adults abstains instead
    of quoting an adult dose: no heading or passage of the document the answer would quote names a child, an
    infant, a newborn or an adolescent (``_CHILD``, product language for the population asked about); ``age`` is
    None then. With the child's age given, a document that does name children but states only age ranges that
    exclude it ('adults and adolescents >=12 years', 'children aged 6-11 years' for a 4-year-old) abstains too,
    with that age; a range counts when its name is a population word (``_AGE_NAME``), not a duration.
    """
    best = composition.best
    if best is None or not asks_about_a_child(evidence):
        return None
    reason = _child_outside(evidence, retriever, best.hit)
    if reason is None:
        return None
    # Name the document the search ranks first when it leaves the child out too: the reader sees it first.
    top = evidence.units[0].hit if evidence.units else best.hit
    if top.doc_id != best.hit.doc_id:
        return _child_outside(evidence, retriever, top) or reason
    return reason


def _child_outside(evidence: Evidence, retriever: Retriever, hit: Hit) -> tuple[Hit, float | None] | None:
    """``(hit, age)`` when the hit's document does not address the child asked about (``child_outside_population``)."""
    passages = retriever.store.get_passages(hit.doc_id)
    if not any(_CHILD_PATIENT.search(f"{passage.section} {passage.text}") for passage in passages):
        return hit, None
    age = evidence.frame.age_years
    if age is None or age >= 18:
        return None
    fact = NumericFact(name="age", value=age, unit="y")
    ranges = [
        condition
        for passage in passages
        for condition in numeric_conditions(f"{passage.section}\n{passage.text}")
        if condition.unit == "y" and _AGE_NAME.search(condition.name)
    ]
    if ranges and not any(fits(fact, condition) for condition in ranges):
        return hit, age
    return None


# --- Conditions the sources never mention ------------------------------------------------------------------------


def condition_outside_sources(
    evidence: Evidence, composition: Composition, retriever: Retriever
) -> tuple[str, str] | None:
    """``(title, condition)`` when no document the bottom line quotes mentions any condition the question names.

    'migraine prophylaxis first line?' on a library without a migraine guideline would otherwise quote gout
    flare prophylaxis: the question names a disease (``vocabulary.disease_names_in``: the MeSH-based disease
    dictionary) among its two most specific concepts, and neither the title nor any passage of the documents the
    answer would quote mentions it or any other condition the question names (a document mentions a name when it
    holds ``CONDITION_MENTION`` of the name's concept weight, synonyms and abbreviations included). A condition the
    question rules out ('no chest pain') does not count, one it mentions in passing (a vignette's 'mild headache')
    does not start the rule, and a question naming no disease is left to the abstention model.
    """
    if not composition.bottom:
        return None
    denied = negated_stems(evidence.frame.text)
    key = {concept.text for concept in evidence.matcher.key_concepts(2)}
    named: list[tuple[str, TermMatcher]] = []
    for name in disease_names_in(evidence.frame.text):
        stems = stems_of(name)
        if stems & denied:
            continue
        concepts = [c for c in evidence.matcher.concepts if c.stems & stems and not c.is_finding]
        if concepts:
            named.append((name, TermMatcher(concepts=concepts)))
    asked = [name for name, condition in named if any(c.text in key for c in condition.concepts)]
    if not asked:
        return None

    def mentions(stems: set[str]) -> bool:
        return any(condition.coverage(stems) >= CONDITION_MENTION for _, condition in named)

    quoted: set[str] = set()
    first_hit = {}
    for unit in composition.bottom:
        quoted |= unit.stems | unit.context_stems | stems_of(unit.hit.section) | title_stems(unit.hit)
        first_hit.setdefault(unit.hit.doc_id, unit.hit)
    if mentions(quoted):  # the statements themselves name it: no need to read their documents
        return None
    for doc_id, hit in first_hit.items():
        held = set(title_stems(hit))
        for passage in retriever.store.get_passages(doc_id):
            held |= stems_of(f"{passage.section} {passage.text}")
        if mentions(held):
            return None
    written = re.search(r"\s+".join(map(re.escape, asked[0].split())), evidence.frame.text, re.I)
    best = composition.best or composition.bottom[0]
    return best.hit.title, written.group(0) if written else asked[0]
