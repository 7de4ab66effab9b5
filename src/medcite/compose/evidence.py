"""The evidence an answer is composed from: ranked passages, their documents' other passages, candidate units.

``gather_evidence`` runs the retriever's two stages (``Retriever.candidates`` and ``Retriever.rank``), keeps
the best ``RETRIEVAL_LIMIT_PASSAGES`` passages and adds every other passage of the ``EXPAND_TOP_DOCUMENTS``
best documents (a guideline's sibling sections often hold the answer its best-matching section leads to),
then cuts all of them into candidate statements with their features (``compose.features``). Imports
``models``, ``retrieve``, ``quote`` and ``compose.features`` only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from medcite.compose.features import Candidate, candidate_units, unit_features
from medcite.glossary import define_terms, definition_pattern
from medcite.models import Hit
from medcite.retrieve import Retriever
from medcite.retrieve.match import TermMatcher, stem_set
from medcite.retrieve.question import QuestionFrame, parse_question
from medcite.retrieve.rerank import Model
from medcite.retrieve.retriever import Mode

__all__ = ["EXPAND_TOP_DOCUMENTS", "RETRIEVAL_LIMIT_PASSAGES", "Evidence", "gather_evidence"]

RETRIEVAL_LIMIT_PASSAGES = 12
"""Ranked passages an answer reads."""
EXPAND_TOP_DOCUMENTS = 2
"""Documents (of the best passages) whose other passages are also read."""


@dataclass
class Evidence:
    """What an answer is composed from."""

    frame: QuestionFrame
    matcher: TermMatcher
    hits: list[Hit]
    """Ranked passages first (best first), then the top documents' other passages in document order."""
    retrieved_ids: frozenset[str]
    passage_scores: dict[str, float]
    units: list[Candidate] = field(default_factory=list)
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    agents: tuple[str, ...] = ()
    """The question's concepts that name a single drug the library's vocabulary knows ('nitrofurantoin')."""
    ranked: list[Hit] = field(default_factory=list)
    """Every first-stage candidate in the passage model's order (``Retriever.rank``), what ``medcite search`` lists."""
    definition: re.Pattern[str] | None = None
    """For a definition question ('What is septic shock?', ``frame.term``), what a sentence defining its term looks
    like (``glossary.definition_pattern``, the term's vocabulary equivalents included)."""

    def restricted_to(self, doc_ids: Sequence[str]) -> Evidence:
        """The same evidence with only the candidate statements of the given documents (re-numbered)."""
        keep = [i for i, unit in enumerate(self.units) if unit.hit.doc_id in doc_ids]
        units = [replace(self.units[i], order=position) for position, i in enumerate(keep)]
        return replace(self, units=units, features=self.features[keep] if len(keep) else self.features[:0])

    @property
    def extra_ids(self) -> frozenset[str]:
        """Passages read only as siblings of the best documents (not ranked for the question)."""
        return frozenset(h.passage_id for h in self.hits) - self.retrieved_ids


def _document_hit(retriever: Retriever, doc_id: str) -> Hit | None:
    """A hit for a document no passage of the search reached (its metadata; the first passage's text)."""
    from medcite.errors import NotFound

    try:
        document = retriever.store.get_document(doc_id)
    except NotFound:
        return None
    passages = retriever.store.get_passages(doc_id)
    if document.is_retracted or not passages:
        return None
    return Hit(
        passage_id=passages[0].passage_id,
        doc_id=doc_id,
        rank=1,
        score=0.0,
        title=document.title,
        section=passages[0].section,
        text=passages[0].text,
        kind=document.kind,
        evidence_type=document.evidence_type,
        year=document.year,
        organization=document.organization,
        journal=document.journal,
        doi=document.doi,
        pmid=document.pmid,
    )


