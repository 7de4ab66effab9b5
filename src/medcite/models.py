"""Typed value objects that cross module boundaries.

This is the vocabulary of every pipeline stage: source files become
``Document`` objects (with ``Section`` parts), the index cuts them into
``Passage`` rows, and ingest reports what happened in an ``IngestReport``.
It imports only the standard library and pydantic.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "AUDIENCES",
    "EVIDENCE_TYPES",
    "SOURCE_KINDS",
    "Deletion",
    "Document",
    "EvidenceType",
    "Hit",
    "IngestReport",
    "LibraryStats",
    "Passage",
    "PubMedSearch",
    "Section",
    "SkippedRecord",
    "SourceKind",
    "VocabularyEntry",
]

EvidenceType = Literal[
    "guideline",
    "systematic_review",
    "meta_analysis",
    "rct",
    "observational",
    "review",
    "case_report",
    "consumer",
    "protocol",
    "other",
]
EVIDENCE_TYPES: tuple[str, ...] = EvidenceType.__args__  # type: ignore[attr-defined]
"""Evidence types, strongest first (the order evidence-aware ranking uses)."""

SourceKind = Literal["guidelines", "pubmed-xml", "medline", "pmc", "medquad", "pubmedqa", "files", "pubmed"]
SOURCE_KINDS: tuple[str, ...] = SourceKind.__args__  # type: ignore[attr-defined]

SectionKind = Literal["text", "table", "algorithm", "list"]


class Section(BaseModel):
    """One titled part of a document, before it is cut into passages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heading_path: list[str] = Field(
        default_factory=list,
        description="Headings from the document's top to this section, e.g. "
        "['Acute Gout Flare Treatment', 'Colchicine for Acute Flare']. Empty for an untitled part.",
    )
    text: str = Field(description="Plain text of the section (Markdown for tables and lists).")
    kind: SectionKind = Field(
        default="text",
        description="'table' and 'algorithm' blocks are kept whole in one passage where they fit.",
    )
    category: str | None = Field(
        default=None,
        description="A machine category for filtering, e.g. a PubMed abstract's NlmCategory ('METHODS').",
    )

    @property
    def heading(self) -> str:
        """The heading path joined with ' > ' ('' when untitled)."""
        return " > ".join(h for h in self.heading_path if h)


class Document(BaseModel):
    """One source document (a guideline, an article, a consumer page, a protocol).

    ``doc_id`` is stable across re-ingests so citations in saved answers still
    resolve: ``pmid:<PMID>``, ``pmc:<PMCID>``, ``guideline:<pack id>``,
    ``medquad:<collection>/<document id>``, ``file:<hash of the absolute path>``.
    """

    model_config = ConfigDict(extra="forbid")

    doc_id: str = Field(description="Namespaced stable id, e.g. 'pmid:9500320' or 'guideline:acr_gout_2020'.")
    kind: SourceKind = Field(description="Source kind (ingest adapter) that produced the document.")
    external_id: str = Field(description="The source's own id: PMID, PMCID, guideline id, MedQuAD id, file path.")
    title: str = Field(description="Display title (translated titles lose their enclosing brackets).")
    organization: str | None = Field(default=None, description="Issuing body of a guideline, protocol or site.")
    journal: str | None = Field(default=None, description="Journal title for articles.")
    year: int | None = Field(default=None, ge=1000, le=2999, description="Publication year.")
    date_display: str | None = Field(
        default=None, description="Publication date as the source writes it, e.g. '1998 Dec-1999 Jan'."
    )
    authors: list[str] = Field(
        default_factory=list, description="'Family Initials' or a collective name, in source order."
    )
    evidence_type: EvidenceType = Field(default="other", description="Evidence level class of the document.")
    publication_types: list[str] = Field(default_factory=list, description="PubMed publication types.")
    mesh_terms: list[str] = Field(default_factory=list, description="MeSH descriptor names (major ones marked *).")
    keywords: list[str] = Field(default_factory=list, description="Author keywords or topics.")
    doi: str | None = Field(default=None, description="DOI without a 'doi:' or URL prefix.")
    pmid: str | None = Field(default=None, description="PubMed id, always a string.")
    pmcid: str | None = Field(default=None, description="PubMed Central id with its 'PMC' prefix.")
    url: str | None = Field(default=None, description="Where a reader can see the source.")
    language: str | None = Field(default=None, description="Language code as the source gives it ('eng', 'ger').")
    licence: str | None = Field(default=None, description="Licence of the text, e.g. 'CC BY 4.0'.")
    provenance: str | None = Field(default=None, description="Where this text came from, for the reader.")
    is_retracted: bool = Field(default=False, description="True for a retracted paper: stored, never citable.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Kind-specific extras (MedQuAD focus and synonyms, PubMedQA labels, pii, season, notices).",
    )
    sections: list[Section] = Field(default_factory=list, description="Body parts in reading order.")

    def content_hash(self) -> str:
        """Return the SHA-256 hex digest of the document's JSON (64 characters).

        Fields serialise in declaration order and adapters build metadata in a
        fixed order, so equal input gives equal hashes and re-ingesting
        unchanged input is a no-op.
        """
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()


