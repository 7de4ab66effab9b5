"""The web app's JSON API and forms through FastAPI's TestClient, on a fresh copy of the default library per test.

Covers every review transition, the 409 on a stale edit, the 403s (anonymous, wrong role, CSRF),
escaping, identifier scrubbing, rate limits, security headers and persistence across restarts.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from conftest import new_postgres_database
from medcite.index import default_guideline_pack, ingest
from medcite.models import Answer
from medcite.review import add_user, issue_token
from medcite.settings import Settings
from medcite.store import Store
from medcite.web import create_app

GOUT = "What is the first-line treatment for an acute gout flare?"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def template_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default guideline pack with three accounts, built once; tests get copies."""
    path = tmp_path_factory.mktemp("web") / "template.db"
    settings = Settings(library=path, embedder="none")
    with Store.open(path) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        add_user(store, "rita", "reviewer", PASSWORD)
        add_user(store, "rob", "reviewer", PASSWORD)
        add_user(store, "eddie", "editor", PASSWORD)
    return path


@pytest.fixture(scope="module")
def postgres_template(postgres_server, template_library: Path) -> str:
    """The same library on PostgreSQL (``library copy``), as a template database each test copies."""
    from medcite.store.transfer import copy_library

    url = new_postgres_database(postgres_server)
    with Store.open(template_library) as source, Store.open(url) as target:
        copy_library(source, target)
    return sa.engine.make_url(url).database


@pytest.fixture(params=["sqlite", "postgresql"])
def library(request: pytest.FixtureRequest, tmp_path: Path, template_library: Path) -> Path | str:
    """A copy of the template library: a SQLite file, or a new PostgreSQL database (the web app on each)."""
    if request.param == "postgresql":
        template = request.getfixturevalue("postgres_template")
        return new_postgres_database(request.getfixturevalue("postgres_server"), template=template)
    path = tmp_path / "library.db"
    shutil.copyfile(template_library, path)
    return path


def _settings(library: Path, **overrides: object) -> Settings:
    return Settings(library=library, embedder="none", **overrides)


@pytest.fixture
def client(library: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(library))) as test_client:
        yield test_client


def _login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == username
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def _signed_in(library: Path, username: str) -> tuple[TestClient, dict[str, str]]:
    other = TestClient(create_app(_settings(library)))
    other.__enter__()
    return other, _login(other, username)


