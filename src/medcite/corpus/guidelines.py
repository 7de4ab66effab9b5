"""Ingest adapter for the open-medicine guideline pack (source kind ``guidelines``).

The pack (PyPI ``open-medicine``, MIT) holds 43 clinical guideline summaries:
``registry.json`` (id, title, organization, year, DOI, topics, section names)
and ``content/<id>/<section>.md`` Markdown files. Each guideline becomes one
``Document`` whose sections follow the Markdown headings below the file's H1
(e.g. "Acute Gout Flare Treatment > Colchicine for Acute Flare"); tables and
fenced decision-algorithm blocks become sections of their own so they stay
whole. The pack's notes that advertise its own calculator tools are left out
(they are not part of the guideline). Imports ``models`` and ``corpus._io`` only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from medcite.corpus._io import decode_text, open_bytes
from medcite.models import Document, Section, SkippedRecord

__all__ = ["markdown_sections", "read_guideline_pack"]

_REQUIRED_KEYS = ("id", "title", "organization", "year", "doi")
_TOOL_NOTE = re.compile(r"^> \*\*OpenMedicine Calculators?:\*\*.*\n?", re.MULTILINE)
"""The pack's notes advertising its own calculator tools ("available via MCP"): not guideline content."""


def _pack_version() -> str:
    try:
        return metadata.version("open-medicine")
    except metadata.PackageNotFoundError:
        return "unknown version"


def _heading_text(tokens: list[Token], index: int) -> str:
    inline = tokens[index + 1]
    text = "".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline"))
    return " ".join(text.split()) or inline.content.strip()


def markdown_sections(source: str, *, top_level: int = 2) -> list[Section]:
    """Split Markdown into sections by heading, keeping tables and fenced blocks whole.

    Headings of level ``top_level`` and deeper build the heading path (a
    higher-level heading, such as a file's H1 title, resets it). Paragraphs,
    lists and quotes under one heading are joined with blank lines into one
    ``text`` section; each table becomes a ``table`` section and each fenced or
    indented code block an ``algorithm`` section, under the same heading path.
    Text is the Markdown source of each block, verbatim.

    Args:
        source: Markdown text (CommonMark with GFM tables).
        top_level: Heading level (1-6) that starts a heading path.

    Returns:
        Sections in reading order; empty sections are dropped.
    """
    parser = MarkdownIt("commonmark").enable("table")
    tokens = parser.parse(source)
    lines = source.splitlines()
    sections: list[Section] = []
    path: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        text = "\n\n".join(block for block in buffer if block.strip())
        if text.strip():
            sections.append(Section(heading_path=list(path), text=text, kind="text"))
        buffer.clear()

    for index, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        block = "\n".join(lines[token.map[0] : token.map[1]]).strip("\n")
        if token.type == "heading_open":
            flush()
            level = int(token.tag[1])
            if level < top_level:
                path = [_heading_text(tokens, index)]
            else:
                depth = level - top_level
                path = [*path[:depth], *([""] * max(0, depth - len(path))), _heading_text(tokens, index)]
        elif token.type == "table_open":
            flush()
            sections.append(Section(heading_path=list(path), text=block, kind="table"))
        elif token.type in ("fence", "code_block"):
            flush()
            code = token.content.strip("\n")
            if code.strip():
                sections.append(Section(heading_path=list(path), text=code, kind="algorithm"))
        elif token.type == "hr":
            continue
        else:
            buffer.append(block)
    flush()
    return sections


def _read_registry(pack: Path) -> list[dict[str, Any]]:
    with open_bytes(pack / "registry.json") as stream:
        text, _ = decode_text(stream.read())
    entries = json.loads(text)
    if not isinstance(entries, list):
        raise ValueError("registry.json must hold a list of guideline entries")
    return entries


def read_guideline_pack(path: Path) -> Iterator[Document | SkippedRecord]:
    """Read an open-medicine guideline pack folder into one Document per guideline.

    Args:
        path: The pack folder, holding ``registry.json`` and ``content/``.

    Yields:
        A ``guideline:<id>`` Document per registry entry with content (evidence
        type ``guideline``, DOI, organization, year, topics as keywords), or a
        SkippedRecord for an entry or Markdown file that cannot be read.
    """
    source = str(path)
    try:
        entries = _read_registry(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        yield SkippedRecord(
            source=source,
            reason=f"this is not an open-medicine guideline pack: registry.json could not be read ({exc}).",
        )
        return
    version = _pack_version()
    for position, entry in enumerate(entries, start=1):
        missing = [key for key in _REQUIRED_KEYS if not entry.get(key)] if isinstance(entry, dict) else ["id"]
        if missing:
            yield SkippedRecord(
                source=source,
                record=f"registry entry {position}",
                reason=f"the registry entry lacks {', '.join(missing)}.",
            )
            continue
        guideline_id = str(entry["id"])
        folder = path / "content" / guideline_id
        files = sorted(folder.glob("*.md"))
        order = {name: i for i, name in enumerate(entry.get("sections") or [])}
        files.sort(key=lambda file: (order.get(file.stem, len(order)), file.name))
        sections: list[Section] = []
        for file in files:
            try:
                with open_bytes(file) as stream:
                    text, _ = decode_text(stream.read())
            except (OSError, UnicodeDecodeError) as exc:
                yield SkippedRecord(source=str(file), record=guideline_id, reason=f"cannot read the file ({exc}).")
                continue
            sections.extend(markdown_sections(_TOOL_NOTE.sub("", text)))
        if not sections:
            yield SkippedRecord(
                source=source, record=guideline_id, reason=f"no Markdown content in {folder} for this guideline."
            )
            continue
        title, organization, year, doi = entry["title"], entry["organization"], int(entry["year"]), entry["doi"]
        yield Document(
            doc_id=f"guideline:{guideline_id}",
            kind="guidelines",
            external_id=guideline_id,
            title=title,
            organization=organization,
            year=year,
            evidence_type="guideline",
            keywords=list(entry.get("topics") or []),
            doi=doi,
            url=f"https://doi.org/{doi}",
            licence="MIT (open-medicine summary)",
            provenance=(
                f"Summary of the {organization} guideline \u201c{title}\u201d ({year}, DOI {doi}) "
                f"from the open-medicine {version} guideline pack; not the guideline's full text."
            ),
            metadata={"pack": "open-medicine", "pack_version": version, "files": [f.name for f in files]},
            sections=sections,
        )