class Passage(BaseModel):
    """A citable span of a document: a section or a few paragraphs (at most about 1,200 characters)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    passage_id: str = Field(description="'<doc_id>#p<n>', n 0-based, e.g. 'pmid:31562422#p3'.")
    doc_id: str = Field(description="The document this passage belongs to.")
    n: int = Field(ge=0, description="0-based order within the document.")
    section: str = Field(description="Heading path joined with ' > ' ('' when untitled).")
    kind: SectionKind = Field(default="text", description="'table' or 'algorithm' for whole blocks.")
    text: str = Field(description="The passage text, exactly as it will be quoted.")
    char_start: int = Field(ge=0, description="Offset of the first character within the section text.")
    char_end: int = Field(ge=0, description="Offset one past the last character within the section text.")


class SkippedRecord(BaseModel):
    """A record (or a whole file) an adapter could not read; it is reported, skipped and counted."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="The input file.")
    record: str | None = Field(default=None, description="The record's id or position; None for the whole file.")
    reason: str = Field(description="A sentence saying what was wrong.")

    def describe(self) -> str:
        """Return one line naming the file, the record and the reason."""
        where = f"{self.source}" + (f" [{self.record}]" if self.record else "")
        return f"{where}: {self.reason}"


class Deletion(BaseModel):
    """Documents an update file tells us to remove (PubMed ``DeleteCitation``)."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="The input file that carried the deletion.")
    doc_ids: list[str] = Field(description="Namespaced ids to delete, e.g. ['pmid:24381829'].")


class VocabularyEntry(BaseModel):
    """Equivalent names of one concept, as a source's vocabulary gives them (for query expansion)."""

    model_config = ConfigDict(frozen=True)

    concept: str = Field(description="Concept key; entries with the same key are merged, e.g. 'umls:C0027051'.")
    terms: list[str] = Field(description="Names of the concept, e.g. ['Heart Attack', 'Myocardial infarction'].")
    source: str = Field(description="Vocabulary the names come from, e.g. 'MedQuAD focus synonyms'.")


