"""Second-stage ranking: features of each candidate passage, scored by weights learned with cross-validation.

The first stage (BM25 rankings and, when installed, dense vectors, fused by reciprocal rank fusion) finds about
a hundred candidates; this stage orders them by a linear model over features a clinician's question makes
meaningful: how much of the question the passage's text, heading path and document title hold (IDF-weighted,
``match.TermMatcher``), whether its heading fits the question's intent, whether its document is the one the
question is about, whether a threshold or range it states fits the case's measured values, evidence level and
recency, beside the first-stage ranks. Weights are learned by ``benchmarks/learn_weights.py`` (a listwise
softmax model, cross-validated by question) and shipped in ``weights.json`` with their provenance. Imports
``models``, ``intent``, ``quote`` and the other ``retrieve`` modules only.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources

import numpy as np

from medcite.intent import INTENT_HEADINGS, INTENT_SECTIONS, PRIMARY_SECTION, SECTION_CUES
from medcite.models import Hit
from medcite.quote import split_passage
from medcite.retrieve.match import TermMatcher, negated_stems, negation_agreement, stems_of
from medcite.retrieve.question import NumericFact, QuestionFrame, fits, numeric_conditions, stratum_labels
from medcite.retrieve.rank import EVIDENCE_PRIOR

__all__ = [
    "title_stems",
    "EVIDENCE_LOGIT",
    "PASSAGE_FEATURES",
    "Model",
    "heading_section",
    "load_model",
    "numeric_fit",
    "passage_features",
    "rank_feature",
]

PASSAGE_FEATURES: tuple[str, ...] = (
    "rrf",
    "lexical_rank",
    "expanded_rank",
    "family_rank",
    "dense_rank",
    "cover_text",
    "cover_heading",
    "cover_last_heading",
    "cover_title",
    "cover_all",
    "key_cover",
    "unit_cover",
    "unit_key_cover",
    "doc_cover",
    "doc_top",
    "intent_heading",
    "numeric_fit",
    "numeric_miss",
    "evidence",
    "recency",
    "off_intent_heading",
    "negation_agree",
    "negation_conflict",
)
"""Names of the passage features, in the order of ``passage_features``' columns (each 0-1)."""


EVIDENCE_LOGIT = 1.0
"""Score added per unit of evidence prior (``rank.EVIDENCE_PRIOR``: guideline 1, systematic review 0.75, RCT 0.5,
other research 0.25 or less, consumer 0) on top of the learned passage model. Set by hand: the default library the
model learns on holds guidelines only, so it cannot learn this weight; in a mixed library it lets a guideline
passage outrank a research abstract or consumer page that matches the question about as well (a guideline
gains about e = 2.7 times the odds of a consumer page)."""


def title_stems(hit: Hit) -> frozenset[str]:
    """Stems of what names a passage's document: its title and keywords (a guideline's registry topics)."""
    return stems_of(f"{hit.title} {' '.join(hit.keywords)}" if hit.keywords else hit.title)


def heading_section(section: str) -> str | None:
    """The answer section a passage's headings name by their cues (``intent.SECTION_CUES``), deepest heading first.

    None when no heading names one ('Outpatient Treatment > Healthy Adults ...').
    """
    for heading in reversed(section.split(" > ")):
        found = next((title for title, cue in SECTION_CUES if cue.search(heading)), None)
        if found is not None:
            return found
    return None


def rank_feature(rank: int | None) -> float:
    """A 1-based first-stage rank as a feature: ``1 / log2(1 + rank)`` (1 for the top passage, 0 when absent)."""
    return 0.0 if rank is None else 1.0 / math.log2(1.0 + rank)


@functools.lru_cache(maxsize=32768)
def _conditions(text: str):
    return numeric_conditions(text)


@functools.lru_cache(maxsize=16384)
def _unit_stems(text: str) -> tuple[frozenset[str], ...]:
    """Stems of each quotable unit of a passage read with its context (``quote.split_passage``)."""
    return tuple(stems_of(" ".join((*piece.context, piece.text))) for piece in split_passage(text))


