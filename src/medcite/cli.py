"""The ``medcite`` command: a thin Typer skin, one library call per command.

Every ``MedciteError`` becomes one line on stderr and its ``exit_code``; this
is the only place that turns errors into exits. Nothing imports this module.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import pydantic
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from medcite.citations import CITATION_FORMATS
from medcite.corpus import ADAPTERS
from medcite.errors import (
    ConfigError,
    CorpusError,
    InvalidInput,
    MedciteError,
    NotFound,
    QueryError,
    SourceUnavailable,
    StoreError,
)
from medcite.models import Hit, IngestReport, LibraryStats
from medcite.settings import Settings, display_library, is_database_url, library_location
from medcite.store import DATABASE_ERRORS, Store
from medcite.store.library import REREVIEW_STATUSES

T = TypeVar("T")

if TYPE_CHECKING:
    from medcite.embed import Embedder
    from medcite.llm import ServerCheck
    from medcite.models import Answer, ComposeEvent, PubMedSearch
    from medcite.retrieve import Retriever

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="medcite",
    help="Clinical evidence engine: answers where every statement cites its source passage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
library_app = typer.Typer(help="Inspect the evidence library.", no_args_is_help=True)
app.add_typer(library_app, name="library")
schema_app = typer.Typer(help="Print the JSON Schemas of medcite's JSON outputs.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
users_app = typer.Typer(help="Manage web-app accounts (reviewers, editors, admins).", no_args_is_help=True)
app.add_typer(users_app, name="users")
review_app = typer.Typer(help="The medical review workflow: what needs attention.", no_args_is_help=True)
app.add_typer(review_app, name="review")
llm_app = typer.Typer(help="The model server behind `--composer llm`.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

KINDS = [*ADAPTERS, "pubmed"]
INTERRUPTED = "Interrupted: every batch committed before the interruption is kept; nothing else was written."


def _check_kind(value: str) -> str:
    if value not in KINDS:
        raise typer.BadParameter(f"unknown source kind {value!r}; choose one of: {', '.join(KINDS)}.")
    return value


class OutputFormat(StrEnum):
    """Output formats of ``library stats``."""

    text = "text"
    json = "json"


LibraryOption = Annotated[
    str | None,
    typer.Option(
        "--library",
        help="Library file, or a PostgreSQL database URL postgresql://user@host:port/dbname (default: "
        "$MEDCITE_LIBRARY, else a file in the user data folder).",
        show_default=False,
    ),
]


def _settings(library: str | None) -> Settings:
    try:
        settings = Settings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"MEDCITE_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"A MEDCITE_* setting is invalid ({problems}); fix or unset it.") from exc
    if library is not None:
        settings = settings.model_copy(update={"library": library_location(library)})
    return settings


def _open(settings: Settings, *, fill_default: bool = True) -> Store:
    from medcite.index import ensure_default_library

    store = Store.for_settings(settings)
    if fill_default:
        try:
            report = ensure_default_library(store, settings=settings, on_message=lambda line: stderr.print(line))
        except BaseException:
            store.close()
            raise
        if report is not None:
            stderr.print(f"Default guideline pack: {report.summary()}.")
    return store


def _progress(*, in_bytes: bool = False) -> Progress:
    """A progress bar on a terminal's stderr: bytes read (``in_bytes``, with units) or items done of a total."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn() if in_bytes else MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )


def _finish_ingest(report: IngestReport) -> None:
    stdout.print(report.summary())
    if report.skipped:
        raise typer.Exit(1)


@app.command()
def ingest(
    kind: Annotated[
        str,
        typer.Argument(
            help=f"Source kind: {', '.join(KINDS)}.", callback=_check_kind, metavar="KIND", show_default=False
        ),
    ],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders (guidelines: default is the installed pack).", show_default=False),
    ] = None,
    query: Annotated[str | None, typer.Option(help="pubmed: PubMed search query.")] = None,
    max_records: Annotated[int, typer.Option("--max", min=1, help="pubmed: records to fetch at most.")] = 100,
    email: Annotated[str | None, typer.Option(help="pubmed: your e-mail, sent to NCBI.")] = None,
    api_key: Annotated[str | None, typer.Option(help="pubmed: NCBI API key (10 instead of 3 requests/s).")] = None,
    library: LibraryOption = None,
) -> None:
    """Add source documents to the library; exit code 0 only when nothing was skipped.

    Re-ingesting the same input changes nothing; a changed record replaces its older version.
    """
    from medcite.index import default_guideline_pack
    from medcite.index import ingest as run_ingest

    settings = _settings(library)
    kind_name = kind
    if kind_name == "pubmed":
        if not query:
            raise typer.BadParameter("`medcite ingest pubmed` needs --query, e.g. --query 'gout colchicine'.")
        if paths:
            raise typer.BadParameter("`medcite ingest pubmed` reads no files; drop the paths or use pubmed-xml.")
        _ingest_pubmed(settings, query, max_records, email, api_key)
        return
    if query:
        raise typer.BadParameter("--query is only for the live `pubmed` kind.")
    if not paths:
        if kind_name != "guidelines":
            raise typer.BadParameter(f"`medcite ingest {kind_name}` needs at least one file or folder.")
        paths = [default_guideline_pack()]
    with _open(settings, fill_default=kind_name != "guidelines") as store:
        with _progress(in_bytes=True) as progress:
            task = progress.add_task("ingest", total=None)
            report = run_ingest(
                store,
                kind_name,
                paths,
                settings=settings,
                on_bytes=lambda n: progress.advance(task, n),
                on_problem=lambda line: stderr.print(f"skipped: {line}", markup=False, highlight=False),
                on_total_bytes=lambda total: progress.update(task, total=total or None),
            )
        _ensure_vectors(store, _embedder(settings))
    _finish_ingest(report)


def _ensure_vectors(store: Store, embedder: Embedder | None) -> None:
    """Embed the passages that have no vector for this model yet, with a progress bar (no-op without a model)."""
    if embedder is None:
        return
    from medcite.retrieve.dense import embed_passages

    missing = store.count_missing_vectors(embedder.name)
    if not missing:
        return
    stderr.print(
        f"Embedding {missing} passages with {embedder.name} for dense search "
        "(once; set MEDCITE_EMBEDDER=none to skip) ..."
    )
    with _progress() as progress:
        task = progress.add_task("embed", total=missing)
        embed_passages(store, embedder, on_progress=lambda done, _total: progress.update(task, completed=done))


