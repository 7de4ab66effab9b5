"""Citations of answers' references: AMA and Vancouver through their CSL styles, RIS, BibTeX and CSL-JSON (issue 13).

The PubMed record is PMID 16377612 of the shared MEDLINE export (pubmed_result2.txt): Pritchard L, White JA,
Birch PR, Toth IK. Bioinformatics 2006;22(5):616-7, doi 10.1093/bioinformatics/btk021.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import bibtexparser
import pytest
import rispy
from fastapi.testclient import TestClient

from conftest import data_path
from medcite.citations import csl_item, csl_items, format_citations
from medcite.cli import run
from medcite.corpus.medline import read_medline
from medcite.index import default_guideline_pack, ingest
from medcite.settings import Settings
from medcite.store import Store
from medcite.web import create_app

EXPORT = data_path("pubmed", "medline", "pubmed_result2.txt")


@pytest.fixture(scope="module")
def record():
    (document,) = [item for item in read_medline(EXPORT) if getattr(item, "pmid", None) == "16377612"]
    return document


def test_the_real_record_round_trips_through_ris_and_bibtex_with_the_same_fields(record):
    item = csl_item(record)
    (ris,) = rispy.loads(format_citations([item], "ris"))
    assert ris["type_of_reference"] == "JOUR"
    assert ris["title"] == record.title.rstrip(".")
    assert ris["authors"] == ["Pritchard, L", "White, J A", "Birch, P R", "Toth, I K"]
    assert (ris["secondary_title"], ris["alternate_title1"]) == ("Bioinformatics (Oxford, England)", "Bioinformatics")
    assert (ris["year"], ris["volume"], ris["number"]) == ("2006", "22", "5")
    assert (ris["start_page"], ris["end_page"]) == ("616", "617")  # MEDLINE's '616-7', expanded
    assert (ris["doi"], ris["accession_number"]) == ("10.1093/bioinformatics/btk021", "16377612")
    library = bibtexparser.parse_string(format_citations([item], "bibtex"))
    (entry,) = library.entries
    assert entry.entry_type == "article" and entry.key == "pmid_16377612"
    fields = {field.key: field.value for field in entry.fields}
    assert fields["author"] == "Pritchard, L. and White, J. A. and Birch, P. R. and Toth, I. K."
    assert (fields["journal"], fields["year"], fields["volume"], fields["number"], fields["pages"]) == (
        "Bioinformatics (Oxford, England)",
        "2006",
        "22",
        "5",
        "616--617",
    )
    assert (fields["doi"], fields["pmid"]) == ("10.1093/bioinformatics/btk021", "16377612")
    assert json.loads(format_citations([item], "csl-json"))[0]["container-title-short"] == "Bioinformatics"


def test_ama_and_vancouver_are_what_their_csl_styles_produce(record):
    item = csl_item(record)
    title = "GenomeDiagram: a python package for the visualization of large-scale genomic data"
    with warnings.catch_warnings():
        # every field given is one citeproc-py understands (it warns "The following arguments ... are unsupported")
        warnings.filterwarnings("error", message="The following arguments")
        ama = format_citations([item], "ama")
        vancouver = format_citations([item], "vancouver")
    assert ama == (
        f"1. Pritchard L, White JA, Birch PR, Toth IK. {title}. Bioinformatics. 2006;22(5):616-617. "
        "doi:10.1093/bioinformatics/btk021"
    )  # AMA writes page ranges in full; MEDLINE's '616-7' is expanded before the style sees it
    assert vancouver == (
        f"1. Pritchard L, White JA, Birch PR, Toth IK. {title}. Bioinformatics. 2006;22(5):616\u20137. "
        "doi:10.1093/bioinformatics/btk021 PubMed PMID: 16377612."
    )


def test_ask_and_cite_print_a_guideline_answers_references_for_reference_managers(tmp_path: Path, capsys):
    library = tmp_path / "library.db"
    lib = ["--library", str(library)]
    question = "What is the first-line treatment for an acute gout flare?"
    assert run(["ask", question, "--format", "json", *lib]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert run(["ask", question, "--format", "ris", *lib]) == 0
    (first, *_rest) = rispy.loads(capsys.readouterr().out)
    assert first["type_of_reference"] == "RPRT" and first["publisher"] == "ACR" and first["year"] == "2020"
    assert first["doi"] == "10.1002/art.41247" and first["id"] == "guideline:acr_gout_2020"
    assert run(["cite", answer["id"], "--format", "csl-json", *lib]) == 0
    items = json.loads(capsys.readouterr().out)
    assert items[0]["type"] == "report" and items[0]["DOI"] == "10.1002/art.41247"
    assert run(["cite", answer["id"], "--format", "ama", *lib]) == 0
    assert capsys.readouterr().out.startswith("1. ")
    assert run(["cite", "no-such-answer", *lib]) == 4
    assert run(["cite", *lib]) == 2


def test_an_article_page_offers_its_references_as_downloads(tmp_path: Path):
    settings = Settings(library=tmp_path / "library.db", embedder="none")
    with Store.open(settings.library) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
    with TestClient(create_app(settings)) as client:
        article = client.post("/api/articles", json={"question": "What is the first-line treatment for gout?"}).json()
        page = client.get(article["url"]).text
        assert f'href="/api/articles/{article["id"]}/citations?format=ris&amp;audience=clinician"' in page
        response = client.get(f"/api/articles/{article['id']}/citations", params={"format": "bibtex"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-bibtex")
        assert response.headers["content-disposition"] == 'attachment; filename="article-1-clinician.bib"'
        entries = bibtexparser.parse_string(response.text).entries
        assert entries[0].entry_type == "techreport" and entries[0].key == "guideline_acr_gout_2020"
        bad = client.get(f"/api/articles/{article['id']}/citations", params={"format": "mla"})
        assert bad.status_code == 422 and bad.json()["ok"] is False


def test_a_reference_whose_document_was_removed_keeps_what_the_answer_recorded(tmp_path: Path):
    from medcite.answer import ask
    from medcite.retrieve import Retriever

    settings = Settings(library=tmp_path / "library.db", embedder="none")
    with Store.open(settings.library) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        answer = ask("What is the first-line treatment for an acute gout flare?", retriever=Retriever(store, settings))
        store.delete_documents(["guideline:acr_gout_2020"])
        (item, *_rest) = csl_items(store, answer.references)
    assert item == {
        "id": "guideline:acr_gout_2020",
        "type": "document",
        "title": answer.references[0].title.rstrip("."),
        "author": [{"literal": "ACR"}],  # the issuing organization, as the style cites a guideline
        "publisher": "ACR",
        "issued": {"date-parts": [[2020]]},
        "DOI": "10.1002/art.41247",
    }


def test_names_page_ranges_and_braces_are_written_as_each_format_expects():
    item = {
        "id": "pmid:1",
        "type": "article-journal",
        "title": "Odd {title} with 50% & more_words",
        "author": [{"family": "Müller", "given": "Ä B"}, {"literal": "Investigators of the Study Group"}],
        "container-title-short": "J Test",
        "issued": {"date-parts": [[2020]]},
        "volume": "12",
        "page": "1005-1012",
    }
    assert "1005\u201312" in format_citations([item], "vancouver")  # NLM's minimal range, from the full one
    assert "1005-1012" in format_citations([item], "ama")
    (ris,) = rispy.loads(format_citations([item], "ris"))
    assert ris["authors"] == ["Müller, Ä B", "Investigators of the Study Group"]
    (entry,) = bibtexparser.parse_string(format_citations([item], "bibtex")).entries
    fields = {field.key: field.value for field in entry.fields}
    assert fields["title"] == "Odd \\{title\\} with 50\\% \\& more\\_words"
    assert fields["author"] == "Müller, Ä. B. and {Investigators of the Study Group}"
