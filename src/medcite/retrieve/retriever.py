"""The retriever: normalised query -> lexical and dense candidates -> fusion -> evidence-aware ranking.

Imports ``store``, ``models``, ``settings`` and the other ``retrieve`` modules;
``embed`` is used through its protocol only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from medcite.errors import QueryError
from medcite.models import Hit
from medcite.retrieve.match import TermMatcher
from medcite.retrieve.query import ExpandedQuery, Vocabulary, fts_query
from medcite.retrieve.question import QuestionFrame, parse_question
from medcite.retrieve.rank import Candidate, evidence_rerank, fuse_rrf
from medcite.retrieve.rerank import EVIDENCE_LOGIT, PASSAGE_FEATURES, Model, load_model, passage_features
from medcite.settings import Settings
from medcite.store import FtsRow, Store

if TYPE_CHECKING:
    from medcite.embed import Embedder
    from medcite.retrieve.dense import DenseIndex

__all__ = ["Candidates", "Mode", "Retriever", "search_lexical"]

Mode = Literal["lexical", "dense", "hybrid"]


_EVIDENCE_COLUMN = PASSAGE_FEATURES.index("evidence")

# Words kept in queries for their meaning next to other terms ("pain without fever"), but that alone, like a
# bare number or FTS5's operator words, ask about nothing.
_NOT_ALONE = frozenset({"not", "no", "without", "after", "before", "during", "and", "or", "near"})


def _is_content_term(term: str) -> bool:
    """Whether a query term can carry a search on its own: two letters or more, not a connective."""
    return sum(character.isalpha() for character in term) >= 2 and term.lower() not in _NOT_ALONE


class Retriever:
    """Search one library.

    ``hybrid`` (the default when an embedder is given) fuses lexical BM25 and
    dense cosine rankings with reciprocal rank fusion; without an embedder the
    retriever is lexical only. The vocabulary for query expansion is read from
    the library once, on first use.
    """

    def __init__(self, store: Store, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.store = store
        self.settings = settings
        self.embedder = embedder
        self._vocabulary: Vocabulary | None = None
        self._dense: DenseIndex | None = None
        self._df_cache: dict[str, int] = {}
        self._df_version = -1
        self._n_passages = 1

    @property
    def vocabulary(self) -> Vocabulary:
        """Synonym groups from the library's vocabularies plus clinical shorthand (built once)."""
        if self._vocabulary is None:
            self._vocabulary = Vocabulary.from_store(self.store)
        return self._vocabulary

    @property
    def default_mode(self) -> Mode:
        """'hybrid' with an embedder, else 'lexical'."""
        return "hybrid" if self.embedder is not None else "lexical"

    def normalize(self, query: str) -> ExpandedQuery:
        """Return the query's search terms and their vocabulary equivalents.

        Raises:
            QueryError: The query is empty or has nothing to search for.
        """
        if not query or not query.strip():
            raise QueryError("The query is empty; type a question or some search words.")
        expanded = self.vocabulary.expand(query, max_expansions=self.settings.query_expansions)
        if not any(_is_content_term(term) for term in [*expanded.terms, *expanded.expansions]):
            raise QueryError(f"The query {query!r} has no words to search for; add a clinical term.")
        return expanded

    def lexical(self, expanded: ExpandedQuery, *, limit: int) -> list[list[tuple[int, float]]]:
        """Return BM25 rankings: one for the query's own terms, one more with the vocabulary expansions.

        Expansions get a ranking of their own (fused later by RRF) rather than joining the first: added to
        the same BM25 query they dilute it (measured on LiveQA-Med, benchmarks/retrieval.py).
        """
        rankings = []
        own = self._selective(expanded.terms)
        for terms in (own, [*own, *expanded.expansions] if expanded.expansions else []):
            match = fts_query(terms)
            if match is not None:
                rankings.append(self.store.search_fts_rowids(match, limit=limit, weights=self.settings.bm25_weights))
        return rankings

    def _selective(self, terms: list[str]) -> list[str]:
        """Drop terms found in too many passages (``common_term_*`` settings), if any other term is left.

        Such terms carry almost no BM25 weight (low IDF) but make FTS5 score most of the library; dropping
        them keeps latency flat as the library grows. Document frequencies are cached per library version.
        """
        self._refresh_statistics()
        limit = max(self.settings.common_term_fraction * self._n_passages, self.settings.common_term_min_passages)
        kept = []
        for term in terms:
            if self.document_frequency(term) <= limit:
                kept.append(term)
        return kept or terms

    def _refresh_statistics(self) -> None:
        version = self.store.library_version()
        if self._df_version != version:
            self._df_cache.clear()
            self._n_passages = max(self.store.count_passages(), 1)
            self._df_version = version

    @property
    def n_passages(self) -> int:
        """Passages in the library (at least 1), cached per library version."""
        self._refresh_statistics()
        return self._n_passages

    def document_frequency(self, term: str, *, prefix: bool = False, all_words: bool = False) -> int:
        """Passages holding a term (as a phrase; ``prefix``: any word it begins; ``all_words``: every word).

        Cached per library version.
        """
        self._refresh_statistics()
        key = f"{'P' if prefix else 'A' if all_words else 'T'}:{term}"
        if key not in self._df_cache:
            if prefix:
                match = '"' + term.replace('"', '""') + '"*' if term.strip() else None
            elif all_words:
                words = [w for w in term.split() if w]
                match = " AND ".join('"' + w.replace('"', '""') + '"' for w in words) if words else None
            else:
                match = fts_query([term])
            self._df_cache[key] = self.store.count_fts_matches(match) if match else 0
        return self._df_cache[key]

    def idf(self, term: str, *, prefix: bool = False) -> float:
        """BM25-style inverse document frequency of a term in the library, ``log(1 + N / (1 + df))`` (> 0)."""
        df = self.document_frequency(term, prefix=prefix)
        return math.log(1.0 + self.n_passages / (1.0 + df))

    def dense(self, query: str, *, limit: int) -> list[tuple[int, float]]:
        """Return ``(rowid, cosine similarity)`` pairs, best first (empty without an embedder)."""
        if self.embedder is None:
            return []
        if self._dense is None:
            from medcite.retrieve.dense import DenseIndex

            self._dense = DenseIndex(self.store, self.embedder)
        return self._dense.search(query, limit=limit)

    def candidates(self, query: str, *, depth: int | None = None, mode: Mode | None = None) -> Candidates:
        """Return the first-stage candidates of a query, with what the second stage needs.

        The question is parsed (``question.parse_question``) and its concepts weighted (``match.TermMatcher``);
        BM25 rankings of its own words, of its words with vocabulary equivalents and of its word families, and
        (hybrid) the dense ranking are fused by reciprocal rank fusion; the best ``depth`` passages are kept.

        Raises:
            QueryError: The query is empty or has nothing to search for.
            ConfigError: 'dense' or 'hybrid' was asked for without an embedder.
        """
        mode = mode or self.default_mode
        if mode != "lexical" and self.embedder is None:
            from medcite.errors import ConfigError

            raise ConfigError(
                f"Search mode {mode!r} needs a sentence-embedding model; install medcite[dense] or use --mode lexical."
            )
        expanded = self.normalize(query)
        frame = parse_question(query)
        try:
            matcher = TermMatcher.build(frame, self)
        except QueryError:  # the focus (question without its measured values) has no words: match the whole
            matcher = TermMatcher.build(frame, self, text=query)
        depth = depth or self.settings.retrieval_candidates
        stage_scores: dict[int, dict[str, float]] = {}
        stage_ranks: dict[int, dict[str, int]] = {}
        rankings: list[list[int]] = []
        weights: list[float] = []

        def add(name: str, ranking: list[tuple[int, float]], weight: float) -> None:
            rankings.append([rowid for rowid, _ in ranking])
            weights.append(weight)
            for position, (rowid, score) in enumerate(ranking, start=1):
                stage_scores.setdefault(rowid, {})[name] = score
                stage_ranks.setdefault(rowid, {})[name] = position

        if mode in ("lexical", "hybrid"):
            for number, lexical in enumerate(self.lexical(expanded, limit=depth)):
                add("lexical" if number == 0 else "lexical_expanded", lexical, 1.0)
            family = matcher.prefix_query()
            if family is not None:
                add(
                    "lexical_family",
                    self.store.search_fts_rowids(family, limit=depth, weights=self.settings.bm25_weights),
                    1.0,
                )
        if mode in ("dense", "hybrid"):
            add("dense", self.dense(query, limit=depth), self.settings.dense_weight)
        fused = fuse_rrf(rankings, k=self.settings.rrf_k, weights=weights)[:depth] if rankings else []
        details = self.store.passage_details([rowid for rowid, _ in fused])
        hits: list[Hit] = []
        ranks: list[dict[str, int]] = []
        scores: list[float] = []
        for rowid, score in fused:
            detail = details.get(rowid)
            if detail is None:
                continue
            hits.append(
                Hit(
                    passage_id=detail.passage.passage_id,
                    doc_id=detail.passage.doc_id,
                    rank=len(hits) + 1,
                    score=score,
                    title=detail.title,
                    section=detail.passage.section,
                    text=detail.passage.text,
                    kind=detail.kind,
                    evidence_type=detail.evidence_type,
                    year=detail.year,
                    organization=detail.organization,
                    journal=detail.journal,
                    doi=detail.doi,
                    pmid=detail.pmid,
                    keywords=list(detail.keywords),
                    scores={**stage_scores.get(rowid, {}), "rrf": score},
                )
            )
            ranks.append(stage_ranks.get(rowid, {}))
            scores.append(score)
        return Candidates(frame=frame, matcher=matcher, hits=hits, stage_ranks=ranks, fused=scores)

    def rank(self, candidates: Candidates, *, model: Model | None = None) -> list[Hit]:
        """Order first-stage candidates by the learned passage model (``rerank``), best first, ties by id.

        ``model`` overrides the shipped one (``rerank.load_model``: 'passage_dense' with an embedder, else
        'passage'). Without any model the first-stage order is kept, with evidence-aware re-ranking of near-ties.
        """
        hits = candidates.hits
        if not hits:
            return []
        if model is None:
            model = (load_model("passage_dense") if self.embedder is not None else None) or load_model("passage")
        if model is None:
            ranked = evidence_rerank(
                [
                    Candidate(rowid=i, doc_id=h.doc_id, passage_id=h.passage_id, evidence_type=h.evidence_type,
                              year=h.year, score=h.score)
                    for i, h in enumerate(hits)
                ],
                weight=self.settings.evidence_weight,
            )  # fmt: skip
            order = [(candidate.rowid, final) for candidate, final in ranked]
        else:
            features = passage_features(
                candidates.frame, candidates.matcher, hits, candidates.stage_ranks, candidates.fused
            )
            values = model.score(features, PASSAGE_FEATURES) + EVIDENCE_LOGIT * features[:, _EVIDENCE_COLUMN]
            order = sorted(
                ((i, float(values[i])) for i in range(len(hits))), key=lambda item: (-item[1], hits[item[0]].passage_id)
            )
        return [
            hits[i].model_copy(update={"rank": position, "score": score, "scores": {**hits[i].scores, "final": score}})
            for position, (i, score) in enumerate(order, start=1)
        ]

    def search(self, query: str, *, limit: int = 10, mode: Mode | None = None) -> list[Hit]:
        """Return the passages that best answer a query.

        Args:
            query: A clinical question or search words, any characters (never
                interpreted as FTS5 syntax).
            limit: Passages to return (>= 1).
            mode: 'lexical', 'dense' or 'hybrid'; default ``default_mode``.

        Returns:
            At most ``limit`` hits, best first (1-based ranks), at most
            ``settings.max_passages_per_document`` per document when that is
            above 0; passages of retracted documents never appear.

        Raises:
            QueryError: The query is empty or has nothing to search for.
            ConfigError: 'dense' or 'hybrid' was asked for without an embedder.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1 (got {limit})")
        return self.first(self.rank(self.candidates(query, depth=self.search_depth(limit), mode=mode)), limit)

    def search_depth(self, limit: int) -> int:
        """First-stage candidates ``search`` reads to return ``limit`` passages (more when documents are capped)."""
        cap = self.settings.max_passages_per_document
        return max(self.settings.retrieval_candidates, limit * cap if cap else limit)

    def first(self, ranked: list[Hit], limit: int) -> list[Hit]:
        """The first ``limit`` of ranked hits, ranks renumbered from 1.

        At most ``settings.max_passages_per_document`` per document when that is above 0.
        """
        cap = self.settings.max_passages_per_document
        kept: list[Hit] = []
        per_document: dict[str, int] = {}
        for hit in ranked:
            if cap and per_document.get(hit.doc_id, 0) >= cap:
                continue
            per_document[hit.doc_id] = per_document.get(hit.doc_id, 0) + 1
            kept.append(hit.model_copy(update={"rank": len(kept) + 1}))
            if len(kept) == limit:
                break
        return kept


@dataclass
class Candidates:
    """First-stage candidates of one query and what the second stage needs to rank them."""

    frame: QuestionFrame
    matcher: TermMatcher
    hits: list[Hit]
    stage_ranks: list[dict[str, int]] = field(default_factory=list)
    fused: list[float] = field(default_factory=list)


def search_lexical(store: Store, query: str, *, limit: int = 10) -> list[FtsRow]:
    """Return passages matching the query's words, best BM25 first; never raises on user text.

    A plain lexical search without query expansion or ranking (used where the
    raw FTS5 behaviour is wanted, e.g. tests of the index). Empty or
    punctuation-only text gives no rows.
    """
    match = fts_query(query)
    if match is None:
        return []
    return store.search_fts(match, limit=limit)
