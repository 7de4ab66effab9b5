"""The web app's LLM composer choice and its server-sent-event stream, against a scripted local model server.

The scripted model (pytest-httpserver, helpers from ``test_llm``) answers with sentences of the real
passages medcite sends it; no clinical text is typed here. No network: the server listens on localhost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from medcite.compose.llm import LLM_DISCLAIMER
from medcite.errors import StoreError
from medcite.models import Answer, ComposeEvent
from medcite.web import create_app
from test_llm import _good_draft, _reply, _serve, _sources_of
from test_web_api import (  # noqa: F401
    GOUT,
    _ask,
    _csrf,
    _login,
    _settings,
    library,
    postgres_template,
    template_library,
)

FALLBACK_MALFORMED = (
    "The language model's answer could not be used (the model's output was not valid JSON of the answer's "
    "shape); this is the extractive answer, quoted from the sources."
)


def _llm_settings(library: Path, httpserver, **overrides: object):  # noqa: F811
    options = {
        "llm_base_url": httpserver.url_for("/v1"),
        "llm_model": "scripted",
        "llm_max_retries": 0,
        "llm_timeout_s": 5.0,
        **overrides,
    }
    return _settings(library, **options)


@pytest.fixture
def llm_client(library: Path, httpserver) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(_llm_settings(library, httpserver))) as test_client:
        yield test_client


def _events(body: str) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into (event name, JSON data) pairs, in order."""
    events = []
    for frame in body.split("\n\n"):
        if not frame.strip():
            continue
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _stream(client: TestClient, **body: object):
    return client.post("/api/answers/stream", json={"question": GOUT, **body})


# --- articles ------------------------------------------------------------------------------------------------


