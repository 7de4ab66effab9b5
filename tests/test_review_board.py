# ruff: noqa: F811 - the fixtures imported from test_web_api are parameters here
"""The review board's workflow (issue 12): four eyes, N approvals, per-audience review, re-review when the evidence
changes, accounts, and the library from the command line. Web tests run on SQLite and PostgreSQL (the fixtures of
``test_web_api``)."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

from fastapi.testclient import TestClient

from medcite.cli import run
from medcite.index import ingest
from medcite.review import add_user
from medcite.settings import Settings
from medcite.store import Store
from medcite.web import create_app
from test_web_api import (  # noqa: F401 - fixtures are used by name
    PASSWORD,
    _ask,
    _login,
    _settings,
    library,
    postgres_template,
    template_library,
)


def _app(library: Path | str, **overrides: object) -> TestClient:
    client = TestClient(create_app(_settings(library, **overrides)))
    client.__enter__()
    return client


def _review(client: TestClient, headers: dict, action: str, revision: int, audience: str | None = None, **extra):
    body = {"action": action, "revision": revision, **extra}
    if audience:
        body["audience"] = audience
    return client.post("/api/articles/1/transitions", json=body, headers=headers)


def _edit(client: TestClient, headers: dict, revision: int, audience: str = "clinician"):
    body = {"revision": revision, "audience": audience, "location": "bottom_line", "text": "Reviewer's wording."}
    return client.post("/api/articles/1/edits", json=body, headers=headers)


def test_four_eyes_the_reviewer_who_edited_an_answer_cannot_approve_it(library: Path | str):
    rita_app, rob_app = _app(library), _app(library)
    _ask(rita_app)
    rita, rob = _login(rita_app, "rita"), _login(rob_app, "rob")
    assert _review(rita_app, rita, "claim", 1).json()["claimed_by"] == "rita"
    assert _edit(rita_app, rita, 1).json()["revision"] == 2
    refused = _review(rita_app, rita, "approve", 2)
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        "rita edited the clinician answer of article 1 and so may not approve it (four eyes): another reviewer who "
        "did not edit it must approve it."
    )
    unclaimed = _review(rob_app, rob, "approve", 2)
    assert unclaimed.status_code == 403 and unclaimed.json()["error"].startswith("rob has not claimed the clinician")
    article = rob_app.get("/api/articles/1").json()
    assert article["status"] == "under_review" and article["approved_by"] is None
    clinician = article["reviews"][0]
    assert clinician["excluded_approvers"] == ["rita"] and clinician["approvals"] == []
    joined = _review(rob_app, rob, "claim", 2).json()
    assert joined["status"] == "under_review" and joined["claimed_by"] == "rita, rob"
    approved = _review(rob_app, rob, "approve", 2).json()
    assert approved["status"] == "approved" and approved["approved_by"] == "rob"
    assert [(a["reviewer"], a["revision"]) for a in approved["reviews"][0]["approvals"]] == [("rob", 2)]
    eddie = _login(rita_app, "eddie")
    audit = rita_app.get("/api/audit", params={"article_id": 1}, headers=eddie).json()
    steps = [(e["action"], e["actor"], e["audience"], e["to_status"]) for e in reversed(audit)]
    assert steps == [
        ("submit", None, None, "submitted"),
        ("claim", "rita", "clinician", "under_review"),
        ("edit", "rita", "clinician", "under_review"),
        ("refused approve", "rita", "clinician", None),
        ("refused approve", "rob", "clinician", None),
        ("claim", "rob", "clinician", "under_review"),
        ("approve", "rob", "clinician", "approved"),
    ]
    assert "four eyes" in audit[3]["comment"]


def test_two_approvals_from_distinct_reviewers_none_twice(library: Path | str):
    with Store.open(library) as store:
        add_user(store, "tom", "reviewer", PASSWORD)
    apps = {name: _app(library, review_approvals=2) for name in ("rita", "rob", "tom")}
    _ask(apps["rita"])
    heads = {name: _login(client, name) for name, client in apps.items()}
    for name in ("rita", "rob"):
        assert _review(apps[name], heads[name], "claim", 1).status_code == 200
    first = _review(apps["rita"], heads["rita"], "approve", 1).json()
    assert first["status"] == "under_review" and first["approved_by"] is None
    assert [a["reviewer"] for a in first["reviews"][0]["approvals"]] == ["rita"]
    again = _review(apps["rita"], heads["rita"], "approve", 1)
    assert again.status_code == 409 and "rita already approved" in again.json()["error"]
    page = apps["rob"].get(first["url"]).text
    assert "Approval needs 2 reviewers who claimed this answer and did not edit it" in page
    assert "approved so far by rita (1 of 2)" in page
    done = _review(apps["rob"], heads["rob"], "approve", 1).json()
    assert done["status"] == "approved" and done["approved_by"] == "rita, rob"
    assert "Approved by rita, rob" in apps["tom"].get(done["url"]).text


def test_concurrent_approvals_never_approve_with_fewer_than_n_distinct_reviewers(library: Path | str):
    with Store.open(library) as store:
        add_user(store, "tom", "reviewer", PASSWORD)
    apps = {name: _app(library, review_approvals=2) for name in ("rita", "rob", "tom")}
    _ask(apps["rita"])
    heads = {name: _login(client, name) for name, client in apps.items()}
    for name in heads:
        assert _review(apps[name], heads[name], "claim", 1).status_code == 200
    # rita approves four times at once (four processes' worth of clients): one approval counts, nothing approves.
    burst = [_app(library, review_approvals=2) for _ in range(4)]
    for client in burst:
        client.cookies = apps["rita"].cookies
    codes: list[int] = []
    threads = [
        threading.Thread(target=lambda c=client: codes.append(_review(c, heads["rita"], "approve", 1).status_code))
        for client in burst
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 409, 409, 409]
    state = apps["tom"].get("/api/articles/1").json()
    assert state["status"] == "under_review" and [a["reviewer"] for a in state["reviews"][0]["approvals"]] == ["rita"]
    # rob and tom approve at the same moment: the first makes two, approved; the second finds it approved (409).
    results: dict[str, int] = {}
    pair = [
        threading.Thread(
            target=lambda n=name: results.update({n: _review(apps[n], heads[n], "approve", 1).status_code})
        )
        for name in ("rob", "tom")
    ]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    assert sorted(results.values()) == [200, 409]
    final = apps["tom"].get("/api/articles/1").json()
    approvers = [a["reviewer"] for a in final["reviews"][0]["approvals"]]
    assert final["status"] == "approved" and len(approvers) == 2 and len(set(approvers)) == 2 and approvers[0] == "rita"


def test_each_audience_is_reviewed_and_approved_on_its_own(library: Path | str):
    client = _app(library)
    _ask(client)
    rita = _login(client, "rita")
    _review(client, rita, "claim", 1)
    approved = _review(client, rita, "approve", 1).json()
    assert approved["audience"] == "clinician" and approved["status"] == "approved"
    statuses = {item["audience"]: item["status"] for item in approved["reviews"]}
    assert statuses == {"clinician": "approved", "student": "submitted", "patient": "submitted"}
    patient = client.get("/api/articles/1", params={"audience": "patient"}).json()
    assert patient["status"] == "submitted" and patient["approved_by"] is None
    assert "Reviewed and approved" not in patient["answer"]["disclaimer"]
    short = client.get("/articles/1", params={"audience": "patient"}, follow_redirects=False)
    assert short.headers["location"] == approved["url"] + "?audience=patient"  # the audience survives the redirect
    page = client.get(approved["url"], params={"audience": "patient"}).text
    assert '<p class="approved"' not in page and "Pending human review" in page
    not_claimed = _review(client, rita, "approve", 1, audience="patient")
    assert not_claimed.status_code == 409
    assert not_claimed.json()["error"].startswith("The patient answer of article 1 is submitted; approve is only")
    assert _review(client, rita, "claim", 1, audience="patient").json()["status"] == "under_review"
    assert _review(client, rita, "approve", 1, audience="patient").json()["approved_by"] == "rita"
    clinician = client.get("/api/articles/1").json()
    assert {item["audience"]: item["status"] for item in clinician["reviews"]}["student"] == "submitted"
    queue = client.get("/api/review/queue", headers=rita).json()
    assert [(item["id"], item["audience"], item["status"]) for item in queue] == [(1, "student", "submitted")]
    assert queue[0]["url"].endswith("?audience=student")


def _record(path: Path, *, retracted: bool) -> Path:
    """PMID 9500320 with its real identifiers (shared/data/README.md): Lancet 1998; once retracted, the publication
    type "Retracted Publication" and RetractionIn PMID 20137807. Title and abstract are placeholders, no claims."""
    retraction = (
        ("<PublicationType>Retracted Publication</PublicationType>" if retracted else ""),
        (
            '<CommentsCorrectionsList><CommentsCorrections RefType="RetractionIn"><RefSource>Lancet. 2010</RefSource>'
            '<PMID Version="1">20137807</PMID></CommentsCorrections></CommentsCorrectionsList>'
            if retracted
            else ""
        ),
    )
    path.write_text(
        '<PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">'
        '<PMID Version="1">9500320</PMID><Article><Journal><Title>Lancet</Title><JournalIssue>'
        "<PubDate><Year>1998</Year></PubDate></JournalIssue></Journal>"
        "<ArticleTitle>Placeholder title of the okapi record.</ArticleTitle>"
        "<Abstract><AbstractText>Placeholder abstract of the okapi record for the review workflow.</AbstractText>"
        "</Abstract><PublicationTypeList><PublicationType>Journal Article</PublicationType>"
        f"{retraction[0]}</PublicationTypeList></Article>{retraction[1]}"
        "</MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    return path


def test_an_approved_answer_citing_a_paper_later_retracted_goes_to_re_review(library: Path | str, tmp_path: Path):
    settings = Settings(library=library, embedder="none")
    with Store.open(library) as store:
        assert (
            ingest(store, "pubmed-xml", [_record(tmp_path / "original.xml", retracted=False)], settings=settings).added
            == 1
        )
    client = _app(library)
    article = _ask(client, "okapi record placeholder abstract")
    cited = {ref["passage_id"].split("#")[0] for ref in article["answer"]["references"]}
    assert "pmid:9500320" in cited
    rita = _login(client, "rita")
    _review(client, rita, "claim", 1)
    assert _review(client, rita, "approve", 1).json()["status"] == "approved"
    _review(client, rita, "claim", 1, audience="patient")
    with Store.open(library) as store:  # the record as PubMed gives it since 2010, by any ingest
        report = ingest(store, "pubmed-xml", [_record(tmp_path / "retracted.xml", retracted=True)], settings=settings)
        assert report.updated == 1
    after = client.get("/api/articles/1").json()
    assert after["status"] == "needs_rereview" and after["approved_by"] is None
    reason = after["reviews"][0]["reason"]
    assert reason == "cited source pmid:9500320 was retracted"
    expected = {  # approved and in-review answers citing it go back; a submitted one was never reviewed
        "clinician": "needs_rereview",
        "student": "submitted",
        "patient": "needs_rereview" if "pmid:9500320" in _cited(client, "patient") else "under_review",
    }
    assert {item["audience"]: item["status"] for item in after["reviews"]} == expected
    page = client.get(article["url"]).text
    assert "Needs re-review." in page and reason in page and '<p class="approved"' not in page
    queue = client.get("/api/review/queue", headers=rita).json()
    assert (queue[0]["id"], queue[0]["audience"], queue[0]["status"]) == (1, "clinician", "needs_rereview")
    editor = _app(library)
    eddie = _login(editor, "eddie")
    entries = [
        e for e in editor.get("/api/audit", params={"article_id": 1}, headers=eddie).json() if e["actor"] is None
    ]
    assert ("needs_rereview", "approved", "clinician", reason) in [
        (e["action"], e["from_status"], e["audience"], e["comment"]) for e in entries
    ]
    # the same reviewer claims it again for re-review and may approve it: nobody edited its text
    assert _review(client, rita, "claim", 1).json()["status"] == "under_review"
    assert _review(client, rita, "approve", 1).json()["status"] == "approved"


def _cited(client: TestClient, audience: str) -> set[str]:
    answer = client.get("/api/articles/1", params={"audience": audience}).json()["answer"]
    return {ref["passage_id"].split("#")[0] for ref in answer["references"]}


def test_forged_requests_are_refused_change_nothing_and_are_logged(library: Path | str):
    client = _app(library)
    _ask(client)
    rita = _login(client, "rita")
    old_csrf = dict(rita)
    _review(client, rita, "claim", 1)
    client.post("/api/logout", headers=rita)
    replay = _review(client, old_csrf, "approve", 1)  # signed out: the old token signs nobody in
    assert replay.status_code == 403
    with Store.open(library) as store:
        from medcite.review import disable_user, issue_token

        token = issue_token(store, "rob")
        disable_user(store, "rob")
    disabled = _review(client, {"Authorization": f"Bearer {token}"}, "approve", 1)
    assert disabled.status_code == 401  # its tokens were revoked with it
    assert disabled.json()["error"] == "This API token is not valid; create one with `medcite users token NAME`."
    assert client.get("/api/articles/1").json()["status"] == "under_review"


def test_cli_users_list_password_library_list_show_remove_and_review_stale(
    template_library: Path,  # noqa: F811
    tmp_path: Path,
    capsys,
    monkeypatch,
):
    path = tmp_path / "library.db"
    path.write_bytes(template_library.read_bytes())
    lib = ["--library", str(path)]
    with Store.open(path) as store:
        from medcite.review import issue_token

        issue_token(store, "rita")
    client = _app(path)
    _login(client, "rob")
    assert run(["users", "list", "--format", "json", *lib]) == 0
    users = {user["username"]: user for user in json.loads(capsys.readouterr().out)}
    assert users["rita"]["tokens"] == 1 and users["rita"]["enabled"] is True and users["rita"]["last_login"] is None
    assert users["rob"]["last_login"] is not None and users["eddie"]["role"] == "editor"
    monkeypatch.setattr("sys.stdin", io.StringIO("another secret 12\n"))
    assert run(["users", "password", "rita", "--password-stdin", *lib]) == 0
    assert "0 web sessions signed out, 1 API tokens revoked" in capsys.readouterr().out
    assert run(["users", "list", *lib]) == 0
    assert "rita" in capsys.readouterr().out
    # the library, browsable
    assert run(["library", "list", "--kind", "guidelines", "--query", "GOUT", "--format", "json", *lib]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [doc["doc_id"] for doc in listed] == ["guideline:acr_gout_2020"]
    assert listed[0]["evidence_type"] == "guideline" and listed[0]["passages"] > 0 and not listed[0]["retracted"]
    article = _ask(_app(path))  # cites the gout guideline; rob approves it
    rob = _login(client, "rob")
    _review(client, rob, "claim", 1)
    assert _review(client, rob, "approve", 1).json()["status"] == "approved"
    assert run(["library", "show", "guideline:acr_gout_2020", *lib]) == 0
    shown = capsys.readouterr().out
    assert "id: guideline:acr_gout_2020" in shown and "[guideline:acr_gout_2020#p0]" in shown
    assert "cited by: article 1 (clinician)" in shown
    assert run(["library", "show", "guideline:nothing", *lib]) == 4
    assert run(["library", "show", "guideline:acr_gout_2020#p19", *lib]) == 0  # one passage, as references cite it
    one = capsys.readouterr().out
    assert "[guideline:acr_gout_2020#p19]" in one and "[guideline:acr_gout_2020#p0]" not in one
    assert "as first-line therapy for gout flares" in one
    assert run(["library", "show", "guideline:acr_gout_2020#p9999", *lib]) == 4
    assert run(["library", "remove", "guideline:nothing", "--yes", *lib]) == 4
    assert run(["ask", "What is the first-line treatment for an acute gout flare?", "--format", "json", *lib]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["references"][0]["passage_id"].startswith("guideline:acr_gout_2020#")
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert run(["library", "remove", "guideline:acr_gout_2020", *lib]) == 1  # declined: nothing removed
    assert "1 approved or in-review answer citing it will need re-review. [y/N]" in capsys.readouterr().out
    assert run(["library", "remove", "guideline:acr_gout_2020", "--yes", *lib]) == 0
    assert "Removed 1 document; 1 approved or in-review answer citing it now needs re-review" in capsys.readouterr().out
    assert run(["review", "stale", "--format", "json", *lib]) == 0
    (stale,) = json.loads(capsys.readouterr().out)
    assert (stale["id"], stale["audience"], stale["status"]) == (1, "clinician", "needs_rereview")
    assert stale["reason"] == "cited source guideline:acr_gout_2020 was removed from the library"
    kept = client.get(article["url"]).text  # the article keeps its quoted passages, marked as removed since
    assert "Needs re-review." in kept and "guideline:acr_gout_2020#p" in kept
    assert "(removed from the library since; the passage is as it was quoted)" in kept
    with Store.open(path) as store:  # a saved answer still resolves, its reference marked
        from medcite.answer import load_answer

        earlier = load_answer(store, saved["id"])
    assert earlier.references[0].removed and earlier.references[0].passage == saved["references"][0]["passage"]
    assert run(["ask", "And in chronic kidney disease?", "--follow-up", saved["id"], "--format", "json", *lib]) == 0
    assert json.loads(capsys.readouterr().out)["follow_up_of"] == saved["id"]


def test_the_sources_page_lists_documents_their_passages_and_the_articles_citing_them(library: Path | str):
    client = _app(library)
    article = _ask(client)
    assert client.get("/sources").status_code == 403
    assert client.get("/api/sources").json()["error"] == "Sign in as a reviewer to browse the library's sources."
    rita = _login(client, "rita")
    listed = client.get("/api/sources", params={"q": "gout", "kind": "guidelines"}, headers=rita).json()
    assert [doc["doc_id"] for doc in listed] == ["guideline:acr_gout_2020"]
    page = client.get("/sources", params={"q": "gout"}).text
    assert 'href="/sources/guideline:acr_gout_2020"' in page and "1 document shown" in page
    detail = client.get("/api/sources/guideline:acr_gout_2020").json()
    assert detail["document"]["evidence_type"] == "guideline" and detail["passages"][0]["passage_id"].endswith("#p0")
    assert [(item["id"], item["audience"]) for item in detail["cited_by"]][0] == (1, "clinician")
    html = client.get("/sources/guideline:acr_gout_2020").text
    assert article["question"] in html and "guideline:acr_gout_2020#p0" in html
    missing = client.get("/api/sources/guideline:nothing")
    assert missing.status_code == 404


def test_library_commands_hold_against_bad_input(template_library: Path, tmp_path: Path, capsys, monkeypatch):
    path = tmp_path / "library.db"
    path.write_bytes(template_library.read_bytes())
    lib = ["--library", str(path)]
    protocol = tmp_path / "protocols" / "odem.md"
    protocol.parent.mkdir()
    protocol.write_text("---\ntitle: ÖDEM [/] protocol [not available]\norganization: Test\n---\nPlaceholder text.\n")
    assert run(["ingest", "files", str(protocol.parent), *lib]) == 0
    capsys.readouterr()
    assert run(["library", "list", "--query", "ödem", *lib]) == 0  # folded in every script, brackets kept as text
    out = capsys.readouterr().out
    assert "ÖDEM" in out and "[/]" in out and "[not" in out and out.startswith("1 document\n")
    assert run(["library", "list", "--query", "ÖDEM", "--format", "json", *lib]) == 0
    assert [doc["title"] for doc in json.loads(capsys.readouterr().out)] == ["ÖDEM [/] protocol [not available]"]
    assert run(["library", "list", "--query", "%", "--format", "json", *lib]) == 0  # '%' is a character, not a wildcard
    assert json.loads(capsys.readouterr().out) == []
    assert run(["library", "list", "--limit", "9223372036854775808", *lib]) == 2
    # a disabled account gets no new token
    assert run(["users", "disable", "rob", *lib]) == 0
    capsys.readouterr()
    assert run(["users", "token", "rob", *lib]) == 2
    assert capsys.readouterr().err.startswith("Error: The account rob is disabled; `medcite users password rob`")
    assert run(["users", "list", "--format", "json", *lib]) == 0
    assert {u["username"]: u["enabled"] for u in json.loads(capsys.readouterr().out)}["rob"] is False
    # no answer to read at the prompt: one line, exit 2, nothing removed
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run(["library", "remove", "guideline:acr_gout_2020", *lib]) == 2
    assert "add --yes to go ahead" in capsys.readouterr().err
    assert run(["users", "password", "nobody", "--password-stdin", *lib]) == 4
    assert "No account named 'nobody'" in capsys.readouterr().err
    # a library emptied on purpose stays empty
    assert run(["library", "remove", "--kind", "guidelines", "--yes", *lib]) == 0
    assert "Removed 43 documents" in capsys.readouterr().out
    assert run(["library", "stats", "--format", "json", *lib]) == 0
    assert json.loads(capsys.readouterr().out)["by_kind"] == {"files": 1}


def test_web_responses_hold_the_setting_and_refuse_bad_review_input(library: Path | str):
    client = _app(library, review_approvals=2)
    created = _ask(client)
    assert created["reviews"][0]["approvals_needed"] == 2
    rita = _login(client, "rita")
    _review(client, rita, "claim", 1)
    assert _edit(client, rita, 1).json()["reviews"][0]["approvals_needed"] == 2
    arabic = {"revision": 2, "audience": "clinician", "location": "\u0660.\u0661", "text": "x"}
    assert client.post("/api/articles/1/edits", json=arabic, headers=rita).status_code == 422
    page = client.post(
        "/articles/1/transition", data={"action": "promote", "revision": "2", "csrf_token": rita["X-CSRF-Token"]}
    )
    assert page.status_code == 422 and "Unknown review action &#39;promote&#39;" in page.text
    anonymous = _app(library)
    refused = anonymous.get("/review")
    assert refused.status_code == 403 and "<h1>Not allowed</h1>" in refused.text
    from medcite.web.common import _environment

    assert _environment().filters["id_path"]("guideline:a#b?c%d") == "guideline:a%23b%3Fc%25d"


def test_a_changed_record_whose_passages_are_the_same_does_not_send_answers_to_re_review(
    library: Path | str, tmp_path: Path
):
    settings = Settings(library=library, embedder="none")
    original = _record(tmp_path / "original.xml", retracted=False)
    with Store.open(library) as store:
        ingest(store, "pubmed-xml", [original], settings=settings)
    client = _app(library)
    _ask(client, "okapi record placeholder abstract")
    rita = _login(client, "rita")
    _review(client, rita, "claim", 1)
    assert _review(client, rita, "approve", 1).json()["status"] == "approved"
    renamed = tmp_path / "renamed.xml"  # the journal's record corrected, the abstract unchanged
    renamed.write_text(original.read_text().replace("<Title>Lancet</Title>", "<Title>The Lancet</Title>"))
    with Store.open(library) as store:
        assert ingest(store, "pubmed-xml", [renamed], settings=settings).updated == 1
    assert client.get("/api/articles/1").json()["status"] == "approved"
    changed = tmp_path / "changed.xml"  # the abstract itself changed: the answer quoting it goes back
    changed.write_text(original.read_text().replace("for the review workflow", "for the revised review workflow"))
    with Store.open(library) as store:
        assert ingest(store, "pubmed-xml", [changed], settings=settings).updated == 1
    after = client.get("/api/articles/1").json()
    assert after["status"] == "needs_rereview"
    assert after["reviews"][0]["reason"] == "cited source pmid:9500320 was replaced by a changed record"
