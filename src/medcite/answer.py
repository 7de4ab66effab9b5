"""Hits -> Answer: question intent, the extractive composer, citation checks and abstention.

The default composer is extractive and deterministic: every statement is a
sentence, list item, table or algorithm block quoted from the passage it cites
(only list markers, Markdown bold markers and whitespace are trimmed), so
citations are correct by construction, and ``check_citations`` proves it before
an answer leaves this module. Same library and question, same answer. Which
statements are chosen is decided in ``statements`` (scoring, MMR, bottom line);
this module assembles, checks, abstains and saves. It imports ``models``,
``errors``, ``store``, ``intent``, ``quote``, ``glossary``, ``statements`` and
``retrieve``; never ``render``, ``web`` or ``cli``.

A follow-up (``ask(..., follow_up_of=earlier)``) is read in the light of the
earlier answer: the earlier question's content terms join the follow-up's words
for retrieval and statement scoring, while the title, intent and sections come
from the follow-up (the earlier intent when the follow-up names none). Answers
are saved in the library (``save_answer``) so a later call can load them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from medcite.errors import CitationError, ConfigError, QueryError, StoreError
from medcite.glossary import define_terms, glossary_title, key_terms
from medcite.intent import (
    ANAPHORIC,
    RED_FLAG_PHRASES,
    SECTION_ORDER,
    TIMING_QUESTION,
    classify_intent,
    drop_denied_red_flags,
    has_red_flag,
)
from medcite.models import (
    EMERGENCY_SECTION,
    Answer,
    AnswerSection,
    Audience,
    BottomLine,
    Hit,
    Intent,
    Reference,
    Statement,
    Timings,
)
from medcite.quote import normalise_quote, spans_verbatim
from medcite.retrieve import Retriever, query_terms
from medcite.statements import (
    Query,
    Unit,
    choose_bottom_line,
    item_coverage,
    reading_grade,
    score_units,
    select_units,
    stem_set,
)
from medcite.store import Store

if TYPE_CHECKING:
    from medcite.llm import LLMClient
    from medcite.models import ComposeEvent

__all__ = [
    "ABSTAIN_MIN_COVERAGE",
    "DISCLAIMER",
    "PENDING_REVIEW_NOTICE",
    "EMERGENCY_ADVICE",
    "EVIDENCE_LABELS",
    "RED_FLAG_PHRASES",
    "ask",
    "check_citations",
    "classify_intent",
    "compose_answer",
    "evidence_coverage",
    "follow_up_query",
    "reference_for",
    "retrieve_evidence",
    "load_answer",
    "normalise_quote",
    "reading_grade",
    "save_answer",
]

# --- Product copy (not clinical content) ---------------------------------------------------------------------

PENDING_REVIEW_NOTICE = "Educational content pending human review."
DISCLAIMER = (
    "medcite is for education and decision support; it does not replace professional judgement. "
    f"Every statement is quoted from the cited source. {PENDING_REVIEW_NOTICE}"
)
EMERGENCY_ADVICE = (
    "Your question mentions a warning sign that can be an emergency. "
    "If it is happening now, call your local emergency number or go to the nearest emergency department."
)
ABSTENTION_TEXT = (
    "The library holds no evidence that answers this question closely enough to cite, so medcite does not "
    "answer it. The closest sources found are listed below. To add evidence, run: {command}"
)
PATIENT_ABSTENTION_TEXT = (
    "medcite's library holds no evidence that answers this question closely enough, so it does not answer it. "
    "Please ask a doctor, nurse or pharmacist. The closest sources found are listed below."
)

# --- Tunable constants (move to Settings when they stabilise) --------------------------------------------------

RETRIEVAL_LIMIT_PASSAGES = 12
"""Passages asked of the retriever for one answer."""
EXPAND_TOP_DOCUMENTS = 2
"""Documents (of the best hits) whose other passages are also read for statements."""
ABSTAIN_MIN_COVERAGE = 0.50
"""Abstain when no top passage covers this IDF-weighted fraction (0-1) of the question's own terms.