def numeric_fit(
    facts: Sequence[NumericFact], text: str, context: str = "", labels: Sequence[tuple[str, str]] = ()
) -> tuple[float, float]:
    """Whether the case's measured values fit the thresholds and ranges a text states: ``(fit, miss)``, each 0-1.

    ``fit`` is 1 when a value meets a condition named like it (a shared word: 'HEART score 3' and 'HEART 0-3'),
    0.5 when it meets a condition of the same unit whose name differs (a name and its initials are alike:
    'Glasgow-Blatchford score 0' and 'GBS = 0'; a value typed without its unit, 'SBP 190',
    is read in the unit of a condition named like it); ``miss`` is 1 when conditions named like a
    value exist and it meets none of them (the text is about another stratum of patients).

    ``context`` (the document's title) names every condition of the text too: 'Score 5-7' in a TIMI table. Words
    like 'score' or 'rate' (``MEASURE_WORDS``) name no measurement on their own.

    Named strata (``labels``, from ``question.stratum_labels``) count the same way: 'group B' fits a text naming
    'Group B' (1) and misses one naming only 'Group E'.
    """
    label_fit, label_miss = _label_fit(labels, text) if labels else (0.0, 0.0)
    if not facts:
        return label_fit, label_miss
    fit = 0.0
    named_miss = False
    named_hit = False
    conditions = _conditions(text)
    context_words = set(re.findall(r"[a-z0-9][a-z0-9-]*", context.lower())) - MEASURE_WORDS if context else set()
    for fact in facts:
        fact_words = _naming_words(fact.name)
        for condition in conditions:
            named = _names_match(fact_words, _naming_words(condition.name) | context_words)
            verdict = fits(fact, condition)
            if verdict is None and named and fact.unit is None and condition.unit:
                verdict = fits(replace(fact, unit=condition.unit), condition)  # 'SBP 190' read as 'SBP > 220 mmHg'
            if verdict is None:
                continue
            if verdict:
                fit = max(fit, 1.0 if named else 0.5)
                named_hit = named_hit or named
            elif named:
                named_miss = True
    miss = 1.0 if named_miss and not named_hit else 0.0
    return max(fit, label_fit), max(miss, label_miss)


MEASURE_WORDS = frozenset(
    {"score", "scores", "level", "levels", "count", "value", "values", "rate", "index", "ratio", "total", "reading"}
)
"""Words that say a value is a measurement without saying which one ('NEWS score' and 'HEART Score' share only
'score'): they never make a value and a condition alike."""


def _naming_words(name: str) -> set[str]:
    """The words that name a measurement, and their initials when three or more ('gbs')."""
    words = set(name.split()) - MEASURE_WORDS
    initials = _acronym(name)
    if len(initials) >= 3:
        words.add(initials)
    return words


def _names_match(fact_words: set[str], condition_words: set[str]) -> bool:
    """Whether a value and a condition are named alike.

    A shared word, or a word of three or more letters that begins the other ('NEWS' and 'NEWS2').
    """
    for word in fact_words:
        for other in condition_words:
            if word == other:
                return True
            if min(len(word), len(other)) >= 3 and (other.startswith(word) or word.startswith(other)):
                return True
    return False


def _acronym(name: str) -> str:
    """Initials of a name's words, hyphenated parts included: 'glasgow-blatchford score' -> 'gbs'."""
    return "".join(part[0] for part in re.split(r"[\s-]+", name) if part)


def _label_fit(labels: Sequence[tuple[str, str]], text: str) -> tuple[float, float]:
    """Label fit and miss: (1, 0) when a text names a stratum of the question, (0, 1) when only other strata.

    'Group E' misses 'group B' (the same stratum word, another label); a text naming no such stratum is (0, 0).
    """
    stated = stratum_labels(text)
    if any(label in stated for label in labels):
        return 1.0, 0.0
    words = {word for word, _ in stated}
    return 0.0, 1.0 if any(word in words for word, _ in labels) else 0.0


