"""Documents -> citable passages, written to the library in per-batch transactions.

``build_passages`` cuts a document's sections into passages a reader can check
at a glance (at most ``passage_max_chars``, about 1,200 characters, never cut
mid-sentence; tables and decision-algorithm blocks kept whole where they fit).
``ingest`` runs an adapter over input files, commits every batch of documents
in one transaction (full-text index included) and reports what happened; bad
records are reported, skipped and counted. Imports ``store``, ``corpus``,
``models``, ``settings``; never ``answer``, ``web`` or ``cli``.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medcite.corpus import Record, get_adapter
from medcite.corpus._io import report_progress_to
from medcite.models import Deletion, Document, IngestReport, Passage, Section, SkippedRecord, VocabularyEntry
from medcite.settings import Settings
from medcite.store import Store
from medcite.vocabulary import vocabulary_entries

__all__ = [
    "BLOCK_MAX_FACTOR",
    "build_passages",
    "default_guideline_pack",
    "ensure_default_library",
    "expand_inputs",
    "ingest",
    "ingest_records",
    "split_sentences",
]

BLOCK_MAX_FACTOR = 2
"""A table or algorithm block up to ``BLOCK_MAX_FACTOR * passage_max_chars`` stays one passage."""

# Sentence ends: ., ! or ? (optionally closed by a quote or bracket) followed by
# whitespace and an upper-case letter, digit or opening bracket. Common
# abbreviations that end in a period are not sentence ends.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"'”’)\]]?)\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|vs|Fig|Figs|No|Dr|Mr|Mrs|Ms|St|approx|ca|cf|resp|Ref|Refs|Eq|Tab|Vol)\.|\b[A-Z]\.)$"
)
_ABBREVIATION_MAX_CHARS = 12  # the longest abbreviation above plus its boundary
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` character spans of the sentences in ``text``, in order.

    A rule-based splitter tuned for biomedical prose: it does not split after
    common abbreviations ('e.g.', 'et al.', 'Fig.'), single initials, or inside
    decimals ('0.6 mg'). Spans cover the text without its separating whitespace.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group(1))
        if _ABBREVIATIONS.search(text, max(start, end - _ABBREVIATION_MAX_CHARS), end):
            continue
        if text[start:end].strip():
            spans.append(_strip_span(text, start, end))
        start = match.end()
    if text[start:].strip():
        spans.append(_strip_span(text, start, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _hard_split(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split an over-long span at whitespace, never mid-word."""
    spans = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        if cut <= start:
            cut = text.find(" ", start + max_chars)
            if cut == -1:
                break
        spans.append(_strip_span(text, start, cut))
        start = cut + 1
    spans.append(_strip_span(text, start, end))
    return spans


