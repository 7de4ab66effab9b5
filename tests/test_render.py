"""Markdown, JSON and HTML renderings of answers composed from the real default library."""

import json

import pytest

from medcite.answer import DISCLAIMER, ask
from medcite.index import default_guideline_pack, ingest
from medcite.models import Answer, AnswerSection, BottomLine, Reference, Statement
from medcite.render import render_html, render_json, render_markdown
from medcite.retrieve import Retriever
from medcite.settings import Settings
from medcite.store import Store

GOUT = "What is the first-line treatment for an acute gout flare?"


@pytest.fixture(scope="module")
def gout_answer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("render")
    settings = Settings(library=folder / "library.db", embedder="none")
    with Store.open(settings.library) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        yield ask(GOUT, retriever=Retriever(store, settings))


def _hostile_answer() -> Answer:
    return Answer(
        id="0123456789abcdef",
        question="<script>alert(1)</script> gout?",
        audience="clinician",
        intent="treatment",
        abstained=False,
        bottom_line=BottomLine(text="Colchicine <b>is</b> recommended.", citations=[1]),
        sections=[
            AnswerSection(
                title="Dosing",
                statements=[Statement(text="| Drug | Dose |\n|---|---|\n| <img src=x> | 1.2 mg |", citations=[1])],
            )
        ],
        references=[
            Reference(
                n=1, type="Guideline", title="T <i>", source="ACR", year=2020, doi="10.1/x", pmid=None,
                url="https://doi.org/10.1/x", passage_id="guideline:x#p0",
                passage="Colchicine <b>is</b> recommended.\n\n| Drug | Dose |\n|---|---|\n| <img src=x> | 1.2 mg |",
            )
        ],
        disclaimer=DISCLAIMER,
    )  # fmt: skip


def test_render_markdown_gout_answer_has_title_bottom_line_sections_and_locators(gout_answer):
    text = render_markdown(gout_answer)
    assert text.startswith(f"# {GOUT}\n\n**Bottom line:** Colchicine, NSAIDs, or glucocorticoids")
    assert "\n## Treatment\n" in text and "\n## References\n" in text
    first = gout_answer.references[0]
    assert (
        f"1. **Guideline.** {first.title}. ACR, 2020. DOI: [10.1002/art.41247](https://doi.org/10.1002/art.41247)."
        in text
    )
    assert f"Passage `{first.passage_id}`" in text
    assert text.rstrip().endswith(f"> {DISCLAIMER}")
    for section in gout_answer.sections:
        assert f"## {section.title}" in text


def test_render_json_round_trips_to_the_same_answer(gout_answer):
    payload = render_json(gout_answer)
    assert Answer.model_validate_json(payload) == gout_answer
    assert json.loads(payload)["references"][0]["passage"] == gout_answer.references[0].passage


def test_render_html_escapes_question_statements_and_passages():
    page = render_html(_hostile_answer())
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; gout?" in page
    assert "<img" not in page and "&lt;img src=x&gt;" in page
    assert "<b>is</b>" not in page
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert '<li id="ref-1">' in page and '<a href="#ref-1" aria-label="reference 1">1</a>' in page
    assert "<table>" in page  # the quoted table is rendered as a table, its cells escaped


def test_render_html_gout_answer_shows_full_passages(gout_answer):
    page = render_html(gout_answer)
    assert "<h2>Treatment</h2>" in page
    for reference in gout_answer.references:
        assert f'<li id="ref-{reference.n}">' in page
    assert "indomethacin, naproxen, and sulindac" in page
    assert DISCLAIMER in page


def test_render_markdown_abstained_answer_lists_closest_sources():
    answer = _hostile_answer().model_copy(
        update={"abstained": True, "sections": [], "bottom_line": BottomLine(text="No evidence.", citations=[])}
    )
    text = render_markdown(answer)
    assert "**Not enough evidence:** No evidence." in text
    assert "## Closest sources found" in text and "## References" not in text


def test_render_markdown_escapes_a_statement_that_starts_like_a_quote():
    answer = _hostile_answer().model_copy(
        update={
            "sections": [AnswerSection(title="Pitfalls", statements=[Statement(text="> 1 prior flare", citations=[1])])]
        }
    )
    assert "- \\> 1 prior flare [1]" in render_markdown(answer)


def test_render_html_gout_answer_shows_the_answer_id(gout_answer):
    assert f"Answer id: <code>{gout_answer.id}</code>" in render_html(gout_answer)


def test_render_markdown_list_without_lead_in_cites_each_item():
    # aha_acc_hf_2022, SGLT2 inhibitors: a list quoted whole, without a lead-in line. With the citation after the
    # last item only, a tester read the first items as uncited.
    items = "- No dose titration required.\n  - Nested note.\n- Can be initiated regardless of diabetes status."
    answer = _hostile_answer().model_copy(
        update={"sections": [AnswerSection(title="Treatment", statements=[Statement(text=items, citations=[1])])]}
    )
    text = render_markdown(answer)
    assert (
        "- No dose titration required.\n  - Nested note. [1]\n- Can be initiated regardless of diabetes status. [1]"
        in text
    )
    assert "\n- [1]\n" not in text


def test_statement_and_passage_html_render_markdown_and_escape_raw_html():
    from medcite.render import passage_html, statement_html

    passage = _hostile_answer().references[0].passage
    page = passage_html(passage)
    assert "<img" not in page and "&lt;img src=x&gt;" in page and "<table>" in page
    assert "<b>" not in statement_html("Colchicine <b>is</b> recommended.")
    items = statement_html("- No dose titration required.\n- Can be initiated regardless of diabetes status.")
    assert items.count("<li>") == 2


def test_markdown_references_show_the_cited_statement_not_90_characters(gout_answer):
    """Issue 16: a reader checks the bottom line against its reference without opening the passage."""
    text = render_markdown(gout_answer)
    first = gout_answer.references[0]
    statement = (
        "Colchicine, NSAIDs, or glucocorticoids (oral, intraarticular, or intramuscular) are strongly recommended "
        "as first-line therapy for gout flares over IL-1 inhibitors or ACTH (Strong, High)."
    )
    assert statement in " ".join(first.passage.replace("**", "").split())  # the passage bolds its strength
    assert f"Passage `{first.passage_id}`: “{statement}”" in text
    full = render_markdown(gout_answer, full_passages=True)
    assert f"Passage `{first.passage_id}`: “{' '.join(first.passage.replace('**', '').split())}”" in full