@dataclass(frozen=True)
class Model:
    """A linear scoring model: feature names and weights (``score = features @ weights``) with provenance."""

    names: tuple[str, ...]
    weights: np.ndarray
    provenance: str = ""

    def score(self, features: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Scores ``(n,)`` of feature rows ``(n, len(names))``; features the model lacks weigh 0."""
        index = {name: i for i, name in enumerate(self.names)}
        weights = np.array([self.weights[index[name]] if name in index else 0.0 for name in names])
        return features @ weights


@functools.lru_cache(maxsize=8)
def load_model(kind: str) -> Model | None:
    """Load a model ('passage', 'unit', 'abstain') from the package's ``weights.json`` (None when absent)."""
    try:
        text = resources.files("medcite.retrieve").joinpath("weights.json").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None
    data = json.loads(text).get(kind)
    if not data:
        return None
    return Model(
        names=tuple(data["names"]),
        weights=np.array(data["weights"], dtype=float),
        provenance=str(data.get("provenance", "")),
    )


def passage_features(
    frame: QuestionFrame,
    matcher: TermMatcher,
    hits: Sequence[Hit],
    stage_ranks: Sequence[dict[str, int]],
    fused: Sequence[float],
) -> np.ndarray:
    """Feature rows ``(len(hits), len(PASSAGE_FEATURES))`` float64 for candidate passages of one question.

    Args:
        frame: The parsed question.
        matcher: Its concepts, weighted in the library.
        hits: The candidates, in first-stage order.
        stage_ranks: Per hit, its 1-based rank in each first-stage ranking ('lexical', 'lexical_expanded',
            'lexical_family', 'dense'); a ranking that missed it is absent.
        fused: Per hit, its fused first-stage score (reciprocal rank fusion).
    """
    rows = np.zeros((len(hits), len(PASSAGE_FEATURES)))
    if not hits:
        return rows
    top_fused = max(fused) or 1.0
    heading_cue = INTENT_HEADINGS.get(frame.intent)
    fitting = {PRIMARY_SECTION[frame.intent], *INTENT_SECTIONS.get(frame.intent, ())}
    negated = negated_stems(frame.text)
    covers: list[float] = []
    for i, hit in enumerate(hits):
        body, heading = stems_of(hit.text), stems_of(hit.section)
        last, title = stems_of(hit.section.split(" > ")[-1]), title_stems(hit)
        cover_all = matcher.coverage(body, (heading, 0.75), (title, 0.5))
        covers.append(cover_all)
        units = _unit_stems(hit.text) or (body,)
        unit_cover = max(matcher.coverage(unit, (heading, 0.75), (title, 0.5)) for unit in units)
        unit_key = max(matcher.key_coverage(unit | heading | title) for unit in units)
        fit, miss = numeric_fit(frame.facts, f"{hit.section}\n{hit.text}", hit.title, labels=frame.labels)
        ranks = stage_ranks[i]
        rows[i] = (
            fused[i] / top_fused,
            rank_feature(ranks.get("lexical")),
            rank_feature(ranks.get("lexical_expanded")),
            rank_feature(ranks.get("lexical_family")),
            rank_feature(ranks.get("dense")),
            matcher.coverage(body),
            matcher.coverage(heading),
            matcher.coverage(last),
            matcher.coverage(title),
            cover_all,
            matcher.key_coverage(body | heading | title),
            unit_cover,
            unit_key,
            0.0,  # doc_cover, filled below
            0.0,  # doc_top
            1.0 if heading_cue is not None and heading_cue.search(hit.section) else 0.0,
            fit,
            miss,
            EVIDENCE_PRIOR.get(hit.evidence_type, 0.0),
            min(max(((hit.year or 2000) - 2000) / 25.0, 0.0), 1.0),
            1.0 if frame.intent != "overview" and heading_section(hit.section) not in (None, *fitting) else 0.0,
            *negation_agreement(negated, f"{hit.section}\n{hit.text}", body | heading),
        )
    best_of: dict[str, float] = {}
    for hit, cover in zip(hits, covers, strict=True):
        best_of[hit.doc_id] = max(best_of.get(hit.doc_id, 0.0), cover)
    top_doc = max(best_of.values())
    doc_column, top_column = PASSAGE_FEATURES.index("doc_cover"), PASSAGE_FEATURES.index("doc_top")
    for i, hit in enumerate(hits):
        rows[i, doc_column] = best_of[hit.doc_id]
        rows[i, top_column] = 1.0 if best_of[hit.doc_id] >= top_doc else 0.0
    return rows
