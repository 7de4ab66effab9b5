"""Support checks: is a written statement backed by the passages it cites?

Used by the LLM composer (``compose.llm``) before anything a model wrote is shown: a statement is
*supported* when every number (and every number-with-unit, e.g. a dose) and every drug-like name in it
occurs in a cited passage, its negation agrees with the passage sentence closest to it, and a support
score (lexical coverage blended with embedding similarity) reaches a threshold tuned on physician-labelled
statement/answer pairs (K-QA, ``benchmarks/verify.py``). The checks are deliberately strict: dropping a
true statement costs fluency, keeping a false one costs trust. This module imports ``embed`` (the
``Embedder`` protocol) and ``index`` (the sentence splitter); never ``answer``, ``render``, ``web`` or
``cli``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import snowballstemmer  # type: ignore[import-untyped]

from medcite.index import split_sentences

if TYPE_CHECKING:
    from medcite.embed import Embedder

__all__ = [
    "CALIBRATION",
    "LEXICAL_CALIBRATION",
    "LEXICAL_THRESHOLD",
    "LEXICAL_WEIGHT",
    "NEGATION_MIN_OVERLAP",
    "SUPPORT_THRESHOLD",
    "SupportCheck",
    "Verifier",
    "drug_names",
    "estimate_precision",
    "lexical_support",
    "number_mentions",
]

# --- Tuned constants (benchmarks/verify.py prints how they were chosen) ----------------------------------------

LEXICAL_WEIGHT = 0.25
"""Weight (0-1) of lexical coverage in the support score; the rest is embedding similarity (MiniLM)."""
SUPPORT_THRESHOLD = 0.67
"""Support score (0-1) a statement needs when an embedding model is available (lexical + semantic)."""
LEXICAL_THRESHOLD = 0.44
"""Lexical coverage (0-1) a statement needs when no embedding model is available."""
NEGATION_MIN_OVERLAP = 0.5
"""Negation must agree with the closest cited sentence when they share at least this share (Jaccard, 0-1) of
content stems: a near-copy with its polarity flipped. On K-QA's 399 pairs the check at any lower overlap
rejected entailed and non-entailed pairs at the base rate (e.g. 33 entailed of 94 rejected at 0), i.e. it
measured nothing; at 0.5 it fires on 4 pairs."""
CALIBRATION: tuple[tuple[float, float], ...] = (
    (0.0, 0.42),
    (0.5, 0.49),
    (0.6, 0.54),
    (0.7, 0.63),
    (0.8, 0.78),
    (0.9, 1.0),
)
"""(score lower bound, share of K-QA pairs passing the checks at or above it that physicians judged entailed).