def _ingest_pubmed(settings: Settings, query: str, max_records: int, email: str | None, api_key: str | None) -> None:
    from medcite.corpus.eutils import EutilsClient, fetch_pubmed_records
    from medcite.index import ingest_records

    with (
        EutilsClient.from_settings(settings, email=email, api_key=api_key) as client,
        _open(settings) as store,
        stderr.status(f"Fetching PubMed records for {query!r} ..."),
    ):
        report = ingest_records(
            store,
            fetch_pubmed_records(query, max_records=max_records, client=client),
            settings=settings,
            on_problem=lambda line: stderr.print(f"skipped: {line}", markup=False, highlight=False),
        )
        _ensure_vectors(store, _embedder(settings))
    _finish_ingest(report)


class SearchMode(StrEnum):
    """Retrieval modes of ``search``."""

    hybrid = "hybrid"
    lexical = "lexical"
    dense = "dense"


def _embedder(settings: Settings, *, required: bool = False) -> Embedder | None:
    """Load the configured embedder; None (lexical only) when 'none' or, for 'auto', when none is installed.

    'auto' takes ``embed.CLI_EMBEDDER_CHOICE`` (the quickest model to load: one process per command, 2 s
    target), the same for ``ask``, ``search`` and ``ingest``, so ``search`` ranks as ``ask`` reads.
    """
    from medcite.embed import CLI_EMBEDDER_CHOICE, load_embedder

    if settings.embedder == "none":
        return None
    try:
        return load_embedder(CLI_EMBEDDER_CHOICE if settings.embedder == "auto" else settings.embedder)
    except ConfigError:
        if required or settings.embedder != "auto":
            raise
        return None


def _hit_json(hit: Hit) -> dict[str, object]:
    return {
        "passage_id": hit.passage_id,
        "document_id": hit.doc_id,
        "title": hit.title,
        "section": hit.section,
        "text": hit.text,
        "evidence_type": hit.evidence_type,
        "year": hit.year,
        "score": hit.score,
        "rank": hit.rank,
        "kind": hit.kind,
        "organization": hit.organization,
        "journal": hit.journal,
        "doi": hit.doi,
        "pmid": hit.pmid,
        "scores": hit.scores,
    }


def _print_hits(hits: list[Hit]) -> None:
    if not hits:
        stdout.print("No passages found.")
    for hit in hits:
        source = hit.organization or hit.journal or hit.kind
        ids = " ".join(
            part for part in (f"PMID {hit.pmid}" if hit.pmid else "", f"DOI {hit.doi}" if hit.doi else "") if part
        )
        stages = ", ".join(f"{name} {value:.3f}" for name, value in hit.scores.items())
        stdout.print(
            f"[bold]{hit.rank}. {hit.title}[/bold] ({source}, {hit.year or 'n.d.'}; {hit.evidence_type}) {ids}"
        )
        stdout.print(f"   {hit.passage_id}" + (f" | {hit.section}" if hit.section else ""), markup=False)
        snippet = " ".join(hit.text.split())
        stdout.print("   " + (snippet[:300] + (" ..." if len(snippet) > 300 else "")), markup=False, highlight=False)
        stdout.print(f"   scores: {stages}", style="dim", markup=False)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="A question or search words.", show_default=False)] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=200, help="Passages to return.")] = 10,
    mode: Annotated[
        SearchMode | None, typer.Option(help="hybrid (default when an embedding model is installed), lexical or dense.")
    ] = None,
    queries: Annotated[
        Path | None,
        typer.Option(help='A JSONL file of {"id", "query"} objects; prints one JSON line per query.'),
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Text, or JSON (a list of passages).")] = (
        OutputFormat.text
    ),
    library: LibraryOption = None,
) -> None:
    """Find the passages that best answer a question: ranked, with document metadata and stage scores.

    With --queries, searches a JSONL file in one process (exit 1 when some query could not be searched; each such
    line says why).
    """
    from medcite.answer import search_passages
    from medcite.privacy import clean_text
    from medcite.retrieve import Retriever
    from medcite.review import check_length

    def cleaned(text: str) -> str:
        """The query without control characters or undecodable bytes, and no longer than a question may be."""
        check_length(text, "query")  # as `ask`: long text is slow to search and no question
        return clean_text(text)

    settings = _settings(library)
    if (query is None) == (queries is None):
        raise typer.BadParameter("Give either a QUERY or --queries FILE.jsonl.")
    batch = _read_queries(queries) if queries is not None else []
    embedder = _embedder(settings, required=mode in (SearchMode.dense, SearchMode.hybrid))
    with _open(settings) as store:
        if mode is not SearchMode.lexical:
            _ensure_vectors(store, embedder)
        retriever = Retriever(store, settings, embedder=embedder)
        chosen = mode.value if mode is not None else None
        if queries is None:
            hits = search_passages(cleaned(query or ""), retriever=retriever, limit=k, mode=chosen)  # type: ignore[arg-type]
            if output_format is OutputFormat.json:
                stdout.print_json(json.dumps([_hit_json(hit) for hit in hits]))
            else:
                _print_hits(hits)
            return
        failed = 0
        for query_id, text in batch:
            try:
                hits = search_passages(cleaned(text), retriever=retriever, limit=k, mode=chosen)  # type: ignore[arg-type]
                results = [_hit_json(hit) for hit in hits]
                line: dict[str, object] = {"id": query_id, "results": results}
            except QueryError as exc:
                failed += 1
                line = {"id": query_id, "results": [], "error": str(exc)}
            print(json.dumps(line, ensure_ascii=False), flush=True)
        stderr.print(f"{len(batch) - failed} searched, {failed} could not be searched.")
        if failed:
            raise typer.Exit(code=1)


