import json

import pytest

from conftest import data_path
from medcite.index import build_passages
from medcite.models import Document, Section
from medcite.retrieve import fts_query, search_lexical
from medcite.store import Store


def _cases(area: str) -> list[dict]:
    lines = data_path("edge-cases", "cases.jsonl").read_text().splitlines()
    return [case for case in map(json.loads, lines) if case["area"] == area]


def _add(store: Store, *texts: str) -> None:
    documents = [
        Document(
            doc_id=f"file:{n}", kind="files", external_id=str(n), title=f"Document {n}", sections=[Section(text=t)]
        )
        for n, t in enumerate(texts)
    ]
    store.write_batch([(d, build_passages(d)) for d in documents])


def test_fts_query_quotes_every_term():
    assert fts_query("multi-agent") == '"multi-agent"'
    assert fts_query('say "hi" AND NOT bye?') == '"say" OR "hi" OR "AND" OR "NOT" OR "bye"'
    assert fts_query(" ?!. ") is None


def test_search_lexical_c21_hyphenated_terms_match_and_never_raise(store: Store):
    (case,) = [c for c in _cases("fts-query") if c["id"] == "c21"]
    _add(store, "Reports of myocarditis after a COVID-19 vaccine.", "IL-6 levels rose.", "A multi-agent regimen.")
    for query in case["input"].splitlines():
        hits = search_lexical(store, query)
        assert hits, query
    assert search_lexical(store, "IL-6")[0].passage.text == "IL-6 levels rose."
    assert search_lexical(store, "") == []


def test_search_lexical_c22_punctuation_and_operators_are_text(store: Store):
    (case,) = [c for c in _cases("fts-query") if c["id"] == "c22"]
    assert "aspirin should not be restarted after bleeding" in case["checked_fact"]
    _add(store, "aspirin should not be restarted after bleeding", "aspirin or clopidogrel after stenting")
    for query in case["input"].splitlines():
        search_lexical(store, query)  # must not raise
    top = search_lexical(store, "aspirin NOT restarted")
    assert top[0].passage.text == "aspirin should not be restarted after bleeding"
    assert len(search_lexical(store, "aspirin restarted bleeding guideline")) == 2


@pytest.mark.parametrize("query", ["park.", "Crohn's disease", "HbA1c 6.5%", "grammar::fa", "myocarditis?"])
def test_search_lexical_odd_queries_do_not_raise(store: Store, query: str):
    _add(store, "Crohn's disease and HbA1c 6.5% in the park.")
    assert isinstance(search_lexical(store, query), list)
