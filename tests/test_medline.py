"""Tests for the MEDLINE/.nbib adapter on the real PubMed-format exports and edge case c15."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from lxml import etree

from conftest import data_path
from medcite.corpus.medline import read_medline
from medcite.models import Document, SkippedRecord


def _documents(path: Path) -> list[Document]:
    records = list(read_medline(path))
    assert all(isinstance(record, Document) for record in records), records
    return records  # type: ignore[return-value]


def _by_pmid(path: Path) -> dict[str, Document]:
    return {document.pmid: document for document in _documents(path) if document.pmid}


def _edge_case(case_id: str) -> dict[str, str]:
    cases = [json.loads(line) for line in data_path("edge-cases", "cases.jsonl").read_text().splitlines() if line]
    return next(case for case in cases if case["id"] == case_id)


def test_read_medline_real_exports_count_records() -> None:
    counts = {
        name: len(_documents(data_path("pubmed", "medline", name)))
        for name in ("pubmed_result1.txt", "pubmed_result2.txt", "pubmed_result3.txt")
    }
    assert counts == {"pubmed_result1.txt": 1, "pubmed_result2.txt": 4, "pubmed_result3.txt": 1}


def test_read_medline_structured_abstract_record_fills_fields_and_sections() -> None:
    document = _by_pmid(data_path("pubmed", "medline", "pubmed_result2.txt"))["16403221"]
    assert document.doc_id == "pmid:16403221"
    assert document.kind == "medline"
    assert document.title == "A high level interface to SCOP and ASTRAL implemented in python."
    assert document.journal == "BMC bioinformatics"
    assert document.year == 2006
    assert document.date_display == "2006"
    assert document.authors == ["Casbon JA", "Crooks GE", "Saqi MA"]
    assert document.doi == "10.1186/1471-2105-7-10"
    assert document.pmcid == "PMC1373603"
    assert document.metadata["pii"] == "1471-2105-7-10"
    assert document.publication_types == ["Evaluation Studies", "Journal Article"]
    assert (
        "Information Storage and Retrieval*" in document.mesh_terms
    )  # MH 'Information Storage and Retrieval/*methods'
    assert "Sequence Homology, Amino Acid" in document.mesh_terms
    assert document.metadata["mesh_qualifiers"]["Sequence Alignment"] == ["methods*"]
    assert document.url == "https://pubmed.ncbi.nlm.nih.gov/16403221/"
    assert [section.heading_path for section in document.sections] == [["BACKGROUND"], ["RESULTS"], ["CONCLUSION"]]
    assert document.sections[0].text.startswith("Benchmarking algorithms in structural bioinformatics")
    assert document.sections[0].category == "BACKGROUND"
    assert document.sections[2].text == (
        "The modules make the analysis and generation of datasets for use in structural genomics easier and "
        "more principled."
    )


def test_read_medline_doi_from_lid_and_wrapped_mesh_term_joined() -> None:
    document = _by_pmid(data_path("pubmed", "medline", "pubmed_result3.txt"))["23039619"]
    assert document.title == "Effects of different parameters in the fast scanning method for HIFU treatment."
    assert document.journal == "Medical physics"
    assert (document.year, document.date_display) == (2012, "2012 Oct")
    assert document.authors == ["Qiao S", "Shen G", "Bai J", "Chen Y"]
    assert document.doi == "10.1118/1.4748329"
    # MH 'High-Intensity Focused Ultrasound Ablation/adverse' wraps onto 'effects/instrumentation/*methods'
    assert "High-Intensity Focused Ultrasound Ablation*" in document.mesh_terms
    assert document.metadata["mesh_qualifiers"]["High-Intensity Focused Ultrasound Ablation"] == [
        "adverse effects",
        "instrumentation",
        "methods*",
    ]
    assert [section.heading_path[0] for section in document.sections] == [
        "PURPOSE",
        "METHODS",
        "RESULTS",
        "CONCLUSIONS",
    ]
    assert document.sections[1].text.startswith("Two transducers, six scanning paths")


def test_read_medline_unstructured_abstract_is_one_untitled_section() -> None:
    (document,) = _documents(data_path("pubmed", "medline", "pubmed_result1.txt"))
    assert document.pmid == "12230038"
    assert document.title == "The Bio* toolkits--a brief overview."
    assert document.journal == "Briefings in bioinformatics"
    assert document.authors == ["Mangalam H"]
    assert document.language == "eng"
    assert document.mesh_terms[:3] == ["Computational Biology*", "Computer Systems", "Humans"]
    assert document.metadata["has_abstract"] is True
    assert (document.metadata["volume"], document.metadata["issue"], document.metadata["pages"]) == (
        "3",
        "3",
        "296-302",
    )
    assert document.doi is None
    assert len(document.sections) == 1
    assert document.sections[0].heading_path == []
    assert document.sections[0].text.endswith(
        "particularly from the point of view of the beginning biologist programmer."
    )


def test_read_medline_publication_types_set_evidence_type() -> None:
    documents = _by_pmid(data_path("pubmed", "medline", "pubmed_result2.txt"))
    assert documents["14871861"].evidence_type == "observational"  # PT Comparative Study
    assert documents["16377612"].evidence_type == "other"  # Journal Article only


def test_read_medline_whitespace_continuation_line_keeps_record_whole_c15(tmp_path: Path) -> None:
    case = _edge_case("c15")
    path = tmp_path / "c15.nbib"
    path.write_text(case["input"], encoding="utf-8")
    records = list(read_medline(path))
    assert len(records) == 1
    (document,) = records
    assert isinstance(document, Document)
    assert document.pmid == "29939664"
    abstract = "\n\n".join(section.text for section in document.sections)
    assert "Morvan syndrome" in abstract
    assert "(second paragraph of the abstract)" in abstract
    assert "encephalopathy …\n\n(second paragraph of the abstract)" in abstract  # kept as a paragraph break
    assert document.authors == ["Author A"]
    assert document.journal is None


def test_read_medline_json_file_yields_one_file_level_skip() -> None:
    path = data_path("pubmedqa", "ori_pqal.json")
    records = list(read_medline(path))
    assert len(records) == 1
    (skipped,) = records
    assert isinstance(skipped, SkippedRecord)
    assert skipped.record is None
    assert skipped.source == str(path)
    assert "not in MEDLINE" in skipped.reason


def test_read_medline_collective_name_kept_in_author_position(tmp_path: Path) -> None:
    # c07's record, written as PubMed's text export writes it; the CN value wraps onto a continuation line.
    path = tmp_path / "c07.nbib"
    path.write_text(
        "PMID- 22467948\nTI  - A title.\nFAU - Author, A\nAU  - Author A\n"
        "CN  - Investigators of the Canadian Scleroderma\n      Research Group\nLA  - eng\n",
        encoding="utf-8",
    )
    (document,) = _documents(path)
    assert document.authors == ["Author A", "Investigators of the Canadian Scleroderma Research Group"]


def test_read_medline_retraction_fields_mark_document(tmp_path: Path) -> None:
    # PMID 9500320 is retracted; the retraction notice is PMID 20137807 (shared/data/README.md).
    path = tmp_path / "retraction.nbib"
    path.write_text(
        "PMID- 9500320\nTI  - Retracted article.\nDP  - 1998 Feb 28\nPT  - Journal Article\n"
        "PT  - Retracted Publication\nRIN - Lancet. 2010 Feb 6;375(9713):445. PMID: 20137807\n\n"
        "PMID- 20137807\nTI  - Retraction notice.\nDP  - 2010 Feb 6\nPT  - Retraction of Publication\n"
        "ROF - Lancet. 1998 Feb 28;351(9103):637-41.\n      PMID: 9500320\n",
        encoding="utf-8",
    )
    retracted, notice = _documents(path)
    assert retracted.is_retracted is True
    assert retracted.metadata["retraction_in"] == ["20137807"]
    assert notice.is_retracted is False
    assert notice.metadata["notice"] == "retraction"
    assert notice.metadata["retraction_of"] == ["9500320"]
    assert notice.evidence_type == "other"
    assert notice.metadata["has_abstract"] is False
    assert notice.sections[0].text == "Retraction notice."  # a title-only record keeps its title as text


def test_read_medline_record_without_pmid_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "mixed.nbib"
    path.write_text("PMID- 1\nTI  - First.\n\nTI  - No id here.\n\nPMID- 3\nTI  - Third.\n", encoding="utf-8")
    first, skipped, third = read_medline(path)
    assert isinstance(first, Document) and first.pmid == "1"
    assert isinstance(skipped, SkippedRecord) and skipped.record == "record 2"
    assert "no PMID" in skipped.reason
    assert isinstance(third, Document) and third.pmid == "3"


def test_read_medline_gzip_and_crlf_export_reads_like_plain(tmp_path: Path) -> None:
    original = data_path("pubmed", "medline", "pubmed_result2.txt").read_bytes()
    path = tmp_path / "export.nbib.gz"
    path.write_bytes(gzip.compress(original.replace(b"\n", b"\r\n")))
    assert [document.pmid for document in _documents(path)] == ["16403221", "16377612", "14871861", "14630660"]


def test_read_medline_empty_file_yields_file_level_skip(tmp_path: Path) -> None:
    path = tmp_path / "empty.nbib"
    path.write_bytes(b"\n\n")
    (skipped,) = read_medline(path)
    assert isinstance(skipped, SkippedRecord)
    assert skipped.record is None
    assert "empty" in skipped.reason


def test_read_medline_translated_title_loses_brackets_c12(tmp_path: Path) -> None:
    # c12's record (pubmed-xml area) written in the text format: TI is the bracketed translation, TT the original.
    article = etree.fromstring(_edge_case("c12")["input"])
    path = tmp_path / "c12.nbib"
    path.write_text(
        f"PMID- 38048813\nTI  - {article.findtext('ArticleTitle')}\nLA  - {article.findtext('Language')}\n"
        f"TT  - {article.findtext('VernacularTitle')}\n",
        encoding="utf-8",
    )
    (document,) = _documents(path)
    assert document.title == "A Broader Scope - Bio-Psycho-Social Medicine In Global Focus."
    assert "Bio-psycho-soziale Medizin" in document.metadata["original_title"]
    assert document.language == "ger"
    assert document.sections[-1].heading_path == ["Original title"]


def test_read_medline_non_numeric_pmid_is_skipped(tmp_path):
    from medcite.corpus.medline import read_medline
    from medcite.models import SkippedRecord

    path = tmp_path / "bad.nbib"
    path.write_text("PMID- 123abc\nTI  - Placeholder title.\n")
    (record,) = list(read_medline(path))
    assert isinstance(record, SkippedRecord) and "not a number" in record.reason
