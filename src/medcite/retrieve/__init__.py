"""Question -> ranked passages: query normalization, lexical (FTS5 BM25), dense, fusion, evidence-aware ranking.

``Retriever`` is what ``medcite search``, ``ask`` and the web app call. The
package imports ``store``, ``models``, ``settings`` and (lazily) ``embed``;
never ``answer``, ``web`` or ``cli``.
"""

from medcite.retrieve.query import ABBREVIATIONS, ExpandedQuery, Vocabulary, fts_query, query_terms
from medcite.retrieve.rank import EVIDENCE_PRIOR, fuse_rrf
from medcite.retrieve.retriever import Mode, Retriever, search_lexical

__all__ = [
    "ABBREVIATIONS",
    "EVIDENCE_PRIOR",
    "ExpandedQuery",
    "Mode",
    "Retriever",
    "Vocabulary",
    "fts_query",
    "fuse_rrf",
    "query_terms",
    "search_lexical",
]
