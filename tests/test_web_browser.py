"""End to end in a real headless Chromium (Debian's package, driven by playwright) against `medcite serve`'s app.

One uvicorn server per test on a free local port and a fresh copy of the default library. Screenshots
of the article page in each state go to test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from medcite.index import default_guideline_pack, ingest
from medcite.review import add_user
from medcite.settings import Settings
from medcite.store import Store

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
GOUT = "What is the first-line treatment for an acute gout flare?"
PASSWORD = "correct horse battery"

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[test]')"
)
uvicorn = pytest.importorskip("uvicorn")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)", allow_module_level=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A uvicorn server on 127.0.0.1 (own thread) over a fresh default library with reviewers 'rita' and 'rob'."""
    from medcite.web import create_app

    settings = Settings(library=tmp_path / "library.db", embedder="none")
    with Store.open(settings.library) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        add_user(store, "rita", "reviewer", PASSWORD)
        add_user(store, "rob", "reviewer", PASSWORD)
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _ask(page, base: str, question: str) -> None:
    page.goto(base + "/")
    page.fill("#question", question)
    page.click("form.ask button[type=submit]")
    page.wait_for_selector("h1#title")


def _sign_in(context, base: str, username: str):
    desk = context.new_page()
    desk.goto(base + "/login")
    desk.fill("#username", username)
    desk.fill("#password", PASSWORD)
    desk.click("form.login button[type=submit]")
    desk.wait_for_url("**/review")
    return desk


def test_ask_review_approve_and_forged_approve_in_chromium(server: str, browser):
    reader = browser.new_context()
    page = reader.new_page()

    # Ask: the article shows the answer, its references and "Submitted".
    _ask(page, server, GOUT)
    assert page.url.startswith(server + "/articles/1/what-is-the-first-line-treatment-for-an-acute-gout-flare")
    assert page.inner_text("h1#title") == GOUT
    assert "colchicine" in page.inner_text(".bottom-line").lower()
    assert page.locator(".references li").count() >= 1
    assert page.inner_text(".stepper li[aria-current=step]").strip() == "Submitted"
    assert "Pending human review" in page.inner_text(".banner.pending")
    first_cite = page.locator(".bottom-line details.cite").first
    first_cite.locator("summary").click()
    assert "Colchicine" in first_cite.locator(".passage").inner_text()  # the cited passage, revealed in place
    _shot(page, "1-submitted")

    # Switch the audience to patient: the page re-renders in that audience's answer (script-driven).
    page.check("form.audience-switch input[value=patient]")
    page.wait_for_url("**audience=patient")
    assert page.is_checked("form.audience-switch input[value=patient]")
    assert "Reading grade" in page.content()
    _shot(page, "2-patient")

    # A follow-up joins the thread.
    page.fill("#follow-up", "What about in pregnancy?")
    page.click("form.follow-up button[type=submit]")
    page.wait_for_url("**/articles/2/**")
    thread = page.inner_text(".thread ol")
    assert GOUT in thread and "What about in pregnancy?" in thread
    _shot(page, "3-follow-up")

    # A reviewer signs in, claims and edits one statement; four eyes: she may not approve her own edit.
    reviewer = browser.new_context()
    desk = _sign_in(reviewer, server, "rita")
    desk.click(f"text={GOUT}")
    desk.click("button[value=claim]")
    desk.wait_for_selector("text=Edit a statement")
    assert desk.inner_text(".stepper li[aria-current=step]").strip() == "Under review"
    _shot(desk, "4-under-review")
    edit = desk.locator("details.edit").nth(1)  # the first statement after the bottom line
    edit.locator("summary").click()
    edit.locator("textarea").fill("Reviewed: colchicine, NSAIDs or glucocorticoids are first-line for a gout flare.")
    edit.locator("button[type=submit]").click()
    desk.wait_for_selector("text=revision 2 by rita")
    assert desk.locator("button[value=approve]").count() == 0
    assert "rita edited it, so may not approve it." in desk.inner_text(".who-approves")
    forged_own = desk.request.post(
        server + "/api/articles/1/transitions",
        data={"action": "approve", "revision": 2},
        headers={"X-CSRF-Token": desk.input_value("form.transition input[name=csrf_token] >> nth=0")},
    )
    assert forged_own.status == 403 and "four eyes" in forged_own.json()["error"]

    # A second reviewer joins the review and approves the clinician answer.
    second = browser.new_context()
    other = _sign_in(second, server, "rob")
    other.goto(server + "/articles/1")
    other.click("button[value=claim]")  # "Join the review"
    other.wait_for_selector("text=claimed by rita, rob")
    other.click("button[value=approve]")
    other.wait_for_selector(".approved")
    today = dt.datetime.now(dt.UTC)
    assert other.inner_text(".approved") == f"Approved by rob on {today.day} {today:%B %Y}."
    statuses = other.inner_text("table.audience-reviews")
    assert "Clinician\tApproved\trob (revision 2" in statuses and "Patient or carer\tSubmitted" in statuses

    # The public page shows "Approved", the date and the edited text; the patient answer is still pending.
    page.goto(server + "/articles/1")
    assert page.inner_text(".stepper li[aria-current=step]").strip() == "Approved"
    assert page.inner_text(".approved") == f"Approved by rob on {today.day} {today:%B %Y}."
    assert "Reviewed: colchicine, NSAIDs or glucocorticoids are first-line" in page.inner_text("article")
    assert page.locator(".banner.pending").count() == 0
    assert "pending human review" not in page.inner_text(".disclaimer")
    _shot(page, "5-approved")
    page.goto(server + "/articles/1?audience=patient")
    assert page.inner_text(".stepper li[aria-current=step]").strip() == "Submitted"
    assert page.locator(".approved").count() == 0 and "Pending human review" in page.inner_text(".banner.pending")
    second.close()

    # A forged anonymous approve is refused and changes nothing: by API, and by a form without the token.
    forged = page.request.post(server + "/api/articles/2/transitions", data={"action": "approve", "revision": 1})
    assert forged.status == 403
    page.evaluate(
        """() => { const form = document.createElement('form'); form.method = 'post';
        form.action = '/articles/2/transition';
        for (const [name, value] of [['action', 'approve'], ['revision', '1']]) {
          const input = document.createElement('input'); input.name = name; input.value = value; form.append(input); }
        document.body.append(form); form.submit(); }"""
    )
    page.wait_for_selector("p.error")
    assert "CSRF" in page.inner_text("p.error")
    assert page.request.get(server + "/api/articles/2").json()["status"] == "submitted"
    reviewer.close()
    reader.close()