For the blended score (MiniLM); ``LEXICAL_CALIBRATION`` for lexical coverage alone. Both as printed by
``benchmarks/verify.py`` on all 399 pairs (in-sample; the weights and thresholds above are chosen on the same
pairs, and the benchmark's cross-validated rows are the honest estimate of precision and recall).
"""
LEXICAL_CALIBRATION: tuple[tuple[float, float], ...] = (
    (0.0, 0.42), (0.5, 0.60), (0.6, 0.63), (0.7, 0.73), (0.8, 0.81), (0.9, 1.0),
)  # fmt: skip
"""As ``CALIBRATION``, for the lexical-only score."""

# --- Vocabulary of the checks (language, units and INN naming stems; no clinical facts) -------------------------

_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers him his how i if in into is it its itself just may me might more most must my no nor not of off on once
    only or other our out over own same she should so some such than that the their them then there these they
    this those through to too under until up upon very was we were what when where which while who whom why will
    with would you your also usually often generally typically commonly include includes including""".split()
)
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|without|cannot|can't|don't|doesn't|didn't|isn't|aren't|wasn't|"
    r"shouldn't|won't|avoid(?:ed|s)?|contraindicated|unnecessary|ineffective)\b",
    re.I,
)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules|prompt|above|previous)\b|"
    r"\b(?:system prompt|you are now|as an ai|assistant:|new instructions)\b",
    re.I,
)
_UNITS = (
    r"mg|g|mcg|µg|μg|ug|ng|kg|ml|l|dl|iu|units?|u|mmol|mol|meq|%|mmhg|cm|mm|bpm|h|hr|hrs|hours?|min|"
    r"minutes?|days?|d|weeks?|wk|months?|years?|yr|times|doses?|tablets?|puffs?|drops?|breaths"
)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(?:\s*(?:-|–|to)\s*(\d+(?:[.,]\d+)*))?")
_DOSE = re.compile(
    rf"(?<![\w.])(\d+(?:\.\d+)?(?:\s*(?:-|–|to)\s*\d+(?:\.\d+)?)?)\s*((?:{_UNITS})(?:\s*/\s*[a-zµμ0-9]+(?:\.\d+)?)*)(?![a-z])",
    re.I,
)
# WHO International Nonproprietary Name stems ("The use of stems in the selection of INNs", WHO 2018):
# a word ending in one of them names a drug or drug class member.
_INN_STEMS = (
    "mab", "nib", "pril", "prilat", "sartan", "olol", "alol", "statin", "cillin", "mycin", "micin", "floxacin",
    "oxacin", "azole", "conazole", "parin", "xaban", "gatran", "dipine", "gliflozin", "gliptin", "glutide",
    "prazole", "vir", "cycline", "penem", "triptan", "setron", "tidine", "afil", "caine", "dronate",
    "lukast", "semide", "thiazide", "sone", "olone", "zepam", "azepam", "barbital",
    "oxetine", "pramine", "triptyline", "peridone", "apine", "azosin", "terol", "tropium", "profen", "coxib",
    "fenac", "platin", "rubicin", "taxel", "relin", "pram", "faxine", "tinib",
)  # fmt: skip
_DRUG_WORD = re.compile(rf"\b[a-z]{{3,}}(?:{'|'.join(sorted(_INN_STEMS, key=len, reverse=True))})\b", re.I)
_NOT_DRUGS = frozenset({"cholesterol", "reason", "person", "season", "comparison"})
_DRUG_PREFIX = re.compile(r"\bcef[a-z]{4,}\b", re.I)
_WORD = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", re.I)
_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def _content_stems(text: str) -> set[str]:
    stems: set[str] = set()
    for word in _WORD.findall(text.lower()):
        for part in [word, *word.split("-")] if "-" in word else [word]:
            if part and part not in _STOPWORDS and not part.replace(".", "").isdigit():
                stems.add(_stem(part))
    return stems


def _squash(text: str) -> str:
    """Lower-case, unify dashes and micro signs, and glue a number to the unit after it ('500 mg' -> '500mg')."""
    text = text.lower().replace("–", "-").replace("μ", "µ").replace(",", "")
    text = re.sub(r"(\d)\s*-\s*(\d)", r"\1-\2", text)
    text = re.sub(r"(\d)\s+to\s+(\d)", r"\1-\2", text)
    text = re.sub(r"\s*/\s*", "/", text)
    return re.sub(r"(\d)\s+(?=[a-zµ%])", r"\1", " ".join(text.split()))


def number_mentions(text: str) -> tuple[list[str], list[str]]:
    """Return the numbers and the number-with-unit mentions (doses, durations, rates) of a text.

    Args:
        text: Any text.

    Returns:
        ``(numbers, doses)``: numbers as written without thousands separators ('1000', '0.5'), and
        squashed number-unit mentions ('500mg', '0.1units/kg', '3-5days'), each in order of appearance.
    """
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)
    numbers = []
    for match in _NUMBER.finditer(text):
        numbers += [group.replace(",", "") for group in match.groups() if group]
    doses = [_squash(match.group(0)) for match in _DOSE.finditer(text)]
    return numbers, doses


def drug_names(text: str) -> set[str]:
    """Return the lower-cased words of a text that carry a WHO INN drug stem ('apixaban', 'ceftriaxone').

    Args:
        text: Any text.

    Returns:
        Drug-like words; generic names only (brand names carry no stem and are not found).
    """
    found = {m.group(0).lower() for m in _DRUG_WORD.finditer(text)}
    found |= {m.group(0).lower() for m in _DRUG_PREFIX.finditer(text)}
    return found - _NOT_DRUGS


