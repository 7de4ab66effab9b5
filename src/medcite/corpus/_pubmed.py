"""PubMed vocabulary shared by the PubMed-derived adapters (pubmed-xml, medline, pubmedqa, pubmed).

Maps NLM publication types (https://www.nlm.nih.gov/mesh/pubtypes.html) to
medcite evidence types, and recognises retraction and erratum notices.
"""

from __future__ import annotations

from collections.abc import Iterable

from medcite.models import EvidenceType

__all__ = [
    "NOTICE_TYPES",
    "RETRACTED_PUBLICATION",
    "evidence_type_from_publication_types",
    "notice_type",
]

RETRACTED_PUBLICATION = "Retracted Publication"
"""Publication type NLM adds to a paper that has been retracted."""

NOTICE_TYPES: dict[str, str] = {
    "Retraction of Publication": "retraction",
    "Published Erratum": "erratum",
    "Expression of Concern": "expression_of_concern",
    "Retraction and Replacement": "retraction_and_replacement",
}
"""Publication types of notices about another paper, mapped to medcite's notice names."""

# Strongest first; the first publication type found in this order decides. Names are NLM's.
_EVIDENCE_ORDER: tuple[tuple[EvidenceType, frozenset[str]], ...] = (
    ("guideline", frozenset({"Practice Guideline", "Guideline", "Consensus Development Conference, NIH"})),
    ("systematic_review", frozenset({"Systematic Review"})),
    ("meta_analysis", frozenset({"Meta-Analysis", "Network Meta-Analysis"})),
    (
        "rct",
        frozenset(
            {
                "Randomized Controlled Trial",
                "Randomized Controlled Trial, Veterinary",
                "Pragmatic Clinical Trial",
                "Equivalence Trial",
            }
        ),
    ),
    (
        "observational",
        frozenset(
            {
                "Observational Study",
                "Observational Study, Veterinary",
                "Comparative Study",
                "Multicenter Study",
                "Twin Study",
                "Clinical Trial",
                "Clinical Trial, Phase I",
                "Clinical Trial, Phase II",
                "Clinical Trial, Phase III",
                "Clinical Trial, Phase IV",
                "Controlled Clinical Trial",
                "Evaluation Study",
                "Validation Study",
            }
        ),
    ),
    ("review", frozenset({"Review", "Scoping Review", "Consensus Development Conference"})),
    ("case_report", frozenset({"Case Reports"})),
)


def evidence_type_from_publication_types(publication_types: Iterable[str]) -> EvidenceType:
    """Return the strongest evidence type named by a record's publication types.

    Order: guideline > systematic_review > meta_analysis > rct > observational >
    review > case_report > other. Notices (errata, retractions) are ``other``.
    Non-randomised clinical trials count as ``observational`` (primary research below RCTs).

    Args:
        publication_types: NLM publication type names, e.g. ``["Journal Article", "Review"]``.
    """
    names = {name.strip() for name in publication_types}
    if names & NOTICE_TYPES.keys():
        return "other"
    for evidence_type, members in _EVIDENCE_ORDER:
        if names & members:
            return evidence_type
    return "other"


def notice_type(publication_types: Iterable[str]) -> str | None:
    """Return 'retraction', 'erratum', ... when the record is a notice about another paper, else None."""
    for name in publication_types:
        found = NOTICE_TYPES.get(name.strip())
        if found:
            return found
    return None
