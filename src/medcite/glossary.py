"""Definitions of an answer's key terms, quoted from the library (never written by medcite).

Students get a "Key terms" section and patients a "What the words mean" section: for the question's
terms (its shorthand, the library vocabulary's phrases, its most specific words) the library is searched
for a sentence that defines the term in the usual dictionary shape, "<term> (…) is/are a …" or
"<term> is defined as …" (e.g. the GINA guideline's "Asthma is a heterogeneous disease, …" or a MedQuAD
"What is (are) …?" answer). The sentence is quoted verbatim with its passage, like every other statement;
a term the library does not define is left undefined. Consumer-health sources are preferred for patients.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from medcite.errors import QueryError
from medcite.models import Audience, Hit
from medcite.quote import split_units
from medcite.retrieve import ABBREVIATIONS, Retriever, query_terms

__all__ = ["MAX_DEFINITIONS", "define_terms", "definition_pattern", "glossary_title", "key_terms"]

MAX_DEFINITIONS = 3
"""Definitions added to an answer at most."""
_SEARCH_HITS = 20
"""Passages searched for a definition of each term (one document may give many of them: search has no per-document
cap)."""
_MAX_DEFINITION_CHARS = 400
_PHRASE_WORDS = 4
_MAX_TERMS = 6


def glossary_title(audience: Audience) -> str:
    """The section title of the definitions for an audience (product copy)."""
    return "What the words mean" if audience == "patient" else "Key terms"


def key_terms(question: str, retriever: Retriever, *, extra_text: str = "") -> list[str]:
    """Return the terms worth defining, most specific first: shorthand, vocabulary phrases, rare words.

    Args:
        question: The question as asked.
        retriever: Its vocabulary finds phrases ("atrial fibrillation") and its library word counts rank words.
        extra_text: Text whose shorthand is defined too (the bottom line), after the question's terms.

    Returns:
        Distinct terms in the order they should be tried (at most six: each costs one search).
    """
    terms: list[str] = []

    def add(term: str) -> None:
        if term and term.lower() not in {t.lower() for t in terms}:
            terms.append(term)

    words = query_terms(question)
    for word in words:  # shorthand the question uses: "DKA", "HFrEF"
        if word in ABBREVIATIONS:
            add(word)
    for size in range(_PHRASE_WORDS, 1, -1):  # multi-word terms of the question that the vocabulary knows
        for start in range(0, len(words) - size + 1):
            phrase = " ".join(words[start : start + size])
            if retriever.vocabulary.equivalents(phrase):
                add(phrase)
    for start in range(0, len(words) - 1):  # adjacent word pairs ("septic shock", "asthma exacerbation")
        add(f"{words[start]} {words[start + 1]}")
    for word in words:
        add(word)
    for word in query_terms(extra_text):
        if word in ABBREVIATIONS:
            add(word)
    return terms[:_MAX_TERMS]


def definition_pattern(term: str, equivalents: Sequence[str]) -> re.Pattern[str]:
    """A sentence defining ``term`` or one of its equivalents in the dictionary shape (see the module docstring).

    Or a glossary item's shape: 'Severe asthma: A subset of difficult-to-treat asthma ...'.
    """
    names = "|".join(re.escape(name) for name in sorted({term, *equivalents}, key=len, reverse=True))
    return re.compile(
        rf"^(?:the |an? )?(?:{names})(?:\s*\([^)]{{0,100}}\))?"
        rf"(?:\s+(?:is|are)\s+(?:defined as\b|an?\b|the\b|one\b)|\s*:\s+(?:an?|the)\s)",
        re.I,
    )


def define_terms(
    terms: Sequence[str],
    retriever: Retriever,
    *,
    audience: Audience = "student",
    exclude_texts: Sequence[str] = (),
    limit: int = MAX_DEFINITIONS,
) -> list[tuple[str, Hit]]:
    """Find a defining sentence in the library for each term, in order, up to ``limit``.

    Args:
        terms: Terms to define (``key_terms``).
        retriever: Searches the library (lexical BM25; a few ms per term).
        audience: 'patient' prefers consumer-health passages; others take the best-ranked definition.
        exclude_texts: Statements already in the answer (not repeated as definitions).
        limit: Definitions at most.

    Returns:
        ``(sentence, hit)`` pairs: the sentence verbatim from ``hit.text`` (as ``split_units`` trims it).
    """
    found: list[tuple[str, Hit]] = []
    seen = {" ".join(text.split()).lower() for text in exclude_texts}
    defined: set[str] = set()
    for term in terms:
        if len(found) >= limit:
            break
        if any(term.lower() in d or d in term.lower() for d in defined):
            continue  # "asthma" after "asthma exacerbation" was defined, or the other way round
        pattern = definition_pattern(term, retriever.vocabulary.equivalents(term))
        try:
            hits = retriever.search(term, limit=_SEARCH_HITS, mode="lexical")
        except QueryError:  # a connective or a number: nothing to define
            continue
        if audience == "patient":
            hits = sorted(hits, key=lambda h: (h.evidence_type != "consumer", h.rank))
        for hit in hits:
            sentence = next(
                (
                    text
                    for text, is_block in split_units(hit.text)
                    if not is_block and len(text) <= _MAX_DEFINITION_CHARS and pattern.search(text)
                ),
                None,
            )
            if sentence is not None and " ".join(sentence.split()).lower() not in seen:
                seen.add(" ".join(sentence.split()).lower())
                defined.add(term.lower())
                found.append((sentence, hit))
                break
    return found