Chosen by 2-fold cross-validation on PubMedQA with half the gold abstracts removed (``benchmarks/
abstention.py``): 0.50 on both folds, balanced accuracy 0.88 on the held-out fold (0.82 at the earlier
hand-set 0.40). On the default library the test suite's in-scope questions score 0.80 or more and the
spinal implant infection question 0.34.
"""
ABSTAIN_TOP_HITS = 5
"""Hits whose coverage is considered for abstention."""
TITLE_WEIGHT = 0.25
"""Weight (0-1) of a question term found only in a passage's document title when passages compete."""
PASSAGE_MIN_COVERAGE_RATIO = 0.5
"""A passage contributes statements only when its coverage is at least this fraction of the best one's."""
MIN_STATEMENT_RELEVANCE = 0.35
"""A statement (with its passage heading at half weight) must cover this fraction (0-1) of the question."""
MAX_BLOCKS = 1
"""Tables or algorithm blocks quoted whole in one answer."""
MAX_STATEMENTS = 12
MAX_STATEMENTS_PER_SECTION = 4
FOLLOW_UP_MIN_TOPIC_COVERAGE = 0.5
"""In a follow-up, a passage (with its heading and document title) must cover this IDF-weighted fraction (0-1)
of the earlier question's terms to be used: "What about in pregnancy?" stays on the earlier topic."""

EVIDENCE_LABELS: dict[str, str] = {
    "guideline": "Guideline",
    "protocol": "Protocol",
    "systematic_review": "Systematic review",
    "meta_analysis": "Meta-analysis",
    "rct": "RCT",
    "observational": "Research",
    "review": "Review",
    "case_report": "Case report",
    "consumer": "Consumer health",
    "other": "Research",
}
"""Reference type label shown to readers, by evidence type."""

# --- Composition -----------------------------------------------------------------------------------------------


def reference_for(n: int, hit: Hit) -> Reference:
    """Return reference number ``n`` for a hit: evidence label, source, year, DOI/PMID link and the passage."""
    url = f"https://doi.org/{hit.doi}" if hit.doi else None
    if url is None and hit.pmid:
        url = f"https://pubmed.ncbi.nlm.nih.gov/{hit.pmid}/"
    return Reference(
        n=n,
        type=EVIDENCE_LABELS.get(hit.evidence_type, "Research"),
        title=hit.title,
        source=hit.organization or hit.journal,
        year=hit.year,
        doi=hit.doi,
        pmid=hit.pmid,
        url=url,
        passage_id=hit.passage_id,
        passage=hit.text,
    )


def _answer_id(question: str, audience: str, library_version: int, follow_up_of: str | None = None) -> str:
    key = f"{' '.join(question.lower().split())}\n{audience}\n{library_version}"
    if follow_up_of is not None:  # the same words after another answer are another question
        key += f"\nfollow-up of {follow_up_of}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _tidy(question: str) -> str:
    text = " ".join(question.split())
    return text[:1].upper() + text[1:] if text else text


def _best_coverage(query: Query, retrieved: Sequence[Hit]) -> float:
    return max(
        (query.coverage(stem_set(f"{h.text} {h.section} {h.title}")) for h in retrieved[:ABSTAIN_TOP_HITS]), default=0.0
    )


def evidence_coverage(question: str, hits: Sequence[Hit], *, retriever: Retriever) -> float:
    """Return the abstention score of an evidence set: the best coverage of the question by a top hit.

    The IDF-weighted fraction (0-1) of the question's terms found in the text, heading and title of one
    of the first ``ABSTAIN_TOP_HITS`` hits; ``compose_answer`` abstains below ``ABSTAIN_MIN_COVERAGE``
    (``benchmarks/abstention.py`` measures both on development sets).

    Raises:
        QueryError: The question has nothing to search for.
    """
    return _best_coverage(Query.build(question, retriever), hits)


