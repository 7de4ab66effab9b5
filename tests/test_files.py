"""Tests for the local-document adapter (Markdown, HTML, PDF, text) on small files written under tmp_path.

The inputs are our own neutral placeholder texts, not medical content.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medcite.corpus.files import read_file
from medcite.models import Document, Section, SkippedRecord

MARKDOWN = """\
Opening paragraph with *emphasis* and a [link](https://example.org).

# Placeholder Protocol

Protocol step one
continues on a second line.

Protocol step two.

## Part A

- item one
- item **two**
  - nested item

| Column A | Column B |
|---|---|
| cell a1 | cell b1 |
| cell \\| a2 | cell b2 |

```
step 1 -> step 2
  otherwise step 3
```

### Detail

Detail text.

## Part B

Closing text.
"""


def _document(path: Path) -> Document:
    records = list(read_file(path))
    assert len(records) == 1 and isinstance(records[0], Document), records
    return records[0]


def _skipped(path: Path) -> SkippedRecord:
    records = list(read_file(path))
    assert len(records) == 1 and isinstance(records[0], SkippedRecord), records
    return records[0]


def _minimal_pdf(page_texts: list[str], title: str) -> bytes:
    """Write a small valid PDF by hand (PDF 1.4, Helvetica text, correct xref offsets)."""
    first_page = 5
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(len(page_texts)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(page_texts)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) /Author (Placeholder Author) >>".encode(),
    ]
    for i, text in enumerate(page_texts):
        shown = " ".join(f"({line}) Tj 0 -16 Td" for line in text.split("\n"))
        stream = f"BT /F1 12 Tf 72 720 Td {shown} ET".encode()
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (first_page + 2 * i + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_read_file_markdown_sections_follow_headings(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    document = _document(path)
    assert document.title == "Placeholder Protocol"  # the first h1
    assert document.sections == [
        Section(heading_path=[], text="Opening paragraph with emphasis and a link."),
        Section(
            heading_path=["Placeholder Protocol"],
            text="Protocol step one continues on a second line.\n\nProtocol step two.",
        ),
        Section(heading_path=["Placeholder Protocol", "Part A"], text="- item one\n- item two\n  - nested item"),
        Section(
            heading_path=["Placeholder Protocol", "Part A"],
            text="| Column A | Column B |\n| --- | --- |\n| cell a1 | cell b1 |\n| cell \\| a2 | cell b2 |",
            kind="table",
        ),
        Section(
            heading_path=["Placeholder Protocol", "Part A"],
            text="step 1 -> step 2\n  otherwise step 3",
            kind="algorithm",
        ),
        Section(heading_path=["Placeholder Protocol", "Part A", "Detail"], text="Detail text."),
        Section(heading_path=["Placeholder Protocol", "Part B"], text="Closing text."),
    ]


def test_read_file_identity_fields(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text("Protocol step one.\n", encoding="utf-8")
    document = _document(path)
    resolved = str(path.resolve())
    assert document.doc_id == "file:" + hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:16]
    assert document.external_id == resolved
    assert document.kind == "files"
    assert document.provenance == "Local document protocol.md"
    assert document.evidence_type == "protocol"
    assert document.title == "protocol"  # no heading and no metadata: the file stem
    assert (document.organization, document.year, document.url, document.licence) == (None, None, None, None)


def test_read_file_front_matter_metadata(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text(
        "---\ntitle: Placeholder Title\norganization: Example Unit\nyear: 2021\nevidence_type: guideline\n"
        "url: https://example.org/protocol\nlicense: CC BY 4.0\nauthors: [Author One, Author Two]\n"
        "review_date: 2024-05-01\n---\n# Heading\n\nProtocol step one.\n",
        encoding="utf-8",
    )
    document = _document(path)
    assert document.title == "Placeholder Title"
    assert document.organization == "Example Unit"
    assert document.year == 2021
    assert document.evidence_type == "guideline"
    assert document.url == "https://example.org/protocol"
    assert document.licence == "CC BY 4.0"
    assert document.authors == ["Author One", "Author Two"]
    assert document.metadata == {"review_date": "2024-05-01"}
    assert document.sections == [Section(heading_path=["Heading"], text="Protocol step one.")]


def test_read_file_sidecar_overrides_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text("---\ntitle: Front Matter Title\nyear: 2019\n---\nProtocol step one.\n", encoding="utf-8")
    (tmp_path / "protocol.md.meta.json").write_text(
        json.dumps({"title": "Sidecar Title", "organization": "Example Unit", "author": "Author One"}),
        encoding="utf-8",
    )
    document = _document(path)
    assert document.title == "Sidecar Title"
    assert document.year == 2019
    assert document.organization == "Example Unit"
    assert document.authors == ["Author One"]


def test_read_file_html_structure_and_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<html><head><title>Page Title</title>'
        "<style>.x { color: red }</style><script>var hidden = 1;</script></head><body>"
        "<nav>Menu Home</nav><h1>Top</h1><p>Protocol step <i>one</i>, see note<sup>2</sup> here.</p>"
        "<!-- a comment --><div>Block <span>text</span><br>after break</div>"
        "<h2>Second</h2><ul><li>item one<ul><li>sub item</li></ul></li><li>item two</li></ul>"
        "<table><caption>Table caption</caption><thead><tr><th>Head A</th><th>Head B</th></tr></thead>"
        "<tbody><tr><td>cell a</td><td>cell <b>b</b></td></tr></tbody></table>"
        "<pre>step 1\n  step 2</pre> trailing text</body></html>",
        encoding="utf-8",
    )
    document = _document(path)
    assert document.title == "Page Title"
    assert document.sections == [
        Section(heading_path=["Top"], text="Protocol step one, see note2 here.\n\nBlock text\n\nafter break"),
        Section(heading_path=["Top", "Second"], text="- item one\n  - sub item\n- item two"),
        Section(
            heading_path=["Top", "Second"],
            text="Table caption\n| Head A | Head B |\n| --- | --- |\n| cell a | cell b |",
            kind="table",
        ),
        Section(heading_path=["Top", "Second"], text="step 1\n  step 2", kind="algorithm"),
        Section(heading_path=["Top", "Second"], text="trailing text"),
    ]
    body = " ".join(section.text for section in document.sections)
    assert "Menu" not in body and "hidden" not in body and "color" not in body and "comment" not in body


def test_read_file_html_title_falls_back_to_h1(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<html><body><h1>First Heading</h1><p>Protocol step one.</p></body></html>", encoding="utf-8")
    assert _document(path).title == "First Heading"


def test_read_file_pdf_pages_and_info(tmp_path: Path) -> None:
    path = tmp_path / "protocol.pdf"
    path.write_bytes(_minimal_pdf(["Protocol step one\nProtocol step two", "", "Third page text"], "PDF Title"))
    document = _document(path)
    assert document.title == "PDF Title"
    assert document.authors == ["Placeholder Author"]
    assert document.sections == [
        Section(heading_path=["Page 1"], text="Protocol step one\nProtocol step two"),
        Section(heading_path=["Page 3"], text="Third page text"),
    ]


def test_read_file_pdf_sidecar_metadata(tmp_path: Path) -> None:
    path = tmp_path / "protocol.pdf"
    path.write_bytes(_minimal_pdf(["Protocol step one"], "PDF Title"))
    (tmp_path / "protocol.pdf.meta.json").write_text(
        '{"title": "Sidecar Title", "year": "2020", "evidence_type": "other"}', encoding="utf-8"
    )
    document = _document(path)
    assert (document.title, document.year, document.evidence_type) == ("Sidecar Title", 2020, "other")


def test_read_file_text_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffProtocol   step one\r\nstill step one\r\n\r\n  \r\nProtocol step two — done\r\n".encode())
    document = _document(path)
    assert document.title == "notes"
    assert document.sections == [
        Section(heading_path=[], text="Protocol step one\nstill step one\n\nProtocol step two — done")
    ]


def test_read_file_bad_sidecar_json_skipped(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text("Protocol step one.\n", encoding="utf-8")
    (tmp_path / "protocol.md.meta.json").write_text('{"title": "unclosed', encoding="utf-8")
    record = _skipped(path)
    assert record.record is None
    assert "protocol.md.meta.json is not valid JSON" in record.reason


def test_read_file_sidecar_not_an_object_skipped(tmp_path: Path) -> None:
    path = tmp_path / "protocol.txt"
    path.write_text("Protocol step one.\n", encoding="utf-8")
    (tmp_path / "protocol.txt.meta.json").write_text('["title"]', encoding="utf-8")
    assert "must hold a JSON object" in _skipped(path).reason


def test_read_file_bad_evidence_type_skipped(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text("---\nevidence_type: opinion\n---\nProtocol step one.\n", encoding="utf-8")
    reason = _skipped(path).reason
    assert "evidence_type 'opinion' is not one of guideline," in reason
    assert "fix the sidecar or front matter" in reason


def test_read_file_bad_year_skipped(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text("---\nyear: last spring\n---\nProtocol step one.\n", encoding="utf-8")
    assert "year 'last spring' is not a four-digit year" in _skipped(path).reason


def test_read_file_bad_front_matter_skipped(tmp_path: Path) -> None:
    path = tmp_path / "protocol.md"
    path.write_text("---\ntitle: [unclosed\n---\nProtocol step one.\n", encoding="utf-8")
    assert "YAML front matter cannot be parsed" in _skipped(path).reason


def test_read_file_no_text_skipped(tmp_path: Path) -> None:
    for name, content in (("empty.md", b""), ("blank.txt", b"  \n\n "), ("empty.html", b"<html><body></body></html>")):
        path = tmp_path / name
        path.write_bytes(content)
        assert "no extractable text" in _skipped(path).reason


def test_read_file_pdf_without_text_skipped(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(_minimal_pdf([""], "Scan"))
    assert "for a scanned PDF run OCR first" in _skipped(path).reason


def test_read_file_broken_pdf_skipped(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nnot really a pdf")
    record = _skipped(path)
    assert record.record is None
    assert record.reason.startswith("The PDF cannot be parsed")


def test_read_file_unsupported_and_missing_files_skipped(tmp_path: Path) -> None:
    odd = tmp_path / "protocol.docx"
    odd.write_bytes(b"PK")
    assert "Files ending in .docx are not read" in _skipped(odd).reason
    assert "cannot be read" in _skipped(tmp_path / "missing.md").reason


def test_read_file_markdown_html_block_keeps_visible_text_only(tmp_path: Path) -> None:
    path = tmp_path / "protocol.markdown"
    path.write_text(
        "# Heading\n\n<div>Visible <b>block</b> text</div>\n\n<script>var hidden = 1;</script>\n\nAfter.\n",
        encoding="utf-8",
    )
    assert _document(path).sections == [Section(heading_path=["Heading"], text="Visible block text\n\nAfter.")]


def test_expand_inputs_reports_files_a_protocol_folder_cannot_read(tmp_path: Path) -> None:
    from medcite.index import expand_inputs

    (tmp_path / "sepsis.md").write_text("# Local protocol\n\nProtocol text.\n", encoding="utf-8")
    (tmp_path / "sepsis.md.meta.json").write_text("{}", encoding="utf-8")
    (tmp_path / "stroke.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    files, problems = expand_inputs("files", [tmp_path])
    assert files == [tmp_path / "sepsis.md"]
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'stroke.docx'}: not read")