def test_question_with_a_name_and_a_phone_number_is_published_without_them(server: str, browser):
    page = browser.new_page()
    _ask(page, server, "John Smith (555-201-7788) asks: " + GOUT.lower())
    text = page.inner_text("main")
    assert "John" not in text and "Smith" not in text and "7788" not in text
    assert page.inner_text("h1#title") == "[name] [phone] asks: " + GOUT.lower()
    assert "Personal details were removed" in page.inner_text(".redacted")
    assert "colchicine" in page.inner_text(".bottom-line").lower()
    _shot(page, "6-redacted")
    page.close()


def test_an_approved_answer_whose_cited_paper_is_retracted_shows_needs_re_review(server: str, browser, tmp_path: Path):
    from test_review_board import _record

    library = tmp_path / "library.db"
    settings = Settings(library=library, embedder="none")
    with Store.open(library) as store:
        ingest(store, "pubmed-xml", [_record(tmp_path / "original.xml", retracted=False)], settings=settings)
    page = browser.new_page()
    _ask(page, server, "okapi record placeholder abstract")
    assert "pmid:9500320#p" in page.inner_text(".references")
    reviewer = browser.new_context()
    desk = _sign_in(reviewer, server, "rita")
    desk.goto(page.url)
    desk.click("button[value=claim]")
    desk.wait_for_selector("button[value=approve]")
    desk.click("button[value=approve]")
    desk.wait_for_selector(".approved")
    with Store.open(library) as store:  # the record as PubMed gives it since the retraction, by any ingest
        ingest(store, "pubmed-xml", [_record(tmp_path / "retracted.xml", retracted=True)], settings=settings)
    page.reload()
    assert page.locator(".approved").count() == 0
    banner = page.inner_text(".banner.rereview")
    assert banner.startswith("Needs re-review.") and "cited source pmid:9500320 was retracted" in banner
    _shot(page, "7-needs-re-review")
    desk.goto(server + "/review")
    first = desk.locator("table.queue tbody tr").first.inner_text()
    assert "okapi record placeholder abstract" in first and "Needs re-review" in first
    desk.goto(page.url)
    desk.click("button[value=claim]")  # "Claim for re-review"
    desk.wait_for_selector("button[value=approve]")
    reviewer.close()


def test_asking_with_pubmed_shows_a_progress_line_while_it_searches(server: str, browser):
    """Issue 14: the Ask page says it is searching PubMed while the POST is under way (held here, never sent)."""
    page = browser.new_page()
    held = []
    page.route("**/ask", lambda route: held.append(route))
    page.goto(server + "/")
    page.fill("#question", GOUT)
    page.check("input[name=pubmed]")
    page.click("form.ask button[type=submit]", no_wait_after=True)
    state = page.evaluate(
        """() => { const p = document.querySelector('form.ask output.progress');
                   const b = document.querySelector('form.ask button[type=submit]');
                   return [p.hidden, p.textContent, b.disabled]; }"""
    )  # the old page still shows while the POST is held (waiting for a selector would wait for the navigation)
    assert state[0] is False and state[2] is True
    assert state[1].startswith("Searching PubMed for research abstracts")
    page.close()  # the held POST never reaches the server
