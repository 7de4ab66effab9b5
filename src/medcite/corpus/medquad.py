"""Ingest adapter for MedQuAD, the NIH consumer-health question-answer collection (corpus stage).

MedQuAD (Ben Abacha & Demner-Fushman, "A Question-Entailment Approach to
Question Answering", BMC Bioinformatics 2019; CC BY 4.0) ships one XML file per
source page in ``<N>_<Collection>/NNNNNNN.xml``. Each ``<Document>`` becomes one
``Document`` whose sections are its question-answer pairs. Three MedlinePlus
subsets (A.D.A.M. encyclopedia, drugs, herbs and supplements) had their answers
removed for copyright: their pairs are skipped and a Document with no answer
left yields nothing (not an error, so no ``SkippedRecord``). Measured on the
full release: 11,274 files, 47,457 pairs, 16,423 answered pairs in 5,490
documents (the other 5,784 files yield nothing: the three removed subsets and
one GARD page whose answers are empty); the published 16,407 omits the 16 pairs of four NINDS files written
in an older lowercase schema (``<doc docid corpus>``/``<pair>``), which this
reader also accepts, as it accepts the one CDC file rooted at ``<DiseaseFile fid>``.
The TREC 2017 LiveQA-Med judged-answer CSV (``All-2479-Answers-retrieved-from-
MedQuAD.csv``) is read too: one Document per distinct ``AnswerID`` (2,479
rows, one per judgment, hold 1,935 distinct answers). This module
imports ``models`` and ``corpus._io``; never ``store``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from lxml import etree

from medcite.corpus import Record
from medcite.corpus._io import decode_text, open_bytes
from medcite.models import Document, Section, SkippedRecord, VocabularyEntry

__all__ = ["normalise_answer", "read_medquad"]

LICENCE = "CC BY 4.0"
JUDGED_COLLECTION = "judged"

_DOCUMENT_TAGS = ("Document", "doc", "DiseaseFile")
_PAIR_TAGS = ("QAPair", "pair")

# AnswerID prefixes of the judged-answer CSV -> MedQuAD collection folders (readme.txt, collection list).
_JUDGED_FOLDERS: dict[str, tuple[str, str]] = {
    "CancerGov": ("CancerGov", "1_CancerGov_QA"),
    "GARD": ("GARD", "2_GARD_QA"),
    "GHR": ("GHR", "3_GHR_QA"),
    "MPlusHealthTopics": ("MPlusHealthTopics", "4_MPlus_Health_Topics_QA"),
    "NIDDK": ("NIDDK", "5_NIDDK_QA"),
    "NINDS": ("NINDS", "6_NINDS_QA"),
    "NIHSeniorHealth": ("NIHSeniorHealth", "7_SeniorHealth_QA"),
    "NHLBI": ("NHLBI", "8_NHLBI_QA_XML"),
    "CDC": ("CDC", "9_CDC_QA"),
    "ADAM": ("ADAM", "10_MPlus_ADAM_QA"),
    "MPlusDrugs": ("MPlusDrugs", "11_MPlusDrugs_QA"),
    "MPlusHerbsSuppls": ("MPlusHerbsSupplements", "12_MPlusHerbsSupplements_QA"),
}
_ANSWER_ID = re.compile(r"^(?P<source>[A-Za-z]+)_(?P<doc>\d+(?:_\d+)?)_Sec(?P<section>\d+)$")
_JUDGED_ANSWER = re.compile(
    r"\AQuestion:[ \t]*(?P<question>.*?)\s*\nURL:[ \t]*(?P<url>.*?)\s*\nAnswer:(?P<answer>.*)\Z", re.S
)
_ALSO_CALLED = re.compile(r"\(Also called:\s*(?P<names>[^)]*)\)\s*$")

# A bullet marker: '-' at the start of a line or after a run of two or more spaces.
_BULLET = re.compile(r"(?:^|\s{2,})-\s+")
_SPACE_RUN = re.compile(r"\s{2,}")
_NBSP_RUN = re.compile(r"[ \t]*\xa0[\xa0 \t]*")


def normalise_answer(raw: str) -> str:
    r"""Turn a MedQuAD answer's layout whitespace into paragraphs and bullet lines.

    MedQuAD answers keep the whitespace of the scraped pages: line breaks,
    indentation, runs of two or more spaces between paragraphs, and
    ``'    - item'`` bullets. Runs of two or more spaces and line breaks become
    paragraph breaks (``"\n\n"``); each bullet becomes its own ``"- item"``
    line, joined to the preceding line by a single ``"\n"`` so a list stays
    with its lead-in. Non-breaking spaces count as one ordinary space (NINDS
    pages put one after every sentence). Single-spaced ``' - '`` (as in
    "Parasites - Taeniasis") is left alone.

    Args:
        raw: Answer text as it appears in the XML or CSV.

    Returns:
        The normalised text; empty when ``raw`` holds only whitespace.
    """
    pieces: list[tuple[bool, str]] = []  # (is_bullet, text)
    for line in _NBSP_RUN.sub(" ", raw).splitlines():
        parts = _BULLET.split(line.strip())
        for index, part in enumerate(parts):
            for position, segment in enumerate(_SPACE_RUN.split(part)):
                words = " ".join(segment.split())
                if words:
                    pieces.append((index > 0 and position == 0, words))
    out: list[str] = []
    for is_bullet, words in pieces:
        if out:
            out.append("\n" if is_bullet else "\n\n")
        out.append(f"- {words}" if is_bullet else words)
    return "".join(out)


def read_medquad(path: Path) -> Iterator[Record]:
    r"""Read one MedQuAD XML file, or the LiveQA-Med judged-answer CSV, as Documents.

    Format: the MedQuAD XML release (https://github.com/abachaa/MedQuAD, no
    DTD; ``Document/@id @source @url``, ``Focus``, ``FocusAnnotations``,
    ``QAPairs/QAPair/Question[@qid @qtype]`` and ``Answer``), including its
    two older variants (``doc/@docid @corpus``, ``DiseaseFile/@fid``). XML
    documents get ``doc_id`` ``'medquad:<collection folder>/<file stem>'``
    (ids repeat across collections; the stem equals ``Document/@id`` except in
    ten CancerGov files whose id attribute repeats a sibling's, see
    ``metadata['document_id']``); a file holding several Documents uses
    their id attributes instead of the stem. One section per answered pair, headed by
    the question, ``category`` = the question type; ``metadata['qids']`` lists
    each section's question id in section order. A file whose name ends in
    ``.csv`` is read as ``All-2479-Answers-retrieved-from-MedQuAD.csv``
    (columns ``AnswerID``, ``Answer`` = "Question: ...\nURL: ...\nAnswer: ...")
    and gives ``'medquad:judged/<AnswerID without .txt>'`` documents; rows
    repeating an AnswerID with the same text (one row per judgment) are read once.

    Args:
        path: One ``NNNNNNN.xml`` file inside its collection folder, or the CSV.

    Yields:
        ``Document`` records in file order, and a ``SkippedRecord`` for each
        record that cannot be read (``record=None`` when the whole file is
        unreadable, after any Documents read before the fault). Never raises on
        bad input.
    """
    if path.suffix.lower() == ".csv":
        yield from _read_judged_csv(path)
        return
    try:
        with open_bytes(path) as handle:
            root = etree.parse(handle, etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    except (OSError, EOFError, etree.XMLSyntaxError) as exc:
        yield _skip(path, None, f"The file is not readable MedQuAD XML ({_describe(exc)}); re-download it.")
        return
    documents = [root] if root.tag in _DOCUMENT_TAGS else [el for el in root.iter(*_DOCUMENT_TAGS)]
    if not documents:
        yield _skip(path, None, f"No <Document> element found (root is <{root.tag}>); is this a MedQuAD file?")
    for number, element in enumerate(documents, start=1):
        yield from _read_document(path, element, number, is_single=len(documents) == 1)


def _read_document(path: Path, element: etree._Element, number: int, *, is_single: bool) -> Iterator[Record]:
    """Convert one <Document> element; yield nothing when none of its answers survive.

    The file stem names a single-document file: ten CancerGov files share the
    id attribute of a sibling (``0000013_2_1.xml`` .. ``_6`` all say
    ``id="0000013_2"`` yet have different foci), and the stem equals the id
    attribute in every other file.
    """
    document_id = _first_attribute(element, "id", "docid", "fid")
    local_id = path.stem if is_single else document_id
    if not local_id:
        yield _skip(path, f"record {number}", 'The <Document> has no id attribute; add id="..." to it.')
        return
    collection = path.parent.name
    source = _first_attribute(element, "source", "corpus") or collection
    sections: list[Section] = []
    qids: list[str] = []
    for pair in element.iter(*_PAIR_TAGS):
        question_el = _first_child(pair, "Question", "question")
        answer = normalise_answer(_text(_first_child(pair, "Answer", "answer")))
        question = " ".join(_text(question_el).split())
        if not answer:
            continue
        yield from brand_names(answer)
        qtype = question_el.get("qtype") if question_el is not None else None
        sections.append(Section(heading_path=[question] if question else [], text=answer, category=qtype or None))
        qids.append((question_el.get("qid") if question_el is not None else None) or "")
    focus = " ".join(_text(_first_child(element, "Focus", "doctitle-focus")).split())
    synonyms = _texts(element.iter("Synonym"))
    cuis = _texts(element.iter("CUI", "cui"))
    if focus and synonyms:
        # Kept even for pages whose answers were removed: their names are still a vocabulary. One concept
        # per page: grouping pages by UMLS CUI was tried and merged loosely related pages ("after a heart
        # attack", "pericarditis after heart attack") into one noisy group.
        yield VocabularyEntry(
            concept=f"medquad:{collection}/{local_id}", terms=[focus, *synonyms], source="MedQuAD focus synonyms"
        )
    if not sections:
        return
    metadata: dict[str, object] = {
        "collection": collection,
        "document_id": document_id,
        "focus": focus,
        "synonyms": synonyms,
        "cuis": cuis,
        "semantic_types": _texts(element.iter("SemanticType", "semanticType")),
        "semantic_group": next(iter(_texts(element.iter("SemanticGroup", "semanticGroup"))), None),
        "qids": qids,
    }
    category = next(iter(_texts(element.iter("Category"))), None)
    if category:
        metadata["category"] = category
    external_id = f"{collection}/{local_id}"
    yield Document(
        doc_id=f"medquad:{external_id}",
        kind="medquad",
        external_id=external_id,
        title=focus or sections[0].heading or external_id,
        organization=source,
        url=element.get("url") or None,
        evidence_type="consumer",
        keywords=synonyms,
        licence=LICENCE,
        provenance=f"MedQuAD (NIH consumer health Q&A), {source}",
        metadata=metadata,
        sections=sections,
    )


_GENERIC_BRAND = re.compile(r"\b([a-z]{6,}) \(([A-Z][a-z]{3,})\)")
"""A drug's generic name followed by a brand name in parentheses, as consumer pages write them."""


