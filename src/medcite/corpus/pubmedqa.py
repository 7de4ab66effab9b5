"""Ingest adapter for the PubMedQA expert-labelled set (``ori_pqal.json``), a corpus-stage reader.

PubMedQA (Jin et al., "PubMedQA: A Dataset for Biomedical Research Question
Answering", EMNLP 2019; MIT licence) pairs 1,000 yes/no/maybe questions with
the PubMed abstracts they were written from, minus the abstract's conclusion
(kept as ``LONG_ANSWER``, the benchmark answer). Each abstract becomes a
``pmid:<PMID>`` Document whose sections are its labelled context paragraphs.
This module imports ``models`` and ``corpus._io``; never ``store``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medcite.corpus import Record
from medcite.corpus._io import decode_text, open_bytes
from medcite.models import Document, Section, SkippedRecord

__all__ = ["read_pubmedqa"]

LICENCE = "MIT"
PROVENANCE = (
    "PubMedQA expert-labelled set (Jin et al. 2019): the abstract without its conclusion; PubMedQA gives no "
    "article title, so the title names the PMID"
)
_SPACE = re.compile(r"\s*")
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def read_pubmedqa(path: Path) -> Iterator[Record]:
    """Read PubMedQA's ``ori_pqal.json`` as one Document per abstract.

    Format: the PQA-L file of https://github.com/pubmedqa/pubmedqa, a JSON
    object keyed by PMID whose values hold ``QUESTION``, ``CONTEXTS`` with
    parallel ``LABELS``, ``MESHES``, ``YEAR`` (string or null),
    ``reasoning_required_pred``, ``reasoning_free_pred``, ``final_decision``
    and ``LONG_ANSWER``. PubMedQA gives no article title; the title is
    "PubMed <PMID>" and the question stays in ``metadata['question']`` only, so
    a benchmark asking that question cannot match it verbatim. Each context is one section headed and
    categorised by its label; ``LONG_ANSWER`` and the labels stay in
    ``metadata`` (``final_decision``, ``reasoning_required_pred``,
    ``reasoning_free_pred``, ``long_answer``, ``question``), not in the text:
    they are the benchmark answer. No publication types are given, so the
    evidence type is ``'other'``.

    Args:
        path: ``ori_pqal.json`` (or a file in the same format, gzipped or not).

    Yields:
        ``Document`` records in file order; a ``SkippedRecord`` for each entry
        without a usable PMID key, question or context, and one with
        ``record=None`` when the file is not a readable JSON object (after
        the entries read before the fault, for a truncated file). Never
        raises on bad input.
    """
    try:
        with open_bytes(path) as handle:
            data = handle.read()
        text = decode_text(data)[0]
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        yield _skip(path, None, f"The file cannot be read ({type(exc).__name__}: {exc}); re-download it.")
        return
    try:
        for key, entry in _iter_object(text):
            yield _read_entry(path, key, entry)
    except ValueError as exc:
        yield _skip(path, None, f"The file is not readable PubMedQA JSON ({exc}); entries after the fault were lost.")


def _iter_object(text: str) -> Iterator[tuple[str, Any]]:
    """Yield the members of a top-level JSON object one by one, so a truncated file still gives its head.

    Raises:
        ValueError: The text is not a JSON object, or breaks off (``json.JSONDecodeError`` included).
    """
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if not text.startswith("{", position):
        raise ValueError("the file is not a JSON object keyed by PMID, as ori_pqal.json is")
    position = _skip_space(text, position + 1)
    if text.startswith("}", position):
        return
    while True:
        key, position = decoder.raw_decode(text, position)
        position = _skip_space(text, position)
        if not isinstance(key, str) or not text.startswith(":", position):
            raise ValueError(f"expected a string key and ':' at character {position}")
        value, position = decoder.raw_decode(text, _skip_space(text, position + 1))
        yield key, value
        position = _skip_space(text, position)
        if text.startswith("}", position):
            return
        if not text.startswith(",", position):
            raise ValueError(f"expected ',' or '}}' at character {position}")
        position = _skip_space(text, position + 1)


def _skip_space(text: str, position: int) -> int:
    """Return the index of the first non-whitespace character at or after ``position``."""
    match = _SPACE.match(text, position)
    return match.end() if match else position


def _read_entry(path: Path, key: str, entry: Any) -> Record:
    """Convert one PubMedQA entry into a Document, or say why it cannot be."""
    pmid = key.strip()
    if not pmid.isdigit():
        return _skip(path, key, "The entry key is not a PMID (digits only); fix the key.")
    if not isinstance(entry, dict):
        return _skip(path, pmid, "The entry is not a JSON object with QUESTION and CONTEXTS.")
    question = " ".join(str(entry.get("QUESTION") or "").split())
    contexts = entry.get("CONTEXTS")
    labels = entry.get("LABELS") or []
    if not question:
        return _skip(path, pmid, "The entry has no QUESTION; add it.")
    if not isinstance(contexts, list) or not isinstance(labels, list):
        return _skip(path, pmid, "CONTEXTS and LABELS must be JSON lists of strings.")
    sections: list[Section] = []
    if not all(isinstance(context, str) for context in contexts):
        return _skip(path, pmid, "CONTEXTS must be a JSON list of strings (abstract paragraphs).")
    if not isinstance(entry.get("QUESTION"), str):
        return _skip(path, pmid, "QUESTION must be a JSON string.")
    for index, context in enumerate(contexts):
        text = " ".join(context.split())
        if not text:
            continue
        label = str(labels[index]).strip() if index < len(labels) and labels[index] else ""
        sections.append(Section(heading_path=[label] if label else [], text=text, category=label or None))
    if not sections:
        return _skip(path, pmid, "The entry has no non-empty CONTEXTS; there is no abstract text to index.")
    year_text = str(entry.get("YEAR") or "").strip()
    year = int(year_text) if year_text.isdigit() and 1000 <= int(year_text) <= 2999 else None
    meshes = entry.get("MESHES") or []
    metadata: dict[str, Any] = {
        "question": question,
        "final_decision": entry.get("final_decision"),
        "reasoning_required_pred": entry.get("reasoning_required_pred"),
        "reasoning_free_pred": entry.get("reasoning_free_pred"),
        "long_answer": " ".join(str(entry.get("LONG_ANSWER") or "").split()) or None,
        "labels": [str(label) for label in labels],
    }
    return Document(
        doc_id=f"pmid:{pmid}",
        kind="pubmedqa",
        external_id=pmid,
        pmid=pmid,
        title=f"PubMed {pmid}",
        year=year,
        mesh_terms=[str(term) for term in meshes if str(term).strip()] if isinstance(meshes, list) else [],
        evidence_type="other",
        url=PUBMED_URL.format(pmid=pmid),
        licence=LICENCE,
        provenance=PROVENANCE,
        metadata=metadata,
        sections=sections,
    )


def _skip(path: Path, record: str | None, reason: str) -> SkippedRecord:
    """Build a SkippedRecord for this file."""
    return SkippedRecord(source=str(path), record=record, reason=reason)