def _read_jsonl(path: Path, what: str, key: str, read: Callable[[dict], T]) -> list[T]:
    """``read(item)`` for each JSON object line of a JSONL file (blank lines skipped).

    Raises:
        QueryError: The file cannot be read, or ``read`` fails on a line (it raises ValueError, KeyError,
            TypeError or AttributeError): the message names the line and the fields ``'id'`` and ``key``.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a leading byte-order mark is allowed
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(f"Cannot read the {what} file {path} ({exc}).") from exc
    batch = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):  # a list or a number: say so, not what indexing it raised
                kind = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}.get(type(item))
                raise TypeError(f"it is {kind or 'a number'}")
            batch.append(read(item))
        except RecursionError as exc:  # JSON nested deeper than the parser's recursion limit
            raise QueryError(f"{path} line {number} is nested too deeply to be a question; fix that line.") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QueryError(
                f"{path} line {number} is not a JSON object with 'id' and '{key}' ({exc}); fix that line."
            ) from exc
    return batch


def _text_field(item: dict, key: str) -> str:
    """``item[key]`` when it is a string (an id may also be a whole number); raises TypeError otherwise."""
    value = item[key]
    if isinstance(value, str) or (key == "id" and isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    raise TypeError(f"'{key}' is {type(value).__name__}, not text")


def _read_queries(path: Path) -> list[tuple[str, str]]:
    return _read_jsonl(path, "queries", "query", lambda item: (_text_field(item, "id"), _text_field(item, "query")))


class AnswerFormat(StrEnum):
    """Output formats of ``ask``."""

    markdown = "markdown"
    json = "json"
    html = "html"
    ama = "ama"
    vancouver = "vancouver"
    ris = "ris"
    bibtex = "bibtex"
    csl_json = "csl-json"


class CitationFormat(StrEnum):
    """Citation formats of ``cite`` (``citations.CITATION_FORMATS``)."""

    ama = "ama"
    vancouver = "vancouver"
    ris = "ris"
    bibtex = "bibtex"
    csl_json = "csl-json"


class AudienceChoice(StrEnum):
    """Readers ``ask`` writes for."""

    clinician = "clinician"
    student = "student"
    patient = "patient"


class ComposerChoice(StrEnum):
    """How ``ask`` writes its statements."""

    extractive = "extractive"
    llm = "llm"


def _ask_llm(question: str, settings: Settings, retriever: Retriever, reader: str, earlier: Answer | None) -> Answer:
    """Run ``ask`` with the LLM composer, with a live progress line on a terminal's stderr."""
    from medcite.answer import ask as compose
    from medcite.llm import LLMClient

    with LLMClient.from_settings(settings) as client, stderr.status("Searching the library") as status:

        def show(event: ComposeEvent) -> None:
            if event.kind == "delta":
                status.update(f"{client.model} is writing: {event.n_chars} characters")
            else:
                status.update(event.text)

        return compose(
            question,
            retriever=retriever,
            audience=reader,  # type: ignore[arg-type]
            follow_up_of=earlier,
            composer="llm",
            llm=client,
            on_event=show,
        )


def _read_questions(path: Path) -> list[tuple[str, str, str | None]]:
    """``(id, question, audience or None)`` per line of a JSONL questions file.

    Raises:
        QueryError: The file cannot be read or a line is not a JSON object with 'id' and 'question'.
    """

    def read(item: dict) -> tuple[str, str, str | None]:
        audience = item.get("audience")
        if audience is not None and audience not in ("clinician", "student", "patient"):
            raise ValueError(f"audience {audience!r} is not clinician, student or patient")
        return _text_field(item, "id"), _text_field(item, "question"), audience

    return _read_jsonl(path, "questions", "question", read)


