"""References and the citation check every answer passes before it leaves, whichever composer wrote it.

``reference_for`` turns a cited passage into a numbered reference; ``check_citations`` proves that every
citation resolves to a passage of the evidence and, for quoted statements, that each statement's words and
each piece of its context occur verbatim in the passage (or its heading path) it cites. Imports ``models``,
``errors`` and ``quote`` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from medcite.errors import CitationError
from medcite.models import Answer, BottomLine, Hit, Reference, Statement
from medcite.quote import normalise_quote

__all__ = ["EVIDENCE_LABELS", "check_citations", "reading_grade", "reference_for"]

EVIDENCE_LABELS: dict[str, str] = {
    "guideline": "Guideline",
    "protocol": "Protocol",
    "systematic_review": "Systematic review",
    "meta_analysis": "Meta-analysis",
    "rct": "RCT",
    "observational": "Research",
    "review": "Review",
    "case_report": "Case report",
    "consumer": "Consumer health",
    "other": "Research",
}
"""Reference type label shown to readers, by evidence type."""


def reading_grade(texts: Sequence[str]) -> float | None:
    """Return the Flesch-Kincaid grade level of the texts (textstat; Kincaid et al. 1975), None when empty."""
    prose = " ".join(t for t in texts if t and not t.lstrip().startswith("|"))
    if not prose.strip():
        return None
    import textstat  # imported on first use: it loads its hyphenation dictionaries (~1 s) at import

    return round(float(textstat.flesch_kincaid_grade(prose)), 1)


def reference_for(n: int, hit: Hit) -> Reference:
    """Return reference number ``n`` for a hit: evidence label, source, year, DOI/PMID link, heading and passage."""
    url = f"https://doi.org/{hit.doi}" if hit.doi else None
    if url is None and hit.pmid:
        url = f"https://pubmed.ncbi.nlm.nih.gov/{hit.pmid}/"
    return Reference(
        n=n,
        type=EVIDENCE_LABELS.get(hit.evidence_type, "Research"),
        title=hit.title,
        source=hit.organization or hit.journal,
        year=hit.year,
        doi=hit.doi,
        pmid=hit.pmid,
        url=url,
        passage_id=hit.passage_id,
        section=hit.section,
        passage=hit.text,
    )


def check_citations(
    answer: Answer, hits: Sequence[Hit], *, strict: bool = True, uncited: Sequence[str] = ()
) -> list[str]:
    """Check that every citation of an answer resolves and, for quoted answers, quotes its passage.

    A reference must name a passage of the evidence set ``hits`` and carry its exact text; a statement must
    cite numbers in 1..len(references); in an extractive answer each statement's text, and each of its context
    pieces, must occur (after ``normalise_quote``) in the text or heading path of a passage it cites; the bottom
    line's text must be its statements' ``plain()`` forms. Only the texts in ``uncited`` (product notices such as
    the emergency advice) and the bottom line of an abstention may go uncited.

    Args:
        answer: The answer to check.
        hits: The evidence set the answer was composed from.
        strict: Raise on the first problem (tests, CLI) instead of returning the list.
        uncited: Statement texts allowed without a citation.

    Returns:
        One sentence per problem (empty when all is well).

    Raises:
        CitationError: ``strict`` is True and a problem was found.
    """
    problems: list[str] = []
    by_id = {hit.passage_id: hit for hit in hits}
    quoted: dict[int, tuple[str, str]] = {}
    for position, reference in enumerate(answer.references, start=1):
        if reference.n != position:
            problems.append(f"Reference {reference.n} is numbered out of order (expected {position}).")
        hit = by_id.get(reference.passage_id)
        if hit is None:
            problems.append(f"Reference {reference.n} cites {reference.passage_id}, which is not in the evidence set.")
        elif hit.text != reference.passage:
            problems.append(f"Reference {reference.n} does not carry the text of {reference.passage_id}.")
        quoted[reference.n] = (normalise_quote(reference.passage), normalise_quote(reference.section))
    verbatim = answer.composer == "extractive"

    def check(where: str, statement: Statement) -> None:
        if not statement.citations:
            if statement.text not in uncited:
                problems.append(f"{where} has no citation: {statement.text[:80]!r}.")
            return
        sources = []
        for n in statement.citations:
            if n not in quoted:
                problems.append(f"{where} cites [{n}], outside 1..{len(answer.references)}.")
            else:
                sources.append(quoted[n])
        if not verbatim or not sources:
            return
        if not any(normalise_quote(statement.text) in passage for passage, _ in sources):
            problems.append(f"{where} is not in the passage it cites: {statement.text[:80]!r}.")
        for piece in statement.context:
            needle = normalise_quote(piece)
            if not any(needle in passage or needle in heading for passage, heading in sources):
                problems.append(f"{where} has context not in its cited passage: {piece[:80]!r}.")

    for section in answer.sections:
        for statement in section.statements:
            check(f"A statement of '{section.title}'", statement)
    bottom: BottomLine = answer.bottom_line
    for statement in bottom.statements:
        check("The bottom line", statement)
    if bottom.statements:
        expected = " ".join(statement.plain() for statement in bottom.statements)
        if verbatim and bottom.text != expected:
            problems.append("The bottom line's text is not its statements' text.")
        cited = sorted({n for statement in bottom.statements for n in statement.citations})
        if sorted(set(bottom.citations)) != cited:
            problems.append("The bottom line's citations are not its statements' citations.")
    elif not answer.abstained and bottom.text and not bottom.citations:
        problems.append("The bottom line has no citation.")
    for n in bottom.citations:
        if n not in quoted:
            problems.append(f"The bottom line cites [{n}], outside 1..{len(answer.references)}.")
    if problems and strict:
        raise CitationError(f"Answer {answer.id} has citation problems: {' '.join(problems)}")
    return problems