def test_article_with_llm_composer_shows_the_verified_statements(llm_client: TestClient, httpserver):
    received = _serve(httpserver, lambda request, sources: _reply(request, _good_draft(sources)))
    article = _ask(llm_client, composer="llm")
    assert len(received) == 3  # one model call per audience: clinician, student, patient
    answer = Answer.model_validate(article["answer"])
    assert answer.composer == "llm" and answer.notice is None and answer.disclaimer == LLM_DISCLAIMER
    draft = _good_draft(_sources_of(received[0]))
    assert answer.bottom_line.text == draft["bottom_line"]["text"]
    assert [s.text for s in answer.sections[-1].statements] == [s["text"] for s in draft["sections"][0]["statements"]]
    assert answer.verification.model == "scripted"
    assert (answer.verification.n_statements_kept, answer.verification.n_statements_dropped) == (4, 0)
    assert [r.n for r in answer.references] == [1, 2, 3, 4]
    precision = round(answer.verification.estimated_citation_precision * 100)
    page = llm_client.get(article["url"]).text
    assert str(escape(draft["bottom_line"]["text"])) in page
    assert (
        "Written by the language model scripted from the cited passages;\n  4 statements were verified against them "
        f"and 0 unsupported\n  ones removed (estimated citation precision\n  {precision}%)."
    ) in page
    patient = llm_client.get(f"/api/articles/{article['id']}?audience=patient").json()["answer"]
    assert patient["composer"] == "llm" and patient["verification"]["n_statements_dropped"] == 0
    # The default stays extractive and does not call the model.
    plain = _ask(llm_client)
    assert plain["answer"]["composer"] == "extractive" and plain["answer"]["verification"] is None
    assert len(received) == 3
    assert "Written by the language model" not in llm_client.get(plain["url"]).text


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("malformed", FALLBACK_MALFORMED),
        ("timeout", "the model server did not answer in time"),
    ],
)
def test_article_falls_back_to_extractive_with_the_notice(library: Path, httpserver, reply: str, why: str):  # noqa: F811
    answered: list[int] = []

    def build(request, sources):
        if reply == "timeout":
            time.sleep(0.8)
        answered.append(1)
        return _reply(request, '{"bottom_line": {"text": "unterminated')

    received = _serve(httpserver, build)
    settings = _llm_settings(library, httpserver, llm_timeout_s=0.3)
    with TestClient(create_app(settings)) as client:
        home = client.get("/")
        assert 'name="composer" value="llm"' in home.text and "language model scripted" in home.text
        response = client.post(
            "/ask",
            data={"csrf_token": _csrf(home.text), "question": GOUT, "audience": "clinician", "composer": "llm"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        article = client.get("/api/articles/1").json()
        extractive = Answer.model_validate(_ask(client)["answer"])
        page = client.get(response.headers["location"]).text
    answer = Answer.model_validate(article["answer"])
    assert answer.composer == "extractive" and answer.verification is None
    assert why in answer.notice
    assert answer.bottom_line == extractive.bottom_line and answer.id == extractive.id
    assert f'<p class="notice" role="note">{escape(answer.notice)}</p>' in page
    assert "colchicine" in answer.bottom_line.text.lower()
    deadline = time.monotonic() + 10  # the single-threaded model server drains the requests that timed out
    while len(answered) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(received) == len(answered) == 3


def test_llm_composer_without_a_model_server_is_a_400_and_the_choice_is_hidden(library: Path):  # noqa: F811
    with TestClient(create_app(_settings(library))) as client:
        assert 'name="composer"' not in client.get("/").text
        for path in ("/api/articles", "/api/answers/stream"):
            response = client.post(path, json={"question": GOUT, "composer": "llm"})
            assert response.status_code == 400
            assert "no language model configured" in response.json()["error"]
        assert client.get("/api/articles/1").status_code == 404


# --- server-sent events --------------------------------------------------------------------------------------


def test_stream_sends_status_deltas_then_the_verified_answer_and_stores_nothing(llm_client: TestClient, httpserver):
    received = _serve(httpserver, lambda request, sources: _reply(request, _good_draft(sources)))
    response = _stream(llm_client, composer="llm", audience="patient")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    events = _events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["status", "status"] and kinds[-2:] == ["status", "answer"]
    assert [data["kind"] for _, data in events] == kinds
    assert events[0][1]["text"] == "Searching the library"
    assert events[1][1]["text"].startswith("Asking scripted to write from ")
    assert events[-2][1]["text"] == "Checking every statement against its cited passages"
    deltas = [data for kind, data in events if kind == "delta"]
    assert len(deltas) > 5 and kinds.index("delta") == 2
    written = "".join(data["text"] for data in deltas)
    assert deltas[-1]["n_chars"] == len(written)
    answer = Answer.model_validate(events[-1][1]["answer"])
    draft = json.loads(written)
    assert answer.composer == "llm" and answer.audience == "patient" and answer.question == GOUT
    assert (
        answer.bottom_line.text
        == draft["bottom_line"]["text"]
        == _good_draft(_sources_of(received[0]))["bottom_line"]["text"]
    )
    assert answer.verification.n_statements_dropped == 0 and answer.reading_grade is not None
    assert len(received) == 1
    assert llm_client.get("/api/articles/1").status_code == 404  # no article was created


def test_stream_extractive_and_fallback(llm_client: TestClient, httpserver):
    events = _events(_stream(llm_client).text)
    assert [kind for kind, _ in events] == ["status", "answer"]
    extractive = Answer.model_validate(events[-1][1]["answer"])
    assert extractive.composer == "extractive" and "colchicine" in extractive.bottom_line.text.lower()
    _serve(httpserver, lambda request, sources: _reply(request, '{"bottom_line": {"text": "unterminated'))
    events = _events(_stream(llm_client, composer="llm").text)
    assert [kind for kind, _ in events][-1] == "answer" and "delta" in [kind for kind, _ in events]
    fallback = Answer.model_validate(events[-1][1]["answer"])
    assert fallback.notice == FALLBACK_MALFORMED and fallback.bottom_line == extractive.bottom_line


def test_stream_scrubs_the_question_before_the_model_sees_it(llm_client: TestClient, httpserver):
    received = _serve(httpserver, lambda request, sources: _reply(request, _good_draft(sources)))
    question = "John Smith (555-201-7788) asks: " + GOUT.lower()
    events = _events(_stream(llm_client, question=question, composer="llm").text)
    answer = Answer.model_validate(events[-1][1]["answer"])
    assert answer.question == "[name] [phone] asks: " + GOUT.lower()
    assert answer.composer == "llm"
    sent = json.dumps(received)
    assert "John" not in sent and "7788" not in sent and "Smith" not in sent
    assert "first-line treatment for an acute gout flare" in received[0]["messages"][-1]["content"]
    empty = llm_client.post("/api/answers/stream", json={"question": "John Smith", "composer": "llm"})
    assert empty.status_code == 400 and "once personal identifiers are removed" in empty.json()["error"]


def test_stream_shares_the_ask_rate_limit_and_needs_csrf_when_signed_in(library: Path, httpserver):  # noqa: F811
    _serve(httpserver, lambda request, sources: _reply(request, _good_draft(sources)))
    settings = _llm_settings(library, httpserver, web_ask_rate_limit="3/minute")
    with TestClient(create_app(settings)) as client:
        _ask(client)
        assert _stream(client, composer="llm").status_code == 200
        headers = _login(client, "rita")
        refused = _stream(client)  # signed in by cookie, without the CSRF header
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        assert client.post("/api/answers/stream", json={"question": GOUT}, headers=headers).status_code == 200
        limited = client.post("/api/answers/stream", json={"question": GOUT}, headers=headers)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "Too many ask requests" in limited.json()["error"]
        assert client.post("/api/articles", json={"question": GOUT}, headers=headers).status_code == 429


def test_stream_that_fails_after_it_began_ends_with_an_error_event(llm_client: TestClient, monkeypatch):
    # A question with nothing to search for is refused before the stream starts (400, no events) ...
    assert llm_client.post("/api/answers/stream", json={"question": "???"}).json() == {
        "ok": False,
        "error": "The query '???' has no words to search for; add a clinical term.",
        "status": 400,
    }

    # ... a failure once events have been sent ends the stream with an error event.
    def failing(*_args, **_kwargs):
        yield ComposeEvent(kind="status", text="Searching the library")
        raise StoreError("The library is locked by another process; try again.")

    monkeypatch.setattr("medcite.answer.stream_answer", failing)
    response = _stream(llm_client, composer="llm")
    assert response.status_code == 200
    events = _events(response.text)
    assert [kind for kind, _ in events] == ["status", "error"]
    assert events[-1][1] == {
        "ok": False,
        "error": "The library is locked by another process; try again.",
        "status": StoreError.http_status,
    }
