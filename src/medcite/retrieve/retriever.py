"""The retriever: normalised query -> lexical and dense candidates -> fusion -> evidence-aware ranking.

Imports ``store``, ``models``, ``settings`` and the other ``retrieve`` modules;
``embed`` is used through its protocol only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from medcite.errors import QueryError
from medcite.models import Hit
from medcite.retrieve.query import ExpandedQuery, Vocabulary, fts_query
from medcite.retrieve.rank import Candidate, cap_per_document, evidence_rerank, fuse_rrf
from medcite.settings import Settings
from medcite.store import FtsRow, Store

if TYPE_CHECKING:
    from medcite.embed import Embedder
    from medcite.retrieve.dense import DenseIndex

__all__ = ["Mode", "Retriever", "search_lexical"]

Mode = Literal["lexical", "dense", "hybrid"]


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
        version = self.store.library_version()
        if self._df_version != version:
            self._df_cache.clear()
            self._n_passages = max(self.store.count_passages(), 1)
            self._df_version = version
        limit = max(self.settings.common_term_fraction * self._n_passages, self.settings.common_term_min_passages)
        kept = []
        for term in terms:
            if term not in self._df_cache:
                match = fts_query([term])
                self._df_cache[term] = self.store.count_fts_matches(match) if match else 0
            if self._df_cache[term] <= limit:
                kept.append(term)
        return kept or terms

    def dense(self, query: str, *, limit: int) -> list[tuple[int, float]]:
        """Return ``(rowid, cosine similarity)`` pairs, best first (empty without an embedder)."""
        if self.embedder is None:
            return []
        if self._dense is None:
            from medcite.retrieve.dense import DenseIndex

            self._dense = DenseIndex(self.store, self.embedder)
        return self._dense.search(query, limit=limit)

    def search(self, query: str, *, limit: int = 10, mode: Mode | None = None) -> list[Hit]:
        """Return the passages that best answer a query.

        Args:
            query: A clinical question or search words, any characters (never
                interpreted as FTS5 syntax).
            limit: Passages to return (>= 1).
            mode: 'lexical', 'dense' or 'hybrid'; default ``default_mode``.

        Returns:
            At most ``limit`` hits, best first (1-based ranks), at most
            ``settings.max_passages_per_document`` per document; passages of
            retracted documents never appear.

        Raises:
            QueryError: The query is empty or has nothing to search for.
            ConfigError: 'dense' or 'hybrid' was asked for without an embedder.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1 (got {limit})")
        mode = mode or self.default_mode
        if mode != "lexical" and self.embedder is None:
            from medcite.errors import ConfigError

            raise ConfigError(
                f"Search mode {mode!r} needs a sentence-embedding model; install medcite[dense] or use --mode lexical."
            )
        expanded = self.normalize(query)
        depth = max(self.settings.retrieval_candidates, limit * self.settings.max_passages_per_document)
        stage_scores: dict[int, dict[str, float]] = {}
        rankings: list[list[int]] = []
        weights: list[float] = []
        if mode in ("lexical", "hybrid"):
            for number, lexical in enumerate(self.lexical(expanded, limit=depth)):
                rankings.append([rowid for rowid, _ in lexical])
                weights.append(1.0)
                for rowid, score in lexical:
                    stage_scores.setdefault(rowid, {})["lexical" if number == 0 else "lexical_expanded"] = score
        if mode in ("dense", "hybrid"):
            dense = self.dense(query, limit=depth)
            rankings.append([rowid for rowid, _ in dense])
            weights.append(self.settings.dense_weight)
            for rowid, score in dense:
                stage_scores.setdefault(rowid, {})["dense"] = score
        if len(rankings) > 1:
            fused = fuse_rrf(rankings, k=self.settings.rrf_k, weights=weights)
            for rowid, score in fused:
                stage_scores[rowid]["rrf"] = score
        elif rankings:
            key = "lexical" if mode == "lexical" else "dense"
            fused = [(rowid, stage_scores[rowid][key]) for rowid in rankings[0]]
        else:
            fused = []
        fused = fused[:depth]
        details = self.store.passage_details([rowid for rowid, _ in fused])
        candidates = [
            Candidate(
                rowid=rowid,
                doc_id=details[rowid].passage.doc_id,
                passage_id=details[rowid].passage.passage_id,
                evidence_type=details[rowid].evidence_type,
                year=details[rowid].year,
                score=score,
            )
            for rowid, score in fused
            if rowid in details
        ]
        ranked = evidence_rerank(candidates, weight=self.settings.evidence_weight)
        kept = cap_per_document(ranked, max_per_document=self.settings.max_passages_per_document, limit=limit)
        hits = []
        for rank, (candidate, final) in enumerate(kept, start=1):
            detail = details[candidate.rowid]
            hits.append(
                Hit(
                    passage_id=detail.passage.passage_id,
                    doc_id=detail.passage.doc_id,
                    rank=rank,
                    score=final,
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
                    scores={**stage_scores.get(candidate.rowid, {}), "final": final},
                )
            )
        return hits


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