class IngestReport(BaseModel):
    """Counts from one ingest run."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    n_passages: int = Field(default=0, description="Passages written in this run.")
    problems: list[str] = Field(default_factory=list, description="One line per skipped record or file.")

    def summary(self) -> str:
        """Return the one-line summary the CLI prints."""
        line = f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped"
        if self.deleted:
            line += f", {self.deleted} deleted"
        return line


class DocumentSummary(BaseModel):
    """A document in a list (``medcite library list --format json``, the web app's Sources page)."""

    doc_id: str = Field(description="Namespaced id, e.g. 'pmid:9500320' or 'guideline:...'.")
    kind: str = Field(description="Source kind it was ingested as.")
    title: str
    source: str | None = Field(default=None, description="Issuing organization, else journal.")
    year: int | None = None
    evidence_type: str = Field(description="Evidence level class.")
    passages: int = Field(ge=0, description="Passages stored.")
    retracted: bool = Field(description="Retracted: never cited by answers.")


class LibraryStats(BaseModel):
    """What a library holds (the JSON of ``medcite library stats``)."""

    path: str = Field(description="Library file.")
    documents: int
    passages: int
    by_kind: dict[str, int] = Field(description="Documents per source kind.")
    by_evidence_type: dict[str, int] = Field(description="Documents per evidence type.")
    passages_by_kind: dict[str, int] = Field(description="Passages per source kind.")
    passages_by_evidence_type: dict[str, int] = Field(description="Passages per evidence type.")
    retracted: int = Field(description="Documents marked retracted (stored, never citable).")
    size_bytes: int = Field(description="Library file size on disk, bytes (with its WAL, if any).")


class Hit(BaseModel):
    """One passage returned by retrieval, with what a reader and a ranker need to know about it."""

    model_config = ConfigDict(frozen=True)

    passage_id: str = Field(description="'<doc_id>#p<n>', n 0-based.")
    doc_id: str = Field(description="The passage's document.")
    rank: int = Field(ge=1, description="1-based position within this result list.")
    score: float = Field(description="Final ranking score; higher is better; comparable only within one list.")
    title: str = Field(description="Document title.")
    section: str = Field(description="Heading path of the passage ('' when untitled).")
    text: str = Field(description="The passage text, as it would be quoted.")
    kind: str = Field(description="Source kind of the document.")
    evidence_type: str = Field(description="Evidence type of the document.")
    year: int | None = Field(default=None, description="Publication year.")
    organization: str | None = Field(default=None, description="Issuing organization (guidelines, protocols, sites).")
    journal: str | None = Field(default=None, description="Journal (articles).")
    doi: str | None = Field(default=None, description="DOI.")
    pmid: str | None = Field(default=None, description="PubMed id.")
    keywords: list[str] = Field(
        default_factory=list, description="The document's keywords or topics (a guideline's registry topics)."
    )
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="Per-stage scores: 'lexical' (BM25), 'dense' (cosine), 'rrf' (fused), 'final'.",
    )


# --- Answers (``medcite ask``) -------------------------------------------------------------------------------

__all__ += ["Answer", "AnswerSection", "Audience", "BottomLine", "Intent", "Reference", "Statement", "Timings"]
__all__ += ["ComposeEvent", "DroppedStatement", "EMERGENCY_SECTION", "Verification"]

Audience = Literal["clinician", "student", "patient"]
AUDIENCES: tuple[Audience, ...] = Audience.__args__  # type: ignore[attr-defined]
"""The readers every answer is composed for, in the order pages list them."""
Intent = Literal[
    "treatment", "diagnosis", "dosing", "monitoring", "prognosis", "prevention", "adverse_effects", "overview"
]


EMERGENCY_SECTION = "Emergency warning signs"
"""Title of the section that leads a patient answer naming a red-flag symptom (product copy)."""


