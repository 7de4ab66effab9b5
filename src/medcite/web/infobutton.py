"""The HL7 Infobutton route (URL-based): ``GET /infobutton?mainSearchCriteria.v.c=...`` (``medcite.infobutton``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from medcite import review
from medcite.errors import MedciteError, RateLimited
from medcite.infobutton import (
    FeedEntry,
    KnowledgeRequest,
    atom_feed,
    concept_name,
    json_feed,
    parse_request,
    question_for,
)
from medcite.settings import Settings
from medcite.store.review import ReviewStore
from medcite.web.common import _limit, _web

ATOM_TYPE = "application/atom+xml; charset=utf-8"
MAX_RELATED = 5


def router(settings: Settings) -> APIRouter:
    """The Infobutton route, on ``settings``."""
    router = APIRouter()

    @router.get(
        "/infobutton",
        tags=["infobutton"],
        response_class=Response,
        responses={200: {"content": {"application/atom+xml": {}, "application/json": {}}}},
    )
    async def infobutton(request: Request) -> Response:
        """HL7 Infobutton knowledge request (URL-based implementation guide, Release 4).

        Parameters as the guide names them: `mainSearchCriteria.v.c`, `.v.cs` (an OID; ICD-10-CM codes are read
        from the code list), `.v.dn`, `informationRecipient` (PROV or PAT), `taskContext.c.c`,
        `patientPerson.administrativeGenderCode.c`, `age.v.v` and `age.v.u`, `knowledgeResponseType`
        (`text/xml`, `application/atom+xml` or `application/json`). Answers with an Atom feed (or its JSON form)
        listing medcite articles, the one for the request's question first (asked now when there is none).
        Errors: 400 (unreadable request), 404 (an unknown code), in the format asked for.
        """
        params = dict(request.query_params)
        base_url = str(request.base_url)
        as_json = (params.get("knowledgeResponseType") or "").strip().lower() == "application/json"
        try:
            knowledge = parse_request(params)
            concept = concept_name(knowledge)
            entries = _entries(request, knowledge, concept, base_url)
        except MedciteError as exc:
            status = 404 if exc.http_status == 404 else 400 if exc.http_status in (400, 422) else exc.http_status
            headers = {"retry-after": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
            if as_json:
                body = {"ok": False, "error": str(exc), "status": status}
                return JSONResponse(body, status_code=status, headers=headers)
            feed = atom_feed(None, [], base_url=base_url, error=str(exc))
            return Response(feed, status, headers=headers, media_type=ATOM_TYPE)
        if knowledge.response_type == "json":
            return JSONResponse(json_feed(knowledge, entries, base_url=base_url))
        return Response(atom_feed(knowledge, entries, base_url=base_url), media_type=ATOM_TYPE)

    def _entries(request: Request, knowledge: KnowledgeRequest, concept: str, base_url: str) -> list[FeedEntry]:
        web = _web(request)
        reviews = ReviewStore(web.store)
        question = question_for(knowledge, concept)
        asked = review.prepare_question(question).text  # as stored: scrubbed and cleaned
        same = reviews.find_article_asked(asked)
        if same is not None:
            first_id = same.article_id
        else:  # ask it now, as the ask form does (scrubbed, rate-limited, pending review)
            _limit(request, settings.web_ask_rate_limit, "ask")
            first_id = review.submit_article(web.store, web.retriever, question, audience=knowledge.audience).id
        related = reviews.find_articles(concept.split(",")[0].strip(), limit=MAX_RELATED + 1)
        chosen: list[int] = [first_id] + [row.article_id for row in related if row.article_id != first_id]
        return [_entry(web.store, article_id, knowledge, base_url) for article_id in chosen[: MAX_RELATED + 1]]

    def _entry(store, article_id: int, knowledge: KnowledgeRequest, base_url: str) -> FeedEntry:
        article = review.get_article(store, article_id, audience=knowledge.audience)
        summary = article.answer.bottom_line.text
        return FeedEntry(
            title=article.question,
            url=f"{base_url.rstrip('/')}{article.url}?audience={article.audience}",
            summary=summary if len(summary) <= 600 else summary[:600].rsplit(" ", 1)[0] + " …",
            updated=article.updated_at,
            id=f"{base_url.rstrip('/')}{article.url}",
        )

    return router
