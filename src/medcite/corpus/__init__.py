"""Ingest adapters: one module per source kind, each turning source files into ``Document`` records.

An adapter is a function ``read_<kind>(path) -> Iterator[Record]`` over ONE file
(or, for the guideline pack, one pack folder). It yields ``Document`` objects,
``SkippedRecord`` for each record (or whole file) it could not read (it never
raises on bad input), ``Deletion`` for update files that remove records, and
``VocabularyEntry`` for synonym sets a source carries (MedQuAD focus synonyms).
``ADAPTERS`` maps each source kind to its reader and the file patterns used when
a folder is given. Adapters import ``models``, ``errors`` and ``corpus._io``;
never ``store``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from medcite.models import Deletion, Document, SkippedRecord, VocabularyEntry

__all__ = ["ADAPTERS", "Adapter", "Record", "get_adapter"]

Record = Document | SkippedRecord | Deletion | VocabularyEntry


@dataclass(frozen=True)
class Adapter:
    """How to read one source kind.

    Attributes:
        kind: The source kind name used on the command line.
        module: Module under ``medcite.corpus`` holding the reader.
        function: Reader name: ``(path: Path) -> Iterator[Record]``.
        patterns: Glob patterns for files inside a folder argument; empty
            when the folder itself is the unit (the guideline pack).
        description: One line for ``medcite ingest --help``.
    """

    kind: str
    module: str
    function: str
    patterns: tuple[str, ...]
    description: str

    def reader(self) -> Callable[[Path], Iterator[Record]]:
        """Import and return the reader function (imported lazily to keep start-up fast)."""
        module = importlib.import_module(f"medcite.corpus.{self.module}")
        return getattr(module, self.function)  # type: ignore[no-any-return]


ADAPTERS: dict[str, Adapter] = {
    adapter.kind: adapter
    for adapter in (
        Adapter(
            "guidelines",
            "guidelines",
            "read_guideline_pack",
            (),
            "open-medicine guideline pack folder (registry.json + content/); default: the installed pack",
        ),
        Adapter(
            "pubmed-xml",
            "pubmed_xml",
            "read_pubmed_xml",
            ("*.xml", "*.xml.gz"),
            "PubMed/MEDLINE XML (baseline/update files, efetch responses), .xml or .xml.gz",
        ),
        Adapter("medline", "medline", "read_medline", ("*.txt", "*.nbib"), "PubMed-format text exports (.nbib)"),
        Adapter("pmc", "pmc", "read_pmc", ("*.nxml", "*.xml"), "PMC Open Access JATS full text (.nxml)"),
        Adapter("medquad", "medquad", "read_medquad", ("*.xml", "*.csv"), "MedQuAD NIH consumer-health XML"),
        Adapter("pubmedqa", "pubmedqa", "read_pubmedqa", ("*.json",), "PubMedQA ori_pqal.json contexts"),
        Adapter(
            "files",
            "files",
            "read_file",
            ("*.md", "*.markdown", "*.html", "*.htm", "*.pdf", "*.txt"),
            "local protocols: Markdown, HTML, PDF, plain text (+ .meta.json or front matter)",
        ),
    )
}


def get_adapter(kind: str) -> Adapter:
    """Return the adapter for a source kind.

    Raises:
        ValueError: Unknown kind (the CLI validates kinds before calling).
    """
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(ADAPTERS)}") from None
