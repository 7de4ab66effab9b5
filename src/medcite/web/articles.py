"""Routes for asking and reading.

The home page, the ask form, article pages, the editorial policy and API docs, and the articles API (create,
stream, read).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from medcite import review
from medcite.citations import EXTENSIONS, MEDIA_TYPES, answer_citations
from medcite.errors import (
    MedciteError,
)
from medcite.models import Audience
from medcite.review import Article
from medcite.settings import Settings
from medcite.web.common import (
    CSRF_HEADER,
    ArticleId,
    AskRequest,
    StreamRequest,
    _audience,
    _caller,
    _check_csrf,
    _form,
    _form_audience,
    _int,
    _limit,
    _may,
    _model,
    _page,
    _sse,
    _submit,
    _web,
)


def router(settings: Settings) -> APIRouter:
    """The articles routes, on ``settings``."""
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request) -> HTMLResponse:
        approved = review.approved_articles(_web(request).store, limit=20)
        return _page(
            request,
            "index.html",
            approved=list(reversed(approved)),
            llm_model=settings.llm_model if _web(request).model else None,
        )

    @router.post("/ask", include_in_schema=False)
    async def ask_form(request: Request) -> Response:
        form = await _form(request)
        caller = _caller(request)
        _check_csrf(request, caller, form.get("csrf_token"), always=True)
        _limit(request, settings.web_ask_rate_limit, "ask")
        follow = form.get("follow_up_of")
        article = await _submit(
            request,
            form.get("question", ""),
            audience=_form_audience(form.get("audience")),
            follow_up_of=_int(follow, "follow_up_of") if follow else None,
            author=caller.user,
            composer="llm" if form.get("composer") == "llm" else "extractive",
            pubmed=form.get("pubmed") == "on",
        )
        return RedirectResponse(f"{article.url}?audience={article.audience}", status_code=303)

    @router.get("/articles/{article_id}", include_in_schema=False)
    async def article_short(request: Request, article_id: ArticleId, audience: str | None = None) -> Response:
        article = review.get_article(_web(request).store, article_id, viewer=_caller(request).user)
        query = f"?audience={_audience(audience)}" if audience else ""  # the reader's audience survives the redirect
        return RedirectResponse(article.url + query, status_code=301)

    @router.get("/articles/{article_id}/{slug}", response_class=HTMLResponse, include_in_schema=False)
    async def article_page(request: Request, article_id: ArticleId, slug: str, audience: str | None = None) -> Response:
        caller = _caller(request)
        store = _web(request).store
        article = review.get_article(
            store,
            article_id,
            audience=_audience(audience) if audience else None,
            viewer=caller.user,
            approvals_needed=settings.review_approvals,
        )
        if slug != article.url.rsplit("/", 1)[1]:
            query = f"?audience={article.audience}" if audience else ""
            return RedirectResponse(article.url + query, status_code=301)
        own = next(item for item in article.reviews if item.audience == article.audience)
        return _page(
            request,
            "article.html",
            article=article,
            own_review=own,
            me=caller.user.username if caller.user else None,
            edited={edit.location: edit for edit in article.edits},
            statements=review.statement_locations(article.answer) if _may(caller.user, "reviewer") else [],
            may_review=_may(caller.user, "reviewer"),
            may_unpublish=_may(caller.user, "editor"),
        )

    @router.get("/policy", response_class=HTMLResponse, include_in_schema=False)
    async def policy(request: Request) -> HTMLResponse:
        return _page(request, "policy.html")

    @router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        return _page(request, "docs.html", schema=request.app.openapi())

    @router.post("/api/articles", status_code=201, response_model=Article, tags=["articles"])
    async def create_article(request: Request, body: AskRequest) -> Article:
        """Ask a question: scrub identifiers, answer for every audience, store a new 'submitted' article."""
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        _limit(request, settings.web_ask_rate_limit, "ask")
        return await _submit(
            request,
            body.question,
            audience=body.audience,
            follow_up_of=body.follow_up_of,
            author=caller.user,
            composer=body.composer,
            pubmed=body.pubmed,
        )

    @router.post(
        "/api/answers/stream",
        response_class=StreamingResponse,
        tags=["articles"],
        responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
    )
    async def stream_answer(request: Request, body: StreamRequest) -> StreamingResponse:
        """Answer a question as server-sent events without creating an article (scrubbed, rate-limited as asks).

        Events: `status` and `delta` (`ComposeEvent` JSON: a progress sentence, or text the model just
        wrote with `n_chars` so far), then one `answer` event whose `answer` is the full answer JSON; an
        `error` event (`{"ok": false, "error", "status"}`) ends a stream that failed after it began.
        POST, not GET, so the question never appears in a URL or an access log.
        """
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        _limit(request, settings.web_ask_rate_limit, "ask")
        model = _model(request, body.composer)
        if model is None:
            events = review.answer_events(_web(request).retriever, body.question, audience=body.audience)
        else:
            events = await model.run(
                lambda _store, retriever: review.answer_events(
                    retriever, body.question, audience=body.audience, composer="llm", llm=model.client
                )
            )

        async def frames() -> AsyncIterator[bytes]:
            try:
                while True:
                    event = next(events, None) if model is None else await model.next_event(events)
                    if event is None:
                        return
                    yield _sse(event.kind, event.model_dump_json())
            except MedciteError as exc:
                error = {"ok": False, "error": str(exc), "status": exc.http_status}
                yield _sse("error", json.dumps(error))

        return StreamingResponse(frames(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    @router.get("/api/articles/{article_id}", response_model=Article, tags=["articles"])
    async def read_article(request: Request, article_id: ArticleId, audience: Audience | None = None) -> Article:
        """Return an article with its current answer for `audience` (default: the asker's)."""
        return review.get_article(
            _web(request).store,
            article_id,
            audience=audience,
            viewer=_caller(request).user,
            approvals_needed=settings.review_approvals,
        )

    @router.get(
        "/api/articles/{article_id}/citations",
        response_class=Response,
        tags=["articles"],
        responses={200: {"content": {media: {} for media in set(MEDIA_TYPES.values())}}},
    )
    async def article_citations(
        request: Request,
        article_id: ArticleId,
        format: Literal["ama", "vancouver", "ris", "bibtex", "csl-json"] = "ris",  # noqa: A002 - the query name
        audience: Audience | None = None,
    ) -> Response:
        """Download the references of an article's answer (for `audience`) as citations.

        AMA or Vancouver text, RIS, BibTeX or CSL-JSON, as a file `article-{id}-{audience}.{txt|ris|bib|json}`.
        """
        web = _web(request)
        article = review.get_article(web.store, article_id, audience=audience, viewer=_caller(request).user)
        text = answer_citations(web.store, article.answer, format)
        name = f"article-{article.id}-{article.audience}.{EXTENSIONS[format]}"
        return Response(
            text if text.endswith("\n") else text + "\n",
            media_type=MEDIA_TYPES[format],
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    return router