def _ask(client: TestClient, question: str = GOUT, **extra: object) -> dict:
    response = client.post("/api/articles", json={"question": question, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def _act(client: TestClient, headers: dict[str, str], article_id: int, action: str, revision: int, comment: str = ""):
    return client.post(
        f"/api/articles/{article_id}/transitions",
        json={"action": action, "revision": revision, "comment": comment},
        headers=headers,
    )


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_api_ask_creates_submitted_article_with_the_answer_contract(client: TestClient):
    article = _ask(client)
    assert article["status"] == "submitted" and article["revision"] == 1 and article["id"] == 1
    assert article["url"] == "/articles/1/what-is-the-first-line-treatment-for-an-acute-gout-flare"
    answer = Answer.model_validate(article["answer"])
    assert answer.question == GOUT and answer.audience == "clinician"
    assert "colchicine" in answer.bottom_line.text.lower()
    assert answer.references[0].passage_id.startswith("guideline:acr_gout_2020#p")
    assert client.get("/api/articles/1").json() == article
    page = client.get(article["url"])
    assert page.status_code == 200
    assert "Submitted" in page.text and "Pending human review" in page.text and "References" in page.text
    assert 'href="/policy"' in page.text
    assert client.get("/articles/1/wrong-slug", follow_redirects=False).headers["location"] == article["url"]


def test_every_transition_is_applied_logged_and_shown(client: TestClient, library: Path):
    article = _ask(client)
    rita = _login(client, "rita")
    claimed = _act(client, rita, 1, "claim", 1).json()
    assert claimed["status"] == "under_review" and claimed["claimed_by"] == "rita"
    no_comment = _act(client, rita, 1, "request_changes", 1)
    assert no_comment.status_code == 409 and "comment" in no_comment.json()["error"]
    changes = _act(client, rita, 1, "request_changes", 1, "Check the dose against the source.").json()
    assert changes["status"] == "changes_requested"
    assert _act(client, rita, 1, "approve", 1).status_code == 409  # not under review
    assert _act(client, rita, 1, "claim", 1).json()["status"] == "under_review"
    edited = client.post(
        "/api/articles/1/edits",
        json={"revision": 1, "location": "bottom_line", "text": "Reviewed bottom line.", "note": "shorter"},
        headers=rita,
    )
    assert edited.status_code == 200 and edited.json()["revision"] == 2
    assert edited.json()["answer"]["bottom_line"]["text"] == "Reviewed bottom line."
    assert edited.json()["revision_author"] == "rita"
    assert _act(client, rita, 1, "approve", 2).status_code == 403  # four eyes: rita edited it
    rob_client, rob = _signed_in(library, "rob")
    assert _act(rob_client, rob, 1, "claim", 2).json()["claimed_by"] == "rita, rob"
    approved = _act(rob_client, rob, 1, "approve", 2).json()
    assert approved["status"] == "approved" and approved["approved_by"] == "rob"
    assert approved["approved_at"][:4] == approved["updated_at"][:4]
    assert "pending human review" not in approved["answer"]["disclaimer"]
    assert "Reviewed and approved by a medical reviewer." in approved["answer"]["disclaimer"]
    page = client.get(article["url"]).text
    assert "Approved by rob" in page and "Pending human review" not in page and "Reviewed bottom line." in page
    assert _act(client, rita, 1, "unpublish", 2).status_code == 403  # reviewers cannot unpublish
    eddie = _login(client, "eddie")
    assert _act(client, eddie, 1, "unpublish", 2).json()["status"] == "unpublished"
    audit = client.get("/api/audit", headers=eddie).json()
    actions = [(entry["action"], entry["actor"], entry["revision"]) for entry in reversed(audit) if entry["article_id"]]
    assert actions == [
        ("submit", None, 1),
        ("claim", "rita", 1),
        ("request_changes", "rita", 1),
        ("claim", "rita", 1),
        ("edit", "rita", 1),
        ("refused approve", "rita", None),
        ("claim", "rob", 2),
        ("approve", "rob", 2),
        ("refused unpublish", "rita", None),
        ("unpublish", "eddie", 2),
    ]
    client.post("/api/logout", headers=eddie)
    assert client.get("/api/articles/1").status_code == 410  # unpublished: hidden from the public
    diff = client.get("/api/articles/1/revisions")
    assert diff.status_code == 410


def test_stale_edit_gets_409_and_keeps_the_first_edit(client: TestClient, library: Path):
    article = _ask(client)
    original = article["answer"]["sections"][0]["statements"][0]
    marks = ", ".join(str(n) for n in original["citations"])
    rita = _login(client, "rita")
    _act(client, rita, 1, "claim", 1)
    other, rob = _signed_in(library, "rob")
    try:
        first = other.post(
            "/api/articles/1/edits", json={"revision": 1, "location": "0.0", "text": "Rob's wording."}, headers=rob
        )
        assert first.status_code == 200 and first.json()["revision"] == 2
        stale = client.post(
            "/api/articles/1/edits", json={"revision": 1, "location": "0.0", "text": "Rita's wording."}, headers=rita
        )
    finally:
        other.__exit__(None, None, None)
    assert stale.status_code == 409
    assert stale.json() == {
        "ok": False,
        "status": 409,
        "error": "Article 1 changed while you were working on it: you based your change on revision 1, but it is "
        "now at revision 2. Reload the article, check the new revision and try again.",
    }
    ahead = client.post(
        "/api/articles/1/edits", json={"revision": 7, "location": "0.0", "text": "Rita's wording."}, headers=rita
    )  # a revision that does not exist yet is not "changed while you were working" (issue 16)
    assert ahead.status_code == 409 and ahead.json()["error"] == (
        "Article 1 has no revision 7 yet: its latest is revision 2. Send the revision shown on the article's page."
    )
    current = client.get("/api/articles/1").json()
    assert current["revision"] == 2 and current["answer"]["sections"][0]["statements"][0]["text"] == "Rob's wording."
    assert _act(client, rita, 1, "approve", 1).status_code == 409  # approving what one has not seen: refused
    history = client.get("/api/articles/1/revisions").json()
    assert [(item["revision"], item["author"]) for item in history] == [(1, None), (2, "rob")]
    diff = client.get("/api/articles/1/diff", params={"old": 1, "new": 2}).json()["lines"]
    assert any(line.startswith("-- ") and original["text"] in line and f"[{marks}]" in line for line in diff)
    assert f"+- Rob's wording. [{marks}]" in diff


def test_anonymous_and_wrong_role_get_403_and_nothing_changes(client: TestClient):
    article = _ask(client)
    forged = _act(client, {}, 1, "approve", 1)
    assert forged.status_code == 403 and forged.json()["error"] == "Sign in as a reviewer to approve articles."
    assert client.post("/api/articles/1/edits", json={"revision": 1, "location": "0.0", "text": "x"}).status_code == 403
    assert client.get("/api/review/queue").status_code == 403
    assert client.get("/api/audit").status_code == 403
    assert client.get("/review").status_code == 403
    rita = _login(client, "rita")
    assert _act(client, rita, 1, "unpublish", 1).status_code == 403
    assert client.get("/api/audit", headers=rita).status_code == 403
    assert client.get("/api/articles/1").json() == article  # nothing changed
    eddie = _login(client, "eddie")
    logged = [(entry["action"], entry["actor"]) for entry in client.get("/api/audit", headers=eddie).json()]
    assert [item for item in logged if item[0] != "account eddie (editor)"][:2] == [
        ("refused unpublish", "rita"),  # a signed-in account's refusal is logged; the anonymous ones are not
        ("submit", None),
    ]


def test_cookie_calls_and_forms_without_the_csrf_token_are_refused(client: TestClient):
    _ask(client)
    rita = _login(client, "rita")
    missing = _act(client, {}, 1, "claim", 1)
    assert missing.status_code == 403 and "CSRF" in missing.json()["error"]
    assert _act(client, {"X-CSRF-Token": "forged"}, 1, "claim", 1).status_code == 403
    form = client.post("/articles/1/transition", data={"action": "claim", "revision": "1"})
    assert form.status_code == 403 and "CSRF" in form.text
    assert client.post("/ask", data={"question": GOUT}).status_code == 403
    assert client.get("/api/articles/1").json()["status"] == "submitted"
    assert _act(client, rita, 1, "claim", 1).status_code == 200


def test_bearer_token_acts_without_csrf_and_a_bad_token_is_401(library: Path):
    with Store.open(library) as store:
        token = issue_token(store, "rita")
    with TestClient(create_app(_settings(library))) as client:
        _ask(client)
        bearer = {"Authorization": f"Bearer {token}"}
        assert _act(client, bearer, 1, "claim", 1).json()["claimed_by"] == "rita"
        bad = _act(client, {"Authorization": "Bearer nope"}, 1, "approve", 1)
        assert bad.status_code == 401 and "medcite users token" in bad.json()["error"]


def test_html_forms_sign_in_claim_edit_and_approve(client: TestClient, library: Path):
    home = client.get("/")
    created = client.post("/ask", data={"question": GOUT, "audience": "clinician", "csrf_token": _csrf(home.text)})
    assert (
        created.status_code == 200
        and created.url.path == "/articles/1/what-is-the-first-line-treatment-for-an-acute-gout-flare"
    )
    login_page = client.get("/login")
    wrong = client.post("/login", data={"username": "rita", "password": "nope", "csrf_token": _csrf(login_page.text)})
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.text
    assert '<form method="post" action="/login"' in wrong.text and 'value="rita"' in wrong.text  # the form again
    signed_in = client.post(
        "/login", data={"username": "rita", "password": PASSWORD, "csrf_token": _csrf(login_page.text)}
    )
    assert signed_in.url.path == "/review" and "what is the first-line treatment" in signed_in.text.lower()
    token = _csrf(signed_in.text)
    page = client.post("/articles/1/transition", data={"action": "claim", "revision": "1", "csrf_token": token})
    assert "Under review" in page.text and "Edit a statement" in page.text
    page = client.post(
        "/articles/1/edit",
        data={
            "revision": "1",
            "location": "0.0",
            "text": "Edited by <b>rita</b>",
            "csrf_token": token,
            "audience": "clinician",
        },
    )
    assert "Edited by &lt;b&gt;rita&lt;/b&gt;" in page.text
    assert "rita edited it, so may not approve it." in page.text and 'value="approve"' not in page.text
    page = client.post("/articles/1/transition", data={"action": "approve", "revision": "2", "csrf_token": token})
    assert page.status_code == 403 and "rita edited the clinician answer of article 1" in page.text  # four eyes
    second = TestClient(create_app(_settings(library)))
    second.__enter__()
    rob_form = _csrf(second.get("/login").text)
    rob_page = second.post("/login", data={"username": "rob", "password": PASSWORD, "csrf_token": rob_form})
    rob_token = _csrf(rob_page.text)
    page = second.post("/articles/1/transition", data={"action": "claim", "revision": "2", "csrf_token": rob_token})
    assert "claimed by rita, rob" in page.text and 'value="approve"' in page.text
    page = second.post("/articles/1/transition", data={"action": "approve", "revision": "2", "csrf_token": rob_token})
    assert "Approved by rob" in page.text
    revisions = client.get("/articles/1/what-is-the-first-line-treatment-for-an-acute-gout-flare/revisions")
    assert "rita" in revisions.text and 'class="add"' in revisions.text


def test_script_in_a_question_renders_inert(client: TestClient):
    article = _ask(client, GOUT + " <script>alert('x')</script>")
    page = client.get(article["url"]).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_question_with_a_name_and_a_phone_number_is_published_without_them(client: TestClient, library: Path):
    article = _ask(client, "John Smith (555-201-7788) asks: " + GOUT.lower())
    assert article["question"] == "[name] [phone] asks: " + GOUT.lower()
    assert article["redactions"] == ["name", "phone"]
    assert "colchicine" in article["answer"]["bottom_line"]["text"].lower()
    page = client.get(article["url"]).text
    assert "John" not in page and "555-201-7788" not in page and "7788" not in page
    assert "Personal details were removed from this question before it was stored: names, phone or fax numbers." in page
    eddie = _login(client, "eddie")
    assert "John" not in client.get("/api/audit", headers=eddie).text
    stored = _stored_bytes(library)
    assert b"7788" not in stored and b"John Smith" not in stored


def _stored_bytes(library: Path | str) -> bytes:
    """Everything the library holds: the SQLite file and its write-ahead log, or every PostgreSQL text column."""
    if isinstance(library, Path):
        return b"".join(path.read_bytes() for path in library.parent.glob("library.db*"))
    with Store.open(library) as store, store.reading() as conn:
        columns = conn.exec_driver_sql(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = 'text'"
        ).all()
        texts = [conn.exec_driver_sql(f"SELECT {column} FROM {table}").all() for table, column in columns]
        return str(texts).encode()


def test_ask_and_login_are_rate_limited(library: Path):
    settings = _settings(library, web_ask_rate_limit="2/minute", web_login_rate_limit="2/minute")
    with TestClient(create_app(settings)) as client:
        _ask(client)
        _ask(client, "What is the preferred reliever for asthma?")
        limited = client.post("/api/articles", json={"question": GOUT})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "Too many ask requests" in limited.json()["error"]
        for _ in range(2):
            assert client.post("/api/login", json={"username": "rita", "password": "bad"}).status_code == 401
        assert client.post("/api/login", json={"username": "rita", "password": PASSWORD}).status_code == 429


def test_security_headers_and_session_cookie_flags(library: Path):
    with TestClient(create_app(_settings(library)), base_url="https://medcite.test") as client:
        response = client.get("/")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    with TestClient(create_app(_settings(library))) as client:
        assert "secure" not in client.get("/").headers["set-cookie"].lower()


def test_follow_up_joins_the_thread_and_audience_switch_rerenders(client: TestClient):
    first = _ask(client)
    follow = _ask(client, "What about in pregnancy?", follow_up_of=first["id"])
    assert follow["thread_id"] == first["id"] and follow["follow_up_of"] == first["id"]
    assert follow["answer"]["follow_up_of"] == first["answer"]["id"]
    assert [item["id"] for item in follow["thread"]] == [1, 2]
    patient = client.get("/api/articles/1", params={"audience": "patient"}).json()
    assert patient["audience"] == "patient" and patient["answer"]["reading_grade"] is not None
    page = client.get(first["url"], params={"audience": "patient"}).text
    assert 'value="patient" checked' in page and "What about in pregnancy?" in page
    assert client.post("/api/articles", json={"question": "x?", "follow_up_of": 99}).status_code == 404


def test_audit_log_refuses_updates_and_deletes(client: TestClient, library: Path):
    _ask(client)
    with Store.open(library) as store:
        for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.IntegrityError, match="append-only"), store.writing() as conn:
                conn.exec_driver_sql(statement)


def test_articles_and_accounts_survive_a_restart(library: Path):
    with TestClient(create_app(_settings(library))) as client:
        article = _ask(client)
        cookie_headers = _login(client, "rita")
        _act(client, cookie_headers, 1, "claim", 1)
        cookies = dict(client.cookies)
    with TestClient(create_app(_settings(library)), cookies=cookies) as client:
        again = client.get("/api/articles/1").json()
        assert again["status"] == "under_review" and again["answer"] == article["answer"]
        assert client.get("/api/review/queue").status_code == 200  # the signed session still works


def test_openapi_and_docs_list_the_api(client: TestClient):
    schema = client.get("/openapi.json").json()
    assert {
        "/api/articles",
        "/api/articles/{article_id}",
        "/api/articles/{article_id}/transitions",
        "/api/login",
    } <= set(schema["paths"])
    assert "Answer" in schema["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/articles/{article_id}/transitions" in docs.text


def test_editor_pages_show_the_queue_and_the_audit_log(client: TestClient):
    _ask(client, "John Smith asks: " + GOUT.lower())
    eddie = _login(client, "eddie")
    queue = client.get("/review")
    assert queue.status_code == 200 and "[name] asks: what is the first-line treatment" in queue.text
    audit = client.get("/audit")
    assert audit.status_code == 200 and "identifiers removed: name" in audit.text and "John" not in audit.text
    client.post("/api/logout", headers=eddie)
    assert client.get("/audit").status_code == 403


def test_users_commands_create_an_account_and_a_working_token(library: Path, monkeypatch, capsys):
    import io

    from medcite.cli import run

    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    assert run(["users", "add", "nora", "--role", "editor", "--password-stdin", "--library", str(library)]) == 0
    assert capsys.readouterr().out == "Account nora (editor) created.\n"
    assert run(["users", "token", "nora", "--library", str(library)]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) == 43
    assert run(["users", "token", "nobody", "--library", str(library)]) == 4
    with TestClient(create_app(_settings(library))) as client:
        response = client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert "account nora (editor)" in [entry["action"] for entry in response.json()]
        login = client.post("/api/login", json={"username": "nora", "password": "another long password"})
        assert login.json()["user"] == {"username": "nora", "role": "editor"}


def test_medcite_serve_answers_on_its_port(library: Path):
    import os
    import subprocess
    import sys
    import time

    import httpx

    from conftest import free_port

    port = free_port()
    command = [sys.executable, "-m", "medcite", "serve", "--port", str(port), "--library", str(library)]
    environment = {**os.environ, "MEDCITE_EMBEDDER": "none"}  # no model to load: lexical search
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/policy", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "medcite serve did not answer within 60 s"
                time.sleep(0.2)
        assert response.status_code == 200 and "Editorial policy" in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_claiming_an_approved_article_reopens_it_for_correction(client: TestClient):
    _ask(client)
    rita = _login(client, "rita")
    _act(client, rita, 1, "claim", 1)
    assert _act(client, rita, 1, "approve", 1).json()["approved_by"] == "rita"
    reopened = _act(client, rita, 1, "claim", 1).json()
    assert reopened["status"] == "under_review" and reopened["approved_by"] is None and reopened["approved_at"] is None
    eddie = _login(client, "eddie")
    assert _act(client, eddie, 1, "unpublish", 1).json()["status"] == "unpublished"
    refused = _act(client, eddie, 1, "claim", 1)
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        "The clinician answer of article 1 is unpublished; claim is only possible when it is submitted, changes "
        "requested, approved or needs re-review (or under review, to join its reviewers)."
    )
