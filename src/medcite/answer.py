"""Question -> Answer: retrieve the evidence, compose, check every citation, abstain when not covered, save.

``ask`` is what ``medcite ask``, the web app and the batch mode call. The evidence (``compose.evidence``) is the
ranked passages and their documents' other passages cut into candidate statements; the default composer is
extractive and deterministic (``compose.extractive``: quoted statements in their context, chosen by a learned
ranker), the optional one writes prose with a language model and verifies it (``compose.llm``). Before an
answer leaves, ``compose.checks.check_citations`` proves every citation; when the library does not cover the
question (``compose.abstain``), the answer abstains: it says so, lists the closest sources and suggests what to
ingest. Same library and question, same answer (and the same ``id``). Answers are saved in the library so a
follow-up can read them. Imports ``models``, ``errors``, ``store``, ``intent``, ``quote``, ``glossary``,
``retrieve`` and ``compose``; never ``render``, ``web`` or ``cli``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

from medcite.compose.abstain import (
    ABSTAIN_THRESHOLD,
    abstention_model,
    abstention_score,
    abstention_threshold,
    child_outside_population,
    condition_outside_sources,
    scope_exclusion,
    undosed_agents,
)
from medcite.compose.checks import EVIDENCE_LABELS, check_citations, reading_grade, reference_for
from medcite.compose.evidence import EXPAND_TOP_DOCUMENTS, RETRIEVAL_LIMIT_PASSAGES, Evidence, gather_evidence
from medcite.compose.extractive import Composition, compose_statements, score_candidates, statement_of
from medcite.compose.features import Candidate
from medcite.compose.pubmed_query import build_pubmed_query
from medcite.errors import ConfigError, QueryError, StoreError
from medcite.glossary import define_terms, glossary_title, key_terms
from medcite.intent import RED_FLAG_PHRASES, classify_intent, drop_denied_red_flags, has_red_flag, has_self_harm
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
from medcite.quote import normalise_quote
from medcite.retrieve import Retriever, query_terms
from medcite.retrieve.match import stem_set, stems_of
from medcite.store import Store

if TYPE_CHECKING:
    from medcite.llm import LLMClient
    from medcite.models import ComposeEvent
    from medcite.verify import Verifier

__all__ = [
    "ABSTAIN_THRESHOLD",
    "DISCLAIMER",
    "EMERGENCY_ADVICE",
    "EVIDENCE_LABELS",
    "EXPAND_TOP_DOCUMENTS",
    "PENDING_REVIEW_NOTICE",
    "RED_FLAG_PHRASES",
    "RETRIEVAL_LIMIT_PASSAGES",
    "ask",
    "check_citations",
    "classify_intent",
    "compose_answer",
    "follow_up_query",
    "load_answer",
    "mark_removed_references",
    "normalise_quote",
    "reading_grade",
    "reference_for",
    "retrieve_evidence",
    "save_answer",
    "search_passages",
    "stream_answer",
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
    "answer it.{closest} To add evidence, run: {command}"
)
PATIENT_ABSTENTION_TEXT = (
    "medcite's library holds no evidence that answers this question closely enough, so it does not answer it. "
    "Please ask a doctor, nurse or pharmacist.{closest}"
)
CLOSEST_TEXT = " The closest sources found are listed below."
"""Said in an abstention only when it lists sources (a question in another script may find none)."""

CHILD_REASON = "The closest source ({title}) never mentions children."
"""Why a question about a child abstains when the source it would quote never names one (``compose.abstain``)."""
AGE_REASON = "The closest source ({title}) states age ranges that leave out a child aged {age:g}."
"""... or when every age range the source states leaves the child's age out."""
CONDITION_REASON = "The closest source ({title}) never mentions {condition}."
"""Why a question abstains when no document the answer would quote names the condition it asks about
(``compose.abstain.condition_outside_sources``)."""
UNDOSED_REASON = "The library's sources name {agents} but give no dose for {them}."
"""Why a dosing question abstains when no statement gives the asked drug a dose (``undosed_agents``)."""
SCOPE_TITLE = "What the closest source says it does not cover"
"""Section of an abstention that quotes the source's own scope exclusion (``compose.abstain.scope_exclusion``)."""

