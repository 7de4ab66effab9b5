"""Reviewers' own text (edited statements, edit notes, request-changes comments) is scrubbed like questions.

Through the web app's JSON API and pages (FastAPI's TestClient), on a fresh copy of the default library
per test, with the fixtures of tests/test_web_api.py: nothing a reviewer types reaches the store, the
article page, the revision history, the diff or the audit log with a name, a record number, a phone
number or an e-mail address in it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

import test_web_api as web_api

# The web tests' fixtures (a fresh copy of the default library with three accounts, a client on it) and helpers.
template_library = web_api.template_library
postgres_template = web_api.postgres_template
library = web_api.library
client = web_api.client
_act, _ask, _login = web_api._act, web_api._ask, web_api._login

EDIT = "Colchicine was started for John Smith (MRN 00123456); call 555-201-7788 with questions."
SCRUBBED_EDIT = "Colchicine was started for [name] ([record number]); call [phone] with questions."
COMMENT = "Ask jane.doe@example.org to check the colchicine dose."
SECRETS = ("John", "Smith", "00123456", "555-201-7788", "7788", "Jones", "jane.doe", "example.org")


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_reviewer_edit_and_comment_are_stored_and_shown_without_identifiers(client: TestClient, library: Path):
    article = _ask(client)
    first_citations = article["answer"]["sections"][0]["statements"][0]["citations"]
    rita = _login(client, "rita")
    assert _act(client, rita, 1, "claim", 1).status_code == 200
    edited = client.post(
        "/api/articles/1/edits",
        json={"revision": 1, "location": "0.0", "text": EDIT, "note": "Reworded for Mr. Jones"},
        headers=rita,
    )
    assert edited.status_code == 200, edited.text
    statement = edited.json()["answer"]["sections"][0]["statements"][0]
    assert statement["text"] == SCRUBBED_EDIT and statement["citations"] == first_citations
    changes = _act(client, rita, 1, "request_changes", 2, COMMENT)
    assert changes.status_code == 200 and changes.json()["status"] == "changes_requested"

    assert client.get("/api/articles/1").json()["answer"]["sections"][0]["statements"][0]["text"] == SCRUBBED_EDIT
    page = client.get(article["url"]).text
    assert "Colchicine was started for [name] ([record number]); call [phone] with questions." in page
    _assert_clean(page)

    history = client.get("/api/articles/1/revisions").json()
    assert [(item["revision"], item["author"]) for item in history] == [(1, None), (2, "rita")]
    assert history[1]["note"] == "Reworded for Mr. [name] (identifiers removed: name, phone, record_number)"
    _assert_clean(client.get("/api/articles/1/revisions").text)
    diff = client.get("/api/articles/1/diff", params={"old": 1, "new": 2}).json()["lines"]
    assert f"+- {SCRUBBED_EDIT} [{', '.join(map(str, first_citations))}]" in diff
    _assert_clean("\n".join(diff))
    revisions_page = client.get(article["url"] + "/revisions", params={"old": 1, "new": 2})
    assert revisions_page.status_code == 200 and "[record number]" in revisions_page.text
    _assert_clean(revisions_page.text)

    eddie = _login(client, "eddie")
    audit = client.get("/api/audit", headers=eddie).json()
    comments = {entry["action"]: entry["comment"] for entry in audit if entry["article_id"] == 1}
    assert comments["request_changes"] == "Ask [e-mail] to check the colchicine dose. (identifiers removed: email)"
    assert comments["edit"] == "Reworded for Mr. [name] (identifiers removed: name, phone, record_number)"
    _assert_clean(client.get("/api/audit", headers=eddie).text)
    audit_page = client.get("/audit")
    assert audit_page.status_code == 200 and "Ask [e-mail] to check the colchicine dose." in audit_page.text
    _assert_clean(audit_page.text)

    data = web_api._stored_bytes(library)  # the database and its write-ahead log, or every PostgreSQL text column
    for secret in ("John Smith", "00123456", "555-201-7788", "Mr. Jones", "jane.doe@example.org"):
        assert secret.encode() not in data, secret


def test_reviewer_edit_without_identifiers_keeps_the_note_as_written(client: TestClient):
    _ask(client)
    rita = _login(client, "rita")
    _act(client, rita, 1, "claim", 1)
    edited = client.post(
        "/api/articles/1/edits",
        json={"revision": 1, "location": "bottom_line", "text": "Reviewed\x00 bottom\u202e line.", "note": "shorter"},
        headers=rita,
    )
    assert edited.json()["answer"]["bottom_line"]["text"] == "Reviewed bottom line."
    assert client.get("/api/articles/1/revisions").json()[1]["note"] == "shorter"


def test_request_changes_comment_made_only_of_control_characters_is_refused(client: TestClient):
    _ask(client)
    rita = _login(client, "rita")
    _act(client, rita, 1, "claim", 1)
    refused = _act(client, rita, 1, "request_changes", 1, "\x00\u200b\x07")
    assert refused.status_code == 409 and "comment" in refused.json()["error"]