def compose_answer(
    question: str,
    hits: Sequence[Hit],
    *,
    retriever: Retriever,
    audience: Audience = "clinician",
    extra_passage_ids: frozenset[str] = frozenset(),
    follow_up_of: Answer | None = None,
) -> Answer:
    """Compose an extractive answer from an evidence set; deterministic for equal input.

    Args:
        question: The question as asked.
        hits: The evidence set, best first (retrieved hits, then any extra passages of their documents).
        retriever: Used to normalise the question and read term frequencies from its library.
        audience: 'clinician', 'student' (clinician content) or 'patient' (emergency advice first when the
            question names a red-flag symptom; consumer sources preferred; reading grade reported).
        extra_passage_ids: Passages in ``hits`` that were not retrieved for the question (no rank credit).
        follow_up_of: The earlier answer when ``question`` follows it up: statements are scored against
            ``follow_up_query`` (the follow-up's own terms weighted ``FOLLOW_UP_EMPHASIS``), the intent is
            the earlier one when the follow-up names none, and the answer records the earlier id.

    Returns:
        An ``Answer``; ``abstained`` is True (with empty sections and the closest sources as references)
        when no top hit covers ``ABSTAIN_MIN_COVERAGE`` of the question's terms. ``timings_ms`` holds
        the composition time only.

    Raises:
        QueryError: The question has nothing to search for.
        CitationError: A statement is not verbatim in a passage it cites (a bug; checked strictly).
    """
    started = time.perf_counter()
    earlier_id = follow_up_of.id if follow_up_of is not None else None
    asked = drop_denied_red_flags(question)  # what the question asks about: a denied symptom is not a topic
    if follow_up_of is None:
        query = Query.build(asked, retriever)
    else:
        combined = follow_up_query(follow_up_of.question, asked, retriever=retriever)
        query = Query.build(combined, retriever, emphasis=question)
    intent = classify_intent(question)
    if intent == "overview" and follow_up_of is not None:
        intent = follow_up_of.intent  # "What about in pregnancy?" after a treatment question asks about treatment
    version = retriever.store.library_version()
    answer_id = _answer_id(question, audience, version, earlier_id)
    retrieved = [h for h in hits if h.passage_id not in extra_passage_ids]
    if follow_up_of is not None:
        topic = Query.build(follow_up_of.question, retriever)
        on_topic = [
            h
            for h in hits
            if topic.coverage(stem_set(f"{h.text} {h.section} {h.title}")) >= FOLLOW_UP_MIN_TOPIC_COVERAGE
        ]
        if not any(h.passage_id not in extra_passage_ids for h in on_topic):
            return _abstain(question, combined, retrieved, retriever, audience, intent, answer_id, started, earlier_id)
        hits = on_topic
        retrieved = [h for h in hits if h.passage_id not in extra_passage_ids]
        # The follow-up's own words ("pregnancy") must occur in the topic's evidence, or the earlier answer
        # would be repeated as if it answered them.
        if query.emphasised and not any(
            query.emphasised & query.found(stem_set(f"{h.text} {h.section}")) for h in hits
        ):
            return _abstain(question, combined, retrieved, retriever, audience, intent, answer_id, started, earlier_id)
    if _best_coverage(query, retrieved) < ABSTAIN_MIN_COVERAGE:
        search_text = asked if follow_up_of is None else combined
        return _abstain(question, search_text, retrieved, retriever, audience, intent, answer_id, started, earlier_id)

    # Passages compete on their own words and headings; the document title, which every passage of it shares,
    # counts a little (a guideline's regimen list often names its disease only in the title).
    focus = {
        h.passage_id: query.coverage(stem_set(h.text), stem_set(h.section), 0.75, stem_set(h.title), TITLE_WEIGHT)
        for h in hits
    }
    best_focus = max(focus.values())
    usable = [h for h in hits if focus[h.passage_id] >= PASSAGE_MIN_COVERAGE_RATIO * best_focus]
    units = score_units(query, usable, intent, audience, set(extra_passage_ids))
    units = [u for u in units if u.relevance >= MIN_STATEMENT_RELEVANCE and not ANAPHORIC.match(u.text)]
    # Bottom line: the most direct, strongest prose statements of the primary section (else any section).
    bottom = choose_bottom_line(query, units, intent, timing=bool(TIMING_QUESTION.search(question)))
    blocks = [
        u
        for u in units
        if u.is_block and min(u.relevance, item_coverage(query, u, stem_set(u.hit.section), 0.75)) >= 0.5
    ]
    blocks = select_units(blocks, limit=MAX_BLOCKS, chosen=bottom)
    prose = [u for u in units if not u.is_block and u not in bottom]
    body = blocks + select_units(prose, limit=MAX_STATEMENTS - len(blocks), chosen=[*bottom, *blocks])

    references: list[Reference] = []
    number_of: dict[str, int] = {}

    def cite(unit: Unit) -> list[int]:
        if unit.hit.passage_id not in number_of:
            number_of[unit.hit.passage_id] = len(references) + 1
            references.append(reference_for(len(references) + 1, unit.hit))
        return [number_of[unit.hit.passage_id]]

    bottom_citations: list[int] = []
    for unit in bottom:
        bottom_citations += [n for n in cite(unit) if n not in bottom_citations]
    grouped: dict[str, list[Unit]] = {}
    for unit in sorted(body, key=lambda u: (-u.score, u.order)):
        if len(grouped.setdefault(unit.section, [])) < MAX_STATEMENTS_PER_SECTION:
            grouped[unit.section].append(unit)
    sections: list[AnswerSection] = []
    if audience == "patient" and has_red_flag(question):
        sections.append(_emergency_section())
    definitions: list[tuple[str, Hit]] = []
    if audience in ("student", "patient"):
        already = [u.text for u in bottom] + [u.text for u in body]
        definitions = define_terms(
            key_terms(asked, retriever, extra_text=" ".join(u.text for u in bottom)),
            retriever,
            audience=audience,
            exclude_texts=already,
        )
        if definitions:
            statements = [
                Statement(text=text, citations=cite(Unit(text=text, hit=hit, is_block=False, order=-1)))
                for text, hit in definitions
            ]
            sections.append(AnswerSection(title=glossary_title(audience), statements=statements))
    order = SECTION_ORDER[intent]
    for title in sorted(grouped, key=lambda t: (order.index(t) if t in order else len(order), t)):
        chosen = sorted(grouped[title], key=lambda u: u.order)  # source order reads best within a section
        sections.append(
            AnswerSection(title=title, statements=[Statement(text=u.text, citations=cite(u)) for u in chosen])
        )
    texts = [u.text for u in bottom] + [s.text for section in sections for s in section.statements]
    answer = Answer(
        id=answer_id,
        question=_tidy(question),
        audience=audience,
        intent=intent,
        follow_up_of=earlier_id,
        abstained=False,
        bottom_line=BottomLine(text=" ".join(u.text for u in bottom), citations=bottom_citations),
        sections=sections,
        references=references,
        reading_grade=reading_grade(texts) if audience == "patient" else None,
        disclaimer=DISCLAIMER,
        timings_ms=Timings(composition=(time.perf_counter() - started) * 1000),
    )
    check_citations(answer, [*hits, *(hit for _, hit in definitions)], strict=True)
    return answer