FOLLOW_UP_EMPHASIS = 2.0
"""In a follow-up, concepts of the follow-up's own words weigh this many times their IDF."""


def _answer_id(question: str, audience: str, library_version: int, follow_up_of: str | None = None) -> str:
    key = f"{' '.join(question.lower().split())}\n{audience}\n{library_version}"
    if follow_up_of is not None:  # the same words after another answer are another question
        key += f"\nfollow-up of {follow_up_of}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _tidy(question: str) -> str:
    text = " ".join(question.split())
    return text[:1].upper() + text[1:] if text else text


def _emergency_section() -> AnswerSection:
    return AnswerSection(title=EMERGENCY_SECTION, statements=[Statement(text=EMERGENCY_ADVICE, citations=[])])


# --- Retrieval ------------------------------------------------------------------------------------------------


def follow_up_query(earlier_question: str, follow_up: str, *, retriever: Retriever) -> str:
    """Return the retrieval query of a follow-up: its own words, then the earlier question's content terms.

    The earlier question's terms (``Retriever.normalize(...).terms``: filler words dropped) that the
    follow-up does not already use are appended, so "What about in pregnancy?" after a question on DVT
    treatment searches for pregnancy within that topic rather than pregnancy in general.

    Raises:
        QueryError: The follow-up is empty or has no words (only punctuation).
    """
    if not follow_up or not re.search(r"\w", follow_up):  # empty, or only punctuation ('???')
        raise QueryError("The follow-up question has no words; type what you want to know next.")
    own = {term.lower() for term in query_terms(follow_up)}
    carried = [term for term in retriever.normalize(earlier_question).terms if term.lower() not in own]
    return " ".join([" ".join(follow_up.split()), *carried])


def retrieve_evidence(question: str, *, retriever: Retriever, follow_up_of: Answer | None = None) -> Evidence:
    """Return the evidence ``ask`` composes from (both composers use it).

    A red-flag symptom the question denies is left out of the search; a follow-up searches
    ``follow_up_query(earlier question, question)``, weighs its own words ``FOLLOW_UP_EMPHASIS`` times and reads
    the documents the earlier answer cited first.

    Raises:
        QueryError: The question has nothing to search for.
    """
    asked = drop_denied_red_flags(question)  # a denied symptom must not steer retrieval
    if follow_up_of is None:
        return gather_evidence(asked, retriever=retriever)
    combined = follow_up_query(follow_up_of.question, asked, retriever=retriever)
    earlier_docs = list(dict.fromkeys(ref.passage_id.split("#")[0] for ref in follow_up_of.references))
    return gather_evidence(
        asked,
        retriever=retriever,
        search_text=combined,
        emphasis=asked,
        emphasis_factor=FOLLOW_UP_EMPHASIS,
        documents_first=earlier_docs[:EXPAND_TOP_DOCUMENTS],
    )


SEARCH_RERANK_DEPTH = 20
"""``search_passages`` orders the retriever's first this-many passages (or ``limit``, if more) again."""
SEARCH_STATEMENT_WEIGHT = 0.5
"""... by the passage model's score plus this times the best statement model score of any statement of the
passage. Measured (``benchmarks/retrieval.py``, lexical, the same run's figures in the retriever's order in
brackets): the passage holding a clinical development question's gold answer first 0.562 (0.517); PubMedQA's
abstract first 0.956 (0.960). The statement score alone gave 0.584 but 0.903: the statement model learned from
guideline questions and orders research abstracts worse than the passage model does."""


