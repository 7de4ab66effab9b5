"""PubMed at question time (``medcite ask --pubmed``): search for the question, add the best evidence, answer.

``search_pubmed_for`` builds the question's PubMed query (``compose.pubmed_query``), relaxes it in its documented
steps until PubMed holds at least ``MIN_FOUND`` records, takes up to ``max_records`` PMIDs tier by tier (practice
guidelines, systematic reviews and meta-analyses, randomized controlled trials, other studies; newest first within
a tier), fetches them with EFetch and ingests them (kind ``pubmed``; each record's ``metadata`` keeps the query and
the date), each fetched batch one transaction. NCBI's rate limits, retries and timeouts are ``EutilsClient``'s.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from medcite.answer import retrieve_evidence
from medcite.compose.pubmed_query import EVIDENCE_TIERS, build_pubmed_query, relaxations
from medcite.corpus.eutils import fetch_pubmed_ids, search_pubmed
from medcite.errors import QueryError
from medcite.models import Document, PubMedSearch

if TYPE_CHECKING:
    from collections.abc import Callable

    from medcite.corpus.eutils import EutilsClient
    from medcite.retrieve import Retriever
    from medcite.settings import Settings
    from medcite.store import Store

__all__ = ["MIN_FOUND", "pubmed_query_for", "search_pubmed_for"]

MIN_FOUND = 3
"""Fewer records than this for a query: relax it (drop its least specific concept) and search again."""


def pubmed_query_for(question: str, retriever: Retriever):  # -> compose.pubmed_query.PubMedQuery
    """The PubMed query ``question`` would search, from its concepts and the library's vocabulary."""
    evidence = retrieve_evidence(question, retriever=retriever)
    return build_pubmed_query(question, evidence.matcher.concepts, retriever.vocabulary.equivalents)


def search_pubmed_for(
    question: str,
    *,
    retriever: Retriever,
    store: Store,
    settings: Settings,
    client: EutilsClient | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> PubMedSearch:
    """Search PubMed for ``question``, ingest what it finds into ``store``, and say what was searched.

    The question is scrubbed of personal identifiers first (``review.prepare_question``): only its medical terms
    leave the building. Calls the network (ESearch once per relaxation step and per evidence tier, EFetch per
    batch of ``client.batch_records``; ``client`` defaults to one built from ``settings``); takes at most
    ``settings.pubmed_max_records`` records; writes to the store, one transaction per fetched batch.

    Raises:
        QueryError: The question is empty, too long, or has no concept left to search for.
        SourceUnavailable: NCBI could not be reached, or answered an error, after the client's retries.
        CorpusError: PubMed rejected the query.
    """
    from medcite.corpus.eutils import EutilsClient

    if client is None:
        with EutilsClient.from_settings(settings) as own:
            return search_pubmed_for(
                question, retriever=retriever, store=store, settings=settings, client=own, on_problem=on_problem
            )
    from medcite.index import ingest_records
    from medcite.review import prepare_question

    max_records = settings.pubmed_max_records
    built = pubmed_query_for(prepare_question(question).searchable, retriever)
    if not built.units:
        raise QueryError("The question has no concept to search PubMed for.")
    chosen, how, found = built, "as built", 0
    for step, description in relaxations(built):
        found = search_pubmed(client, step.with_filter(""), max_records=1).count
        chosen, how = step, description
        if found >= MIN_FOUND:
            break
    used: list[str] = []
    by_evidence: dict[str, int] = {}
    translation = None
    for label, tier in EVIDENCE_TIERS:
        if len(used) >= max_records or found == 0:
            break
        result = search_pubmed(client, chosen.with_filter(tier), max_records=max_records, sort="pub_date")
        translation = translation or result.query_translation
        new = [pmid for pmid in result.ids if pmid not in used][: max_records - len(used)]
        used += new
        by_evidence[label] = len(new)
    today = dt.datetime.now(dt.UTC).date().isoformat()

    def stamped(records):
        for record in records:
            if isinstance(record, Document):
                record = record.model_copy(
                    update={"metadata": {**record.metadata, "pubmed_query": chosen.text, "retrieved_on": today}}
                )
            yield record

    batch = client.batch_records
    for start in range(0, len(used), batch):  # one EFetch batch, one transaction: a later failure keeps these
        chunk = used[start : start + batch]
        ingest_records(store, stamped(fetch_pubmed_ids(chunk, client=client)), settings=settings, on_problem=on_problem)
    return PubMedSearch(
        query=chosen.text,
        translation=translation,
        relaxed=how,
        found=found,
        used=used,
        by_evidence=by_evidence,
        searched_on=today,
    )