def _abstain(
    question: str,
    search_text: str,
    hits: Sequence[Hit],
    retriever: Retriever,
    audience: Audience,
    intent: Intent,
    answer_id: str,
    started: float,
    follow_up_of: str | None = None,
) -> Answer:
    closest: list[Hit] = []
    for hit in hits:
        if all(hit.doc_id != other.doc_id for other in closest):
            closest.append(hit)
        if len(closest) == 3:
            break
    terms = " ".join(retriever.normalize(search_text).terms)
    command = f'medcite ingest pubmed --query "{terms}"'
    # A patient gets no ingest command (and no echo of their words in a query for an outside service).
    text = PATIENT_ABSTENTION_TEXT if audience == "patient" else ABSTENTION_TEXT.format(command=command)
    sections = []
    if audience == "patient" and has_red_flag(question):
        sections.append(_emergency_section())
    return Answer(
        id=answer_id,
        question=_tidy(question),
        audience=audience,
        intent=intent,
        follow_up_of=follow_up_of,
        abstained=True,
        bottom_line=BottomLine(text=text, citations=[]),
        sections=sections,
        references=[reference_for(n, hit) for n, hit in enumerate(closest, start=1)],
        reading_grade=reading_grade([text]) if audience == "patient" else None,
        disclaimer=DISCLAIMER,
        timings_ms=Timings(composition=(time.perf_counter() - started) * 1000),
    )


