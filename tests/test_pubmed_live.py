"""PubMed at question time (issue 14): the query built from a question, and `ask --pubmed` against a local server
that replays real E-utilities responses: the recorded ESearch answer's shape (shared/data/pubmed/entrez) with PMIDs
of real records from the shared MEDLINE baseline file, which EFetch serves back as those records."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import data_path
from medcite.cli import run
from medcite.compose.pubmed_query import build_pubmed_query, relaxations
from medcite.index import default_guideline_pack, ingest
from medcite.pubmed_live import pubmed_query_for
from medcite.retrieve import Retriever
from medcite.settings import Settings
from medcite.store import Store

SEED = (
    "What is the treatment for a spinal implant with a sinus tract and discharge but no evidence of vertebral "
    "osteomyelitis on imaging?"
)
TRIAL = "25998582"  # Medical expulsive therapy in adults with ureteric colic: a multicentre, randomised trial (2015)
QUESTION = "Does medical expulsive therapy help adults with ureteric colic pass the stone?"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pubmed_live") / "library.db"
    settings = Settings(library=path, embedder="none")
    with Store.open(path) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
    return path


@pytest.fixture(scope="module")
def records() -> dict[str, bytes]:
    """The real records of the shared MEDLINE baseline file (a MedlineCitationSet), by PMID, each as EFetch serves a
    record: its MedlineCitation inside a PubmedArticle."""
    with gzip.open(data_path("pubmed", "medline16n0902.xml.gz")) as handle:
        root = etree.parse(handle).getroot()
    assert root.tag == "MedlineCitationSet"
    return {
        citation.findtext("PMID"): b"<PubmedArticle>" + etree.tostring(citation) + b"</PubmedArticle>"
        for citation in root.iter("MedlineCitation")
    }


def _concepts(library: Path, question: str):
    settings = Settings(library=library, embedder="none")
    with Store.open(library) as store:
        return pubmed_query_for(question, Retriever(store, settings))


def test_the_seed_question_keeps_its_topic_and_drops_what_it_negates(library: Path):
    query = _concepts(library, SEED)
    assert [unit.text for unit in query.units] == ["treatment", "spinal implant", "sinus tract", "discharge"]
    assert {words for words, reason in query.dropped if reason == "negated"} >= {
        "vertebral",
        "osteomyelitis",
        "imaging",
    }
    filtered = query.with_filter("randomized controlled trial[pt]")
    assert filtered == (
        "((treatment) AND (spinal implant) AND (sinus tract) AND (discharge)) AND randomized controlled trial[pt] "
        "AND hasabstract NOT (animals[mh] NOT humans[mh])"
    )
    steps = relaxations(query)
    assert [how for _query, how in steps] == [
        "as built",
        "dropped the least specific concept, 'treatment'",
        "dropped the least specific concept, 'discharge'",
    ]
    assert steps[-1][0].text == "(spinal implant) AND (sinus tract)"


def test_shorthand_is_spelled_out_and_measurements_are_not_the_topic(library: Path):
    shorthand = _concepts(library, "first line abx for outpatient CAP, no comorbidities?")
    texts = [unit.text for unit in shorthand.units]
    assert "antibiotics" in texts and "abx" not in " ".join(texts)
    assert ("comorbidities", "negated") in shorthand.dropped
    vignette = _concepts(library, "55M alcohol cirrhosis, hematemesis, HR 115, BP 95/60, Hb 7.8. Variceal bleed?")
    assert {("HR", "a measurement"), ("BP", "a measurement"), ("Hb", "a measurement")} <= set(vignette.dropped)
    assert "hematemesis" in [unit.text for unit in vignette.units]


def test_a_query_without_concepts_has_no_units():
    assert build_pubmed_query("no", []).units == ()


def _replay(
    httpserver: HTTPServer,
    records: dict[str, bytes],
    pmids: list[str],
    *,
    count: int = 42,
    fail_after: int | None = None,
):
    """ESearch answers ``pmids`` (of ``count`` hits) in the recorded response's shape; EFetch serves the real records
    asked for, and fails (HTTP 502) once more than ``fail_after`` PMIDs were asked for."""
    recorded = data_path("pubmed", "entrez", "esearch1.xml").read_text()
    searches: list[str] = []

    def esearch(request: Request) -> Response:
        searches.append(request.args["term"])
        ids = "".join(f"<Id>{pmid}</Id>" for pmid in pmids)
        body = re.sub(r"<IdList>.*</IdList>", f"<IdList>{ids}</IdList>", recorded, flags=re.S)
        body = re.sub(r"<Count>5</Count>", f"<Count>{count}</Count>", body, count=1)
        term = request.args["term"].replace("&", "&amp;").replace("<", "&lt;")
        body = re.sub(r"<QueryTranslation>.*</QueryTranslation>", f"<QueryTranslation>{term}</QueryTranslation>", body)
        return Response(body, content_type="text/xml")

    fetched: list[str] = []

    def efetch(request: Request) -> Response:
        ids = request.args["id"].split(",")
        fetched.extend(ids)
        if fail_after is not None and len(fetched) > fail_after:
            return Response("upstream failure", status=502)
        articles = b"".join(records[pmid] for pmid in ids if pmid in records)
        return Response(b"<PubmedArticleSet>" + articles + b"</PubmedArticleSet>", content_type="text/xml")

    httpserver.expect_request("/esearch.fcgi").respond_with_handler(esearch)
    httpserver.expect_request("/efetch.fcgi").respond_with_handler(efetch)
    return searches, fetched


def _env(monkeypatch, httpserver: HTTPServer, **extra: str) -> None:
    monkeypatch.setenv("MEDCITE_EUTILS_BASE_URL", httpserver.url_for("/"))
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def test_ask_pubmed_answers_from_the_fetched_trial_and_names_its_query(
    library: Path, records, httpserver: HTTPServer, monkeypatch, capsys, tmp_path: Path
):
    path = tmp_path / "library.db"
    path.write_bytes(library.read_bytes())
    searches, fetched = _replay(httpserver, records, [TRIAL])
    _env(monkeypatch, httpserver)
    assert run(["ask", QUESTION, "--pubmed", "--format", "json", "--library", str(path)]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    searched = answer["pubmed_search"]
    assert searched["used"] == [TRIAL] and fetched == [TRIAL]
    assert "(ureteric colic)" in searched["query"] and searched["relaxed"] == "as built"
    assert searched["translation"].startswith(f"({searched['query']}) AND")  # PubMed's reading, as it answered
    assert searches[0] == f"({searched['query']}) AND hasabstract NOT (animals[mh] NOT humans[mh])"
    assert answer["abstained"] is False
    assert answer["references"][0]["passage_id"].startswith(f"pmid:{TRIAL}#")
    assert "PubMed:" in captured.err
    with Store.open(path) as store:
        stored = store.get_document(f"pmid:{TRIAL}")
    assert stored.metadata["pubmed_query"] == searched["query"] and stored.metadata["retrieved_on"]
    assert run(["ask", QUESTION, "--pubmed", "--library", str(path)]) == 0  # the same records again: no change
    printed = capsys.readouterr().out
    assert "research abstracts, not guidelines" in printed
    assert "**Bottom line (RCT, 2015):**" in printed  # research answers carry their study type and year
    title = stored.title  # PubMed's titles end with a period; the reference list must not double it (issue 16)
    assert title.endswith(".") and answer["references"][0]["title"] == title[:-1]
    assert f"{title}\n" in printed or f"{title} " in printed
    assert f"{title}." not in printed


def test_offline_pubmed_says_so_and_answers_from_the_library(library: Path, monkeypatch, capsys, tmp_path: Path):
    path = tmp_path / "library.db"
    path.write_bytes(library.read_bytes())
    monkeypatch.setenv("MEDCITE_EUTILS_BASE_URL", "http://127.0.0.1:9/")  # nothing listens on the discard port
    monkeypatch.setenv("MEDCITE_EUTILS_MAX_RETRIES", "0")
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    assert run(["ask", SEED, "--pubmed", "--format", "json", "--library", str(path)]) == 0
    captured = capsys.readouterr()
    assert "Could not search PubMed" in captured.err and "the answer is from the library only" in captured.err
    answer = json.loads(captured.out)
    assert answer["abstained"] is True and answer["pubmed_search"] is None


def test_a_failing_batch_keeps_the_batches_already_added(
    library: Path, records, httpserver: HTTPServer, monkeypatch, capsys, tmp_path: Path
):
    path = tmp_path / "library.db"
    path.write_bytes(library.read_bytes())
    trials = [TRIAL, "19368899", "22508830"]
    _replay(httpserver, records, trials, fail_after=1)
    _env(monkeypatch, httpserver, MEDCITE_EUTILS_BATCH_RECORDS="1", MEDCITE_EUTILS_MAX_RETRIES="0")
    assert run(["ask", QUESTION, "--pubmed", "--format", "json", "--library", str(path)]) == 0
    assert "Could not search PubMed" in capsys.readouterr().err
    with Store.open(path) as store:
        assert store.get_document(f"pmid:{TRIAL}").pmid == TRIAL  # the first batch was committed
        assert store.list_documents(query="pmid:19368899") == []  # the failed one was not half-written


def test_the_ask_page_can_also_search_pubmed(library: Path, records, httpserver: HTTPServer, tmp_path: Path):
    from fastapi.testclient import TestClient

    from medcite.web import create_app

    path = tmp_path / "library.db"
    path.write_bytes(library.read_bytes())
    _replay(httpserver, records, [TRIAL])
    settings = Settings(library=path, embedder="none", eutils_base_url=httpserver.url_for("/"))
    with TestClient(create_app(settings)) as client:
        assert 'name="pubmed" value="on"' in client.get("/").text
        article = client.post("/api/articles", json={"question": QUESTION, "pubmed": True}).json()
        assert article["answer"]["pubmed_search"]["used"] == [TRIAL]
        assert article["answer"]["references"][0]["passage_id"].startswith(f"pmid:{TRIAL}#")
        page = client.get(article["url"]).text
        assert "Searched PubMed on" in page and "research abstracts, not guidelines" in page
    offline = Settings(library=path, embedder="none", eutils_base_url="http://127.0.0.1:9/", eutils_max_retries=0)
    with TestClient(create_app(offline)) as client:
        answer = client.post("/api/articles", json={"question": SEED, "pubmed": True}).json()["answer"]
        assert answer["pubmed_search"] is None
        assert answer["notice"].startswith("PubMed could not be searched")


def test_pubmed_auto_searches_only_when_the_library_alone_abstains(
    library: Path, records, httpserver: HTTPServer, monkeypatch, capsys, tmp_path: Path
):
    path = tmp_path / "library.db"
    path.write_bytes(library.read_bytes())
    searches, _fetched = _replay(httpserver, records, [TRIAL])
    _env(monkeypatch, httpserver, MEDCITE_PUBMED="auto")
    covered = "What is the first-line treatment for an acute gout flare?"
    assert run(["ask", covered, "--format", "json", "--library", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["pubmed_search"] is None and searches == []
    assert run(["ask", QUESTION, "--format", "json", "--library", str(path)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["pubmed_search"]["used"] == [TRIAL] and answer["abstained"] is False
    with Store.open(path) as store:  # saved once, with the search it was answered from
        from medcite.answer import load_answer

        assert load_answer(store, answer["id"]).pubmed_search.used == [TRIAL]
