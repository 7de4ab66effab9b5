"""Tests for the PubMedQA adapter, on the real ori_pqal.json in the shared data folder."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

from conftest import data_path
from medcite.corpus.pubmedqa import PROVENANCE, read_pubmedqa
from medcite.models import Document, SkippedRecord


def _documents() -> list[Document]:
    records = list(read_pubmedqa(data_path("pubmedqa", "ori_pqal.json")))
    assert all(isinstance(r, Document) for r in records)
    return [r for r in records if isinstance(r, Document)]


def test_read_pubmedqa_yields_all_1000_abstracts() -> None:
    documents = _documents()
    assert len(documents) == 1_000
    assert len({d.doc_id for d in documents}) == 1_000
    assert Counter(d.metadata["final_decision"] for d in documents) == {"yes": 552, "no": 338, "maybe": 110}
    assert sum(d.year is None for d in documents) == 58  # YEAR is null for 58 entries
    assert sum(len(d.sections) for d in documents) == 3_358


def test_read_pubmedqa_first_entry_fields() -> None:
    document = _documents()[0]
    assert document.doc_id == "pmid:21645374"
    assert document.pmid == document.external_id == "21645374"
    assert document.kind == "pubmedqa"
    assert document.title == "PubMed 21645374"  # the question is the benchmark query, never indexed
    assert document.metadata["question"] == (
        "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?"
    )
    assert document.year == 2011
    assert document.mesh_terms == [
        "Alismataceae",
        "Apoptosis",
        "Cell Differentiation",
        "Mitochondria",
        "Plant Leaves",
    ]
    assert document.evidence_type == "other"
    assert document.url == "https://pubmed.ncbi.nlm.nih.gov/21645374/"
    assert document.licence == "MIT"
    assert document.provenance == PROVENANCE
    assert [s.heading_path for s in document.sections] == [["BACKGROUND"], ["RESULTS"]]
    assert [s.category for s in document.sections] == ["BACKGROUND", "RESULTS"]
    assert document.sections[0].text.startswith(
        "Programmed cell death (PCD) is the regulated death of cells within an organism. The lace plant"
    )
    assert document.metadata["final_decision"] == "yes"
    assert document.metadata["reasoning_required_pred"] == "yes"
    assert document.metadata["long_answer"].startswith("Results depicted mitochondrial dynamics in vivo")


def test_read_pubmedqa_long_answer_not_in_sections() -> None:
    for document in _documents()[:50]:
        body = "\n".join(s.text for s in document.sections)
        assert document.metadata["long_answer"] not in body


def test_read_pubmedqa_null_year_gives_none() -> None:
    by_id = {d.pmid: d for d in _documents()}
    assert by_id["25957366"].year is None
    assert by_id["26037986"].metadata["final_decision"] == "maybe"
    assert [s.heading_path[0] for s in by_id["26037986"].sections] == ["AIMS", "METHODS", "RESULTS"]


def test_read_pubmedqa_bad_entries_skipped_and_reading_continues(tmp_path: Path) -> None:
    path = tmp_path / "pqal.json.gz"
    entries = {
        "notapmid": {"QUESTION": "Placeholder?", "CONTEXTS": ["Placeholder text."]},
        "1": {"QUESTION": "", "CONTEXTS": ["Placeholder text."]},
        "2": {"QUESTION": "Placeholder?", "CONTEXTS": []},
        "3": {"QUESTION": "Placeholder question?", "CONTEXTS": ["Placeholder text."], "YEAR": "19x"},
    }
    path.write_bytes(gzip.compress(json.dumps(entries).encode()))
    records = list(read_pubmedqa(path))
    assert [r.record for r in records if isinstance(r, SkippedRecord)] == ["notapmid", "1", "2"]
    (document,) = [r for r in records if isinstance(r, Document)]
    assert document.doc_id == "pmid:3" and document.year is None
    assert document.sections[0].heading_path == []


def test_read_pubmedqa_truncated_file_keeps_entries_before_fault(tmp_path: Path) -> None:
    source = data_path("pubmedqa", "ori_pqal.json").read_text(encoding="utf-8")
    path = tmp_path / "ori_pqal.json"
    path.write_text(source[: source.index('"9488747"') + 40], encoding="utf-8")  # inside the 3rd entry
    records = list(read_pubmedqa(path))
    assert [r.doc_id for r in records if isinstance(r, Document)] == ["pmid:21645374", "pmid:16418930"]
    assert isinstance(records[-1], SkippedRecord) and records[-1].record is None
    assert "not readable PubMedQA JSON" in records[-1].reason


def test_read_pubmedqa_not_an_object_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ori_pqal.json"
    path.write_text("[1, 2]", encoding="utf-8")
    (record,) = list(read_pubmedqa(path))
    assert isinstance(record, SkippedRecord) and record.record is None
    assert "keyed by PMID" in record.reason


def test_read_pubmedqa_non_string_contexts_and_question_are_skipped(tmp_path):
    import json as json_module

    from medcite.corpus.pubmedqa import read_pubmedqa
    from medcite.models import SkippedRecord

    path = tmp_path / "bad.json"
    path.write_text(
        json_module.dumps(
            {
                "1": {"QUESTION": "Placeholder?", "CONTEXTS": [1, None, {"a": 1}], "LABELS": []},
                "2": {"QUESTION": float("nan"), "CONTEXTS": ["Text."], "LABELS": []},
            }
        )
    )
    records = list(read_pubmedqa(path))
    assert [type(r) for r in records] == [SkippedRecord, SkippedRecord]
    assert "list of strings" in records[0].reason and "QUESTION" in records[1].reason