def _answer_one(
    question: str,
    *,
    reader: str,
    earlier: Answer | None,
    retriever: Retriever,
    store: Store,
    settings: Settings,
    composer: ComposerChoice,
    pubmed_search: PubMedSearch | None = None,
) -> Answer:
    """Scrub, answer and save one question (the answer is returned even when it could not be saved).

    ``pubmed_search`` (the PubMed search made for it first) is recorded on the answer before it is saved.
    """
    from medcite.answer import ask as compose
    from medcite.answer import save_answer
    from medcite.privacy import scrub_question
    from medcite.review import check_length

    check_length(question)  # the web app's limit too
    # Personal identifiers never reach the library, the output or a suggested PubMed query.
    scrubbed = scrub_question(" ".join(question.split()))
    if scrubbed.is_redacted:
        stderr.print(f"Removed from the question before searching and saving: {', '.join(scrubbed.kinds)}.")
        if not scrubbed.searchable.strip():
            raise QueryError("The question is empty once personal identifiers are removed; ask a clinical question.")
    # The cleaned text (no control characters, escape codes or undecodable bytes) is what is searched and saved.
    asked = scrubbed.searchable if scrubbed.is_redacted else scrubbed.text
    if not asked.strip():
        raise QueryError("The question is empty once control characters are removed; type a clinical question.")
    if composer is ComposerChoice.llm:
        answer = _ask_llm(asked, settings, retriever, reader, earlier)
    else:
        answer = compose(asked, retriever=retriever, audience=reader, follow_up_of=earlier)  # type: ignore[arg-type]
    if scrubbed.is_redacted:
        answer = answer.model_copy(update={"question": scrubbed.text})
    if pubmed_search is not None:
        answer = answer.model_copy(update={"pubmed_search": pubmed_search})
    try:
        save_answer(store, answer)
    except StoreError as exc:  # e.g. the library is locked by a long ingest: the answer is still shown
        stderr.print(f"The answer was not saved, so it cannot be followed up: {exc}", markup=False)
    return answer


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="A clinical question.", show_default=False)] = None,
    audience: Annotated[
        AudienceChoice | None,
        typer.Option(
            help="clinician (default; a follow-up keeps the earlier answer's), student or patient "
            "(emergency advice first).",
            show_default=False,
        ),
    ] = None,
    follow_up: Annotated[
        str | None,
        typer.Option(
            "--follow-up",
            metavar="ID",
            help="Id of an earlier answer (printed after it) that QUESTION follows up, e.g. 'What about in "
            "pregnancy?': the earlier question's focus is carried into retrieval.",
            show_default=False,
        ),
    ] = None,
    pubmed: Annotated[
        bool,
        typer.Option(
            "--pubmed",
            help="Search PubMed for the question first (MEDCITE_PUBMED=auto: only when the library alone would "
            "abstain), add the best evidence it finds to the library, then answer; the answer names the query.",
        ),
    ] = False,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions",
            metavar="FILE.jsonl",
            help='Answer many questions in one process: a JSONL file of {"id", "question", "audience"?} objects; '
            'prints one JSON line per question, {"id", "answer"} or {"id", "error"}.',
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        AnswerFormat,
        typer.Option(
            "--format",
            help="markdown (Rich on a terminal, plain when piped), json (the contract), html, or the answer's "
            "references only: ama, vancouver (CSL styles), ris, bibtex or csl-json (for reference managers).",
        ),
    ] = AnswerFormat.markdown,
    composer: Annotated[
        ComposerChoice,
        typer.Option(
            help="extractive (default: statements quoted from the sources, with their context) or llm (a model "
            "server writes, every sentence is verified against its cited passage; needs MEDCITE_LLM_BASE_URL and "
            "MEDCITE_LLM_MODEL; falls back to extractive with a notice).",
        ),
    ] = ComposerChoice.extractive,
    full_passages: Annotated[
        bool,
        typer.Option(
            "--full-passages",
            help="Markdown: show each cited passage whole in the references (default: the statement it holds; "
            "`medcite library show PASSAGE_ID` prints one passage).",
        ),
    ] = False,
    library: LibraryOption = None,
) -> None:
    """Answer a question: bottom line, sections by intent, every statement cited to its source passage.

    Abstains, listing the closest sources, when the library does not cover the question. Every answer is saved
    in the library under its id, for follow-ups (an unknown id exits with 4). With --questions, answers a JSONL
    file in one process (exit 1 when some question could not be answered; each such line says why).
    """
    from medcite.answer import load_answer
    from medcite.render import render_html, render_json, render_markdown
    from medcite.retrieve import Retriever

    if (question is None) == (questions is None):
        raise typer.BadParameter("Give either a QUESTION or --questions FILE.jsonl.")
    if questions is not None and follow_up is not None:
        raise typer.BadParameter("--follow-up answers one QUESTION; it cannot be combined with --questions.")
    if questions is not None and output_format not in (AnswerFormat.markdown, AnswerFormat.json):
        raise typer.BadParameter(
            f"--questions writes one JSON line per question; --format {output_format.value} needs one QUESTION."
        )
    batch = _read_questions(questions) if questions is not None else []
    settings = _settings(library)
    embedder = _embedder(settings)
    with _open(settings) as store:
        earlier = load_answer(store, follow_up) if follow_up is not None else None
        reader = audience.value if audience is not None else earlier.audience if earlier else "clinician"
        _ensure_vectors(store, embedder)
        retriever = Retriever(store, settings, embedder=embedder)
        if questions is not None:
            failed = 0
            for question_id, text, own_audience in batch:
                try:
                    one = _answer_one(
                        text,
                        reader=own_audience or reader,
                        earlier=None,
                        retriever=retriever,
                        store=store,
                        settings=settings,
                        composer=composer,
                    )
                    line: dict[str, object] = {"id": question_id, "answer": json.loads(render_json(one))}
                except QueryError as exc:
                    failed += 1
                    line = {"id": question_id, "error": str(exc)}
                print(json.dumps(line, ensure_ascii=False), flush=True)
            stderr.print(f"{len(batch) - failed} answered, {failed} could not be answered.")
            if failed:
                raise typer.Exit(code=1)
            return
        asked = question or ""

        def answer_with(searched: PubMedSearch | None) -> Answer:
            return _answer_one(
                asked,
                reader=reader,
                earlier=earlier,
                retriever=retriever,
                store=store,
                settings=settings,
                composer=composer,
                pubmed_search=searched,
            )

        answer = answer_with(_search_pubmed(asked, settings, retriever, store) if pubmed else None)
        if (  # MEDCITE_PUBMED: search only when the library alone abstains ('ask-first': if the user agrees)
            not pubmed
            and answer.abstained
            and (settings.pubmed == "auto" or (settings.pubmed == "ask-first" and _confirm_search(asked, retriever)))
        ):
            searched = _search_pubmed(asked, settings, retriever, store)
            if searched is not None:
                answer = answer_with(searched)
        if output_format.value in CITATION_FORMATS:
            from medcite.citations import answer_citations

            if answer.notice:
                stderr.print(answer.notice, markup=False)
            if answer.abstained:
                stderr.print(
                    "medcite abstained: these are the closest sources it found, not references of an answer.",
                    markup=False,
                )
            print(answer_citations(store, answer, output_format.value), end="\n")
            stderr.print(f"Answer id: {answer.id} (medcite cite {answer.id} --format ...)", markup=False)
            return
    if answer.notice:
        stderr.print(answer.notice, markup=False)
    if output_format is AnswerFormat.json:
        print(render_json(answer))
        return
    if output_format is AnswerFormat.html:
        print(render_html(answer), end="")
        return
    markdown = render_markdown(answer, full_passages=full_passages) + (
        f"\nAnswer id: {answer.id} (ask a follow-up with --follow-up {answer.id}; "
        "`medcite library show PASSAGE_ID` prints a cited passage)\n"
    )
    if stdout.is_terminal:
        from rich.markdown import Markdown

        stdout.print(Markdown(markdown), soft_wrap=False)  # Markdown wraps to the terminal width itself
    else:
        print(markdown, end="")


def _search_pubmed(question: str, settings: Settings, retriever: Retriever, store: Store) -> PubMedSearch | None:
    """Search PubMed for ``question`` and add what it finds; on failure say so (one line) and return None."""
    from medcite.pubmed_live import search_pubmed_for

    try:
        with stderr.status("Searching PubMed ..."):
            searched = search_pubmed_for(
                question,
                retriever=retriever,
                store=store,
                settings=settings,
                on_problem=lambda line: stderr.print(f"skipped: {line}", markup=False, highlight=False),
            )
    except (SourceUnavailable, CorpusError, QueryError) as exc:
        stderr.print(f"Could not search PubMed ({exc}); the answer is from the library only.", markup=False)
        return None
    _ensure_vectors(store, _embedder(settings))
    stderr.print(
        f"PubMed: {searched.found} records for {searched.query} ({searched.relaxed}); "
        f"{len(searched.used)} added to the library.",
        markup=False,
    )
    return searched


def _confirm_search(question: str, retriever: Retriever) -> bool:
    """MEDCITE_PUBMED=ask-first: ask on the terminal before searching (never without one)."""
    from medcite.pubmed_live import pubmed_query_for

    if not sys.stdin.isatty():
        return False
    return typer.confirm(
        f"The library cannot answer this. Search PubMed for {pubmed_query_for(question, retriever).text}?"
    )


