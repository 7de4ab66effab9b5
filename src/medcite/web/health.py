"""Liveness and readiness for container platforms, and the background embedding a first start needs.

``GET /healthz`` answers 200 while the process serves requests (Kubernetes' liveness probe). ``GET /readyz``
answers 200 when the library is open at the schema this medcite knows, with the state of the passage vectors:
``ready``, ``pending`` (being computed in the background: search is lexical meanwhile; ``done``/``total``
passages), ``none`` (no embedder installed or configured: lexical search) or ``failed`` (lexical search; the
error is given). 503 when the library cannot be read. A new library's vectors take over a minute on a small
machine (issue 16), so the server listens first and embeds on a thread of its own (``embed_in_background``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from medcite.retrieve import Retriever
from medcite.settings import Settings
from medcite.store import DATABASE_ERRORS, HEAD_REVISION, Store
from medcite.web.common import _web

LOG = logging.getLogger("uvicorn.error")
"""uvicorn's server log, so the lines show where a hospital engineer watches ``medcite serve``."""
PROGRESS_EVERY = 0.1
"""Log the embedding's progress at every this share (0-1) of the passages."""


class _Stopped(Exception):
    """The server is shutting down: stop embedding (the batches written so far are kept)."""


def embed_in_background(web: Any, embedder: Any, total: int, stop: threading.Event) -> threading.Thread:
    """Compute the ``total`` missing passage vectors on a daemon thread, then switch ``web.retriever`` to hybrid.

    ``web.vectors`` (a dict: ``state``, ``embedder``, ``done``, ``total``, ``per_s``) says how far it is; each
    batch is one transaction on the thread's own library connection, so a stop loses nothing written.
    """
    from medcite.retrieve.dense import embed_passages

    web.vectors = {"state": "pending", "embedder": embedder.name, "done": 0, "total": total, "per_s": None}
    LOG.info("Embedding %d passages with %s in the background; search is lexical until they are ready.",
             total, embedder.name)  # fmt: skip
    started = time.perf_counter()
    logged = [0.0]

    def progress(done: int, _total: int) -> None:
        if stop.is_set():
            raise _Stopped
        rate = done / max(time.perf_counter() - started, 1e-6)
        web.vectors.update(done=done, per_s=round(rate, 1))
        if total and done / total - logged[0] >= PROGRESS_EVERY:
            logged[0] = done / total
            LOG.info("Embedding: %d / %d passages (%.0f a second).", done, total, rate)

    def run() -> None:
        try:
            with Store.for_settings(web.settings) as own:
                embed_passages(own, embedder, on_progress=progress)
            web.retriever = Retriever(web.store, web.settings, embedder=embedder)
            web.vectors["state"] = "ready"
            LOG.info("Passage vectors ready (%.0f s): search is hybrid.", time.perf_counter() - started)
        except _Stopped:
            web.vectors["state"] = "pending"
        except Exception as error:  # noqa: BLE001 - any failure leaves lexical search working, and says so
            web.vectors.update(state="failed", error=f"{type(error).__name__}: {error}")
            LOG.error("Embedding the passages failed (%s); search stays lexical.", error)

    thread = threading.Thread(target=run, name="medcite-embed", daemon=True)
    thread.start()
    return thread


def router(settings: Settings) -> APIRouter:
    """``/healthz`` and ``/readyz``."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=True)
    def healthz() -> dict[str, str]:
        """Liveness: 200 while the process answers."""
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """Readiness: the library open at the current schema, and the state of the passage vectors."""
        web = _web(request)
        vectors = dict(web.vectors or {"state": "none"})
        try:
            passages = web.store.stats().passages
        except DATABASE_ERRORS as error:
            body = {"status": "unavailable", "library": f"cannot be read: {type(error).__name__}", "vectors": vectors}
            return JSONResponse(body, status_code=503)
        body = {"status": "ready", "library": "open", "schema": HEAD_REVISION, "passages": passages, "vectors": vectors}
        return JSONResponse(body)

    return router
