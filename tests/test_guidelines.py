import json
from pathlib import Path

import pytest

from medcite.corpus.guidelines import markdown_sections, read_guideline_pack
from medcite.index import default_guideline_pack
from medcite.models import Document, SkippedRecord


@pytest.fixture(scope="module")
def pack_documents() -> dict[str, Document]:
    records = list(read_guideline_pack(default_guideline_pack()))
    assert all(isinstance(r, Document) for r in records)
    return {r.doc_id: r for r in records if isinstance(r, Document)}


def test_read_guideline_pack_reads_all_43_guidelines_from_145_files(pack_documents):
    assert len(pack_documents) == 43
    assert sum(len(d.metadata["files"]) for d in pack_documents.values()) == 145


def test_read_guideline_pack_gout_has_doi_organization_and_heading_path(pack_documents):
    gout = pack_documents["guideline:acr_gout_2020"]
    registry = json.loads((default_guideline_pack() / "registry.json").read_text())
    entry = next(e for e in registry if e["id"] == "acr_gout_2020")
    assert gout.doi == entry["doi"]
    assert gout.organization == entry["organization"]
    assert gout.year == entry["year"] == 2020
    assert gout.evidence_type == "guideline"
    assert gout.url == f"https://doi.org/{entry['doi']}"
    assert entry["doi"] in gout.provenance and "open-medicine" in gout.provenance
    headings = {s.heading for s in gout.sections}
    assert "Acute Gout Flare Treatment > Colchicine for Acute Flare" in headings


def test_read_guideline_pack_keeps_tables_and_algorithms_whole(pack_documents):
    gout = pack_documents["guideline:acr_gout_2020"]
    colchicine = [s for s in gout.sections if s.heading == "Acute Gout Flare Treatment > Colchicine for Acute Flare"]
    table = next(s for s in colchicine if s.kind == "table")
    assert table.text.startswith("| Parameter | Recommendation |")
    assert "| **Maximum first-day dose** |" in table.text
    algorithm = next(s for s in gout.sections if s.heading.endswith("Flare Treatment Decision Algorithm"))
    assert algorithm.kind == "algorithm"
    assert algorithm.text.startswith("Acute gout flare confirmed")
    assert "Parenteral glucocorticoid" in algorithm.text


def test_markdown_sections_untitled_depths_never_leave_empty_headings():
    sections = markdown_sections("# Title\n\nIntro text.\n\n#### Deep\n\nBody.\n")
    assert [s.heading for s in sections] == ["Title", "Title > Deep"]


def test_read_guideline_pack_on_a_folder_without_registry_is_one_skip(tmp_path: Path):
    records = list(read_guideline_pack(tmp_path))
    assert len(records) == 1 and isinstance(records[0], SkippedRecord)
    assert "registry.json" in records[0].reason


def test_read_guideline_pack_leaves_out_the_packs_tool_notes(pack_documents):
    sepsis = default_guideline_pack() / "content" / "sepsis3_2016"
    assert any("OpenMedicine Calculator" in f.read_text() for f in sepsis.glob("*.md"))  # present in the source
    texts = [section.text for document in pack_documents.values() for section in document.sections]
    assert not any("available via MCP" in text or "OpenMedicine Calculator" in text for text in texts)