@app.command()
def cite(
    answer_id: Annotated[
        str | None, typer.Argument(help="A saved answer's id (`ask` prints it).", show_default=False)
    ] = None,
    article: Annotated[
        int | None,
        typer.Option(min=1, max=2**63 - 1, help="Instead: a web-app article's number.", show_default=False),
    ] = None,
    audience: Annotated[
        AudienceChoice | None, typer.Option(help="The article's answer for this audience (default: the asker's).")
    ] = None,
    output_format: Annotated[
        CitationFormat,
        typer.Option(
            "--format",
            help="ama or vancouver (formatted by their Citation Style Language styles), ris (Zotero, EndNote, "
            "Mendeley), bibtex or csl-json.",
        ),
    ] = CitationFormat.ama,
    library: LibraryOption = None,
) -> None:
    """Print a saved answer's or an article's references as citations: AMA, Vancouver, RIS, BibTeX or CSL-JSON.

    Authors, journal, year, volume, pages, PMID, PMCID and DOI come from what the library stored.
    """
    from medcite.answer import load_answer
    from medcite.citations import answer_citations
    from medcite.review import get_article

    if (answer_id is None) == (article is None):
        raise typer.BadParameter("Give either an ANSWER_ID or --article N.")
    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        if article is not None:
            chosen = get_article(store, article, audience=audience.value if audience else None, viewer=None)
            answer = chosen.answer
        else:
            answer = load_answer(store, answer_id or "")
        print(answer_citations(store, answer, output_format.value), end="\n")


@app.command()
def mcp(
    http: Annotated[
        bool,
        typer.Option("--http", help="Serve Streamable HTTP on 127.0.0.1 (path /mcp) instead of stdio."),
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port for --http.")] = 8765,
    library: LibraryOption = None,
) -> None:
    """Run a Model Context Protocol server for AI assistants: tools search, ask and get_passage over the library.

    Over stdio by default (the assistant starts `medcite mcp` itself); --http listens on 127.0.0.1 only.
    """
    from medcite.assistants import create_server
    from medcite.retrieve import Retriever

    settings = _settings(library)
    embedder = _embedder(settings)
    with _open(settings) as store:
        _ensure_vectors(store, embedder)
        server = create_server(store, Retriever(store, settings, embedder=embedder))
        if http:
            stderr.print(
                f"medcite MCP server on http://127.0.0.1:{port}/mcp (library {display_library(settings.library)}); "
                "Ctrl-C stops it."
            )
            server.run("streamable-http", host="127.0.0.1", port=port)
        else:
            server.run("stdio")


@schema_app.command("answer")
def schema_answer() -> None:
    """Print the JSON Schema (draft 2020-12, from pydantic) of `medcite ask --format json` output."""
    from medcite.models import Answer

    print(json.dumps(Answer.model_json_schema(), indent=2))


@llm_app.command("check")
def llm_check(
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="A text table, or JSON with keys base_url, model, models, dialects, chosen and first_valid.",
        ),
    ] = OutputFormat.text,
    max_tokens: Annotated[int, typer.Option(min=16, help="Most tokens the model may write per probe.")] = 256,
) -> None:
    """Connect to MEDCITE_LLM_BASE_URL, list its models, try each structured-output dialect, say which medcite uses.

    Each dialect is asked one small question that is not medical; a dialect works when the reply is JSON of
    the answer's shape. Exits 0 when one works, otherwise with the model-server error code.
    """
    from medcite.errors import LLMError
    from medcite.llm import LLMClient

    settings = _settings(None)
    with LLMClient.from_settings(settings) as client:
        stderr.print(f"Trying {client.base_url} (model {client.model}): one request per dialect", highlight=False)
        result = client.check(max_tokens=max_tokens)
    if output_format is OutputFormat.json:
        stdout.print_json(result.model_dump_json())
    else:
        _print_llm_check(result, pinned=settings.llm_structured_output)
    if not any(row.accepted for row in result.dialects):
        failed = result.dialects[0]
        raise LLMError(f"The model server at {result.base_url} accepted no request: {failed.detail}", reason="http")
    pinned = settings.llm_structured_output
    if pinned != "auto" and not next(row.accepted for row in result.dialects if row.dialect == pinned):
        raise LLMError(
            f"MEDCITE_LLM_STRUCTURED_OUTPUT={pinned}, but the server refuses that dialect; unset it (auto) or set it "
            f"to {result.first_valid or 'a dialect the server accepts'}.",
            reason="http",
        )
    if result.first_valid is None:
        raise LLMError(
            f"No structured-output dialect gave a valid answer from {result.model} at {result.base_url}, so "
            "`--composer llm` will fall back to the extractive answer; see docs/llm.md for servers and models "
            "that work.",
            reason="malformed",
        )


_NOT_DRAFT = "The language model's answer is not valid JSON of the expected shape"


def _print_llm_check(result: ServerCheck, *, pinned: str) -> None:
    """Print ``medcite llm check``'s table (a ``llm.ServerCheck``)."""
    listed = ", ".join(result.models) or "none (the server has no GET /models)"
    stdout.print(f"Server: {result.base_url}\nModels it lists: {listed}", markup=False, highlight=False)
    if result.models and result.model not in result.models:
        stdout.print(
            f"({result.model} is not among them: some servers, llama.cpp's among them, answer with their one model "
            "whatever name is asked)",
            markup=False,
            highlight=False,
        )
    for row in result.dialects:
        if row.valid:
            outcome = "valid answer"
        elif row.accepted:
            outcome = f"accepted, reply not usable: {row.detail.replace(_NOT_DRAFT, 'not JSON of the answer shape')}"
        elif row.status is not None:
            outcome = f"refused: {row.detail}"
        else:
            outcome = f"failed: {row.detail}"
        figures = [f"{row.latency_ms:.0f} ms" if row.latency_ms is not None else ""]
        if row.completion_tokens is not None:
            figures.append(f"{row.completion_tokens} tokens")
        if row.tokens_per_s is not None:
            figures.append(f"{row.tokens_per_s:.1f} tokens/s")
        shown = ", ".join(f for f in figures if f) or "-"
        stdout.print(f"  {row.dialect:<12} {shown:<34} {outcome[:160]}", markup=False, highlight=False)
    if result.chosen is None:
        stdout.print("The server accepted no dialect.", markup=False, highlight=False)
        return
    how = "the first dialect the server accepts" if pinned == "auto" else f"MEDCITE_LLM_STRUCTURED_OUTPUT={pinned}"
    stdout.print(f"medcite will use: {result.chosen} ({how})", markup=False, highlight=False)
    if result.first_valid is not None and result.first_valid != result.chosen:
        stdout.print(
            f"Its reply was not a usable answer, but {result.first_valid}'s was: set "
            f"MEDCITE_LLM_STRUCTURED_OUTPUT={result.first_valid}",
            markup=False,
            highlight=False,
        )
    elif pinned == "auto" and result.first_valid is not None:
        stdout.print(
            f"(MEDCITE_LLM_STRUCTURED_OUTPUT={result.chosen} skips the negotiation)", markup=False, highlight=False
        )


