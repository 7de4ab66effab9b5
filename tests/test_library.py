"""End to end: every source in ../shared/data ingested into one library, as a user would."""

import sqlite3
from pathlib import Path

import pytest

from conftest import DATA, data_path
from medcite.errors import NotFound
from medcite.index import default_guideline_pack, ingest
from medcite.retrieve import search_lexical
from medcite.settings import Settings
from medcite.store import Store

SOURCES = [
    ("guidelines", ["<pack>"]),
    ("pubmed-xml", ["pubmed/medline16n0902.xml.gz", "pubmed/pubmed-29768149.xml"]),
    ("pubmed-xml", [f"pubmed/entrez/pubmed{n}.xml" for n in (1, 2, 4, 5, 6, 7)]),
    ("medline", ["pubmed/medline"]),
    ("pmc", ["pubmed/pmc"]),
    ("medquad", ["medquad"]),
    ("pubmedqa", ["pubmedqa/ori_pqal.json"]),
]


def _paths(names: list[str]) -> list[Path]:
    return [default_guideline_pack() if name == "<pack>" else DATA / name for name in names]


@pytest.fixture(scope="module")
def full_library(tmp_path_factory):
    if not DATA.exists():
        pytest.skip(f"test data folder {DATA} is absent (set MEDCITE_TEST_DATA)")
    path = tmp_path_factory.mktemp("library") / "library.db"
    settings = Settings(library=path)
    reports = {}
    with Store.open(path) as store:
        for kind, names in SOURCES:
            reports[(kind, tuple(names))] = ingest(store, kind, _paths(names), settings=settings)
    return path, settings, reports


def test_full_library_ingests_every_source_without_skips(full_library):
    _, _, reports = full_library
    for key, report in reports.items():
        assert report.skipped == 0, (key, report.problems[:5])
    medline_xml = reports[("pubmed-xml", ("pubmed/medline16n0902.xml.gz", "pubmed/pubmed-29768149.xml"))]
    assert medline_xml.added == 605  # the 604 citations of the MEDLINE file + 1 efetch record


def test_full_library_counts_by_kind(full_library):
    path, _, _ = full_library
    with Store.open(path) as store:
        stats = store.stats()
        assert stats.by_kind["guidelines"] == 43
        assert stats.by_kind["pmc"] == 8
        assert stats.by_kind["pubmedqa"] == 1000
        assert store.check_integrity()
    assert stats.passages > stats.documents
    assert {"guideline", "rct", "review", "consumer"} <= stats.by_evidence_type.keys()


def test_full_library_retracted_9500320_is_marked_and_never_returned(full_library, tmp_path: Path):
    # PMID 9500320 is not in the shared files; its real retraction data is stated in the data README:
    # publication type "Retracted Publication" and CommentsCorrections RetractionIn -> PMID 20137807.
    readme = data_path("README.md").read_text()
    assert "9500320" in readme and "20137807" in readme and "Retracted Publication" in readme
    record = tmp_path / "retracted.xml"
    record.write_text(
        '<PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">'
        '<PMID Version="1">9500320</PMID><Article><Journal><Title>Lancet</Title><JournalIssue>'
        "<PubDate><Year>1998</Year></PubDate></JournalIssue></Journal>"
        "<ArticleTitle>Placeholder title of the retracted record okapi.</ArticleTitle>"
        "<PublicationTypeList><PublicationType>Journal Article</PublicationType>"
        "<PublicationType>Retracted Publication</PublicationType></PublicationTypeList></Article>"
        '<CommentsCorrectionsList><CommentsCorrections RefType="RetractionIn"><RefSource>Lancet. 2010</RefSource>'
        '<PMID Version="1">20137807</PMID></CommentsCorrections></CommentsCorrectionsList>'
        "</MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    path, settings, _ = full_library
    with Store.open(path) as store:
        retracted_before = store.stats().retracted
        report = ingest(store, "pubmed-xml", [record], settings=settings)
        assert report.added == 1
        document = store.get_document("pmid:9500320")
        assert document.is_retracted
        assert document.metadata["retraction_in"] == ["20137807"]
        assert store.get_passages("pmid:9500320")  # stored ...
        hits = search_lexical(store, "placeholder title of the retracted record okapi", limit=50)
        assert hits and all(hit.passage.doc_id != "pmid:9500320" for hit in hits)  # ... never returned
        assert search_lexical(store, "okapi") == []
        assert store.stats().retracted == retracted_before + 1


def test_full_library_second_ingest_changes_nothing(full_library):
    path, settings, _ = full_library
    with Store.open(path) as store:
        before = store.stats()
        report = ingest(store, "pubmed-xml", _paths(["pubmed/medline16n0902.xml.gz"]), settings=settings)
        medquad = ingest(store, "medquad", _paths(["medquad/1_CancerGov_QA"]), settings=settings)
        after = store.stats()
    assert (report.added, report.updated, report.unchanged) == (0, 0, 604)
    assert (medquad.added, medquad.updated) == (0, 0) and medquad.unchanged > 0
    assert (after.documents, after.passages) == (before.documents, before.passages)


def test_delete_citation_update_removes_pmids_c10(tmp_path: Path):
    source = data_path("pubmed", "medline16n0902.xml.gz")
    settings = Settings(library=tmp_path / "library.db")
    pmids = ["24381829", "26841407", "27257533"]
    records = "".join(
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}</PMID>'
        f"<Article><ArticleTitle>Placeholder zebrafinch {pmid}.</ArticleTitle></Article>"
        "</MedlineCitation></PubmedArticle>"
        for pmid in pmids
    )
    base = tmp_path / "base.xml"
    base.write_text(f"<PubmedArticleSet>{records}</PubmedArticleSet>")
    update = tmp_path / "update.xml"
    deletes = "".join(f'<PMID Version="1">{pmid}</PMID>' for pmid in pmids)
    update.write_text(f"<PubmedArticleSet><DeleteCitation>{deletes}</DeleteCitation></PubmedArticleSet>")
    with Store.open(settings.library) as store:
        ingest(store, "pubmed-xml", [source, base], settings=settings)
        n_before = store.count_documents()
        assert len(search_lexical(store, "zebrafinch")) == 3
        report = ingest(store, "pubmed-xml", [update], settings=settings)
        assert report.deleted == 3 and report.skipped == 0
        assert store.count_documents() == n_before - 3
        for pmid in pmids:
            with pytest.raises(NotFound):
                store.get_document(f"pmid:{pmid}")
        assert search_lexical(store, "zebrafinch") == []
    with sqlite3.connect(settings.library) as connection:
        assert connection.execute("SELECT count(*) FROM documents WHERE trim(title) = ''").fetchone() == (0,)