def search_passages(
    query: str, *, retriever: Retriever, limit: int = 10, mode: Literal["lexical", "dense", "hybrid"] | None = None
) -> list[Hit]:
    """Return the passages that best answer a question: ``medcite search``.

    The retriever's ranking (as ``Retriever.search``, read from the evidence ``ask`` would gather, so the library is
    searched once), with its first ``SEARCH_RERANK_DEPTH`` passages ordered again
    by their score plus ``SEARCH_STATEMENT_WEIGHT`` times the best score the statement model
    (``compose.extractive.score_candidates``, the one ``ask`` picks its bottom line with) gives any statement of
    the passage (``Hit.scores['statement']``); a passage with no statement in ``ask``'s evidence goes after those
    with one. Recall@10 is unchanged.

    Args:
        query: A clinical question or search words, any characters.
        retriever: The library's retriever.
        limit: Passages to return (>= 1).
        mode: 'lexical', 'dense' or 'hybrid'; default the retriever's.

    Returns:
        At most ``limit`` hits, best first, ranks 1-based.

    Raises:
        QueryError: The query is empty or has nothing to search for.
        ConfigError: 'dense' or 'hybrid' was asked for without an embedder.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1 (got {limit})")
    depth = max(limit, SEARCH_RERANK_DEPTH)
    # The query as typed, as Retriever.search reads it (ask leaves out a denied red flag; search never did).
    evidence = gather_evidence(query, retriever=retriever, mode=mode, depth=retriever.search_depth(depth))
    hits = retriever.first(evidence.ranked, depth)
    if len(hits) < 2:
        return hits[:limit]
    scores = score_candidates(evidence)
    best: dict[str, float] = {}
    for unit in evidence.units:
        score = float(scores[unit.order])
        best[unit.hit.passage_id] = max(best.get(unit.hit.passage_id, score), score)

    def key(i: int) -> tuple[bool, float, int]:
        statement = best.get(hits[i].passage_id)
        if statement is None:
            return (True, 0.0, i)
        return (False, -(hits[i].score + SEARCH_STATEMENT_WEIGHT * statement), i)

    ranked: list[Hit] = []
    for position, i in enumerate(sorted(range(len(hits)), key=key)[:limit], start=1):
        hit = hits[i]
        extra = {"statement": round(best[hit.passage_id], 4)} if hit.passage_id in best else {}
        ranked.append(hit.model_copy(update={"rank": position, "scores": {**hit.scores, **extra}}))
    return ranked


# --- Composition -----------------------------------------------------------------------------------------------


def compose_answer(
    question: str,
    evidence: Evidence,
    *,
    retriever: Retriever,
    audience: Audience = "clinician",
    follow_up_of: Answer | None = None,
) -> Answer:
    """Compose an extractive answer from an evidence set; deterministic for equal input.

    Args:
        question: The question as asked.
        evidence: What ``retrieve_evidence`` found for it.
        retriever: The library's retriever (definitions for students and patients, the ingest suggestion).
        audience: 'clinician', 'student' (clinician content plus key terms) or 'patient' (emergency advice first
            when the question names a red-flag symptom; consumer sources preferred; reading grade reported).
        follow_up_of: The earlier answer when ``question`` follows it up (its intent is kept when the follow-up
            names none; the answer records its id).

    Returns:
        An ``Answer``; ``abstained`` is True (with empty sections and the closest sources as references) when
        the library does not cover the question (``compose.abstain``). ``timings_ms`` holds composition only.

    Raises:
        CitationError: A statement is not verbatim in a passage it cites (a bug; checked strictly).
    """
    started = time.perf_counter()
    earlier_id = follow_up_of.id if follow_up_of is not None else None
    intent = evidence.frame.intent
    if intent == "overview" and follow_up_of is not None:
        intent = follow_up_of.intent  # "What about in pregnancy?" after a treatment question asks about treatment
    answer_id = _answer_id(question, audience, retriever.store.library_version(), earlier_id)
    if follow_up_of is not None:
        topic = _follow_up_topic(question, evidence, follow_up_of)
        if topic is None:  # the earlier topic's sources never mention what the follow-up asks about
            return _abstain(question, evidence, retriever, audience, intent, answer_id, started, earlier_id)
        evidence = topic
    if audience == "patient" and has_self_harm(question):  # emergency advice only, never library content
        return _abstain(question, evidence, retriever, audience, intent, answer_id, started, earlier_id)
    composition = compose_statements(evidence, intent, audience)
    reason, excluded, named = _source_abstention(evidence, composition, retriever)
    if reason or excluded is not None:  # the sources themselves say they do not answer this
        return _abstain(
            question, evidence, retriever, audience, intent, answer_id, started, earlier_id, excluded, reason, named
        )
    score = abstention_score(evidence, composition, follow_up=follow_up_of is not None)
    if composition.best is None or score >= abstention_threshold(abstention_model(composition)):
        return _abstain(question, evidence, retriever, audience, intent, answer_id, started, earlier_id)
    return _build(question, evidence, composition, retriever, audience, intent, answer_id, started, earlier_id)


def _source_abstention(
    evidence: Evidence, composition: Composition, retriever: Retriever
) -> tuple[str, Candidate | None, Hit | None]:
    """Why the sources say they do not answer (``compose.abstain``'s rules), the scope statement, and a passage.

    The passage is of the source the reason names (listed first among the closest sources).

    ``("", None, _)`` when none applies; ``("", statement, _)`` when the source the answer would quote excludes the
    topic (the statement is quoted); otherwise the reason text for a child outside the source's population, a
    condition the sources never mention, or a dose they never give.
    """
    best = composition.best.hit if composition.best is not None else None
    excluded = scope_exclusion(evidence, composition, retriever)
    if excluded is not None:
        return "", excluded, best
    outside = child_outside_population(evidence, composition, retriever)
    if outside is not None:
        hit, age = outside
        return (CHILD_REASON if age is None else AGE_REASON).format(title=hit.title.rstrip("."), age=age), None, hit
    unnamed = condition_outside_sources(evidence, composition, retriever)
    if unnamed is not None:
        title, condition = unnamed
        return CONDITION_REASON.format(title=title.rstrip("."), condition=condition), None, best
    undosed = undosed_agents(evidence)
    if undosed:
        text = UNDOSED_REASON.format(agents=" and ".join(undosed), them="it" if len(undosed) == 1 else "them")
        return text, None, best
    return "", None, best


def _follow_up_topic(question: str, evidence: Evidence, earlier: Answer) -> Evidence | None:
    """The evidence of a follow-up kept to the earlier answer's documents; None when they never name its concepts.

    "What about in pregnancy?" after a gout answer whose guideline never mentions pregnancy abstains instead of
    repeating the gout answer.
    """
    documents = list(dict.fromkeys(reference.passage_id.split("#")[0] for reference in earlier.references))
    topic = evidence.restricted_to(documents)
    own = stem_set(" ".join(query_terms(drop_denied_red_flags(question))))
    asked = [c for c in evidence.matcher.concepts if c.stems & own and not c.is_finding]
    if not topic.units or not asked:
        return topic if topic.units else None
    for unit in topic.units:
        stems = unit.stems | unit.context_stems | stems_of(unit.hit.section)
        if all(concept.strength(stems) >= 0.7 for concept in asked):
            return topic
    return None


def _build(
    question: str,
    evidence: Evidence,
    composition: Composition,
    retriever: Retriever,
    audience: Audience,
    intent: Intent,
    answer_id: str,
    started: float,
    earlier_id: str | None,
) -> Answer:
    references: list[Reference] = []
    number_of: dict[str, int] = {}
    hits_by_id = {hit.passage_id: hit for hit in evidence.hits}

    def cite(passage_id: str) -> list[int]:
        if passage_id not in number_of:
            number_of[passage_id] = len(references) + 1
            references.append(reference_for(len(references) + 1, hits_by_id[passage_id]))
        return [number_of[passage_id]]

    bottom_statements = [statement_of(unit, cite(unit.hit.passage_id)) for unit in composition.bottom]
    bottom = BottomLine(
        text=" ".join(statement.plain() for statement in bottom_statements),
        citations=sorted({n for statement in bottom_statements for n in statement.citations}),
        statements=bottom_statements,
    )
    sections: list[AnswerSection] = []
    if audience == "patient" and has_red_flag(question):
        sections.append(_emergency_section())
    definition_hits = []
    if audience in ("student", "patient"):
        already = [unit.text for unit in composition.bottom]
        already += [unit.text for _, units in composition.sections for unit in units]
        definitions = define_terms(
            key_terms(drop_denied_red_flags(question), retriever, extra_text=" ".join(already[:1])),
            retriever,
            audience=audience,
            exclude_texts=already,
        )
        if definitions:
            statements = []
            for text, hit in definitions:
                hits_by_id.setdefault(hit.passage_id, hit)
                definition_hits.append(hit)
                statements.append(Statement(text=text, citations=cite(hit.passage_id)))
            sections.append(AnswerSection(title=glossary_title(audience), statements=statements))
    for title, units in composition.sections:
        sections.append(
            AnswerSection(title=title, statements=[statement_of(unit, cite(unit.hit.passage_id)) for unit in units])
        )
    texts = [s.text for s in bottom_statements] + [s.text for section in sections for s in section.statements]
    answer = Answer(
        id=answer_id,
        question=_tidy(question),
        audience=audience,
        intent=intent,
        follow_up_of=earlier_id,
        abstained=False,
        bottom_line=bottom,
        sections=sections,
        references=references,
        reading_grade=reading_grade(texts) if audience == "patient" else None,
        disclaimer=DISCLAIMER,
        timings_ms=Timings(composition=(time.perf_counter() - started) * 1000),
    )
    check_citations(answer, [*evidence.hits, *definition_hits], strict=True, uncited=(EMERGENCY_ADVICE,))
    return answer


def _abstain(
    question: str,
    evidence: Evidence,
    retriever: Retriever,
    audience: Audience,
    intent: Intent,
    answer_id: str,
    started: float,
    follow_up_of: str | None = None,
    excluded: Candidate | None = None,
    reason: str = "",
    named: Hit | None = None,
) -> Answer:
    # The source a reason or a scope statement names is listed first, so the text and the list agree.
    first = excluded.hit if excluded is not None else named
    closest = [first] if first is not None else []
    for hit in evidence.hits[:RETRIEVAL_LIMIT_PASSAGES]:
        if all(hit.doc_id != other.doc_id for other in closest):
            closest.append(hit)
        if len(closest) == 3:
            break
    # The same query `ask --pubmed` would search (compose.pubmed_query), so the suggested command finds something.
    built = build_pubmed_query(question, evidence.matcher.concepts, retriever.vocabulary.equivalents)
    terms = (built.text or " ".join(c.text for c in evidence.matcher.concepts if not c.is_finding) or question).replace(
        '"', "'"
    )
    command = f'medcite ingest pubmed --query "{terms}"'
    # A patient gets no ingest command (and no echo of their words in a query for an outside service).
    listed = CLOSEST_TEXT if closest else ""
    if audience == "patient":
        text = PATIENT_ABSTENTION_TEXT.format(closest=listed)
    else:
        text = ABSTENTION_TEXT.format(closest=listed, command=command)
    if reason:
        text = f"{reason} {text}"
    sections = []
    if audience == "patient" and has_red_flag(question):
        sections.append(_emergency_section())
    if excluded is not None:
        sections.append(AnswerSection(title=SCOPE_TITLE, statements=[statement_of(excluded, [1])]))
    del retriever
    answer = Answer(
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
    if excluded is not None:
        check_citations(answer, closest, strict=True, uncited=(EMERGENCY_ADVICE,))
    return answer


# --- The main job ----------------------------------------------------------------------------------------------


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
    """Answer a question from the library: retrieve, compose, check every citation, abstain when not covered.

    Args:
        question: A clinical question in plain words, shorthand or a case vignette.
        retriever: The library's retriever (lexical, or hybrid with an embedder).
        audience: 'clinician' (default), 'student' or 'patient'.
        follow_up_of: The earlier answer when ``question`` follows it up (e.g. "What about in pregnancy?"):
            retrieval keeps the earlier question's topic and the answer records the earlier id.
        composer: 'extractive' (default, deterministic) or 'llm' (``compose.llm.compose_llm``: the model
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
    if not question or not question.strip():
        raise QueryError("The question is empty; type a question or some search words.")
    started = time.perf_counter()
    evidence = retrieve_evidence(question, retriever=retriever, follow_up_of=follow_up_of)
    retrieved_s = time.perf_counter() - started
    answer = compose_answer(question, evidence, retriever=retriever, audience=audience, follow_up_of=follow_up_of)
    if composer == "llm" and llm is not None:
        from medcite.compose.llm import compose_llm
        from medcite.verify import Verifier

        answer = compose_llm(
            question,
            evidence,
            answer,
            client=llm,
            audience=audience,
            verifier=Verifier(retriever.embedder),
            on_event=on_event,
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


def stream_answer(
    question: str,
    *,
    retriever: Retriever,
    client: LLMClient,
    audience: Audience = "clinician",
    follow_up_of: Answer | None = None,
    verifier: Verifier | None = None,
) -> Iterator[ComposeEvent]:
    """Answer a question with the language model as a stream of events (for server-sent events).

    Retrieval and the extractive answer are those of ``ask``. Each event serialises with
    ``event.model_dump_json()``: 'status' and 'delta' events as they come, the final 'answer' event last.

    Args:
        question: A clinical question.
        retriever: The library's retriever.
        client: The model server client.
        audience: 'clinician', 'student' or 'patient'.
        follow_up_of: The earlier answer when ``question`` follows it up.
        verifier: The support checker; default ``Verifier(retriever.embedder)``.

    Yields:
        'status', then 'delta' events, then one 'answer' event with ``timings_ms`` filled in.

    Raises:
        QueryError: The question is empty or has nothing to search for.
    """
    from medcite.compose.llm import iter_compose_llm
    from medcite.models import ComposeEvent
    from medcite.verify import Verifier

    if not question or not question.strip():
        raise QueryError("The question is empty; type a question or some search words.")
    started = time.perf_counter()
    yield ComposeEvent(kind="status", text="Searching the library")
    evidence = retrieve_evidence(question, retriever=retriever, follow_up_of=follow_up_of)
    retrieved_ms = (time.perf_counter() - started) * 1000
    extractive = compose_answer(question, evidence, retriever=retriever, audience=audience, follow_up_of=follow_up_of)
    for event in iter_compose_llm(
        question,
        evidence,
        extractive,
        client=client,
        audience=audience,
        verifier=verifier or Verifier(retriever.embedder),
    ):
        if event.answer is not None:
            total_ms = (time.perf_counter() - started) * 1000
            timings = Timings(
                retrieval=round(retrieved_ms, 2),
                composition=round(max(total_ms - retrieved_ms, 0.0), 2),
                total=round(total_ms, 2),
            )
            event = event.model_copy(update={"answer": event.answer.model_copy(update={"timings_ms": timings})})
        yield event


# --- Saved answers ---------------------------------------------------------------------------------------------


def save_answer(store: Store, answer: Answer) -> None:
    """Save an answer in the library under its id (replacing an earlier save), for later follow-ups.

    Raises:
        StoreError: The write failed (e.g. the answer follows up an id that is not saved).
    """
    store.save_answer(answer.id, answer.question, answer.audience, answer.follow_up_of, answer.model_dump_json())


def mark_removed_references(answer: Answer, store: Store) -> Answer:
    """Return ``answer`` with ``removed`` set on each reference whose document is no longer in the library.

    A saved answer or an article keeps the passage it quoted; the mark tells the reader that its source was
    removed since (``medcite library remove``, a PubMed ``DeleteCitation``).
    """
    if not answer.references:
        return answer
    held = store.existing_documents([ref.doc_id for ref in answer.references])
    if all(ref.removed == (ref.doc_id not in held) for ref in answer.references):
        return answer
    marked = [ref.model_copy(update={"removed": ref.doc_id not in held}) for ref in answer.references]
    return answer.model_copy(update={"references": marked})


def load_answer(store: Store, answer_id: str) -> Answer:
    """Return the answer saved under ``answer_id``, its references whose document was removed since marked.

    Raises:
        NotFound: No answer with this id is saved in the library (exit code 4).
        StoreError: The saved JSON no longer fits the ``Answer`` model.
    """
    data = store.get_answer(answer_id.strip())[3]
    try:
        return mark_removed_references(Answer.model_validate_json(data), store)
    except ValueError as exc:
        raise StoreError(
            f"The saved answer {answer_id} cannot be read by this medcite ({exc.__class__.__name__}); "
            "ask the earlier question again."
        ) from exc