def lexical_support(statement: str, passages: Sequence[str]) -> float:
    """Return the share (0-1) of the statement's content word stems found in the passages.

    Stop words and bare numbers are left out (numbers have their own check); a statement without
    content words scores 0.

    Args:
        statement: The statement to check.
        passages: The cited passages' texts.
    """
    own = _content_stems(statement)
    if not own:
        return 0.0
    pool: set[str] = set()
    for passage in passages:
        pool |= _content_stems(passage)
    return len(own & pool) / len(own)


def _sentences(passage: str) -> list[str]:
    spans = [passage[start:end].strip() for start, end in split_sentences(passage)]
    pieces = [line.strip(" -*•|") for span in spans for line in span.splitlines()]
    return [piece for piece in pieces if len(piece.split()) >= 3] or [passage.strip()]


def estimate_precision(
    scores: Sequence[float], calibration: Sequence[tuple[float, float]] = CALIBRATION
) -> float | None:
    """Return the expected share (0-1) of statements with these support scores that their citations support.

    Each score is mapped to the K-QA precision of its calibration band and the mean is returned.

    Args:
        scores: Support scores of kept statements (0-1).
        calibration: ``(score lower bound, precision)`` bands, ascending (``CALIBRATION`` or
            ``LEXICAL_CALIBRATION``, matching how the scores were computed).

    Returns:
        The estimate rounded to 2 decimals, or None for no scores.
    """
    if not scores:
        return None
    estimates = []
    for score in scores:
        band = calibration[0][1]
        for lower, precision in calibration:
            if score >= lower:
                band = precision
        estimates.append(band)
    return round(sum(estimates) / len(estimates), 2)


@dataclass
class SupportCheck:
    """The verdict on one statement.

    Attributes:
        is_supported: True when every check passed.
        score: Support score (0-1): lexical alone without an embedder, else the blend.
        lexical: Share of content stems found in the cited passages (0-1).
        semantic: Best cosine (-1 to 1) between the statement and a cited sentence, or None.
        reasons: One phrase per failed check ('number 40 not in the cited passages'), empty when supported.
    """

    is_supported: bool
    score: float
    lexical: float
    semantic: float | None = None
    reasons: list[str] = field(default_factory=list)


