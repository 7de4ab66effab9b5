"""Evidence -> Answer with a language model: prose statements, each verified against the passages it cites.

The optional LLM composer. The model sees only the question and the evidence set (each passage labelled
``S1``, ``S2``, ...; ``llm.build_messages``) and returns a ``Draft`` (bottom line and sections of cited
statements). Before anything is shown, every statement is checked: one that cites a label outside the
evidence set, cites nothing, or is not supported by its cited passages (``verify.Verifier``) is dropped
and listed in ``Answer.verification``; references are numbered in order of first citation, as the
extractive composer numbers them. On any failure (timeout, HTTP error, refusal, empty or malformed
output, an unsupported bottom line, nothing left after verification) the extractive answer is returned
with a ``notice`` saying why; a reply cut off at ``max_tokens`` keeps the statements it completed, with a
notice (``CUT_OFF_NOTICE``). ``stream_answer`` yields ``ComposeEvent`` objects for a progress line or
server-sent events (``answer.stream_answer``). The extractive answer (fallback, abstention, emergency advice)
is composed first by the caller and passed in. This module imports ``compose.checks``, ``compose.evidence``,
``llm``, ``verify``, ``models`` and ``errors``; never ``answer``, ``render``, ``web`` or ``cli``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence

from medcite.compose.checks import reading_grade, reference_for
from medcite.compose.evidence import Evidence
from medcite.errors import CitationError, LLMError
from medcite.llm import Draft, DraftStatement, DraftStream, LLMClient, build_messages, source_label
from medcite.models import (
    EMERGENCY_SECTION,
    Answer,
    AnswerSection,
    Audience,
    BottomLine,
    ComposeEvent,
    DroppedStatement,
    Hit,
    Reference,
    Statement,
    Timings,
    Verification,
)
from medcite.verify import Verifier, estimate_precision

__all__ = [
    "CUT_OFF_NOTICE",
    "FALLBACK_NOTICE",
    "LLM_DISCLAIMER",
    "MAX_SECTION_TITLE_CHARS",
    "MAX_SOURCES",
    "compose_llm",
    "iter_compose_llm",
    "select_sources",
]

LLM_DISCLAIMER = (
    "medcite is for education and decision support; it does not replace professional judgement. "
    "The statements were written by a language model from the cited sources and checked automatically "
    "against them; read the cited passages before acting. Educational content pending human review."
)
FALLBACK_NOTICE = (
    "The language model's answer could not be used ({why}); this is the extractive answer, quoted from the sources."
)
CUT_OFF_NOTICE = (
    "The language model's answer was cut off at {max_tokens} tokens: the statements it completed were checked and "
    "are shown; raise MEDCITE_LLM_MAX_TOKENS for a complete answer."
)
MAX_SOURCES = 14
"""Passages shown to the model at most: the retrieved ones first, then those the extractive answer cites."""
MAX_SECTION_TITLE_CHARS = 60


def select_sources(hits: Sequence[Hit], extra_passage_ids: frozenset[str], extractive: Answer) -> list[Hit]:
    """Choose the passages the model may cite: retrieved hits first, then those the extractive answer cites.

    Args:
        hits: The evidence set, best first.
        extra_passage_ids: Passages of ``hits`` that were added as document neighbours, not retrieved.
        extractive: The extractive answer composed from ``hits``.

    Returns:
        At most ``MAX_SOURCES`` hits, without repeats, in that order.
    """
    cited = {reference.passage_id for reference in extractive.references}
    chosen = [h for h in hits if h.passage_id not in extra_passage_ids][: MAX_SOURCES - min(len(cited), 4)]
    for hit in hits:
        if hit.passage_id in cited and hit not in chosen:
            chosen.append(hit)
    return chosen[:MAX_SOURCES]


def _fallback(extractive: Answer, why: str, verification: Verification | None = None) -> Answer:
    return extractive.model_copy(
        update={"notice": FALLBACK_NOTICE.format(why=why.rstrip(".")), "verification": verification}
    )


def _why(error: LLMError) -> str:
    reasons = {
        "timeout": "the model server did not answer in time",
        "connection": "the model server could not be reached",
        "disconnected": "the connection to the model server broke mid-answer",
        "http": "the model server returned an error",
        "refusal": "the model declined to answer",
        "empty": "the model returned no readable answer",
        "truncated": "the model's answer was cut off",
        "malformed": "the model's output was not valid JSON of the answer's shape",
    }
    return reasons.get(error.reason, str(error))


def _check_structure(answer: Answer, sources: Sequence[Hit]) -> None:
    """Raise CitationError unless every reference is a source with its exact text and every citation resolves."""
    by_id = {hit.passage_id: hit for hit in sources}
    for position, reference in enumerate(answer.references, start=1):
        hit = by_id.get(reference.passage_id)
        if reference.n != position or hit is None or hit.text != reference.passage:
            raise CitationError(f"Answer {answer.id}: reference {reference.n} does not resolve to its passage.")
    citations = [answer.bottom_line.citations] + [s.citations for sec in answer.sections for s in sec.statements]
    for numbers in citations:
        if any(n < 1 or n > len(answer.references) for n in numbers):
            raise CitationError(f"Answer {answer.id} cites a reference number outside 1..{len(answer.references)}.")


def iter_compose_llm(
    question: str,
    evidence: Evidence,
    extractive: Answer,
    *,
    client: LLMClient,
    audience: Audience = "clinician",
    verifier: Verifier,
) -> Iterator[ComposeEvent]:
    """Compose an answer with the language model, yielding progress; the last event carries the answer.

    An abstention is returned as is, without calling the model.

    Args:
        question: The question as asked.
        evidence: The evidence set (``answer.retrieve_evidence``).
        extractive: The extractive answer composed from it (fallback, abstention, emergency advice).
        client: The model server client.
        audience: 'clinician', 'student' or 'patient'.
        verifier: The support checker (``verify.Verifier``).

    Yields:
        'status' and 'delta' events while the model writes, then one 'answer' event whose answer has
        ``composer='llm'`` and ``verification`` set, or is the extractive answer with a ``notice``.

    Raises:
        CitationError: A kept citation does not resolve (a bug; never expected).
    """
    started = time.perf_counter()
    if extractive.abstained:
        yield ComposeEvent(kind="answer", answer=extractive)
        return
    sources = select_sources(evidence.hits, evidence.extra_ids, extractive)
    messages = build_messages(question, sources, audience=audience)
    yield ComposeEvent(kind="status", text=f"Asking {client.model} to write from {len(sources)} passages")
    reply = DraftStream(client.stream(messages, schema=Draft.model_json_schema(), schema_name="medcite_answer"))
    try:
        for piece in reply:
            yield ComposeEvent(kind="delta", text=piece, n_chars=reply.n_chars)
        draft = reply.draft()  # a reply cut off at max_tokens keeps the statements it completed
    except LLMError as error:
        yield ComposeEvent(kind="answer", answer=_fallback(extractive, _why(error)))
        return
    yield ComposeEvent(kind="status", text="Checking every statement against its cited passages")
    answer = _verified_answer(draft, extractive, sources, client.model, verifier, audience)
    if answer.composer == "llm":
        _check_structure(answer, sources)
        if reply.cut_off:
            answer = answer.model_copy(update={"notice": CUT_OFF_NOTICE.format(max_tokens=client.max_tokens)})
    elapsed_ms = (time.perf_counter() - started) * 1000
    answer = answer.model_copy(update={"timings_ms": Timings(composition=round(elapsed_ms, 2))})
    yield ComposeEvent(kind="answer", answer=answer)


def _verified_answer(
    draft: Draft, extractive: Answer, sources: Sequence[Hit], model: str, verifier: Verifier, audience: Audience
) -> Answer:
    """Verify the draft's statements and build the answer, or return the extractive fallback."""
    by_label = {source_label(n): hit for n, hit in enumerate(sources, start=1)}
    drafted: list[tuple[str | None, DraftStatement]] = [(None, draft.bottom_line)]
    drafted += [(section.title, statement) for section in draft.sections for statement in section.statements]
    drafted = [(title, s) for title, s in drafted if s.text.strip() or s.citations]
    dropped: list[DroppedStatement] = []
    to_check: list[tuple[int, str, list[str]]] = []
    for position, (_title, statement) in enumerate(drafted):
        labels = list(dict.fromkeys(label.strip() for label in statement.citations))
        unknown = [label for label in labels if label not in by_label]
        if unknown:
            reasons = [f"cites {label}, which is not one of the sources" for label in unknown]
            dropped.append(DroppedStatement(text=statement.text, citations=labels, reasons=reasons))
        elif not labels:
            dropped.append(DroppedStatement(text=statement.text, citations=[], reasons=["cites no source"]))
        else:
            to_check.append((position, statement.text.strip(), labels))
    checks = verifier.check_many([(text, [by_label[label].text for label in labels]) for _, text, labels in to_check])
    kept: dict[int, tuple[str, list[str], float]] = {}
    for (position, text, labels), check in zip(to_check, checks, strict=True):
        if check.is_supported:
            kept[position] = (text, labels, check.score)
        else:
            dropped.append(DroppedStatement(text=text, citations=labels, reasons=check.reasons))
    # A statement citing several sources keeps those that support it on their own (all, when none does alone).
    several = [(position, label) for position, (_, labels, _) in kept.items() if len(labels) > 1 for label in labels]
    alone = verifier.check_many([(kept[position][0], [by_label[label].text]) for position, label in several])
    for position in {position for position, _ in several}:
        text, labels, score = kept[position]
        useful = [
            label for (p, label), check in zip(several, alone, strict=True) if p == position and check.is_supported
        ]
        kept[position] = (text, useful or labels, score)
    verification = Verification(
        model=model,
        n_statements_kept=len(kept),
        n_statements_dropped=len(dropped),
        estimated_citation_precision=estimate_precision([score for _, _, score in kept.values()], verifier.calibration),
        threshold=verifier.threshold,
        dropped=dropped,
    )
    if not drafted or not drafted[0][1].text.strip():
        return _fallback(extractive, "the model found no answer in the sources", verification)
    if 0 not in kept:
        return _fallback(extractive, "the model's bottom line was not supported by its cited sources", verification)

    references: list[Reference] = []
    number_of: dict[str, int] = {}

    def cite(labels: list[str]) -> list[int]:
        numbers = []
        for label in labels:
            hit = by_label[label]
            if hit.passage_id not in number_of:
                number_of[hit.passage_id] = len(references) + 1
                references.append(reference_for(len(references) + 1, hit))
            if number_of[hit.passage_id] not in numbers:
                numbers.append(number_of[hit.passage_id])
        return numbers

    bottom_text, bottom_labels, _ = kept[0]
    bottom_citations = cite(bottom_labels)
    bottom = BottomLine(
        text=bottom_text,
        citations=bottom_citations,
        statements=[Statement(text=bottom_text, citations=bottom_citations)],
    )
    grouped: dict[str, list[Statement]] = {}
    for position, (title, _statement) in enumerate(drafted):
        if position == 0 or position not in kept:
            continue
        text, labels, _ = kept[position]
        heading = " ".join((title or "Key points").split())[:MAX_SECTION_TITLE_CHARS] or "Key points"
        grouped.setdefault(heading, []).append(Statement(text=text, citations=cite(labels)))
    sections = [s for s in extractive.sections if s.title == EMERGENCY_SECTION]  # product advice, kept
    sections += [AnswerSection(title=title, statements=statements) for title, statements in grouped.items()]
    texts = [bottom.text] + [s.text for section in sections for s in section.statements]
    key = f"{extractive.id}\nllm {model}"
    return extractive.model_copy(
        update={
            "id": hashlib.sha256(key.encode("utf-8")).hexdigest()[:16],
            "bottom_line": bottom,
            "sections": sections,
            "references": references,
            "reading_grade": reading_grade(texts) if audience == "patient" else None,
            "disclaimer": LLM_DISCLAIMER,
            "composer": "llm",
            "verification": verification,
            "notice": None,
        }
    )


def compose_llm(
    question: str,
    evidence: Evidence,
    extractive: Answer,
    *,
    client: LLMClient,
    audience: Audience = "clinician",
    verifier: Verifier,
    on_event: Callable[[ComposeEvent], None] | None = None,
) -> Answer:
    """Compose an answer with the language model (``iter_compose_llm`` run to its end); calls the network.

    Args:
        question: The question as asked.
        evidence: The evidence set.
        extractive: The extractive answer composed from it.
        client: The model server client.
        audience: 'clinician', 'student' or 'patient'.
        verifier: The support checker.
        on_event: Called with each 'status' and 'delta' event (a progress line).

    Returns:
        The verified LLM answer, or the extractive answer with a ``notice`` saying why the model's was not used.

    Raises:
        CitationError: A kept citation does not resolve (a bug; never expected).
    """
    for event in iter_compose_llm(question, evidence, extractive, client=client, audience=audience, verifier=verifier):
        if event.answer is not None:
            return event.answer
        if on_event is not None:
            on_event(event)
    raise AssertionError("iter_compose_llm ended without an answer")  # pragma: no cover