def _pack(spans: Sequence[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Greedily join consecutive spans while the joined span stays within ``max_chars``."""
    packed: list[tuple[int, int]] = []
    for start, end in spans:
        if packed and end - packed[-1][0] <= max_chars:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


def _long_paragraph_spans(text: str, start: int, stop: int, max_chars: int) -> list[tuple[int, int]]:
    """Split an over-long paragraph between lines (list items), then sentences, then at spaces."""
    units: list[tuple[int, int]] = []
    for l_start, l_end in _line_spans(text[start:stop]):
        line_start, line_end = start + l_start, start + l_end
        if line_end - line_start <= max_chars:
            units.append(_strip_span(text, line_start, line_end))
            continue
        for s_start, s_end in split_sentences(text[line_start:line_end]):
            units.extend(_hard_split(text, line_start + s_start, line_start + s_end, max_chars))
    return units


def _text_spans(text: str, max_chars: int) -> list[tuple[int, int]]:
    units: list[tuple[int, int]] = []
    position = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        start, stop = _strip_span(text, position, end)
        if stop > start:
            if stop - start <= max_chars:
                units.append((start, stop))
            else:
                units.extend(_long_paragraph_spans(text, start, stop, max_chars))
        position = match.end() if match else len(text)
    return _pack(units, max_chars)


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    position = 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped.strip():
            spans.append((position, position + len(stripped)))
        position += len(line)
    return spans


def _block_passages(section: Section, max_chars: int) -> list[tuple[str, int, int]]:
    """Cut an over-long table or algorithm block between lines; tables repeat their header rows."""
    text = section.text
    lines = _line_spans(text)
    header: list[tuple[int, int]] = []
    if section.kind == "table" and len(lines) >= 2 and set(text[lines[1][0] : lines[1][1]]) <= set("|-: "):
        header, lines = lines[:2], lines[2:]
    header_text = "\n".join(text[s:e] for s, e in header)
    budget = max(max_chars - len(header_text) - 1, 1)
    pieces = []
    for start, end in _pack(lines, budget):
        body = text[start:end]
        pieces.append(((header_text + "\n" + body) if header_text else body, start, end))
    return pieces


def build_passages(document: Document, *, max_chars: int = 1200) -> list[Passage]:
    """Cut a document's sections into citable passages.

    Text sections are split between paragraphs, and over-long paragraphs
    between sentences (``split_sentences``), packing one to a few paragraphs
    into each passage of at most ``max_chars``. Table and algorithm sections up
    to ``BLOCK_MAX_FACTOR * max_chars`` stay whole; longer ones are split
    between lines (tables repeat their header rows in each piece).

    Args:
        document: The document; its ``sections`` are read in order.
        max_chars: Passage size bound, characters.

    Returns:
        Passages with ids ``<doc_id>#p<n>`` (n 0-based, in reading order). For
        each, ``text == section.text[char_start:char_end]``, except table pieces,
        which carry their header rows before that slice.
    """
    passages: list[Passage] = []
    for section in document.sections:
        if not section.text.strip():
            continue
        if section.kind in ("table", "algorithm"):
            start, end = _strip_span(section.text, 0, len(section.text))
            if end - start <= BLOCK_MAX_FACTOR * max_chars:
                pieces = [(section.text[start:end], start, end)]
            else:
                pieces = _block_passages(section, max_chars)
        else:
            pieces = [(section.text[s:e], s, e) for s, e in _text_spans(section.text, max_chars)]
        for text, start, end in pieces:
            n = len(passages)
            passages.append(
                Passage.model_construct(  # fields are built here, already valid: skip re-validation
                    passage_id=f"{document.doc_id}#p{n}",
                    doc_id=document.doc_id,
                    n=n,
                    section=section.heading,
                    kind=section.kind,
                    text=text,
                    char_start=start,
                    char_end=end,
                )
            )
    return passages


# -- ingest ----------------------------------------------------------------------------------------


@dataclass
class _Batch:
    items: list[tuple[Document, list[Passage]]] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    retractions: list[tuple[str, str]] = field(default_factory=list)
    vocabulary: list[VocabularyEntry] = field(default_factory=list)


def expand_inputs(kind: str, paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Expand folders into the files a source kind reads; return ``(files, problems)``.

    Folders are searched recursively (without following links to folders) with
    the kind's file patterns, sorted so runs are repeatable. A path that does
    not exist, a broken link, a folder that cannot be listed and anything that
    is not a regular file (a FIFO, a device) become problem lines.
    """
    adapter = get_adapter(kind)
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir() and adapter.patterns:
            # A hospital's protocol folder: a file medcite cannot read (a .docx) is reported, not passed over.
            found, folder_problems = _walk(path, adapter.patterns, report_others=kind == "files")
            problems.extend(folder_problems)
            if not found and not folder_problems:
                problems.append(f"{path}: no {', '.join(adapter.patterns)} files in this folder for kind {kind!r}.")
            files.extend(found)
        elif path.is_dir():
            files.append(path)
        elif path.is_symlink() and not path.exists():
            problems.append(f"{path}: a broken link; point it at a file or remove it.")
        elif not path.exists():
            problems.append(f"{path}: no such file or folder.")
        elif not path.is_file():
            problems.append(f"{path}: not a regular file (a pipe or device?); give a file or folder.")
        else:
            files.append(path)
    return files, problems


def _walk(folder: Path, patterns: tuple[str, ...], *, report_others: bool = False) -> tuple[list[Path], list[str]]:
    found: list[Path] = []
    problems: list[str] = []

    def report(error: OSError) -> None:
        problems.append(f"{error.filename}: cannot list this folder ({error.strerror}); its files were not read.")

    for root, _dirs, names in os.walk(folder, onerror=report):
        for name in names:
            if name.endswith(".meta.json"):
                continue
            if not any(fnmatch.fnmatch(name.lower(), pattern) for pattern in patterns):
                if report_others and not name.startswith("."):
                    problems.append(
                        f"{Path(root) / name}: not read (medcite reads {', '.join(patterns)}); "
                        "save it as PDF, HTML, Markdown or text to include it."
                    )
                continue
            path = Path(root) / name
            if path.is_symlink() and not path.exists():
                problems.append(f"{path}: a broken link; point it at a file or remove it.")
            elif path.is_file():
                found.append(path)
    return sorted(found), problems


def ingest(
    store: Store,
    kind: str,
    paths: Sequence[Path],
    *,
    settings: Settings,
    on_bytes: Callable[[int], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
    on_total_bytes: Callable[[int], None] | None = None,
) -> IngestReport:
    """Read input files of one source kind into the library.

    Writes to the store: each batch of ``settings.ingest_batch_documents``
    documents is one transaction (documents, passages and full-text rows
    together), so an interrupted run keeps every batch committed before the
    interruption and nothing of the batch in progress.

    Args:
        store: The open library.
        kind: A source kind from ``medcite.corpus.ADAPTERS``.
        paths: Files or folders.
        settings: Batch size and passage size.
        on_bytes: Called with the number of input bytes read, for progress bars.
        on_problem: Called with one line per skipped record or file as it happens.
        on_total_bytes: Called once, before reading, with the size of all input files in bytes
            (the total of ``on_bytes`` for plain files; compressed bytes for .gz).

    Returns:
        Counts of added, updated, unchanged, deleted and skipped records; the
        problem lines.

    Raises:
        StoreError: The library cannot be written.
    """
    adapter = get_adapter(kind)
    files, problems = expand_inputs(kind, paths)
    report = IngestReport()
    for line in problems:
        _record_problem(report, line, on_problem)
    if on_total_bytes is not None:
        on_total_bytes(sum(_size_bytes(path) for path in files))
    reader = adapter.reader()

    def records() -> Iterable[Record]:
        for path in files:
            with report_progress_to(on_bytes):
                try:
                    yield from reader(path)
                except Exception as exc:  # an adapter bug must not lose the other files
                    yield SkippedRecord(
                        source=str(path),
                        reason=f"medcite could not read the rest of this file ({type(exc).__name__}: {exc}); "
                        "please report this as a bug with the file attached.",
                    )

    return ingest_records(store, records(), settings=settings, report=report, on_problem=on_problem)


def _size_bytes(path: Path) -> int:
    """Size of a file, or of every file below a folder (a guideline pack), in bytes."""
    if path.is_dir():
        return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())
    return path.stat().st_size


def ingest_records(
    store: Store,
    records: Iterable[Record],
    *,
    settings: Settings,
    report: IngestReport | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> IngestReport:
    """Write adapter records (documents, skips, deletions) to the library in batches.

    Used by ``ingest`` for files and by the live PubMed source. Retraction
    notices (``metadata['retraction_of']``) mark the papers they retract.

    Args:
        store: The open library.
        records: What an adapter yields.
        settings: Batch size and passage size.
        report: A report to add to (a new one when None).
        on_problem: Called with one line per skipped record.

    Returns:
        The report with this run's counts added.

    Raises:
        StoreError: The library cannot be written.
    """
    report = report if report is not None else IngestReport()
    batch = _Batch()
    for record in records:
        if isinstance(record, SkippedRecord):
            _record_problem(report, record.describe(), on_problem)
        elif isinstance(record, VocabularyEntry):
            batch.vocabulary.append(record)
        elif isinstance(record, Deletion):
            _flush(store, batch, report)
            batch = _Batch(deletions=list(record.doc_ids))
        else:
            passages = build_passages(record, max_chars=settings.passage_max_chars)
            batch.items.append((record, passages))
            if not record.is_retracted:  # the names it defines or mentions join the library's vocabulary
                batch.vocabulary.extend(vocabulary_entries([record.title, *(s.text for s in record.sections)]))
            notice_pmid = record.pmid or record.external_id
            batch.retractions.extend((str(pmid), notice_pmid) for pmid in record.metadata.get("retraction_of", []))
            if len(batch.items) >= settings.ingest_batch_documents:
                _flush(store, batch, report)
                batch = _Batch()
    _flush(store, batch, report)
    return report


def _record_problem(report: IngestReport, line: str, on_problem: Callable[[str], None] | None) -> None:
    report.skipped += 1
    report.problems.append(line)
    if on_problem is not None:
        on_problem(line)


def _flush(store: Store, batch: _Batch, report: IngestReport) -> None:
    if not (batch.items or batch.deletions or batch.retractions or batch.vocabulary):
        return
    counts = store.write_batch(
        batch.items,
        delete_doc_ids=batch.deletions,
        retracted_pmids=batch.retractions,
        vocabulary=batch.vocabulary,
    )
    report.added += counts.added
    report.updated += counts.updated
    report.unchanged += counts.unchanged
    report.deleted += counts.deleted
    report.n_passages += counts.n_passages


def default_guideline_pack() -> Path:
    """Return the folder of the installed open-medicine guideline pack (registry.json + content/).

    The package is located without importing it (its import pulls in a web server).

    Raises:
        StoreError: open-medicine is not installed.
    """
    from medcite.errors import StoreError

    spec = importlib.util.find_spec("open_medicine")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError(
            "The default guideline pack is missing: install it with `pip install open-medicine==0.12.0` "
            "(a dependency of medcite)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "guidelines"


def ensure_default_library(
    store: Store, *, settings: Settings, on_message: Callable[[str], None] | None = None
) -> IngestReport | None:
    """Fill a new, empty library with the default guideline pack; do nothing otherwise.

    A library that held documents once (its ``library_version`` is above 0) and was emptied on purpose
    (``medcite library remove``) is left empty.

    Writes to the store when it is empty. ``on_message`` receives one progress
    line before the work starts.

    Returns:
        The ingest report, or None when the library already held documents.
    """
    if store.count_documents() > 0 or store.library_version() > 0:  # filled before: emptied on purpose, keep it so
        return None
    pack = default_guideline_pack()
    if on_message is not None:
        on_message(f"The library {store.path} is empty: loading the default guideline pack from {pack} ...")
    return ingest(store, "guidelines", [pack], settings=settings)
