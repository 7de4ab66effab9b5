"""Benchmark data for ``benchmarks/retrieval.py``: libraries, questions, qrels and answer-id mapping.

Libraries are built with ``medcite.index.ingest`` into a cache folder
(``benchmarks/.cache/`` by default) and reused while their recipe is unchanged:
a ``<name>.json`` file beside each ``<name>.db`` records the inputs and the
ingest counts; a library without it (or with another recipe) is rebuilt.

- ``medquad``: the MedQuAD XML collections plus the LiveQA-Med judged-answer
  CSV (``medquad:judged/<AnswerID>`` documents), for LiveQA-Med 2017.
- ``pubmed``: every PubMed abstract in the shared data (MEDLINE file, efetch
  records, MEDLINE-format exports) and, last so that it wins on a shared PMID,
  PubMedQA's 1,000 contexts; for PubMedQA.
- ``dev``: the development library of the issue (default guideline pack +
  MedQuAD + the PubMed samples above), for the latency growth curve.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from medcite.index import default_guideline_pack, ingest
from medcite.settings import Settings
from medcite.store import HEAD_REVISION, Store

RECIPE_VERSION = 1  # bump when the libraries must be rebuilt

LIVEQA_XML = "liveqa/TREC-2017-LiveQA-Medical-Test-Questions-w-summaries.xml"
QRELS_DIR = "medquad/QA-TestSet-LiveQA-Med-Qrels-2479-Answers"
PUBMEDQA_JSON = "pubmedqa/ori_pqal.json"


# -- libraries -------------------------------------------------------------------------------------


def _pubmed_inputs(data: Path) -> list[tuple[str, list[Path]]]:
    pubmed = data / "pubmed"
    return [
        (
            "pubmed-xml",
            [
                pubmed / "medline16n0902.xml.gz",
                pubmed / "pubmed-29768149.xml",
                *sorted((pubmed / "entrez").glob("pubmed*.xml")),  # efetch PubMed records (not esearch etc.)
            ],
        ),
        ("medline", [pubmed / "medline"]),
        ("pubmedqa", [data / PUBMEDQA_JSON]),
    ]


def library_recipes(data: Path) -> dict[str, list[tuple[str, list[Path]]]]:
    """Return, per library name, the ``(source kind, input paths)`` ingests in order."""
    medquad = [("medquad", [data / "medquad"])]
    return {
        "medquad": medquad,
        "pubmed": _pubmed_inputs(data),
        "dev": [("guidelines", [default_guideline_pack()]), *medquad, *_pubmed_inputs(data)],
    }


def build_library(name: str, data: Path, cache: Path, *, log=print) -> Path:
    """Return the path of library ``name``, ingesting it into ``cache`` unless a current copy is there.

    Raises:
        FileNotFoundError: An input of the recipe is missing.
    """
    recipe = library_recipes(data)[name]
    for _kind, paths in recipe:
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing; pass --data pointing at the shared data folder.")
    stamp = {
        "version": RECIPE_VERSION,
        "schema": HEAD_REVISION,
        "recipe": [[kind, [str(p) for p in paths]] for kind, paths in recipe],
    }
    library = cache / f"{name}.db"
    marker = cache / f"{name}.json"
    if library.exists() and marker.exists():
        saved = json.loads(marker.read_text())
        # The schema version is recorded but not compared: opening a library migrates it forward.
        if {k: saved.get(k) for k in stamp if k != "schema"} == {k: v for k, v in stamp.items() if k != "schema"}:
            return library
    cache.mkdir(parents=True, exist_ok=True)
    for stale in (library, marker, *cache.glob(f"{name}.db-*")):
        stale.unlink(missing_ok=True)
    settings = Settings(library=library)
    reports = []
    started = time.perf_counter()
    with Store.open(library) as store:
        for kind, paths in recipe:
            log(f"[build {name}] ingest {kind} {' '.join(p.name for p in paths)} ...")
            report = ingest(store, kind, paths, settings=settings)
            log(f"[build {name}]   {report.summary()}")
            reports.append(
                {
                    "kind": kind,
                    "added": report.added,
                    "updated": report.updated,
                    "skipped": report.skipped,
                    "passages": report.n_passages,
                }
            )
        stats = store.stats()
    stamp.update(
        ingest=reports,
        documents=stats.documents,
        passages=stats.passages,
        seconds=round(time.perf_counter() - started, 1),
    )
    marker.write_text(json.dumps(stamp, indent=2))
    return library


def library_without(library: Path, doc_ids: list[str], path: Path) -> Path:
    """Return ``path``: a copy of ``library`` without the given documents, made unless a copy newer than it is there.

    The copy is made under a temporary name and renamed when whole, so an interrupted run leaves no partial copy.
    """
    import sqlite3

    if path.exists() and path.stat().st_mtime >= library.stat().st_mtime:
        return path
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(library) as source, sqlite3.connect(partial) as target:
        source.backup(target)
    with Store.open(partial) as store:
        store.delete_documents(doc_ids)
    for stale in path.parent.glob(f"{path.name}*"):
        stale.unlink()
    partial.rename(path)
    return path


@dataclass(frozen=True)
class PassageRow:
    """One passage as the library indexes it: FTS5 columns title, section, text."""

    passage_id: str
    doc_id: str
    title: str
    section: str
    text: str


def iter_passages(library: Path) -> Iterator[PassageRow]:
    """Yield every citable passage of a library (retracted documents excluded), in rowid order.

    A read-only query on the library file: the same rows ``passages_fts``
    indexes (title, section, text), which the bm25s baseline must see too.
    """
    conn = sqlite3.connect(f"file:{library}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT p.passage_id, p.doc_id, d.title, coalesce(p.section, ''), p.text "
            "FROM passages p JOIN documents d ON d.doc_id = p.doc_id WHERE d.is_retracted = 0 ORDER BY p.rowid"
        )
        for row in rows:
            yield PassageRow(*row)
    finally:
        conn.close()


def document_metadata(library: Path, prefix: str) -> dict[str, dict]:
    """Return ``{doc_id: metadata}`` for documents whose id starts with ``prefix`` (read-only)."""
    conn = sqlite3.connect(f"file:{library}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT doc_id, data FROM documents WHERE doc_id LIKE ?", (prefix + "%",)).fetchall()
    finally:
        conn.close()
    return {doc_id: json.loads(data) for doc_id, data in rows}


# -- LiveQA-Med 2017 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveQAQuestion:
    """One TREC 2017 LiveQA-Med test question; ``qid`` as in the qrels ('1'..'104')."""

    qid: str
    original: str  # SUBJECT + MESSAGE of the consumer's request
    summary: str  # NLM-Summary


def liveqa_questions(data: Path) -> list[LiveQAQuestion]:
    """Read the 104 test questions (``NLM-QUESTION qid="TQ<n>"``) in file order."""
    root = etree.parse(str(data / LIVEQA_XML)).getroot()
    questions = []
    for element in root.iter("NLM-QUESTION"):
        qid = element.get("qid", "").removeprefix("TQ")

        def text(path: str, element: etree._Element = element) -> str:
            found = element.find(path)
            return " ".join("".join(found.itertext()).split()) if found is not None else ""

        parts = (text("Original-Question/SUBJECT"), text("Original-Question/MESSAGE"))
        original = " ".join(part for part in parts if part)
        questions.append(LiveQAQuestion(qid=qid, original=original, summary=text("NLM-Summary")))
    return questions


def liveqa_qrels(data: Path) -> dict[str, dict[str, int]]:
    """Read ``All-qrels_*.txt`` (``QuestionID judgment AnswerID``) as ``{qid: {AnswerID: grade 1..4}}``.

    Grades are the leading digit of the judgment (1-Incorrect, 2-Related,
    3-Incomplete, 4-Excellent); AnswerIDs lose their ``.txt`` suffix.
    """
    qrels: dict[str, dict[str, int]] = {}
    (path,) = sorted((data / QRELS_DIR).glob("All-qrels_*.txt"))
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        qid, judgment, answer_id = parts
        qrels.setdefault(qid, {})[answer_id.removesuffix(".txt")] = int(judgment.split("-", 1)[0])
    return qrels


_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# The judged CSV appends the focus synonyms to a GARD question: "What is (are) X ? (Also called: Y; Z)".
_ALSO_CALLED = re.compile(r"\(Also called:.*\)\s*$")


def normalise_question(text: str) -> str:
    """Drop a trailing "(Also called: ...)", lower-case, keep word characters single-spaced (for matching)."""
    return " ".join(_NON_WORD.sub(" ", _ALSO_CALLED.sub("", text).lower()).split())


@dataclass
class AnswerMap:
    """How library passages map to LiveQA answer ids."""

    by_passage: dict[str, str]  # passage_id -> AnswerID, for judged copies and the XML passages matched to them
    counts: Counter


def liveqa_answer_map(library: Path) -> AnswerMap:
    """Map every passage to the AnswerID of the judged answer it is a copy of.

    A judged document ``medquad:judged/<AnswerID>`` carries
    ``metadata['medquad_doc_id']`` (its MedQuAD XML document) and its question
    as title. The XML document's sections are headed by their questions; an XML
    passage maps to the AnswerID whose judged question equals its section
    heading, both normalised by ``normalise_question``. Where one document asks
    the same question in several sections (NIHSeniorHealth pages do), the
    passage goes to the judged answer whose text contains the passage's text
    (word characters compared). ``SecN`` numbers are not used: they disagree
    with the XML section order for a few hundred answers. A judged answer whose
    XML document is not in the library (the three MedlinePlus subsets without
    answers) stays judged-only. Passages of ``medquad:judged/X`` map to ``X``.
    """
    judged = document_metadata(library, "medquad:judged/")
    wanted: dict[tuple[str, str], list[str]] = {}
    for doc_id, meta in judged.items():
        xml_doc = meta.get("metadata", {}).get("medquad_doc_id")
        if xml_doc:
            wanted.setdefault((xml_doc, normalise_question(meta["title"])), []).append(
                doc_id.removeprefix("medquad:judged/")
            )
    xml_docs = {doc for doc, _question in wanted}
    by_passage: dict[str, str] = {}
    judged_text: dict[str, list[str]] = {}
    xml_rows: list[PassageRow] = []
    counts: Counter = Counter()
    for row in iter_passages(library):
        if row.doc_id.startswith("medquad:judged/"):
            answer_id = row.doc_id.removeprefix("medquad:judged/")
            by_passage[row.passage_id] = answer_id
            judged_text.setdefault(answer_id, []).append(normalise_question(row.text))
            counts["judged passages"] += 1
        elif row.doc_id in xml_docs:
            xml_rows.append(row)
    matched: set[str] = set()
    for row in xml_rows:
        answer_ids = wanted.get((row.doc_id, normalise_question(row.section)))
        if not answer_ids:
            continue
        if len(answer_ids) > 1:
            text = normalise_question(row.text)
            containing = [a for a in answer_ids if text in " ".join(judged_text.get(a, []))]
            if len(containing) == 1:
                counts["XML passages placed by answer text (question asked twice in a page)"] += 1
            else:
                counts["XML passages whose text two AnswerIDs share (first AnswerID kept)"] += 1
            answer_ids = containing or answer_ids
        by_passage[row.passage_id] = answer_ids[0]
        matched.add(answer_ids[0])
        counts["XML passages mapped to a judged AnswerID"] += 1
    counts["judged answers"] = len(judged)
    counts["judged answers with an XML document in the library"] = sum(
        len(ids) for (doc, _q), ids in wanted.items() if doc in {row.doc_id for row in xml_rows}
    )
    counts["judged answers matched by an XML passage"] = len(matched)
    return AnswerMap(by_passage=by_passage, counts=counts)


# -- PubMedQA --------------------------------------------------------------------------------------


def pubmedqa_questions(data: Path) -> list[tuple[str, str]]:
    """Return ``(PMID, QUESTION)`` pairs of ``ori_pqal.json`` in file order; gold doc is ``pmid:<PMID>``."""
    records = json.loads((data / PUBMEDQA_JSON).read_text(encoding="utf-8"))
    return [(pmid, record["QUESTION"]) for pmid, record in records.items()]
