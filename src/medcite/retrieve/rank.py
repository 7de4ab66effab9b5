"""Fusion and evidence-aware ranking: pure functions over ranked candidate lists.

Imports nothing from medcite but ``models``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EVIDENCE_PRIOR", "Candidate", "cap_per_document", "evidence_rerank", "fuse_rrf"]

EVIDENCE_PRIOR: dict[str, float] = {
    "guideline": 1.0,
    "protocol": 0.9,
    "systematic_review": 0.75,
    "meta_analysis": 0.75,
    "rct": 0.5,
    "observational": 0.25,
    "review": 0.25,
    "case_report": 0.1,
    "consumer": 0.0,
    "other": 0.0,
}
"""Strength of an evidence type, 0-1: guideline > systematic review/meta-analysis > RCT > other research.

The order follows the usual evidence hierarchy (e.g. the Oxford CEBM levels of
evidence); an institution's own protocol ranks just below a guideline.
"""


@dataclass(frozen=True)
class Candidate:
    """A passage under consideration: its rowid and the metadata ranking needs."""

    rowid: int
    doc_id: str
    passage_id: str
    evidence_type: str
    year: int | None
    score: float


def fuse_rrf(
    rankings: Sequence[Sequence[int]], *, k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Merge ranked lists with reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009).

    A passage's fused score is the sum of ``weight / (k + rank)`` over the lists
    it appears in (rank 1-based; weights default to 1, the original RRF).
    Raw retriever scores are ignored, so BM25 and cosine scores never need
    normalising against each other.

    Args:
        rankings: One list of passage rowids per retriever, each best first.
        k: Damping constant (>= 1); larger values flatten the advantage of top ranks.
        weights: One weight per ranking (weighted RRF), or None for all 1.

    Returns:
        ``(rowid, fused score)`` pairs, best first; equal scores ordered by rowid.

    Raises:
        ValueError: If ``k`` is below 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1 (got {k})")
    if weights is not None and len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    fused: defaultdict[int, float] = defaultdict(float)
    for number, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[number]
        for position, rowid in enumerate(ranking, start=1):
            fused[rowid] += weight / (k + position)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def evidence_rerank(candidates: Sequence[Candidate], *, weight: float) -> list[tuple[Candidate, float]]:
    """Order candidates by relevance, letting stronger evidence win among passages of similar relevance.

    ``final = score * (1 + weight * EVIDENCE_PRIOR[evidence_type])``: with a
    small weight (0.15 by default) a guideline passage overtakes a primary study
    only when their relevance scores are within 15%. Ties go to the newer
    document, then to the passage id.

    Returns:
        ``(candidate, final score)`` pairs, best first.
    """
    scored = [(c, c.score * (1.0 + weight * EVIDENCE_PRIOR.get(c.evidence_type, 0.0))) for c in candidates]
    return sorted(scored, key=lambda item: (-item[1], -(item[0].year or 0), item[0].passage_id))


def cap_per_document(
    ranked: Sequence[tuple[Candidate, float]], *, max_per_document: int, limit: int
) -> list[tuple[Candidate, float]]:
    """Keep at most ``max_per_document`` passages of any one document, then the first ``limit``."""
    kept: list[tuple[Candidate, float]] = []
    per_document: defaultdict[str, int] = defaultdict(int)
    for candidate, score in ranked:
        if per_document[candidate.doc_id] >= max_per_document:
            continue
        per_document[candidate.doc_id] += 1
        kept.append((candidate, score))
        if len(kept) == limit:
            break
    return kept