@library_app.command("stats")
def library_stats(
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="A text table, or JSON with keys documents, passages, by_kind and by_evidence_type "
            "(documents per kind/type), retracted, size_bytes.",
        ),
    ] = OutputFormat.text,
    library: LibraryOption = None,
) -> None:
    """Show documents and passages by source kind and evidence type, retracted count and size."""
    settings = _settings(library)
    with _open(settings) as store:
        stats = store.stats()
    if output_format is OutputFormat.json:
        payload = stats.model_dump(mode="json")
        keys = ["documents", "passages", "by_kind", "by_evidence_type", "retracted", "size_bytes", "path"]
        payload = {key: payload[key] for key in keys} | payload
        stdout.print_json(json.dumps(payload))
    else:
        _print_stats(stats)


@library_app.command("copy")
def library_copy(
    source: Annotated[str, typer.Argument(help="The library to copy: a SQLite file or a postgresql:// URL.")],
    destination: Annotated[
        str, typer.Argument(help="Where to copy it: a SQLite file (created) or a postgresql:// URL (database exists).")
    ],
) -> None:
    """Copy a whole library (evidence, vectors, saved answers, articles, accounts, audit log) and verify it.

    Resumable: run the same command again after an interruption and it carries on. Exits 0 when every table
    matches (row counts and content hashes), 3 when not.
    """
    from medcite.store.transfer import copy_library, verify_copy

    if not is_database_url(source) and not Path(source).expanduser().is_file():
        raise StoreError(f"The library to copy, {source}, does not exist.")
    with Store.open(library_location(source)) as origin, Store.open(library_location(destination)) as target:
        with _progress() as progress:
            tasks: dict[str, object] = {}

            def on_progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = progress.add_task(table, total=total or None)
                progress.update(tasks[table], completed=done)

            copied = copy_library(origin, target, on_progress=on_progress)
        checks = verify_copy(origin, target)
    for check in checks:
        if check.table in copied:
            stdout.print(f"{check.table}: {copied[check.table]} rows copied, {check.destination_rows} in all")
    bad = [check.table for check in checks if not check.ok]
    if bad:
        raise StoreError(
            f"The copy does not match its source in {', '.join(bad)}; run the same command again to carry on, "
            "or copy into an empty destination."
        )
    stdout.print(f"Verified: every table of {origin.path} matches in {target.path} (row counts and SHA-256).")


@library_app.command("list")
def library_list(
    kind: Annotated[str | None, typer.Option(help="Only this source kind (e.g. guidelines, pubmed-xml).")] = None,
    evidence_type: Annotated[
        str | None, typer.Option(help="Only this evidence type (e.g. guideline, rct, systematic_review).")
    ] = None,
    query: Annotated[str | None, typer.Option(help="Words of the title (case-insensitive), or a document id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="At most this many documents.")] = 1000,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="A table, or a JSON list of documents.")
    ] = OutputFormat.text,
    library: LibraryOption = None,
) -> None:
    """List the library's documents: id, kind, title, organization or journal, year, evidence type, passages."""
    settings = _settings(library)
    with _open(settings) as store:
        documents = store.list_documents(kind=kind, evidence_type=evidence_type, query=query, limit=limit)
    _print_list(
        documents,
        output_format,
        empty="No documents match.",
        title=_count(len(documents), "document"),
        columns=["id", "kind", "title", "source", "year", "evidence type", "passages", "retracted"],
        row=lambda document: (
            document.doc_id,
            document.kind,
            document.title,
            document.source or "",
            str(document.year or ""),
            document.evidence_type,
            str(document.passages),
            "retracted" if document.retracted else "",
        ),
    )


@library_app.command("show")
def library_show(
    doc_id: Annotated[
        str,
        typer.Argument(
            help="Document id, as `library list` shows it, or one passage's id (DOC_ID#pN, as references show it).",
            show_default=False,
        ),
    ],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="Text, or JSON with keys document, passages, cited_by.")
    ] = OutputFormat.text,
    library: LibraryOption = None,
) -> None:
    """Show one document: its metadata, every passage (with its id) and the articles whose answers cite it.

    Given a passage id ('guideline:acr_gout_2020#p12'), the document's metadata and that passage only.
    """
    from medcite.store.review import ReviewStore

    settings = _settings(library)
    passage_id = doc_id if "#" in doc_id else None
    doc_id = doc_id.split("#", 1)[0]
    with _open(settings) as store:
        document = store.get_document(doc_id)
        passages = [store.get_passage(passage_id)] if passage_id else store.get_passages(doc_id)
        cited_by = ReviewStore(store).citing_reviews([doc_id])
    if output_format is OutputFormat.json:
        payload = {
            "document": document.model_dump(mode="json", exclude={"sections"}),
            "passages": [passage.model_dump(mode="json") for passage in passages],
            "cited_by": [{"article_id": a, "audience": audience} for a, audience, _doc in cited_by],
        }
        print(json.dumps(payload, indent=2))
        return
    fields = [
        ("id", document.doc_id),
        ("kind", document.kind),
        ("title", document.title),
        ("organization", document.organization),
        ("journal", document.journal),
        ("year", document.year),
        ("evidence type", document.evidence_type),
        ("PMID", document.pmid),
        ("DOI", document.doi),
        ("retracted", "yes" if document.is_retracted else None),
    ]
    for name, value in fields:
        if value:
            stdout.print(f"{name}: {value}", markup=False, highlight=False)
    cited = ", ".join(f"article {a} ({audience})" for a, audience, _doc in cited_by)
    stdout.print(f"cited by: {cited or 'no article'}", markup=False, highlight=False)
    for passage in passages:
        heading = f" {passage.section}" if passage.section else ""
        stdout.print(f"\n[{passage.passage_id}]{heading}", markup=False, highlight=False)
        stdout.print(passage.text, markup=False, highlight=False)