class Verifier:
    """Check statements against the passages they cite.

    Args:
        embedder: A sentence-embedding model (``medcite.embed.load_embedder``) for the semantic half of the
            score; None, or a hash embedder (words only, no meaning), scores lexically.
        threshold: Score needed; default ``SUPPORT_THRESHOLD`` with a real embedder, else ``LEXICAL_THRESHOLD``.
        lexical_weight: Weight of lexical coverage in the blended score (0-1).
        check_gates: Run the number, drug-name and negation checks (off only to measure the score alone).

    Attributes:
        calibration: ``CALIBRATION`` with an embedder, else ``LEXICAL_CALIBRATION`` (for ``estimate_precision``).
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        threshold: float | None = None,
        lexical_weight: float = LEXICAL_WEIGHT,
        check_gates: bool = True,
    ) -> None:
        if embedder is not None and embedder.name.startswith("hash-"):
            embedder = None
        self.embedder = embedder
        self.threshold = threshold if threshold is not None else SUPPORT_THRESHOLD if embedder else LEXICAL_THRESHOLD
        self.lexical_weight = lexical_weight
        self.check_gates = check_gates
        self.calibration = CALIBRATION if embedder else LEXICAL_CALIBRATION

    def gate_reasons(self, statement: str, passages: Sequence[str]) -> list[str]:
        """Return why hard checks fail: numbers, doses, drug names absent from the passages; negation.

        Args:
            statement: The statement.
            passages: The cited passages' texts.

        Returns:
            One phrase per failure, empty when all pass.
        """
        reasons: list[str] = []
        joined = "\n".join(passages)
        numbers, doses = number_mentions(joined)
        own_numbers, own_doses = number_mentions(statement)
        passage_numbers = set(numbers)
        squashed = _squash(joined)
        for number in dict.fromkeys(own_numbers):
            if number not in passage_numbers:
                reasons.append(f"number {number} not in the cited passages")
        for dose in dict.fromkeys(own_doses):
            if not re.search(rf"(?<![\w.]){re.escape(dose)}", squashed):
                reasons.append(f"'{dose}' not in the cited passages")
        passage_words = {word.lower() for word in _WORD.findall(joined)}
        for name in sorted(drug_names(statement)):
            if name not in passage_words and not any(name in word for word in passage_words):
                reasons.append(f"drug name '{name}' not in the cited passages")
        overlap, closest = self._closest_sentence(statement, passages)
        if (
            closest is not None
            and overlap >= NEGATION_MIN_OVERLAP
            and bool(_NEGATION.search(statement)) != bool(_NEGATION.search(closest))
        ):
            reasons.append("negation disagrees with the closest cited sentence")
        if closest is not None and _INJECTION.search(closest):
            reasons.append("the closest cited sentence is an instruction to the model, not evidence")
        return reasons

    def _closest_sentence(self, statement: str, passages: Sequence[str]) -> tuple[float, str | None]:
        """The cited sentence sharing most content stems with the statement (Jaccard 0-1), and that overlap."""
        own = _content_stems(statement)
        best: tuple[float, str | None] = (0.0, None)
        for passage in passages:
            for sentence in _sentences(passage):
                stems = _content_stems(sentence)
                overlap = len(own & stems) / (len(own | stems) or 1)
                if best[1] is None or overlap > best[0]:
                    best = (overlap, sentence)
        return best

    def semantic_support(self, statements: Sequence[str], passages: Sequence[Sequence[str]]) -> list[float | None]:
        """Return, per statement, the best cosine with a sentence (or pair of sentences) of its passages.

        Args:
            statements: The statements.
            passages: For each statement, its cited passages' texts.

        Returns:
            One cosine (-1 to 1) per statement, or None per statement without an embedder.
        """
        if self.embedder is None:
            return [None] * len(statements)
        windows: list[list[str]] = []
        for texts in passages:
            sentences = [s for passage in texts for s in _sentences(passage)]
            pairs = [f"{a} {b}" for a, b in zip(sentences, sentences[1:], strict=False)]
            windows.append(sentences + pairs)
        flat = [w for group in windows for w in group]
        vectors = self.embedder.embed([*statements, *flat])
        own, rest = vectors[: len(statements)], vectors[len(statements) :]
        results: list[float | None] = []
        start = 0
        for row, group in enumerate(windows):
            block = rest[start : start + len(group)]
            start += len(group)
            results.append(float((block @ own[row]).max()) if len(group) else 0.0)
        return results

    def check_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[SupportCheck]:
        """Check statements against their cited passages (one embedding batch for all).

        Args:
            items: ``(statement, cited passage texts)`` pairs.

        Returns:
            One ``SupportCheck`` per item, in order.
        """
        semantic = self.semantic_support([s for s, _ in items], [p for _, p in items])
        checks = []
        for (statement, texts), cosine in zip(items, semantic, strict=True):
            if not texts:
                checks.append(SupportCheck(False, 0.0, 0.0, cosine, ["cites no passage"]))
                continue
            lexical = lexical_support(statement, texts)
            if cosine is None:
                score = lexical
            else:
                score = self.lexical_weight * lexical + (1 - self.lexical_weight) * max(cosine, 0.0)
            reasons = self.gate_reasons(statement, texts) if self.check_gates else []
            if score < self.threshold:
                reasons.append(f"support score {score:.2f} below {self.threshold:.2f}")
            checks.append(SupportCheck(not reasons, round(score, 4), round(lexical, 4), cosine, reasons))
        return checks

    def check(self, statement: str, passages: Sequence[str]) -> SupportCheck:
        """Check one statement against its cited passages.

        Args:
            statement: The statement.
            passages: The cited passages' texts (empty: not supported).

        Returns:
            The verdict.
        """
        return self.check_many([(statement, passages)])[0]