def check_citations(answer: Answer, hits: Sequence[Hit], *, strict: bool = True) -> list[str]:
    """Check that every citation of an answer resolves and quotes its passage.

    A reference must name a passage of the evidence set ``hits`` and carry its exact text; a statement must
    cite numbers in 1..len(references) and occur (after ``normalise_quote``) in every passage it cites; the
    bottom line must be made of at most two verbatim runs per citation. Only ``EMERGENCY_ADVICE`` (and the
    bottom line of an abstention) may go uncited.

    Args:
        answer: The answer to check.
        hits: The evidence set the answer was composed from.
        strict: Raise on the first problem (tests, CLI) instead of returning the list.

    Returns:
        One sentence per problem (empty when all is well).

    Raises:
        CitationError: ``strict`` is True and a problem was found.
    """
    problems: list[str] = []
    by_id = {hit.passage_id: hit for hit in hits}
    quoted: dict[int, str] = {}
    for position, reference in enumerate(answer.references, start=1):
        if reference.n != position:
            problems.append(f"Reference {reference.n} is numbered out of order (expected {position}).")
        hit = by_id.get(reference.passage_id)
        if hit is None:
            problems.append(f"Reference {reference.n} cites {reference.passage_id}, which is not in the evidence set.")
        elif hit.text != reference.passage:
            problems.append(f"Reference {reference.n} does not carry the text of {reference.passage_id}.")
        quoted[reference.n] = normalise_quote(reference.passage)

    def resolve(where: str, citations: list[int]) -> list[str]:
        texts = []
        for n in citations:
            if n not in quoted:
                problems.append(f"{where} cites [{n}], outside 1..{len(answer.references)}.")
            else:
                texts.append(quoted[n])
        return texts

    for section in answer.sections:
        for statement in section.statements:
            where = f"A statement of '{section.title}'"
            if not statement.citations:
                if statement.text != EMERGENCY_ADVICE:
                    problems.append(f"{where} has no citation: {statement.text[:80]!r}.")
                continue
            needle = normalise_quote(statement.text)
            for n, passage in zip(statement.citations, resolve(where, statement.citations), strict=False):
                if needle not in passage:
                    problems.append(f"{where} is not in the passage of reference [{n}]: {statement.text[:80]!r}.")
    if answer.bottom_line.citations:
        passages = resolve("The bottom line", answer.bottom_line.citations)
        if not spans_verbatim(answer.bottom_line.text, passages, max_pieces=2 * len(passages)):
            problems.append("The bottom line is not quoted from the passages it cites.")
    elif not answer.abstained and answer.bottom_line.text:
        problems.append("The bottom line has no citation.")
    if problems and strict:
        raise CitationError(f"Answer {answer.id} has citation problems: {' '.join(problems)}")
    return problems


# --- The main job ----------------------------------------------------------------------------------------------


def _emergency_section() -> AnswerSection:
    return AnswerSection(title=EMERGENCY_SECTION, statements=[Statement(text=EMERGENCY_ADVICE, citations=[])])


def retrieve_evidence(
    question: str, *, retriever: Retriever, follow_up_of: Answer | None = None
) -> tuple[list[Hit], frozenset[str]]:
    """Return the evidence set ``ask`` composes from: the hits for the question, then their documents' siblings.

    A red-flag symptom the question denies is left out of the search; a follow-up searches
    ``follow_up_query(earlier question, question)``. Used by both composers (``ask``, ``compose_llm``).

    Returns:
        ``(evidence, extra_passage_ids)``: hits best first, then sibling passages (ids in the second item).

    Raises:
        QueryError: The question has nothing to search for.
    """
    search_text = drop_denied_red_flags(question)  # a denied symptom must not steer retrieval
    if follow_up_of is not None:
        search_text = follow_up_query(follow_up_of.question, search_text, retriever=retriever)
    hits = retriever.search(search_text, limit=RETRIEVAL_LIMIT_PASSAGES)
    return _with_neighbours(retriever, hits)


def _with_neighbours(retriever: Retriever, hits: list[Hit]) -> tuple[list[Hit], frozenset[str]]:
    """Add the other passages of the best hits' documents (a guideline's sibling sections) to the evidence."""
    seen = {hit.passage_id for hit in hits}
    documents: list[Hit] = []
    for hit in hits:
        if all(hit.doc_id != other.doc_id for other in documents):
            documents.append(hit)
        if len(documents) == EXPAND_TOP_DOCUMENTS:
            break
    extra: list[Hit] = []
    for first in documents:
        for passage in retriever.store.get_passages(first.doc_id):
            if passage.passage_id not in seen:
                seen.add(passage.passage_id)
                extra.append(
                    first.model_copy(
                        update={
                            "passage_id": passage.passage_id,
                            "section": passage.section,
                            "text": passage.text,
                            "rank": len(hits) + len(extra) + 1,
                            "score": 0.0,
                            "scores": {},
                        }
                    )
                )
    return [*hits, *extra], frozenset(h.passage_id for h in extra)