@library_app.command("remove")
def library_remove(
    doc_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Document ids to remove, as `library list` shows them.", show_default=False),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Remove every document of this source kind instead.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    library: LibraryOption = None,
) -> None:
    """Remove documents (passages, full-text rows and vectors with them), in one transaction.

    Approved and in-review answers citing a removed document move to "needs re-review"; saved answers and
    articles keep their quoted passages.
    """
    from medcite.store.review import ReviewStore

    if bool(doc_ids) == bool(kind):
        raise typer.BadParameter("give document ids or --kind, not both and not neither.")
    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        if kind:
            targets = [document.doc_id for document in store.list_documents(kind=kind, limit=None)]
        else:
            targets = list(dict.fromkeys(doc_ids or []))
            missing = []
            for doc_id in targets:
                try:
                    store.get_document(doc_id)
                except NotFound:
                    missing.append(doc_id)
            if missing:
                raise NotFound("document", ", ".join(missing))
        if not targets:
            stdout.print(f"No documents of kind {kind!r}; nothing removed.", markup=False)
            return
        reviews = ReviewStore(store)
        citing = {(a, audience) for a, audience, _doc in reviews.citing_reviews(targets)}
        flagged = [
            key for key in sorted(citing) if reviews.audience_reviews(key[0])[key[1]].status in REREVIEW_STATUSES
        ]
        what = _count(len(targets), "document") + (f" of kind {kind}" if kind else "")
        citing_text = _count(len(flagged), "approved or in-review answer")
        if not yes and not _confirm(
            f"Remove {what} from {display_library(settings.library)}? {citing_text} citing "
            f"{'it' if len(targets) == 1 else 'them'} will need re-review."
        ):
            stdout.print("Nothing removed.")
            raise typer.Exit(1)
        removed = store.delete_documents(targets)
    stdout.print(
        f"Removed {_count(removed, 'document')}; {citing_text} citing "
        f"{'it' if removed == 1 else 'them'} now need{'s' if len(flagged) == 1 else ''} re-review"
        + (" (`medcite review stale`)." if flagged else "."),
        markup=False,
    )


def _print_list(
    items: list, output_format: OutputFormat, *, empty: str, title: str, columns: list[str], row: Callable
) -> None:
    """Print pydantic ``items`` as a JSON list, or as a table, or ``empty`` when there are none.

    ``row(item)`` gives an item's cells; the first column, an id, never wraps.
    """
    if output_format is OutputFormat.json:
        print(json.dumps([item.model_dump(mode="json") for item in items], indent=2))
        return
    if not items:
        stdout.print(empty, markup=False)
        return
    rows = [row(item) for item in items]
    table = Table(title=title, title_justify="left")
    table.add_column(columns[0], no_wrap=True, min_width=max(len(cells[0]) for cells in rows))
    for column in columns[1:]:
        table.add_column(column, overflow="fold")
    for cells in rows:
        table.add_row(*_cells(*cells))
    stdout.print(table)


def _cells(*values: str) -> list[Text]:
    """Table cells shown as written: square brackets in titles or questions are text, not Rich markup."""
    return [Text(value) for value in values]


def _count(n: int, noun: str) -> str:
    """'1 document', '2 documents'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _confirm(question: str) -> bool:
    """Ask yes/no on the terminal; with no answer to read (no terminal, stdin closed) raise a one-line error."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        if sys.stdin is None or sys.stdin.closed or not sys.stdin.isatty():
            raise InvalidInput("No answer could be read for the confirmation; add --yes to go ahead.") from None
        raise


def _print_stats(stats: LibraryStats) -> None:
    stdout.print(
        f"Library {stats.path}: {stats.documents} documents, {stats.passages} passages, "
        f"{stats.retracted} retracted, {stats.size_bytes / 1e6:.1f} MB on disk."
    )
    for title, documents, passages in (
        ("source kind", stats.by_kind, stats.passages_by_kind),
        ("evidence type", stats.by_evidence_type, stats.passages_by_evidence_type),
    ):
        table = Table(title=f"By {title}", title_justify="left")
        table.add_column(title)
        table.add_column("documents", justify="right")
        table.add_column("passages", justify="right")
        for key, n in documents.items():
            table.add_row(key, str(n), str(passages.get(key, 0)))
        stdout.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for all; put HTTPS in front).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated addresses of your reverse proxies (e.g. 127.0.0.1): only requests from them "
            "may set the client address with X-Forwarded-For (rate limits count per client). Default: the "
            "header is ignored.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Web processes. Above 1 needs a PostgreSQL library: sessions, CSRF secrets, rate-limit counts and "
            "the audit log are kept in it, so they hold across processes.",
        ),
    ] = 1,
    approvals: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10,
            help="Distinct reviewers who must approve each audience's answer, none of them an editor of its text "
            "(default: $MEDCITE_REVIEW_APPROVALS, else 1).",
            show_default=False,
        ),
    ] = None,
    library: LibraryOption = None,
) -> None:
    """Run the web app: ask, articles with medical review, accounts and the JSON API (/docs)."""
    import uvicorn

    from medcite.web import create_app

    settings = _settings(library)
    if approvals is not None:
        settings = settings.model_copy(update={"review_approvals": approvals})
        os.environ["MEDCITE_REVIEW_APPROVALS"] = str(approvals)  # worker processes read their settings from it
    if workers > 1 and not is_database_url(settings.library):
        raise ConfigError(
            f"--workers {workers} needs a PostgreSQL library (--library postgresql://...): a SQLite library takes "
            "one writer at a time and keeps rate limits in one process, so it is served by one worker."
        )
    stderr.print(
        f"medcite web app on http://{host}:{port} (library {display_library(settings.library)}"
        f"{f', {workers} workers' if workers > 1 else ''}; {settings.review_approvals} approval"
        f"{'s' if settings.review_approvals > 1 else ''} per answer); Ctrl-C stops it."
    )
    options = dict(
        host=host,
        port=port,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or None,
        log_level="info",
    )
    if workers > 1:  # each process builds its app from the environment: the library URL goes there
        _open(settings).close()  # reachable and migrated (and filled) once, before any worker starts
        os.environ["MEDCITE_LIBRARY"] = str(settings.library)
        uvicorn.run("medcite.web.app:app_from_environment", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)


