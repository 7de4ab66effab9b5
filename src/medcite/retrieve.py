"""Question -> ranked passages. For now: safe lexical search over the library's FTS5 index.

User text never reaches FTS5's query parser as syntax: ``fts_query`` turns it
into a ranked OR of quoted terms, so hyphens (COVID-19, IL-6), apostrophes,
trailing punctuation and the words AND/OR/NOT are searched as text. Retracted
papers are never returned. Imports ``store`` and ``models`` only.
"""

from __future__ import annotations

import re

from medcite.store import FtsRow, Store

__all__ = ["fts_query", "search_lexical"]

# A term is a run of letters/digits, optionally joined by inner hyphens, dots, slashes or
# apostrophes ("COVID-19", "6.5", "Crohn's"); everything else separates terms.
_TERM = re.compile(r"\w+(?:[-.'’/:]\w+)*", re.UNICODE)


def fts_query(text: str) -> str | None:
    """Build a safe FTS5 MATCH expression from free text, or None when it has no terms.

    Each term is quoted as an FTS5 string (embedded double quotes doubled), so
    it is tokenised by the index's own tokenizer; terms are joined with OR so a
    many-word question is a ranked match rather than an implicit AND. Repeated
    terms are kept once, in order.

    Args:
        text: A user's query or question, any characters.

    Returns:
        For example ``'"COVID-19" OR "vaccine"'``; None for empty or punctuation-only text.
    """
    terms = list(dict.fromkeys(match.group(0) for match in _TERM.finditer(text)))
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def search_lexical(store: Store, query: str, *, limit: int = 10) -> list[FtsRow]:
    """Return passages matching the query's terms, best BM25 first; never raises on user text.

    Args:
        store: The open library.
        query: Free text.
        limit: Maximum number of passages (>= 1).

    Returns:
        At most ``limit`` rows (passages of retracted documents excluded); empty
        when the query has no searchable terms.
    """
    match = fts_query(query)
    if match is None:
        return []
    return store.search_fts(match, limit=limit)
