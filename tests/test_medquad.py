"""Tests for the MedQuAD adapter, on the real MedQuAD release in the shared data folder."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from conftest import data_path
from medcite.corpus.medquad import normalise_answer, read_medquad
from medcite.models import Document, SkippedRecord, VocabularyEntry

JUDGED_CSV = (
    "medquad",
    "QA-TestSet-LiveQA-Med-Qrels-2479-Answers",
    "All-2479-Answers-retrieved-from-MedQuAD.csv",
)


def _documents(path: Path) -> list[Document]:
    records = [r for r in read_medquad(path) if not isinstance(r, VocabularyEntry)]
    assert not [r for r in records if not isinstance(r, Document)], records
    return [r for r in records if isinstance(r, Document)]


def _one(*parts: str) -> Document:
    (document,) = _documents(data_path(*parts))
    return document


def test_read_medquad_whole_tree_counts_match_release() -> None:
    root = data_path("medquad")
    files = sorted(root.glob("*/*.xml"))
    n_documents = 0
    n_sections = 0
    per_collection: Counter[str] = Counter()
    doc_ids: set[str] = set()
    for path in files:
        for document in _documents(path):
            n_documents += 1
            n_sections += len(document.sections)
            per_collection[path.parent.name] += len(document.sections)
            doc_ids.add(document.doc_id)
    assert len(files) == 11_274
    assert n_documents == 5_490
    assert len(doc_ids) == n_documents  # ids unique, even for CancerGov files sharing an id attribute
    # The README's 16,407 answered pairs leave out the 16 pairs of the four NINDS files written in
    # the older lowercase schema (<doc>/<pair>): 1,104 NINDS pairs here against 1,088 published.
    assert n_sections == 16_423 == 16_407 + 16
    assert per_collection["6_NINDS_QA"] == 1_104
    assert per_collection["2_GARD_QA"] == 5_389  # 5 GARD pairs have empty answers
    assert not {"10_MPlus_ADAM_QA", "11_MPlusDrugs_QA", "12_MPlusHerbsSupplements_QA"} & set(per_collection)


def test_read_medquad_cancergov_document_fields() -> None:
    document = _one("medquad", "1_CancerGov_QA", "0000001_1.xml")
    assert document.doc_id == "medquad:1_CancerGov_QA/0000001_1"
    assert document.external_id == "1_CancerGov_QA/0000001_1"
    assert document.kind == "medquad"
    assert document.title == "Adult Acute Lymphoblastic Leukemia"
    assert document.organization == "CancerGov"
    assert document.url == "https://www.cancer.gov/types/leukemia/patient/adult-all-treatment-pdq"
    assert document.evidence_type == "consumer"
    assert document.licence == "CC BY 4.0"
    assert document.provenance == "MedQuAD (NIH consumer health Q&A), CancerGov"
    assert document.metadata["cuis"] == ["C0751606"]
    assert document.metadata["semantic_types"] == ["T191"]
    assert document.metadata["semantic_group"] == "Disorders"
    assert document.metadata["qids"][:2] == ["0000001_1-1", "0000001_1-2"]
    assert len(document.metadata["qids"]) == len(document.sections) == 7
    first = document.sections[0]
    assert first.heading_path == ["What is (are) Adult Acute Lymphoblastic Leukemia ?"]
    assert first.category == "information"
    assert (
        "Adult acute lymphoblastic leukemia (ALL; also called acute lymphocytic leukemia) is a cancer "
        "of the blood and bone marrow." in first.text
    )


def test_read_medquad_bullets_become_lines_and_paragraphs_stay_apart() -> None:
    text = _one("medquad", "1_CancerGov_QA", "0000001_1.xml").sections[0].text
    assert text.startswith(
        "Key Points\n- Adult acute lymphoblastic leukemia (ALL) is a type of cancer in which the bone marrow "
        "makes too many lymphocytes (a type of white blood cell).\n- Leukemia may affect red blood cells,"
    )
    assert (
        "mature blood cells:\n- Red blood cells that carry oxygen and other substances to all tissues of the "
        "body.\n- Platelets that form blood clots to stop bleeding." in text
    )
    assert "fight infection and disease.\n\nA lymphoid stem cell becomes" in text
    assert "  " not in text


def test_read_medquad_synonyms_become_keywords() -> None:
    document = _one("medquad", "3_GHR_QA", "0000093.xml")
    assert document.title == "autosomal dominant nocturnal frontal lobe epilepsy"
    assert document.keywords == ["ADNFLE"]
    assert document.metadata["synonyms"] == ["ADNFLE"]
    assert document.organization == "GHR"


def test_read_medquad_removed_answer_subsets_yield_no_documents() -> None:
    for collection in ("11_MPlusDrugs_QA", "12_MPlusHerbsSupplements_QA"):
        files = sorted(data_path("medquad", collection).glob("*.xml"))
        assert files
        assert [r for path in files for r in read_medquad(path) if not isinstance(r, VocabularyEntry)] == []


def test_read_medquad_answerless_page_still_gives_its_vocabulary() -> None:
    # A.D.A.M. pages lost their answers, not their names: Heart Attack's synonyms stay usable for search.
    records = list(read_medquad(data_path("medquad", "10_MPlus_ADAM_QA", "0001854.xml")))
    assert records and all(isinstance(r, VocabularyEntry) for r in records)
    terms = {term for record in records for term in record.terms}
    assert "Myocardial infarction" in terms


def test_read_medquad_medlineplus_category_kept() -> None:
    document = _one("medquad", "4_MPlus_Health_Topics_QA", "0000868.xml")
    assert document.metadata["category"] == "Disease"
    assert document.sections[0].text.startswith("The tailbone is the small bone at the bottom of your backbone")


def test_read_medquad_old_lowercase_schema_read() -> None:
    document = _one("medquad", "6_NINDS_QA", "0000007.xml")
    assert document.doc_id == "medquad:6_NINDS_QA/0000007"
    assert document.title == "Holmes-Adie"
    assert document.organization == "NINDS"
    assert document.url == "http://www.ninds.nih.gov/disorders/holmes_adie/holmes_adie.htm"
    assert document.sections[0].heading_path == ["what is holmes-adie syndrome ?"]
    # &#160; after each sentence is one space, not a paragraph break.
    assert document.sections[0].text.startswith(
        "Holmes-Adie syndrome (HAS) is a neurological disorder affecting the pupil of the eye and the "
        "autonomic nervous system. It is characterized by one eye"
    )


def test_read_medquad_disease_file_root_read() -> None:
    document = _one("medquad", "9_CDC_QA", "0000397.xml")
    assert document.title == "Parasites - Taeniasis"
    assert document.organization == "CDC"
    assert len(document.sections) == 5


def test_read_medquad_shared_id_attribute_uses_file_stem() -> None:
    first = _one("medquad", "1_CancerGov_QA", "0000013_2.xml")
    sibling = _one("medquad", "1_CancerGov_QA", "0000013_2_1.xml")
    assert first.doc_id == "medquad:1_CancerGov_QA/0000013_2"
    assert sibling.doc_id == "medquad:1_CancerGov_QA/0000013_2_1"
    assert sibling.metadata["document_id"] == "0000013_2"
    assert (first.title, sibling.title) == ("Chronic Myeloproliferative Neoplasms", "Polycythemia Vera")


def test_read_medquad_judged_csv_one_document_per_answer_id() -> None:
    path = data_path(*JUDGED_CSV)
    documents = _documents(path)
    with path.open(encoding="utf-8", newline="") as handle:
        n_rows = sum(1 for _ in csv.DictReader(handle))
    assert n_rows == 2_479  # one row per judgment in the qrels file
    assert len(documents) == len({d.doc_id for d in documents}) == 1_935  # distinct AnswerIDs
    first = documents[0]
    assert first.doc_id == "medquad:judged/ADAM_0003147_Sec1"
    assert first.title.startswith("What is (are) Polycystic ovary syndrome ? (Also called: Polycystic ovaries;")
    assert first.url == "https://www.nlm.nih.gov/medlineplus/ency/article/000369.htm"
    assert first.keywords[:2] == ["Polycystic ovaries", "Polycystic ovary disease"]
    assert first.organization == "ADAM"
    assert first.evidence_type == "consumer"
    assert first.metadata["medquad_doc_id"] == "medquad:10_MPlus_ADAM_QA/0003147"
    assert first.sections[0].heading_path == [first.title]
    assert first.sections[0].text.startswith(
        "Polycystic ovary syndrome is a condition in which a woman has an imbalance of female sex hormones."
    )


def test_read_medquad_judged_csv_rows_match_qrels_answers() -> None:
    qrels = data_path(
        "medquad",
        "QA-TestSet-LiveQA-Med-Qrels-2479-Answers",
        "All-qrels_LiveQAMed2017-TestQuestions_2479_Judged-Answers.txt",
    )
    judged = {line.split()[2].removesuffix(".txt") for line in qrels.read_text().splitlines() if line.strip()}
    assert {d.external_id for d in _documents(data_path(*JUDGED_CSV))} == judged


def test_read_medquad_truncated_file_skipped_whole(tmp_path: Path) -> None:
    source = data_path("medquad", "3_GHR_QA", "0000093.xml").read_bytes()
    broken = tmp_path / "3_GHR_QA" / "0000093.xml"
    broken.parent.mkdir()
    broken.write_bytes(source[: len(source) // 2])
    (record,) = list(read_medquad(broken))
    assert isinstance(record, SkippedRecord)
    assert record.record is None
    assert "not readable MedQuAD XML" in record.reason


def test_read_medquad_csv_without_columns_skipped(tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_text("id,text\n1,placeholder\n", encoding="utf-8")
    (record,) = list(read_medquad(path))
    assert isinstance(record, SkippedRecord)
    assert "AnswerID" in record.reason


def test_read_medquad_csv_bad_row_skipped_and_reading_continues(tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_text(
        'AnswerID,Answer\nX_0000001_Sec1.txt,"no header lines"\n'
        'X_0000001_Sec2.txt,"Question: Placeholder question ?\n'
        'URL: https://example.org/a\nAnswer: Placeholder."\n',
        encoding="utf-8",
    )
    skipped, document = list(read_medquad(path))
    assert isinstance(skipped, SkippedRecord) and skipped.record == "X_0000001_Sec1"
    assert isinstance(document, Document) and document.doc_id == "medquad:judged/X_0000001_Sec2"
    assert document.organization is None


def test_normalise_answer_keeps_single_spaced_dash() -> None:
    assert normalise_answer("Parasites - Taeniasis  Next part.\n \n  - one    - two  Tail.") == (
        "Parasites - Taeniasis\n\nNext part.\n- one\n- two\n\nTail."
    )
    assert normalise_answer(" \n\t ") == ""
