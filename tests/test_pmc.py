"""Tests for the PMC JATS adapter on the 8 real Open Access articles and edge cases c18/c20."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import data_path
from medcite.corpus.pmc import read_pmc
from medcite.models import Document, SkippedRecord


def _document(*parts: str) -> Document:
    (document,) = read_pmc(data_path(*parts))
    assert isinstance(document, Document), document
    return document


def _edge_case(case_id: str) -> dict[str, str]:
    cases = [json.loads(line) for line in data_path("edge-cases", "cases.jsonl").read_text().splitlines() if line]
    return next(case for case in cases if case["id"] == case_id)


def _wrap_fragment(case: dict[str, str], tmp_path: Path, abstract: str = "") -> Path:
    """Put the case's fragment into a minimal <article> whose article-meta carries the checked fact's PMCID."""
    pmc_number = re.search(r"PMC(\d+)", case["checked_fact"]).group(1)  # type: ignore[union-attr]
    front = (
        '<front><article-meta><article-id pub-id-type="pmc">'
        f"{pmc_number}</article-id><title-group><article-title>Edge case {case['id']}</article-title>"
        f"</title-group>{abstract}</article-meta></front>"
    )
    fragment = case["input"]
    if fragment.startswith("<article>"):
        xml = fragment.replace("<article>", f"<article>{front}", 1)
    else:
        xml = f"<article>{front}{fragment}</article>"
    path = tmp_path / f"{case['id']}.nxml"
    path.write_text(xml, encoding="utf-8")
    return path


def test_read_pmc_all_eight_files_give_eight_documents_with_headings() -> None:
    folder = data_path("pubmed", "pmc")
    records = [record for path in sorted(folder.glob("*.nxml")) for record in read_pmc(path)]
    assert len(records) == 8
    assert all(isinstance(record, Document) for record in records)
    assert len({record.doc_id for record in records}) == 8
    for document in records:
        assert document.doc_id.startswith("pmc:PMC")
        assert document.sections, document.doc_id
        for section in document.sections:
            assert section.heading_path and all(section.heading_path), (document.doc_id, section.heading_path)
            assert section.text.strip()


def test_read_pmc_floats_group_tables_follow_citing_section() -> None:
    document = _document("pubmed", "pmc", "6605965a.nxml")
    assert document.doc_id == "pmc:PMC2994229"
    assert (document.pmid, document.pmcid) == ("21045829", "PMC2994229")
    assert document.doi == "10.1038/sj.bjc.6605965"
    assert document.title.startswith("Oral contraceptives, reproductive history and risk of colorectal cancer")
    assert document.journal == "British Journal of Cancer"
    assert document.year == 2010
    assert document.keywords == ["oral contraceptives", "reproductive history", "colorectal cancer", "cohort study"]
    assert document.url == "https://pmc.ncbi.nlm.nih.gov/articles/PMC2994229/"
    assert document.provenance == "PMC Open Access full text (JATS)"
    headings = [section.heading_path for section in document.sections]
    assert headings[:4] == [
        ["Abstract", "Background"],
        ["Abstract", "Methods"],
        ["Abstract", "Results"],
        ["Abstract", "Conclusion"],
    ]
    assert headings[4] == ["Body"]  # paragraphs directly in <body>, before the first <sec>
    assert document.sections[4].text.startswith("Men tend to have a slightly higher incidence of colorectal cancer")
    assert ["Materials and Methods"] in headings
    tables = [section for section in document.sections if section.kind == "table"]
    assert [table.heading_path[0] for table in tables] == ["Results", "Results"]
    assert tables[0].heading_path[1] == (
        "Table 1: Participant characteristics at recruitment among women in the European Prospective "
        "Investigation into Cancer and Nutrition cohort"
    )
    assert tables[1].heading_path[1].startswith("Table 2: Hazard ratio (HR)")
    assert headings.index(tables[0].heading_path) == headings.index(["Results"]) + 1
    assert "| Current smokers (%) | 18.5 | 19.6 |" in tables[0].text.splitlines()
    assert tables[0].text.splitlines()[3] == "| --- | --- | --- |"


def test_read_pmc_authors_abstracts_and_licence_text() -> None:
    document = _document("pubmed", "pmc", "pntd.0002065.nxml")
    assert document.doc_id == "pmc:PMC3585041"
    assert document.pmid == "23469300"
    assert document.doi == "10.1371/journal.pntd.0002065"
    assert document.title.startswith("Serological Evidence of Rift Valley Fever Virus Circulation in Sheep and Goats")
    assert document.journal == "PLoS Neglected Tropical Diseases"
    assert (document.year, document.date_display) == (2013, "2013 Feb 28")  # epub wins over collection
    assert document.authors == ["Fafetine J", "Neves L", "Thompson PN", "Paweska JT", "Rutten VPMG", "Coetzer JAW"]
    assert document.licence == "CC BY"  # licence sentence only, no URL
    assert document.evidence_type == "other"
    assert document.sections[0].heading_path == ["Abstract"]
    assert document.sections[0].text.startswith("Rift Valley fever (RVF) is endemic in most parts of Africa")
    assert document.sections[1].heading_path == ["Author Summary"]
    headings = [section.heading_path for section in document.sections]
    assert ["Materials and Methods", "Site description"] in headings
    tables = [section for section in document.sections if section.kind == "table"]
    assert [table.heading_path[-1].split(":")[0] for table in tables] == [f"Table {n}" for n in range(1, 6)]
    assert tables[4].heading_path[:2] == ["Results", "Assessment of inter-epidemic transmission of RVFV"]


def test_read_pmc_table_inside_paragraph_is_not_fused_into_text() -> None:
    document = _document("pubmed", "pmc", "mds526.nxml")
    assert document.doc_id == "pmc:PMC3574550"
    assert document.journal == "Annals of Oncology"
    assert document.licence == "CC BY-NC 3.0"
    (results,) = [section for section in document.sections if section.heading_path == ["results"]]
    assert "(Table 1 and supplementary file S2" in results.text  # xref text kept inline
    assert "Stage I" not in results.text
    table_1 = next(section for section in document.sections if section.heading_path[-1].startswith("Table 1:"))
    assert table_1.kind == "table"
    assert table_1.heading_path[0] == "results"
    assert "| Stage I | 2219 45% | 8595 38% |" in table_1.text


def test_read_pmc_licence_urls_shortened() -> None:
    assert _document("pubmed", "pmc", "1471-2180-11-174.nxml").licence == "CC BY 2.0"
    assert _document("pubmed", "pmc", "ehp-116-1694.nxml").licence == "Public Domain Mark 1.0"


def test_read_pmc_articleset_correction_is_a_notice() -> None:
    (document,) = read_pmc(data_path("pubmed", "entrez", "efetch_pmc.xml"))
    assert isinstance(document, Document)
    assert document.doc_id == "pmc:PMC8435807"
    assert document.journal == "ERJ Open Research"
    assert document.metadata["notice"] == "erratum"
    assert document.evidence_type == "other"
    assert "incorrectly given as 15.1%" in document.sections[0].text


def test_read_pmc_table_in_floats_group_becomes_table_section_c18(tmp_path: Path) -> None:
    case = _edge_case("c18")
    (document,) = read_pmc(_wrap_fragment(case, tmp_path))
    assert isinstance(document, Document)
    assert document.doc_id == "pmc:PMC4159224"
    tables = [section for section in document.sections if section.kind == "table"]
    assert len(tables) >= 1
    assert tables[0].heading_path == ["Results", "Table 1: Baseline characteristics"]
    lines = tables[0].text.splitlines()
    assert lines[0] == "Table 1. Baseline characteristics"
    assert "| Characteristic | Value |" in lines
    assert "| Age, years | … |" in lines
    assert document.sections[0].text == "Baseline characteristics are shown in Table 1."


def test_read_pmc_body_level_def_list_gets_own_heading_c20(tmp_path: Path) -> None:
    case = _edge_case("c20")
    abstract = "<abstract><p>Abstract text of the wrapper.</p></abstract>"
    (document,) = read_pmc(_wrap_fragment(case, tmp_path, abstract))
    assert isinstance(document, Document)
    assert document.doc_id == "pmc:PMC13546078"
    by_heading = {section.heading: section for section in document.sections}
    assert "BS" in by_heading["Abbreviations"].text
    assert "bariatric surgery" in by_heading["Abbreviations"].text
    assert "bariatric surgery" not in by_heading["Abstract"].text
    assert list(by_heading) == ["Abstract", "Abbreviations", "Introduction"]
    assert all(section.heading for section in document.sections)


def test_read_pmc_untitled_sections_take_child_parent_or_body_heading(tmp_path: Path) -> None:
    path = tmp_path / "untitled.nxml"
    path.write_text(
        '<article><front><article-meta><article-id pub-id-type="pmc">1</article-id></article-meta></front><body>'
        "<sec><p>Wrapper text.</p><sec><title>Methods</title><p>Methods text.</p></sec></sec>"
        "<sec><title>Results</title><sec><p>Untitled child text.</p></sec></sec>"
        "<sec><p>Loose text.</p></sec></body></article>",
        encoding="utf-8",
    )
    (document,) = read_pmc(path)
    assert isinstance(document, Document)
    assert [(section.heading_path, section.text) for section in document.sections] == [
        (["Methods"], "Wrapper text."),
        (["Methods"], "Methods text."),
        (["Results"], "Untitled child text."),
        (["Body"], "Loose text."),
    ]


def test_read_pmc_truncated_file_yields_skip_naming_line(tmp_path: Path) -> None:
    original = data_path("pubmed", "pmc", "pone.0000217.nxml").read_bytes()
    path = tmp_path / "truncated.nxml"
    path.write_bytes(original[: len(original) // 2])
    (skipped,) = read_pmc(path)
    assert isinstance(skipped, SkippedRecord)
    assert skipped.source == str(path)
    assert skipped.record is None
    assert re.search(r"line \d+", skipped.reason)
    assert "truncated" in skipped.reason


def test_read_pmc_article_without_pmcid_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "nopmcid.nxml"
    path.write_text(
        '<article><front><article-meta><article-id pub-id-type="doi">10.1/x</article-id></article-meta></front>'
        "<body><p>Text.</p></body></article>",
        encoding="utf-8",
    )
    (skipped,) = read_pmc(path)
    assert isinstance(skipped, SkippedRecord)
    assert skipped.record == "article 1"
    assert "PMC id" in skipped.reason


def test_read_pmc_non_jats_xml_yields_file_level_skip() -> None:
    (skipped,) = read_pmc(data_path("pubmed", "pubmed-29768149.xml"))
    assert isinstance(skipped, SkippedRecord)
    assert skipped.record is None
    assert "PubmedArticleSet" in skipped.reason


def test_read_pmc_uncited_float_goes_last_without_section_path(tmp_path: Path) -> None:
    path = tmp_path / "uncited.nxml"
    path.write_text(
        '<article><front><article-meta><article-id pub-id-type="pmcid">PMC7</article-id></article-meta></front>'
        "<body><sec><title>Results</title><p>No table is cited here.</p></sec></body>"
        '<floats-group><table-wrap id="t9"><label>Table 9</label><table><tr><td>a</td><td>b</td></tr></table>'
        "</table-wrap></floats-group></article>",
        encoding="utf-8",
    )
    (document,) = read_pmc(path)
    assert isinstance(document, Document)
    assert document.doc_id == "pmc:PMC7"
    assert [(section.kind, section.heading_path) for section in document.sections] == [
        ("text", ["Results"]),
        ("table", ["Table 9"]),
    ]
    assert document.sections[1].text == "Table 9\n\n| a | b |"


def test_read_pmc_collab_author_kept_verbatim_without_members(tmp_path: Path) -> None:
    path = tmp_path / "collab.nxml"
    path.write_text(
        '<article><front><article-meta><article-id pub-id-type="pmc">8</article-id><contrib-group>'
        '<contrib contrib-type="author"><name><surname>van der Meulen</surname>'
        "<given-names>Jean-Pierre A.</given-names></name></contrib>"
        '<contrib contrib-type="author"><collab>EPIC Study Group<contrib-group><contrib>'
        "<name><surname>Member</surname><given-names>M</given-names></name></contrib></contrib-group></collab>"
        '</contrib><contrib contrib-type="editor"><name><surname>Editor</surname></name></contrib>'
        "</contrib-group></article-meta></front><body><p>Text.</p></body></article>",
        encoding="utf-8",
    )
    (document,) = read_pmc(path)
    assert isinstance(document, Document)
    assert document.authors == ["van der Meulen JPA", "EPIC Study Group"]