def follow_up_query(earlier_question: str, follow_up: str, *, retriever: Retriever) -> str:
    """Return the retrieval query of a follow-up: its own words, then the earlier question's content terms.

    The earlier question's terms (``Retriever.normalize(...).terms``: filler words dropped) that the
    follow-up does not already use are appended, so "What about in pregnancy?" after a question on DVT
    treatment searches for pregnancy within that topic rather than pregnancy in general.

    Args:
        earlier_question: The question of the earlier answer.
        follow_up: The follow-up as asked.
        retriever: Normalises the earlier question with the library's vocabulary.

    Returns:
        The follow-up text followed by the carried-over terms, separated by spaces.

    Raises:
        QueryError: The follow-up is empty.
    """
    if not follow_up or not follow_up.strip():
        raise QueryError("The follow-up question is empty; type what you want to know next.")
    own = {term.lower() for term in query_terms(follow_up)}
    carried = [term for term in retriever.normalize(earlier_question).terms if term.lower() not in own]
    return " ".join([" ".join(follow_up.split()), *carried])


def ask(
    question: str,
    *,
    retriever: Retriever,
    audience: Audience = "clinician",
    follow_up_of: Answer | None = None,
    composer: Literal["extractive", "llm"] = "extractive",
    llm: LLMClient | None = None,
    on_event: Callable[[ComposeEvent], None] | None = None,
) -> Answer:
    """Answer a question from the library: retrieve, compose extractively, check every citation.

    Args:
        question: A clinical question in plain words or shorthand.
        retriever: The library's retriever (lexical, or hybrid with an embedder).
        audience: 'clinician' (default), 'student' or 'patient'.
        follow_up_of: The earlier answer when ``question`` follows it up (e.g. "What about in
            pregnancy?"): retrieval searches ``follow_up_query(earlier question, question)`` and the answer
            records the earlier id in ``follow_up_of``.
        composer: 'extractive' (default, deterministic) or 'llm' (``compose_llm.compose_llm``: the model
            writes, every statement is verified, and the extractive answer is returned with a ``notice`` on
            any failure; calls the network).
        llm: The model server client; required when ``composer='llm'``.
        on_event: With the LLM composer, called with each progress event ('status', 'delta').

    Returns:
        A checked ``Answer`` with ``timings_ms`` filled in (retrieval, composition, total).

    Raises:
        QueryError: The question is empty or has nothing to search for.
        ConfigError: ``composer='llm'`` without an ``llm`` client.
        CitationError: A citation does not resolve (a bug; never expected).
    """
    if composer == "llm" and llm is None:
        raise ConfigError("The LLM composer needs a model server: set MEDCITE_LLM_BASE_URL and MEDCITE_LLM_MODEL.")
    started = time.perf_counter()
    evidence, extra = retrieve_evidence(question, retriever=retriever, follow_up_of=follow_up_of)
    retrieved_s = time.perf_counter() - started
    if composer == "llm" and llm is not None:
        from medcite.compose_llm import compose_llm

        answer = compose_llm(
            question,
            evidence,
            retriever=retriever,
            client=llm,
            audience=audience,
            extra_passage_ids=extra,
            follow_up_of=follow_up_of,
            on_event=on_event,
        )
    else:
        answer = compose_answer(
            question,
            evidence,
            retriever=retriever,
            audience=audience,
            extra_passage_ids=extra,
            follow_up_of=follow_up_of,
        )
    total_s = time.perf_counter() - started
    return answer.model_copy(
        update={
            "timings_ms": Timings(
                retrieval=round(retrieved_s * 1000, 2),
                composition=round(answer.timings_ms.composition, 2),
                total=round(total_s * 1000, 2),
            )
        }
    )


# --- Saved answers ---------------------------------------------------------------------------------------------


def save_answer(store: Store, answer: Answer) -> None:
    """Save an answer in the library under its id (replacing an earlier save), for later follow-ups.

    Raises:
        StoreError: The write failed (e.g. the answer follows up an id that is not saved).
    """
    store.save_answer(answer.id, answer.question, answer.audience, answer.follow_up_of, answer.model_dump_json())


def load_answer(store: Store, answer_id: str) -> Answer:
    """Return the answer saved under ``answer_id``.

    Raises:
        NotFound: No answer with this id is saved in the library (exit code 4).
        StoreError: The saved JSON no longer fits the ``Answer`` model.
    """
    data = store.get_answer(answer_id.strip())[3]
    try:
        return Answer.model_validate_json(data)
    except ValueError as exc:
        raise StoreError(
            f"The saved answer {answer_id} cannot be read by this medcite ({exc.__class__.__name__}); "
            "ask the earlier question again."
        ) from exc