class RoleChoice(StrEnum):
    """Roles of web-app accounts."""

    reviewer = "reviewer"
    editor = "editor"
    admin = "admin"


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Account name (letters, digits, '.', '_', '-').", show_default=False)],
    role: Annotated[
        RoleChoice, typer.Option(help="reviewer, editor (also unpublishes, reads the audit log) or admin.")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input instead of a prompt.")
    ] = False,
    library: LibraryOption = None,
) -> None:
    """Create an account, or update an existing one's role and password (says which); stored as an argon2 hash."""
    from medcite.review import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        try:
            change = add_user(store, name, role.value, password)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    user = change.user
    if change.is_created:
        stdout.print(f"Account {user.username} ({user.role}) created.", markup=False)
        return
    changes = []
    if change.previous_role != user.role:
        changes.append(f"role {change.previous_role} -> {user.role}")
    if change.has_new_password:
        changes.append("new password; its web sessions were signed out")
    what = "; ".join(changes) if changes else "nothing changed"
    stdout.print(f"Account {user.username} ({user.role}) updated: {what}.", markup=False)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="Account name.", show_default=False)],
    library: LibraryOption = None,
) -> None:
    """Disable an account: sign it out everywhere, delete its API tokens, refuse its password (re-enable: users add)."""
    from medcite.review import disable_user

    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        n_sessions, n_tokens = disable_user(store, name)
    stdout.print(
        f"Account {name} disabled: {n_sessions} web sessions signed out, {n_tokens} API tokens deleted; "
        f"`medcite users add {name}` with a new password enables it again.",
        markup=False,
    )


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="Account name.", show_default=False)],
    library: LibraryOption = None,
) -> None:
    """Print a new API token for an account (send it as 'Authorization: Bearer TOKEN'); shown only once."""
    from medcite.review import issue_token

    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        print(issue_token(store, name))


@users_app.command("list")
def users_list(
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="A table, or a JSON list of accounts.")
    ] = OutputFormat.text,
    library: LibraryOption = None,
) -> None:
    """List accounts: name, role, enabled, last sign-in and API tokens held."""
    from medcite.review import list_users

    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        users = list_users(store)
    _print_list(
        users,
        output_format,
        empty="No accounts yet: `medcite users add NAME --role reviewer` creates one.",
        title=_count(len(users), "account"),
        columns=["name", "role", "enabled", "last sign-in", "API tokens"],
        row=lambda user: (
            user.username,
            user.role,
            "yes" if user.enabled else "no (disabled)",
            user.last_login or "never",
            str(user.tokens),
        ),
    )


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="Account name.", show_default=False)],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input instead of a prompt.")
    ] = False,
    library: LibraryOption = None,
) -> None:
    """Reset an account's password: signs it out everywhere and revokes its API tokens (re-enables a disabled one)."""
    from medcite.review import reset_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        except typer.Abort:
            if sys.stdin is None or sys.stdin.closed or not sys.stdin.isatty():
                raise InvalidInput("No password could be read; give it with --password-stdin.") from None
            raise
    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        try:
            n_sessions, n_tokens = reset_password(store, name, password)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    stdout.print(
        f"Password of {name} reset: {n_sessions} web sessions signed out, {n_tokens} API tokens revoked "
        f"(`medcite users token {name}` issues a new one).",
        markup=False,
    )


@review_app.command("stale")
def review_stale(
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="A table, or a JSON list (id, url, audience, reason...).")
    ] = OutputFormat.text,
    library: LibraryOption = None,
) -> None:
    """List answers needing re-review: a document they cite was retracted, replaced or removed."""
    from medcite.review import stale_reviews

    settings = _settings(library)
    with _open(settings, fill_default=False) as store:
        stale = stale_reviews(store)
    _print_list(
        stale,
        output_format,
        empty="No answer needs re-review.",
        title=f"{_count(len(stale), 'answer')} need re-review",
        columns=["article", "audience", "question", "reason", "since"],
        row=lambda item: (str(item.id), item.audience, item.question, item.reason, item.updated_at),
    )


def run(args: list[str] | None = None) -> int:
    """Run the command line with ``args`` (default ``sys.argv[1:]``); return the exit code.

    Errors become one line on stderr: a ``MedciteError`` exits with its
    ``exit_code``, a usage error with 2, an interruption with 130.
    """
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="medcite", standalone_mode=False)
    except MedciteError as exc:
        stderr.print(f"Error: {exc}", markup=False, highlight=False)
        return exc.exit_code
    except DATABASE_ERRORS as exc:  # the library's server went away or cancelled a statement mid-command
        reason = (str(getattr(exc, "orig", exc)).strip().splitlines() or [type(exc).__name__])[0]
        stderr.print(
            f"Error: the library stopped answering ({reason}); committed batches are kept, run the command again "
            "once it is back.",
            markup=False,
            highlight=False,
        )
        return StoreError.exit_code
    except typer.Exit as exc:
        if exc.exit_code == 130:  # Ctrl-C, as typer reports it
            stderr.print(INTERRUPTED)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        stderr.print(INTERRUPTED)
        return 130
    except typer.TyperException as exc:  # usage errors: typer's bundled click exceptions
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:
            stderr.print(f"Error: {exc}", markup=False, highlight=False)
        if type(exc).__name__ == "NoSuchOption" and not (getattr(exc, "option_name", "") or "").startswith("--"):
            # '-what is gout' reads as options -w -h ...: a question may start with '-' after '--'
            stderr.print("A question or query starting with '-' goes after --, e.g. medcite ask -- \"-...\"")
        return int(getattr(exc, "exit_code", 2))
    if result == 130:  # Ctrl-C: typer turns KeyboardInterrupt into Exit(130), returned without standalone mode
        stderr.print(INTERRUPTED)
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