class Statement(BaseModel):
    """One statement of an answer: a sentence, list item, table row or block quoted from its sources.

    ``context`` holds what the quoted words depend on, verbatim from the cited passage or its heading path,
    outermost first: the passage heading, a list's lead-in line, the parent item, a table's header row, the
    algorithm branch, the sentence a pronoun points back to. Readers are shown it set apart from ``text``.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        description="Extractive composer: verbatim from each cited passage (whitespace and Markdown bold "
        "markers normalised; a table row's cells joined by ' | '); tables, lists and algorithm blocks keep their "
        "line breaks. LLM composer: a sentence the model wrote that passed verification against its cited passages."
    )
    citations: list[int] = Field(
        default_factory=list,
        description="1-based reference numbers (Answer.references[n - 1]); empty only for product notices "
        "such as the emergency advice.",
    )
    context: list[str] = Field(
        default_factory=list,
        description="Verbatim words of the cited passage or its heading that the statement depends on, outermost "
        "first (heading, list lead-in, parent item, table header row, algorithm branch, antecedent sentence); "
        "empty when the statement stands alone.",
    )

    def plain(self) -> str:
        """The statement as one line of plain text: its context, then the quoted words.

        A table row under a header row of as many cells reads 'Header: cell; Header: cell'.
        """
        text = self.text
        context = list(self.context)
        if context and " | " in text and "\n" not in text:
            header = [cell.strip() for cell in context[-1].split(" | ")]
            cells = [cell.strip() for cell in text.split(" | ")]
            if len(header) == len(cells) > 1:
                context.pop()
                text = "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=True))
        if not context:
            return text
        lead = " › ".join(piece.rstrip(":").rstrip() for piece in context)
        return f"{lead}: {text}"


class BottomLine(BaseModel):
    """The most direct, highest-evidence answer: one to three statements, each with its own citations."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        default="",
        description="The statements as plain text (each ``Statement.plain()``: context, then the quoted words), "
        "joined by a space ('' or the abstention notice when abstained).",
    )
    citations: list[int] = Field(default_factory=list, description="1-based reference numbers of every statement.")
    statements: list[Statement] = Field(
        default_factory=list, description="The bottom line's statements (1-3), each with its context and citations."
    )


class AnswerSection(BaseModel):
    """A titled group of statements (e.g. 'Treatment', 'Dosing', 'Pitfalls')."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="Section title.")
    statements: list[Statement] = Field(default_factory=list, description="Statements in reading order.")


class Reference(BaseModel):
    """A cited passage with what a reader needs to find and judge its source."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1, description="Reference number, in order of first citation.")
    type: str = Field(
        description="Evidence label: Guideline, Systematic review, Meta-analysis, RCT, Research, Review, "
        "Case report, Consumer health, Protocol."
    )
    title: str = Field(description="Document title, without a closing period (PubMed's titles end with one).")
    source: str | None = Field(default=None, description="Issuing organization or journal.")
    year: int | None = Field(default=None, description="Publication year.")
    doi: str | None = Field(default=None, description="DOI.")
    pmid: str | None = Field(default=None, description="PubMed id.")
    url: str | None = Field(default=None, description="DOI link, else PubMed link, else None.")
    passage_id: str = Field(description="'<doc_id>#p<n>' of the cited passage.")
    section: str = Field(default="", description="Heading path of the cited passage, joined with ' > '.")

    @field_validator("title")
    @classmethod
    def _title_without_period(cls, title: str) -> str:
        """Drop a closing period once, here, so that no rendering doubles it ("... trial..", issue 16)."""
        title = title.strip()
        while title.endswith(".") and not title.endswith("..."):
            title = title[:-1].rstrip()
        return title

    @property
    def title_sentence(self) -> str:
        """The title as a sentence of a reference list: a period added unless it ends with '?' or '!'."""
        return self.title if self.title.endswith(("?", "!", "...")) else f"{self.title}."

    passage: str = Field(description="The cited passage, in full, as stored.")
    removed: bool = Field(
        default=False,
        description="The cited document has since been removed from the library (the passage is as it was quoted).",
    )

    @property
    def doc_id(self) -> str:
        """The cited passage's document: ``passage_id`` without its ``#p<n>``."""
        return self.passage_id.rsplit("#", 1)[0]


class Timings(BaseModel):
    """Wall-clock time spent composing one answer, milliseconds."""

    model_config = ConfigDict(extra="forbid")

    retrieval: float = Field(default=0.0, ge=0, description="Retrieval, ms.")
    composition: float = Field(default=0.0, ge=0, description="Statement selection, sections and checks, ms.")
    total: float = Field(default=0.0, ge=0, description="Whole ask call, ms.")