def brand_names(text: str) -> Iterator[VocabularyEntry]:
    """Yield brand -> generic name pairs written as 'generic (Brand)' in an answer, e.g. 'warfarin (Coumadin)'.

    The concept key starts with 'brand:' so query expansion uses it one way only
    (a brand name finds its generic; a generic does not pull in every brand).
    """
    for generic, brand in dict.fromkeys(_GENERIC_BRAND.findall(text)):
        yield VocabularyEntry(
            concept=f"brand:{brand.lower()}", terms=[brand, generic], source="MedQuAD answers: generic (Brand)"
        )


def _read_judged_csv(path: Path) -> Iterator[Record]:
    """Read the LiveQA-Med judged-answer CSV: one Document per distinct AnswerID."""
    try:
        with open_bytes(path) as handle:
            data = handle.read()
        text, _encoding = decode_text(data)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        yield _skip(path, None, f"The CSV file cannot be read ({_describe(exc)}); re-download it.")
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or not {"AnswerID", "Answer"} <= set(reader.fieldnames):
        yield _skip(path, None, "The CSV lacks the 'AnswerID' and 'Answer' columns of the MedQuAD judged answers.")
        return
    seen: dict[str, str] = {}
    try:
        for number, row in enumerate(reader, start=2):
            answer_id = (row.get("AnswerID") or "").strip().removesuffix(".txt")
            raw = row.get("Answer") or ""
            if not answer_id:
                yield _skip(path, f"line {number}", "The row has no AnswerID; fill the first column.")
                continue
            if answer_id in seen:
                if seen[answer_id] != raw:
                    yield _skip(path, answer_id, "The AnswerID repeats with a different text; keep one version.")
                continue
            seen[answer_id] = raw
            yield _judged_document(path, answer_id, raw)
            yield from brand_names(raw)
    except csv.Error as exc:
        yield _skip(path, None, f"The CSV is malformed ({exc}); rows after the fault were not read.")