def gather_evidence(
    question: str,
    *,
    retriever: Retriever,
    search_text: str | None = None,
    passage_model: Model | None = None,
    emphasis: str = "",
    emphasis_factor: float = 1.0,
    documents_first: Sequence[str] = (),
    mode: Mode | None = None,
    depth: int | None = None,
) -> Evidence:
    """Retrieve, rank and cut into candidate statements the evidence for a question.

    Args:
        question: The question (what is asked; parsed for intent, form and the case's values).
        retriever: The library's retriever.
        search_text: What to search for when it differs from the question (a follow-up with the earlier
            question's terms); default the question.
        passage_model: A passage model to use instead of the shipped one (cross-validation).
        emphasis: Words whose concepts weigh ``emphasis_factor`` times more (a follow-up's own words).
        emphasis_factor: See ``emphasis``.
        documents_first: Documents read whole before the best-ranked ones (a follow-up's earlier sources).
        mode: The retriever's search mode ('lexical', 'dense', 'hybrid'); default its own.
        depth: First-stage candidates to read (``Retriever.candidates``); default the setting.

    Raises:
        QueryError: The question has nothing to search for.
    """
    candidates = retriever.candidates(search_text or question, depth=depth, mode=mode)
    matcher = candidates.matcher
    if emphasis and emphasis_factor != 1.0:
        own = stem_set(emphasis)
        matcher = TermMatcher(
            concepts=[replace(c, weight=c.weight * emphasis_factor) if c.stems & own else c for c in matcher.concepts]
        )
        candidates = replace(candidates, matcher=matcher)
    frame = parse_question(question) if search_text else candidates.frame
    candidates = replace(candidates, frame=frame)
    ranked = retriever.rank(candidates, model=passage_model)
    top = ranked[:RETRIEVAL_LIMIT_PASSAGES]
    seen = {hit.passage_id for hit in top}
    documents: list[str] = [doc for doc in documents_first if retriever.store.get_passages(doc)][:EXPAND_TOP_DOCUMENTS]
    for hit in ranked:
        if len(documents) >= EXPAND_TOP_DOCUMENTS:
            break
        if hit.doc_id not in documents:
            documents.append(hit.doc_id)
        if len(documents) == EXPAND_TOP_DOCUMENTS:
            break
    by_id = {hit.passage_id: hit for hit in ranked}
    extra: list[Hit] = []
    for doc_id in documents:
        first = next((hit for hit in ranked if hit.doc_id == doc_id), None) or _document_hit(retriever, doc_id)
        if first is None:
            continue
        for passage in retriever.store.get_passages(doc_id):
            if passage.passage_id in seen:
                continue
            seen.add(passage.passage_id)
            known = by_id.get(passage.passage_id)
            extra.append(
                known
                if known is not None
                else first.model_copy(
                    update={
                        "passage_id": passage.passage_id,
                        "section": passage.section,
                        "text": passage.text,
                        "rank": len(ranked) + len(extra) + 1,
                        "score": 0.0,
                        "scores": {},
                    }
                )
            )
    if frame.term:  # 'What is CKD?': the passage that defines the term is read even when it did not rank
        for _, hit in define_terms([frame.term], retriever, limit=1):
            if hit.passage_id not in seen:
                seen.add(hit.passage_id)
                extra.append(hit.model_copy(update={"rank": len(ranked) + len(extra) + 1}))
    hits = [*top, *extra]
    scores = {hit.passage_id: hit.score for hit in ranked}
    evidence = Evidence(
        frame=frame,
        matcher=matcher,
        hits=hits,
        retrieved_ids=frozenset(h.passage_id for h in top),
        passage_scores={pid: scores[pid] for pid in (h.passage_id for h in hits) if pid in scores},
        ranked=ranked,
    )
    agent_names = retriever.vocabulary.agent_names()
    evidence.agents = tuple(c.text for c in matcher.concepts if not c.is_finding and c.text.lower() in agent_names)
    if frame.term:
        evidence.definition = definition_pattern(frame.term, retriever.vocabulary.equivalents(frame.term))
    evidence.units = candidate_units(hits, evidence.retrieved_ids)
    evidence.features = unit_features(frame, matcher, evidence.units, evidence.passage_scores, agent_names)
    return evidence
