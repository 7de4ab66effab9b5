"""Routes of the library's Sources page for reviewers.

A searchable list of documents, one document's passages and the articles citing it (pages and API).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from medcite import review
from medcite.models import DocumentSummary
from medcite.settings import Settings
from medcite.web.common import _caller, _page, _web

SearchText = Annotated[str | None, Query(max_length=200, description="Words of the title, or a document id.")]
Filter = Annotated[str | None, Query(max_length=40)]


def router(settings: Settings) -> APIRouter:
    """The sources routes, on ``settings``."""
    router = APIRouter()

    @router.get("/sources", response_class=HTMLResponse, include_in_schema=False)
    async def sources_page(
        request: Request, q: SearchText = None, kind: Filter = None, evidence_type: Filter = None
    ) -> HTMLResponse:
        caller = _caller(request)
        store = _web(request).store
        documents = review.list_sources(store, caller.user, kind=kind, evidence_type=evidence_type, query=q)
        stats = store.stats()
        return _page(
            request,
            "sources.html",
            documents=documents,
            q=q or "",
            kind=kind or "",
            evidence_type=evidence_type or "",
            kinds=sorted(stats.by_kind),
            evidence_types=sorted(stats.by_evidence_type),
        )

    @router.get("/sources/{doc_id:path}", response_class=HTMLResponse, include_in_schema=False)
    async def source_page(request: Request, doc_id: str) -> HTMLResponse:
        detail = review.source_detail(_web(request).store, _caller(request).user, doc_id)
        return _page(request, "source.html", detail=detail)

    @router.get("/api/sources", response_model=list[DocumentSummary], tags=["library"])
    async def list_sources(
        request: Request, q: SearchText = None, kind: Filter = None, evidence_type: Filter = None
    ) -> list[DocumentSummary]:
        """List the library's documents (reviewers).

        At most 200, in id order, filtered by kind, evidence type and title words (`q`).
        """
        return review.list_sources(
            _web(request).store, _caller(request).user, kind=kind, evidence_type=evidence_type, query=q
        )

    @router.get("/api/sources/{doc_id:path}", response_model=review.SourceDetail, tags=["library"])
    async def get_source(request: Request, doc_id: str) -> review.SourceDetail:
        """One document with its passages and the articles citing it (reviewers); 404 when there is none."""
        return review.source_detail(_web(request).store, _caller(request).user, doc_id)

    return router