def _judged_document(path: Path, answer_id: str, raw: str) -> Record:
    r"""Build the Document for one judged answer ("Question: ...\nURL: ...\nAnswer: ...")."""
    match = _JUDGED_ANSWER.match(raw.replace("\r\n", "\n"))
    if match is None:
        return _skip(path, answer_id, "The answer does not start with 'Question:', 'URL:' and 'Answer:' lines.")
    question = " ".join(match["question"].split())
    answer = normalise_answer(match["answer"])
    if not question or not answer:
        return _skip(path, answer_id, "The judged answer has an empty question or answer text.")
    metadata: dict[str, object] = {"collection": JUDGED_COLLECTION, "answer_id": answer_id}
    source: str | None = None
    id_match = _ANSWER_ID.match(answer_id)
    if id_match and id_match["source"] in _JUDGED_FOLDERS:
        source, folder = _JUDGED_FOLDERS[id_match["source"]]
        metadata["medquad_doc_id"] = f"medquad:{folder}/{id_match['doc']}"
        metadata["section_number"] = int(id_match["section"])
    also = _ALSO_CALLED.search(question)
    synonyms = [name.strip() for name in also["names"].split(";") if name.strip()] if also else []
    metadata["synonyms"] = synonyms
    return Document(
        doc_id=f"medquad:{JUDGED_COLLECTION}/{answer_id}",
        kind="medquad",
        external_id=answer_id,
        title=question,
        organization=source,
        url=match["url"] or None,
        evidence_type="consumer",
        keywords=synonyms,
        licence=LICENCE,
        provenance="MedQuAD answers judged for TREC 2017 LiveQA-Med (NIH consumer health Q&A)"
        + (f", {source}" if source else ""),
        metadata=metadata,
        sections=[Section(heading_path=[question], text=answer)],
    )


def _first_attribute(element: etree._Element, *names: str) -> str:
    """Return the first non-empty attribute among ``names`` (stripped), or ''."""
    for name in names:
        value = (element.get(name) or "").strip()
        if value:
            return value
    return ""


def _first_child(element: etree._Element, *tags: str) -> etree._Element | None:
    """Return the first descendant with one of ``tags``, or None."""
    return next(element.iter(*tags), None)


def _text(element: etree._Element | None) -> str:
    """Return all text inside an element in document order ('' for None)."""
    return "" if element is None else etree.tostring(element, method="text", encoding="unicode", with_tail=False)


def _texts(elements: Iterable[etree._Element]) -> list[str]:
    """Return the non-empty, whitespace-normalised texts of elements, in order, without repeats."""
    values: list[str] = []
    for element in elements:
        value = " ".join(_text(element).split())
        if value and value not in values:
            values.append(value)
    return values


def _describe(exc: BaseException) -> str:
    """Return a short description of an exception for a skip reason."""
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _skip(path: Path, record: str | None, reason: str) -> SkippedRecord:
    """Build a SkippedRecord for this file."""
    return SkippedRecord(source=str(path), record=record, reason=reason)
