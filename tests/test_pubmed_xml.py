"""Tests for the PubMed/MEDLINE XML adapter, on the real NLM files in the shared data folder."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from conftest import data_path
from medcite.corpus import get_adapter
from medcite.corpus.pubmed_xml import iter_pubmed_xml, read_pubmed_xml
from medcite.models import Deletion, Document, SkippedRecord

MEDLINE_FILE = ("pubmed", "medline16n0902.xml.gz")


def _documents(records: list) -> dict[str, Document]:
    return {record.pmid: record for record in records if isinstance(record, Document)}


def _parse(xml: str, source: str = "test") -> list:
    return list(iter_pubmed_xml(io.BytesIO(xml.encode("utf-8")), source))


def _case(case_id: str) -> dict:
    path = data_path("edge-cases", "cases.jsonl")
    for line in path.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["id"] == case_id:
            assert case["area"] == "pubmed-xml"
            return case
    raise AssertionError(f"edge case {case_id} is missing from {path}")


def _wrap(pmid: str, fragment: str) -> str:
    """Wrap an Article, or elements that belong inside one, into a full PubmedArticleSet (test-only)."""
    if not fragment.lstrip().startswith("<Article"):
        title = "" if "<ArticleTitle" in fragment else "<ArticleTitle>Test record.</ArticleTitle>"
        fragment = f"<Article><Journal><Title>Test journal</Title></Journal>{title}{fragment}</Article>"
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n<PubmedArticleSet><PubmedArticle>"
        f"<MedlineCitation Status='MEDLINE' Owner='NLM'><PMID Version='1'>{pmid}</PMID>{fragment}"
        "</MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )


@pytest.fixture(scope="module")
def medline_records() -> list:
    return list(read_pubmed_xml(data_path(*MEDLINE_FILE)))


# --- the 2016 MEDLINE distribution file -----------------------------------------------------------


def test_read_pubmed_xml_medline_file_yields_604_documents_and_its_deletion(medline_records: list) -> None:
    documents = [r for r in medline_records if isinstance(r, Document)]
    assert len(documents) == 604
    assert len({d.doc_id for d in documents}) == 604
    assert not [r for r in medline_records if isinstance(r, SkippedRecord)]
    deletions = [r for r in medline_records if isinstance(r, Deletion)]
    assert [d.doc_ids for d in deletions] == [["pmid:26432306"]]
    assert sum(d.metadata["has_abstract"] for d in documents) == 526  # data/README.md
    assert all(d.title and d.sections for d in documents)


def test_read_pubmed_xml_known_record_has_its_fields(medline_records: list) -> None:
    doc = _documents(medline_records)["17942999"]
    assert doc.doc_id == "pmid:17942999"
    assert doc.kind == "pubmed-xml"
    assert doc.external_id == "17942999"
    assert doc.title == (
        "Neuroplasticity in the processing of pitch dimensions: a multidimensional scaling "
        "analysis of the mismatch negativity."
    )
    assert doc.journal == "Restorative neurology and neuroscience"
    assert doc.year == 2007
    assert doc.date_display == "2007"
    assert doc.authors == ["Chandrasekaran B", "Gandour JT", "Krishnan A"]
    assert doc.language == "eng"
    assert doc.pmcid == "PMC4380289"  # OtherID Source="NLM" in the 2016 DTD
    assert doc.url == "https://pubmed.ncbi.nlm.nih.gov/17942999/"
    assert doc.provenance == "PubMed/MEDLINE record (NLM)"
    assert doc.licence is None
    assert "Acoustic Stimulation" in doc.mesh_terms
    assert "Evoked Potentials, Auditory" in doc.mesh_terms
    assert "Pitch Perception*" in doc.mesh_terms  # major through its qualifier, as PubMed's [majr]
    assert doc.metadata["mesh_qualifiers"]["Pitch Perception"] == ["physiology*"]
    assert [s.heading_path for s in doc.sections] == [["PURPOSE"], ["METHODS"], ["RESULTS"], ["CONCLUSIONS"]]
    assert [s.category for s in doc.sections] == ["OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert doc.sections[0].text.startswith("An auditory electrophysiological study")
    assert doc.metadata["pages"] == "195-210"


def test_read_pubmed_xml_medline_file_evidence_types_and_erratum(medline_records: list) -> None:
    documents = _documents(medline_records)
    evidence = {d.evidence_type for d in documents.values()}
    assert {"rct", "review", "observational", "case_report"} <= evidence
    assert documents["25998582"].evidence_type == "rct"
    assert documents["20939768"].evidence_type == "review"
    erratum = documents["26407471"]
    assert erratum.metadata["notice"] == "erratum"
    assert erratum.metadata["erratum_for"] == ["22828228"]
    assert erratum.evidence_type == "other"
    assert documents["26702309"].metadata["erratum_in"] == ["26705261"]
    assert [d.pmid for d in documents.values() if d.metadata.get("notice")] == ["26407471"]


def test_read_pubmed_xml_translated_italian_titles_lose_brackets(medline_records: list) -> None:
    doc = _documents(medline_records)["26407471"]
    assert doc.title == (
        "Correction: Adverse events and preventable consequences: retrospective study in five large Italian hospitals."
    )
    assert doc.language == "ita"
    assert doc.metadata["title_translated"] is True
    assert doc.metadata["original_title"].startswith("Correzione: Eventi avversi")
    assert doc.sections[-1].heading_path == ["Original title"]
    assert "Correzione" in doc.sections[-1].text


def test_read_pubmed_xml_record_without_abstract_gets_title_section(medline_records: list) -> None:
    doc = _documents(medline_records)["26407462"]
    assert doc.title == "Vaccines are drugs."
    assert doc.metadata["has_abstract"] is False
    assert doc.sections[0].heading_path == []
    assert doc.sections[0].text == "Vaccines are drugs."


def test_read_pubmed_xml_medline_date_and_collective_author(medline_records: list) -> None:
    documents = _documents(medline_records)
    assert documents["18621939"].year == 2008
    assert documents["18621939"].date_display == "2008 Jul-Aug"
    authors = documents["25864598"].authors
    assert authors[0] == "Bousman CA"
    assert authors[-1] == "Translational Methamphetamine AIDS Research Center (TMARC) Group"


def test_read_pubmed_xml_publisher_placeholder_other_abstract_is_dropped(medline_records: list) -> None:
    doc = _documents(medline_records)["26702360"]
    assert doc.sections[0].heading_path == ["BACKGROUND"]
    assert all("Abstract available from the publisher" not in s.text for s in doc.sections)


# --- efetch responses -------------------------------------------------------------------------------


def test_read_pubmed_xml_efetch_record_has_doi_and_rct_type() -> None:
    records = list(read_pubmed_xml(data_path("pubmed", "pubmed-29768149.xml")))
    assert len(records) == 1
    doc = records[0]
    assert doc.title == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert doc.journal == "The New England journal of medicine"
    assert doc.doi == "10.1056/NEJMoa1715274"
    assert doc.year == 2018
    assert doc.date_display == "2018 May 17"
    assert doc.evidence_type == "rct"
    assert [s.heading_path[0] for s in doc.sections[:3]] == ["BACKGROUND", "METHODS", "RESULTS"]
    assert "200 μg of budesonide" in doc.sections[1].text


def test_read_pubmed_xml_entrez_files_all_parse() -> None:
    folder = data_path("pubmed", "entrez")
    pmids = []
    for path in sorted(folder.glob("pubmed*.xml")):
        records = list(read_pubmed_xml(path))
        assert records and all(isinstance(r, Document) for r in records), path
        pmids += [r.pmid for r in records]
    assert len(pmids) == 8
    assert {"12091962", "9997", "11748933", "27797938", "29963580"} <= set(pmids)


def test_read_pubmed_xml_season_date_is_kept_without_a_month() -> None:
    documents = _documents(list(read_pubmed_xml(data_path("pubmed", "entrez", "pubmed1.xml"))))
    assert documents["12091962"].year == 1990
    assert documents["12091962"].metadata["season"] == "Spring"
    assert documents["12091962"].date_display == "1990 Spring"
    assert documents["9997"].date_display == "1976 Sep 28"


def test_read_pubmed_xml_doi_falls_back_to_article_id_list() -> None:
    documents = _documents(list(read_pubmed_xml(data_path("pubmed", "entrez", "pubmed2.xml"))))
    assert documents["11748933"].doi == "10.1006/cryo.2001.2328"
    assert documents["11748933"].metadata["pii"] == "S0011-2240(01)92328-4"


def test_read_pubmed_xml_inline_markup_is_flattened_in_order() -> None:
    doc = _documents(list(read_pubmed_xml(data_path("pubmed", "entrez", "pubmed4.xml"))))["27797938"]
    assert doc.title.startswith("Leucocyte telomere length")
    assert "TERT gene region" in doc.title
    results = next(s for s in doc.sections if s.heading_path == ["RESULTS"])
    assert "ptrend=0.048" in results.text
    assert "disequilibrium r2<0.25" in results.text


def test_read_pubmed_xml_doi_never_comes_from_reference_list(tmp_path: Path) -> None:
    text = data_path("pubmed", "entrez", "pubmed7.xml").read_text(encoding="utf-8")
    own_doi = "10.1117/1.JMI.5.2.026002"
    assert text.count(own_doi) == 2
    text = text.replace(f'<ELocationID EIdType="doi" ValidYN="Y">{own_doi}</ELocationID>', "")
    text = text.replace(f'<ArticleId IdType="doi">{own_doi}</ArticleId>', "")
    text = text.replace(
        '<ArticleId IdType="pubmed">25144646</ArticleId>',
        '<ArticleId IdType="pubmed">25144646</ArticleId><ArticleId IdType="doi">10.1148/radiol.14140000</ArticleId>',
    )
    (tmp_path / "pubmed7.xml").write_text(text, encoding="utf-8")
    (doc,) = read_pubmed_xml(tmp_path / "pubmed7.xml")
    assert doc.doi is None
    assert doc.pmcid == "PMC6022861"
    assert doc.metadata["pii"] == "17360RR"


def test_iter_pubmed_xml_reads_any_binary_stream() -> None:
    body = data_path("pubmed", "pubmed-29768149.xml").read_bytes()
    (doc,) = iter_pubmed_xml(io.BytesIO(body), "efetch?id=29768149", kind="pubmed")
    assert doc.kind == "pubmed"
    assert doc.doc_id == "pmid:29768149"


def test_pubmed_xml_adapter_is_registered() -> None:
    assert get_adapter("pubmed-xml").reader() is read_pubmed_xml


# --- retractions (facts from data/README.md: no file in the data holds PMID 9500320) ----------------


def test_iter_pubmed_xml_retracted_publication_is_marked() -> None:
    fragment = (
        "<Article><Journal><Title>Lancet (London, England)</Title></Journal>"
        "<ArticleTitle>Retracted paper.</ArticleTitle><PublicationTypeList>"
        "<PublicationType>Journal Article</PublicationType><PublicationType>Retracted Publication</PublicationType>"
        "</PublicationTypeList></Article><CommentsCorrectionsList>"
        "<CommentsCorrections RefType='RetractionIn'><RefSource>Lancet. 2010</RefSource>"
        "<PMID Version='1'>20137807</PMID></CommentsCorrections></CommentsCorrectionsList>"
    )
    (doc,) = _parse(_wrap("9500320", fragment))
    assert doc.is_retracted is True
    assert doc.metadata["retraction_in"] == ["20137807"]


def test_iter_pubmed_xml_retraction_notice_names_retracted_pmids() -> None:
    fragment = (
        "<Article><Journal><Title>Lancet (London, England)</Title></Journal>"
        "<ArticleTitle>Retraction notice.</ArticleTitle><PublicationTypeList>"
        "<PublicationType>Retraction of Publication</PublicationType></PublicationTypeList></Article>"
        "<CommentsCorrectionsList><CommentsCorrections RefType='RetractionOf'>"
        "<RefSource>Lancet. 1998</RefSource><PMID Version='1'>9500320</PMID></CommentsCorrections>"
        "</CommentsCorrectionsList>"
    )
    (doc,) = _parse(_wrap("20137807", fragment))
    assert doc.is_retracted is False
    assert doc.metadata["notice"] == "retraction"
    assert doc.metadata["retraction_of"] == ["9500320"]
    assert doc.evidence_type == "other"


# --- edge cases from data/edge-cases/cases.jsonl ------------------------------------------------------


def test_edge_c01_cross_year_medline_date_keeps_first_year_and_raw_text() -> None:
    records = _parse(f"<PubmedArticleSet>{_case('c01')['input']}</PubmedArticleSet>")
    (doc,) = records
    assert doc.pmid == "10188493"
    assert doc.year == 1998
    assert doc.date_display == "1998 Dec-1999 Jan"
    assert "month" not in doc.metadata and "season" not in doc.metadata


def test_edge_c02_season_is_kept_and_no_month_is_made_up() -> None:
    (doc,) = _parse(f"<PubmedArticleSet>{_case('c02')['input']}</PubmedArticleSet>")
    assert doc.pmid == "28139132"
    assert doc.year == 2016
    assert doc.metadata["season"] == "Winter"
    assert doc.date_display == "2016 Winter"
    assert "month" not in doc.metadata
    assert doc.title == "Takotsubo cardiomyopathy: incidence, etiology, complications, therapy and prognosis."


def test_edge_c03_inline_markup_keeps_title_and_unit_exponent() -> None:
    title, abstract_text = _case("c03")["input"].split("\n")
    (doc,) = _parse(_wrap("27797938", title))
    assert doc.title.startswith("Leucocyte telomere length")
    assert "TERT gene region" in doc.title
    (doc,) = _parse(_wrap("38785209", f"<Abstract>{abstract_text}</Abstract>"))
    text = doc.sections[0].text
    assert "1.73 m2 of body-surface area" in text
    assert "1.73 mof" not in text and "1.73 m of" not in text


def test_edge_c05_structured_abstract_labels_categories_and_bold_runs() -> None:
    (doc,) = _parse(_wrap("26368793", _case("c05")["input"]))
    assert len(doc.sections) == 4
    assert [s.heading for s in doc.sections] == ["", "OBJECTIVE", "BACKGROUND", "CASE REPORT"]
    assert doc.sections[0].heading_path == []
    assert doc.sections[3].category == "METHODS"
    first = doc.sections[0].text
    assert "Final Diagnosis: Pelvic mass" in first
    assert "16Final" not in first
    assert first == "Patient: Female, 16; Final Diagnosis: Pelvic mass; Symptoms: None"
    assert doc.sections[2].text.startswith("Müllerian anomalies")


def test_edge_c07_collective_name_is_one_author_in_place() -> None:
    (doc,) = _parse(_wrap("22467948", _case("c07")["input"]))
    assert doc.authors == ["Author A", "Investigators of the Canadian Scleroderma Research Group"]
    assert not any(author.startswith("Investigators ") and author.count(" ") == 1 for author in doc.authors)


def test_edge_c09_doi_from_doi_elocation_and_pii_kept_apart() -> None:
    (doc,) = _parse(_wrap("24746000", _case("c09")["input"]))
    assert doc.doi == "10.1016/S2213-2600(14)70019-0"
    assert doc.metadata["pii"] == "S2213-2600(14)70019-0"
    fragment = _case("c09")["input"]
    pii_first = fragment.replace("<Article>", "").replace("</Article>", "").split("<ELocationID")
    reordered = "<Article><ELocationID" + pii_first[2] + "<ELocationID" + pii_first[1] + "</Article>"
    (doc,) = _parse(_wrap("24746000", reordered))
    assert doc.doi == "10.1016/S2213-2600(14)70019-0"
    assert doc.metadata["pii"] == "S2213-2600(14)70019-0"


def test_edge_c10_delete_citation_yields_deletion_and_no_empty_document() -> None:
    records = _parse(_case("c10")["input"])
    deletions = [r for r in records if isinstance(r, Deletion)]
    assert [d.doc_ids for d in deletions] == [["pmid:24381829", "pmid:26841407", "pmid:27257533"]]
    assert not [r for r in records if isinstance(r, Document)]  # the '…' placeholder record has no PMID
    (skipped,) = [r for r in records if isinstance(r, SkippedRecord)]
    assert skipped.record == "record 1"


def test_edge_c12_translated_title_and_vernacular_title() -> None:
    (doc,) = _parse(_wrap("38048813", _case("c12")["input"]))
    assert doc.title == "A Broader Scope - Bio-Psycho-Social Medicine In Global Focus."
    assert "Bio-psycho-soziale Medizin" in doc.metadata["original_title"]
    assert doc.metadata["title_translated"] is True
    assert doc.language == "ger"
    assert any("Bio-psycho-soziale Medizin" in s.text for s in doc.sections)  # indexed too


@pytest.mark.parametrize(
    ("title", "language", "expected"),
    [
        ("[Not Available].", "ger", "Ursprünglicher Titel."),
        ("[18F]FDG PET in [rare] disease.", "ger", "[18F]FDG PET in [rare] disease."),
        ("[Whole] and [part].", "ger", "[Whole] and [part]."),
        ("[English title in brackets].", "eng", "[English title in brackets]."),
        ("[Is it a question?].", "fre", "Is it a question?"),
    ],
)
def test_iter_pubmed_xml_brackets_are_stripped_only_around_whole_translated_titles(
    title: str, language: str, expected: str
) -> None:
    fragment = (
        f"<ArticleTitle>{title}</ArticleTitle><Language>{language}</Language>"
        "<VernacularTitle>Ursprünglicher Titel.</VernacularTitle>"
    )
    (doc,) = _parse(_wrap("1", fragment))
    assert doc.title == expected


def test_iter_pubmed_xml_author_forms() -> None:
    fragment = (
        "<AuthorList><Author><LastName>Smith</LastName><ForeName>John Paul</ForeName></Author>"
        "<Author><LastName>Marimon</LastName><Initials>BH</Initials><Suffix>Jr</Suffix></Author>"
        "<Author ValidYN='N'><LastName>Smyth</LastName><Initials>J</Initials></Author>"
        "<Author><CollectiveName>Climate Change Research Group.</CollectiveName></Author></AuthorList>"
    )
    (doc,) = _parse(_wrap("2", fragment))
    assert doc.authors == ["Smith JP", "Marimon BH Jr", "Climate Change Research Group."]


def test_iter_pubmed_xml_book_article_becomes_document() -> None:
    xml = (
        "<PubmedArticleSet><PubmedBookArticle><BookDocument><PMID Version='1'>20301295</PMID>"
        "<Book><Publisher><PublisherName>University of Washington, Seattle</PublisherName></Publisher>"
        "<BookTitle>GeneReviews</BookTitle><PubDate><Year>1993</Year></PubDate></Book>"
        "<ArticleTitle>Test chapter.</ArticleTitle><Language>eng</Language>"
        "<AuthorList Type='authors'><Author><LastName>Doe</LastName><Initials>J</Initials></Author></AuthorList>"
        "<PublicationType>Review</PublicationType><Abstract><AbstractText Label='SUMMARY'>Chapter summary."
        "</AbstractText></Abstract></BookDocument><PubmedBookData><ArticleIdList>"
        "<ArticleId IdType='bookaccession'>NBK1116</ArticleId></ArticleIdList></PubmedBookData>"
        "</PubmedBookArticle></PubmedArticleSet>"
    )
    (doc,) = _parse(xml)
    assert doc.doc_id == "pmid:20301295"
    assert doc.title == "Test chapter."
    assert doc.metadata["book_title"] == "GeneReviews"
    assert doc.year == 1993
    assert doc.authors == ["Doe J"]
    assert doc.evidence_type == "review"
    assert doc.sections[0].heading_path == ["SUMMARY"]


# --- bad input ------------------------------------------------------------------------------------------


def test_read_pubmed_xml_truncated_gzip_keeps_records_then_skips(tmp_path: Path) -> None:
    raw = data_path(*MEDLINE_FILE).read_bytes()
    truncated = tmp_path / "medline16n0902.xml.gz"
    truncated.write_bytes(raw[: len(raw) // 2])
    records = list(read_pubmed_xml(truncated))
    documents = [r for r in records if isinstance(r, Document)]
    assert 100 < len(documents) < 604
    assert documents[0].pmid == "17942999"
    last = records[-1]
    assert isinstance(last, SkippedRecord)
    assert last.record is None
    assert last.source == str(truncated)
    assert f"after {len(documents)} records" in last.reason
    assert "EOFError" in last.reason


def test_read_pubmed_xml_malformed_xml_reports_line_after_good_records(tmp_path: Path) -> None:
    text = gzip.decompress(data_path(*MEDLINE_FILE).read_bytes()).decode("utf-8")
    cut = 0
    for _ in range(10):
        cut = text.index("</MedlineCitation>", cut) + len("</MedlineCitation>")
    bad_line = text[:cut].count("\n") + 2
    broken = tmp_path / "broken.xml"
    broken.write_text(text[:cut] + "\n<MedlineCitation Owner=NLM>" + text[cut:], encoding="utf-8")
    records = list(read_pubmed_xml(broken))
    assert [type(r) for r in records] == [Document] * 10 + [SkippedRecord]
    assert f"line {bad_line}" in records[-1].reason
    assert records[-1].record is None


def test_read_pubmed_xml_empty_file_is_one_skip(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    (skipped,) = read_pubmed_xml(empty)
    assert isinstance(skipped, SkippedRecord)
    assert skipped.record is None
    assert "empty" in skipped.reason


def test_read_pubmed_xml_record_without_pmid_is_skipped_and_others_kept(tmp_path: Path) -> None:
    text = data_path("pubmed", "entrez", "pubmed1.xml").read_text(encoding="utf-8")
    assert text.count("<PMID>12091962</PMID>") == 1
    path = tmp_path / "no_pmid.xml"
    path.write_text(text.replace("<PMID>12091962</PMID>", ""), encoding="utf-8")
    records = list(read_pubmed_xml(path))
    assert isinstance(records[0], SkippedRecord)
    assert records[0].record == "record 1"
    assert "no PMID" in records[0].reason
    assert isinstance(records[1], Document) and records[1].pmid == "9997"


def test_read_pubmed_xml_latin1_bytes_in_utf8_file_keep_earlier_records(tmp_path: Path) -> None:
    data = data_path("pubmed", "entrez", "pubmed1.xml").read_bytes()
    data = data.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-8"?>')
    data = data.replace(b"Magnetic studies", "Magnétic studies".encode("latin-1"))
    path = tmp_path / "latin1.xml"
    path.write_bytes(data)
    records = list(read_pubmed_xml(path))
    assert [type(r) for r in records] == [Document, SkippedRecord]
    assert records[0].pmid == "12091962"
    assert "line 185" in records[1].reason
    assert "UTF-8" in records[1].reason


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("pubmed", "pmc", "1471-2180-11-174.nxml"), "kind 'pmc'"),
        (("pubmed", "entrez", "efetch_pmc.xml"), "kind 'pmc'"),
        (("pubmed", "entrez", "esearch1.xml"), "esearch"),
        (("pubmed", "medline", "pubmed_result1.txt"), "kind 'medline'"),
    ],
)
def test_read_pubmed_xml_other_file_kinds_are_one_skip_naming_the_kind(parts: tuple, expected: str) -> None:
    records = list(read_pubmed_xml(data_path(*parts)))
    assert len(records) == 1
    assert isinstance(records[0], SkippedRecord) and records[0].record is None
    assert expected in records[0].reason


def test_read_pubmed_xml_missing_file_is_one_skip(tmp_path: Path) -> None:
    (skipped,) = read_pubmed_xml(tmp_path / "absent.xml.gz")
    assert isinstance(skipped, SkippedRecord)
    assert "could not be opened" in skipped.reason