class DroppedStatement(BaseModel):
    """A statement the language model wrote that verification removed before the answer was shown."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The statement as the model wrote it.")
    citations: list[str] = Field(default_factory=list, description="Source labels it cited ('S1', ...).")
    reasons: list[str] = Field(description="Why it was removed, one phrase each.")


class Verification(BaseModel):
    """How the statements of an LLM-composed answer were checked against their cited passages."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="The language model that wrote the statements.")
    n_statements_kept: int = Field(ge=0, description="Statements (bottom line included) shown to the reader.")
    n_statements_dropped: int = Field(
        ge=0, description="Statements removed: unsupported, uncited or citing unknown ids."
    )
    estimated_citation_precision: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Expected share (0-1) of kept statements that their citations support, from the "
        "verifier's precision on physician-labelled K-QA pairs at their support scores; None when none kept.",
    )
    threshold: float = Field(description="Support score (0-1) a statement needed.")
    dropped: list[DroppedStatement] = Field(default_factory=list, description="The removed statements.")


class PubMedSearch(BaseModel):
    """What a PubMed search at question time searched and found (``medcite ask --pubmed``)."""

    query: str = Field(description="The query sent to ESearch (topic, evidence filters aside).")
    translation: str | None = Field(default=None, description="PubMed's reading of it (ESearch QueryTranslation).")
    relaxed: str = Field(description="'as built', or how the query was relaxed to find enough records.")
    found: int = Field(ge=0, description="Records PubMed holds for the query (with an abstract, not animals only).")
    used: list[str] = Field(description="PMIDs fetched and added to the library, best evidence first.")
    by_evidence: dict[str, int] = Field(description="PMIDs used per evidence tier (guideline, review, RCT, other).")
    searched_on: str = Field(description="Date of the search, ISO 8601 (UTC).")


class Answer(BaseModel):
    """A composed answer (the JSON contract of ``medcite ask --format json``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        description="Short hash of question, audience, library version and the earlier answer's id, if any "
        "(16 hex characters); a saved answer is found by it."
    )
    question: str = Field(description="The question as asked.")
    audience: Audience = Field(description="clinician (default), student or patient.")
    intent: Intent = Field(description="What the question asks for, from keyword cues.")
    follow_up_of: str | None = Field(
        default=None,
        description="Id of the earlier answer this one follows up (``medcite ask --follow-up ID``), else None; "
        "the earlier question's clinical focus was carried into retrieval.",
    )
    abstained: bool = Field(description="True when the library holds no sufficiently relevant evidence.")
    bottom_line: BottomLine = Field(description="The most direct answer; on abstention, the text says so.")
    sections: list[AnswerSection] = Field(default_factory=list, description="Empty on abstention.")
    references: list[Reference] = Field(
        default_factory=list, description="Cited passages; on abstention, the closest sources found (uncited)."
    )
    reading_grade: float | None = Field(
        default=None, description="Flesch-Kincaid grade level of the statements (patient audience only)."
    )
    disclaimer: str = Field(description="Professional disclaimer and review notice.")
    timings_ms: Timings = Field(default_factory=Timings, description="Time spent, milliseconds.")
    composer: Literal["extractive", "llm"] = Field(
        default="extractive",
        description="'extractive': statements quoted verbatim; 'llm': written by a language model from the "
        "cited passages and verified against them (see verification).",
    )
    verification: Verification | None = Field(
        default=None, description="Checks of the language model's statements; None for extractive answers."
    )
    notice: str | None = Field(
        default=None,
        description="A sentence for the reader about how this answer was made, e.g. why the LLM composer fell "
        "back to the extractive answer; None when there is nothing to say.",
    )
    pubmed_search: PubMedSearch | None = Field(
        default=None, description="The PubMed search made for this answer (ask --pubmed); None when none was."
    )


class ComposeEvent(BaseModel):
    """One step of a streamed answer (``medcite.compose_llm.stream_answer``); the last carries the answer."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["status", "delta", "answer"] = Field(
        description="'status': a progress sentence; 'delta': text the model just wrote; 'answer': the final, "
        "verified answer (or the extractive fallback)."
    )
    text: str = Field(default="", description="The status sentence or the model's new text.")
    n_chars: int = Field(default=0, ge=0, description="Characters the model has written so far.")
    answer: Answer | None = Field(default=None, description="Set on the 'answer' event only.")
