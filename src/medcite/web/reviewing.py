"""Routes of the review workflow.

Transitions and edits (forms and API), revisions and diffs, the review queue and the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medcite import review
from medcite.models import Audience
from medcite.review import Article, ArticleSummary, AuditEntry, RevisionInfo
from medcite.settings import Settings
from medcite.web.common import (
    CSRF_HEADER,
    MAX_ID,
    ArticleId,
    DiffResponse,
    EditRequest,
    RevisionNumber,
    TransitionRequest,
    _audience,
    _caller,
    _check_csrf,
    _form,
    _form_audience,
    _int,
    _page,
    _web,
)


def router(settings: Settings) -> APIRouter:
    """The reviewing routes, on ``settings``."""
    router = APIRouter()

    @router.post("/articles/{article_id}/transition", include_in_schema=False)
    async def transition_form(request: Request, article_id: ArticleId) -> Response:
        form = await _form(request)
        caller = _caller(request)
        _check_csrf(request, caller, form.get("csrf_token"), always=True)
        article = review.transition(
            _web(request).store,
            article_id,
            form.get("action", ""),
            revision=_int(form.get("revision"), "revision"),
            actor=caller.user,
            comment=form.get("comment", ""),
            audience=_form_audience(form.get("audience")) if form.get("audience") else None,
            approvals_needed=settings.review_approvals,
        )
        return RedirectResponse(f"{article.url}?audience={article.audience}", status_code=303)

    @router.post("/articles/{article_id}/edit", include_in_schema=False)
    async def edit_form(request: Request, article_id: ArticleId) -> Response:
        form = await _form(request)
        caller = _caller(request)
        _check_csrf(request, caller, form.get("csrf_token"), always=True)
        article = review.edit_statement(
            _web(request).store,
            article_id,
            revision=_int(form.get("revision"), "revision"),
            actor=caller.user,
            audience=_form_audience(form.get("audience")),
            location=form.get("location", ""),
            text=form.get("text", ""),
            note=form.get("note", ""),
            approvals_needed=settings.review_approvals,
        )
        return RedirectResponse(f"{article.url}?audience={article.audience}", status_code=303)

    @router.get("/articles/{article_id}/{slug}/revisions", response_class=HTMLResponse, include_in_schema=False)
    async def revisions_page(
        request: Request,
        article_id: ArticleId,
        slug: str,
        old: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        new: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        audience: str | None = None,
    ) -> HTMLResponse:
        caller = _caller(request)
        store = _web(request).store
        article = review.get_article(store, article_id, viewer=caller.user)
        history = review.revisions(store, article_id)
        reader = _audience(audience, article.audience)
        new = new or history[-1].revision
        old = old or max(1, new - 1)
        diff = review.revision_diff(store, article_id, old, new, audience=reader) if old != new else []
        return _page(
            request, "revisions.html", article=article, history=history, diff=diff, old=old, new=new, reader=reader
        )

    @router.get("/review", response_class=HTMLResponse, include_in_schema=False)
    async def review_queue(request: Request) -> HTMLResponse:
        caller = _caller(request)
        return _page(request, "review.html", queue=review.list_queue(_web(request).store, caller.user))

    @router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    async def audit_page(request: Request) -> HTMLResponse:
        caller = _caller(request)
        return _page(request, "audit.html", entries=review.audit_log(_web(request).store, caller.user))

    @router.post("/api/articles/{article_id}/transitions", response_model=Article, tags=["review"])
    async def transition(request: Request, article_id: ArticleId, body: TransitionRequest) -> Article:
        """Claim, request changes, approve or unpublish (reviewers; unpublish: editors). 403, 409 on errors."""
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        return review.transition(
            _web(request).store,
            article_id,
            body.action,
            revision=body.revision,
            actor=caller.user,
            comment=body.comment,
            audience=body.audience,
            approvals_needed=settings.review_approvals,
        )

    @router.post("/api/articles/{article_id}/edits", response_model=Article, tags=["review"])
    async def edit(request: Request, article_id: ArticleId, body: EditRequest) -> Article:
        """Replace one statement (new revision with author and time); 409 when `revision` is stale."""
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        return review.edit_statement(
            _web(request).store,
            article_id,
            revision=body.revision,
            actor=caller.user,
            audience=body.audience,
            location=body.location,
            text=body.text,
            note=body.note,
            approvals_needed=settings.review_approvals,
        )

    @router.get("/api/articles/{article_id}/revisions", response_model=list[RevisionInfo], tags=["review"])
    async def list_revisions(request: Request, article_id: ArticleId) -> list[RevisionInfo]:
        """Return the article's revisions, oldest first."""
        review.get_article(_web(request).store, article_id, viewer=_caller(request).user)
        return review.revisions(_web(request).store, article_id)

    @router.get("/api/articles/{article_id}/diff", response_model=DiffResponse, tags=["review"])
    async def diff(
        request: Request,
        article_id: ArticleId,
        old: RevisionNumber,
        new: RevisionNumber,
        audience: Audience = "clinician",
    ) -> Any:
        """Return a unified diff of one audience's answer between revisions `old` and `new`."""
        review.get_article(_web(request).store, article_id, viewer=_caller(request).user)
        lines = review.revision_diff(_web(request).store, article_id, old, new, audience=audience)
        return DiffResponse(old=old, new=new, audience=audience, lines=lines)

    @router.get("/api/review/queue", response_model=list[ArticleSummary], tags=["review"])
    async def queue(request: Request) -> list[ArticleSummary]:
        """Return submitted, changes-requested and under-review articles, oldest change first (reviewers)."""
        return review.list_queue(_web(request).store, _caller(request).user)

    @router.get("/api/audit", response_model=list[AuditEntry], tags=["review"])
    async def audit(
        request: Request, article_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
    ) -> list[AuditEntry]:
        """Return the audit log, newest first (editors and admins)."""
        return review.audit_log(_web(request).store, _caller(request).user, article_id=article_id)

    return router
