"""Issue 16: the server listens at once on a library without vectors, embeds in the background, says so in /readyz."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi.testclient import TestClient

import medcite.web.app as web_app
from medcite.embed import HashEmbedder
from medcite.index import default_guideline_pack, ingest
from medcite.settings import Settings
from medcite.store import HEAD_REVISION, Store

GOUT = "What is the first-line treatment for an acute gout flare?"


class SlowEmbedder(HashEmbedder):
    """A real (hashing) embedder made slow on purpose: 0.5 s a batch, over 5 s for the default library."""

    def embed(self, texts):
        time.sleep(0.5)
        return super().embed(texts)


def test_serve_answers_at_once_and_switches_to_hybrid_when_vectors_are_ready(tmp_path: Path, monkeypatch, caplog):
    settings = Settings(library=tmp_path / "library.db", embedder="none")
    with Store.open(settings.library) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        total = store.count_missing_vectors("hash-32")
    assert total > 128 * 10  # more than 10 batches: over 5 s of embedding
    monkeypatch.setattr(web_app, "_load_embedder", lambda _settings: SlowEmbedder(32))
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    server_log = logging.getLogger("uvicorn.error")  # uvicorn's own config may stop it propagating to the root
    server_log.addHandler(caplog.handler)
    started = time.monotonic()
    with TestClient(web_app.create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        answered = client.post("/api/articles", json={"question": GOUT})
        assert answered.status_code == 201 and not answered.json()["answer"]["abstained"]
        assert time.monotonic() - started < 5
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["schema"] == HEAD_REVISION
        assert ready["vectors"]["state"] == "pending" and ready["vectors"]["total"] == total
        assert client.app.state.web.retriever.default_mode == "lexical"
        deadline = time.monotonic() + 120
        while client.get("/readyz").json()["vectors"]["state"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
        vectors = client.get("/readyz").json()["vectors"]
        assert vectors["state"] == "ready" and vectors["done"] == total
        assert client.app.state.web.retriever.default_mode == "hybrid"
        assert client.post("/api/articles", json={"question": GOUT}).status_code == 201
    server_log.removeHandler(caplog.handler)
    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith(f"Embedding {total} passages with hash-32 in the background") for line in lines)
    assert any(line.startswith("Embedding: ") and f"/ {total} passages" in line for line in lines)
    assert any(line.startswith("Passage vectors ready") for line in lines)


def test_a_second_start_is_ready_at_once(tmp_path: Path, monkeypatch):
    settings = Settings(library=tmp_path / "library.db", embedder="none")
    monkeypatch.setattr(web_app, "_load_embedder", lambda _settings: HashEmbedder(32))
    with TestClient(web_app.create_app(settings)) as client:  # fills the new library, embeds it (fast)
        deadline = time.monotonic() + 120
        while client.get("/readyz").json()["vectors"]["state"] != "ready" and time.monotonic() < deadline:
            time.sleep(0.2)
    with TestClient(web_app.create_app(settings)) as client:
        assert client.get("/readyz").json()["vectors"] == {"state": "ready", "embedder": "hash-32"}
        assert client.app.state.web.retriever.default_mode == "hybrid"
