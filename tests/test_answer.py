"""The extractive composer on the real default library (the open-medicine guideline pack), lexical retrieval.

Every expected term below was read from the guideline's own Markdown in the installed open-medicine
package (guidelines/content/<id>/*.md) before it was asserted.
"""

import json
import re

import pytest

from medcite.answer import (
    DISCLAIMER,
    EMERGENCY_ADVICE,
    ask,
    check_citations,
    classify_intent,
    follow_up_query,
    load_answer,
    normalise_quote,
    save_answer,
    search_passages,
)
from medcite.cli import run
from medcite.errors import CitationError, NotFound, QueryError
from medcite.index import default_guideline_pack, ingest
from medcite.intent import has_red_flag
from medcite.models import Answer, Hit, Statement
from medcite.quote import split_units
from medcite.render import render_markdown
from medcite.retrieve import Retriever
from medcite.settings import Settings
from medcite.store import Store

SPINAL = "How should a spinal implant infection with a draining sinus tract be treated?"

# (question, guideline id the bottom line must cite, terms the bottom line must contain)
FIRST_LINE = [
    (
        "What is the first-line treatment for an acute gout flare?",
        "acr_gout_2020",
        ["colchicine", "nsaids", "glucocorticoids", "first-line"],
    ),
    ("What is the preferred first-line urate-lowering therapy in gout?", "acr_gout_2020", ["allopurinol"]),
    ("How should anticoagulation be chosen for atrial fibrillation?", "acc_aha_af_2023", ["doac", "apixaban"]),
    ("What fluids should be used for initial resuscitation in sepsis?", "ssc_sepsis_2021", ["crystalloids"]),
    ("What is the first-line vasopressor in septic shock?", "ssc_sepsis_2021", ["norepinephrine"]),
    (
        "What is the first-line treatment for major depressive disorder?",
        "apa_mdd_2023",
        ["psychotherapy", "first-line"],
    ),
    ("What empiric therapy is recommended for healthcare-associated ventriculitis?", "idsa_meningitis_2017",
     ["vancomycin", "cefepime"]),
    ("Should DOACs or warfarin be used to treat DVT or PE?", "ash_vte_2020", ["doacs", "vitamin k antagonists"]),
    ("What is the treatment for acute pulmonary embolism?", "ash_vte_2020", ["anticoagulation"]),
    ("What is the preferred reliever for asthma?", "gina_asthma_2024", ["ics-formoterol"]),
    ("What initial inhaler therapy is recommended for COPD?", "gold_copd_2024", ["laba + lama"]),
    (
        "What are the first-line antihypertensive drug classes?",
        "acc_aha_hypertension_2017",
        ["thiazide", "ace inhibitors", "angiotensin ii receptor blockers", "calcium channel blockers"],
    ),
    ("How is diabetic ketoacidosis treated?", "ada_dka_hhs_2024", ["insulin", "0.1 units/kg"]),
    # thrombectomy.md: "Thrombectomy is recommended for patients who meet ALL of the following criteria:".
    ("Is mechanical thrombectomy recommended for large vessel occlusion stroke?", "aha_asa_stroke_2019",
     ["thrombectomy is recommended"]),
    ("What is first-line guideline-directed medical therapy for HFrEF?", "acc_aha_hypertension_2017",
     ["acei/arb/arni", "beta-blocker", "mra"]),
    ("How should acute pancreatitis fluid resuscitation be done?", "acg_acute_pancreatitis_2024", ["lr"]),
    # Bottom lines that once came from the wrong statement (a skipped test, a BP target, another guideline):
    ("What is the first-line treatment for outpatient community-acquired pneumonia?", "bts_cap_2009",
     ["first-line", "amoxicillin"]),
    ("When should alteplase be given for acute ischemic stroke?", "aha_asa_stroke_2019", ["alteplase", "4.5 hours"]),
    ("Which drugs reduce mortality in heart failure with reduced ejection fraction?", "aha_acc_hf_2022",
     ["hfref", "mortality"]),
    ("How should complicated urinary tract infection be treated?", "idsa_uti_2022",
     ["empiric antibiotic", "complicated uti"]),
]  # fmt: skip

# Bottom lines measured wrong today, each a failure class of issue 10 still open; strict, so a fix shows up.
WRONG_TODAY = {
    "What is the treatment for acute pulmonary embolism?": "a generic 'what is the treatment for X' question gets "
    "the home-versus-hospital recommendation as its bottom line, not anticoagulation",
    "What is first-line guideline-directed medical therapy for HFrEF?": "the bottom line is the heart-failure "
    "guideline's GDMT lead sentence and initiation algorithm, which do not name the four classes; this entry expects "
    "the hypertension guideline's HFrEF line (the heart-failure guideline is the better source: see the issue note)",
    "What is the first-line treatment for outpatient community-acquired pneumonia?": "the bottom line is another "
    "CAP recommendation, not the BTS first-line amoxicillin row",
    "Which drugs reduce mortality in heart failure with reduced ejection fraction?": "passage ranking routes to the "
    "AF guideline's rate-control agents, not the heart-failure GDMT pillars",
    "How should complicated urinary tract infection be treated?": "the bottom line is the list of agents not to use "
    "for complicated UTI",
}


def _first_line_cases() -> list:
    return [
        pytest.param(*case, marks=pytest.mark.xfail(strict=True, reason=WRONG_TODAY[case[0]]), id=case[0][:40])
        if case[0] in WRONG_TODAY
        else pytest.param(*case, id=case[0][:40])
        for case in FIRST_LINE
    ]


IN_SCOPE = [
    "What is the first-line antibiotic for outpatient community-acquired pneumonia?",
    "When should antibiotics be given in sepsis?",
    "What insulin regimen is recommended for diabetic ketoacidosis?",
    "What is the first-line rate control for atrial fibrillation?",
]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    folder = tmp_path_factory.mktemp("answer")
    settings = Settings(library=folder / "library.db", embedder="none")
    store = Store.open(settings.library)
    ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
    yield Retriever(store, settings)
    store.close()


@pytest.fixture(scope="module")
def answers(retriever):
    questions = [q for q, _, _ in FIRST_LINE] + IN_SCOPE + [SPINAL]
    return {q: ask(q, retriever=retriever) for q in questions}


def _cited_statements(answer: Answer):
    for statement in answer.bottom_line.statements:
        yield statement, True
    for section in answer.sections:
        for statement in section.statements:
            yield statement, False


@pytest.mark.parametrize(("question", "guideline", "terms"), _first_line_cases())
def test_ask_first_line_question_bottom_line_names_the_guideline_options(answers, question, guideline, terms):
    answer = answers[question]
    assert not answer.abstained
    bottom = answer.bottom_line.text.lower()
    for term in terms:
        assert term in bottom, f"{term!r} not in bottom line {answer.bottom_line.text!r}"
    first = answer.references[answer.bottom_line.citations[0] - 1]
    assert first.passage_id.startswith(f"guideline:{guideline}#p")
    assert first.type == "Guideline"


def test_ask_first_line_bottom_lines_hold_with_wordllama_hybrid_retrieval(retriever):
    """`medcite ask` uses WordLlama hybrid retrieval when it is installed: the same bottom lines must hold."""
    from medcite.embed import available_embedders, load_embedder
    from medcite.retrieve.dense import embed_passages

    if "wordllama-l2-256" not in available_embedders():
        pytest.skip("WordLlama is not installed (pip install -e '.[static]')")
    embedder = load_embedder("wordllama-l2-256")
    embed_passages(retriever.store, embedder)
    hybrid = Retriever(retriever.store, retriever.settings, embedder=embedder)
    wrong = []
    for question, guideline, terms in FIRST_LINE:
        if question in WRONG_TODAY:
            continue  # wrong with lexical retrieval too (held by the strict xfails above)
        answer = ask(question, retriever=hybrid)
        first = answer.references[answer.bottom_line.citations[0] - 1] if answer.bottom_line.citations else None
        bottom = answer.bottom_line.text.lower()
        if (
            first is None
            or not first.passage_id.startswith(f"guideline:{guideline}#")
            or any(term not in bottom for term in terms)
        ):
            wrong.append((question, answer.bottom_line.text[:120]))
    assert wrong == []


def test_ask_first_line_questions_cover_at_least_ten_guideline_topics():
    assert len({guideline.split("_")[1] for _, guideline, _ in FIRST_LINE}) >= 10
    assert len(FIRST_LINE) >= 15


def test_ask_every_statement_and_its_context_occur_in_the_passage_it_cites(answers, retriever):
    for answer in answers.values():
        for reference in answer.references:  # the reference carries the stored passage and heading, unchanged
            stored = retriever.store.get_passage(reference.passage_id)
            assert (stored.text, stored.section) == (reference.passage, reference.section)
        for statement, _is_bottom in _cited_statements(answer):
            assert len(statement.citations) == 1
            reference = answer.references[statement.citations[0] - 1]
            passage, heading = normalise_quote(reference.passage), normalise_quote(reference.section)
            assert normalise_quote(statement.text) in passage, (answer.question, statement.text)
            for piece in statement.context:
                assert normalise_quote(piece) in passage or normalise_quote(piece) in heading, (answer.question, piece)
        if not answer.abstained:
            assert answer.bottom_line.text == " ".join(s.plain() for s in answer.bottom_line.statements)
            assert 1 <= len(answer.bottom_line.statements) <= 3


def test_ask_references_are_numbered_in_order_of_first_citation(answers):
    for answer in answers.values():
        if answer.abstained:
            continue
        order: list[int] = []
        for statement, _ in _cited_statements(answer):
            order += [n for n in statement.citations if n not in order]
        assert order == list(range(1, len(answer.references) + 1))


def test_ask_gout_answer_has_sections_references_and_disclaimer(answers):
    answer = answers[FIRST_LINE[0][0]]
    titles = [section.title for section in answer.sections]
    assert len(titles) >= 3 and "Treatment" in titles
    assert len(answer.references) >= 2
    assert answer.intent == "treatment"
    assert answer.disclaimer == DISCLAIMER and "pending human review" in answer.disclaimer
    assert answer.timings_ms.total >= answer.timings_ms.retrieval > 0


@pytest.mark.xfail(
    strict=True,
    reason="the abstention model misses this uncovered question (0.40 against the 0.425 threshold); held-out, "
    "about a third of uncovered questions abstain (issue 10, open)",
)
def test_ask_spinal_implant_question_abstains_with_closest_sources(answers):
    answer = answers[SPINAL]
    assert answer.abstained
    assert answer.sections == []
    assert answer.bottom_line.citations == []
    assert 'medcite ingest pubmed --query "spinal implant infection draining sinus tract treated"' in (
        answer.bottom_line.text
    )
    assert 1 <= len(answer.references) <= 3
    assert len({reference.passage_id.split("#")[0] for reference in answer.references}) == len(answer.references)


@pytest.mark.parametrize("question", IN_SCOPE)
def test_ask_in_scope_question_answers(answers, question):
    answer = answers[question]
    assert not answer.abstained and answer.bottom_line.citations and answer.sections


def test_ask_same_question_gives_the_same_answer(retriever):
    first = ask(FIRST_LINE[0][0], retriever=retriever)
    second = ask(FIRST_LINE[0][0], retriever=retriever)
    assert first.model_dump(exclude={"timings_ms"}) == second.model_dump(exclude={"timings_ms"})
    assert re.fullmatch(r"[0-9a-f]{16}", first.id)
    assert ask(FIRST_LINE[0][0], retriever=retriever, audience="student").id != first.id


def test_ask_patient_with_chest_pain_leads_with_emergency_advice(retriever):
    answer = ask("I have chest pain when I walk, what should I do?", retriever=retriever, audience="patient")
    assert answer.sections[0].title == "Emergency warning signs"
    assert answer.sections[0].statements == [Statement(text=EMERGENCY_ADVICE, citations=[])]
    assert "call your local emergency number" in EMERGENCY_ADVICE
    assert answer.reading_grade is not None and answer.reading_grade > 0


SEPTIC_SHOCK = "What is the first-line vasopressor in septic shock?"
# sepsis3_2016, the Sepsis-3 definitions: the sentence that defines the question's term.
SEPTIC_SHOCK_DEFINITION = "Septic shock is a subset of sepsis in which underlying circulatory and cellular/metabolic"


@pytest.mark.parametrize(("audience", "title"), [("student", "Key terms"), ("patient", "What the words mean")])
def test_ask_student_and_patient_get_the_librarys_definition_of_the_key_term(retriever, audience, title):
    answer = ask(SEPTIC_SHOCK, retriever=retriever, audience=audience)
    glossary = next(section for section in answer.sections if section.title == title)
    definition = glossary.statements[0]
    assert definition.text.startswith(SEPTIC_SHOCK_DEFINITION)
    reference = answer.references[definition.citations[0] - 1]
    assert reference.passage_id.startswith("guideline:sepsis3_2016#p")
    assert " ".join(definition.text.split()) in " ".join(reference.passage.replace("**", "").split())
    check_citations(answer, [_hit(r) for r in answer.references], strict=True)


def test_ask_clinician_gets_no_definitions(answers):
    assert all(
        section.title not in ("Key terms", "What the words mean") for a in answers.values() for section in a.sections
    )


def test_ask_patient_denying_chest_pain_gets_no_emergency_section_and_a_gout_answer(retriever):
    answer = ask("I am not having chest pain, just mild gout", retriever=retriever, audience="patient")
    assert all(section.title != "Emergency warning signs" for section in answer.sections)
    assert not answer.abstained
    first = answer.references[answer.bottom_line.citations[0] - 1]
    assert first.passage_id.startswith("guideline:acr_gout_2020#")
    cardiac = ("chest_pain", "acs", "stemi")
    assert not [r.passage_id for r in answer.references if any(word in r.passage_id for word in cardiac)]


@pytest.mark.parametrize(
    ("question", "red_flag"),
    [
        ("I have chest pain when I walk", True),
        ("I am not having chest pain, just mild gout", False),
        ("I don't have chest pain", False),
        ("no shortness of breath but chest pain", True),
        ("He denies suicidal thoughts", False),
        ("I want to end my life", True),
        ("I think I am having a heart attack, what do I do?", True),
        ("My throat is swelling after a bee sting", True),
        ("What is the first-line treatment for gout?", False),
    ],
)
def test_has_red_flag_ignores_denied_symptoms(question, red_flag):
    assert has_red_flag(question) is red_flag


def test_ask_patient_abstention_names_no_ingest_command_and_reports_a_reading_grade(retriever):
    answer = ask("I want to kill myself, what pills are lethal", retriever=retriever, audience="patient")
    assert answer.abstained and answer.sections[0].title == "Emergency warning signs"
    assert "medcite ingest" not in answer.bottom_line.text and "kill" not in answer.bottom_line.text
    assert answer.reading_grade is not None
    markdown = render_markdown(answer)
    assert markdown.index("## Emergency warning signs") < markdown.index("**Not enough evidence:**")


def test_ask_clinician_with_chest_pain_gets_no_emergency_section_or_reading_grade(retriever):
    answer = ask("What is the initial evaluation of acute chest pain?", retriever=retriever)
    assert all(section.title != "Emergency warning signs" for section in answer.sections)
    assert answer.reading_grade is None


@pytest.mark.parametrize("question", ["AND OR NOT", "NEAR", "0", "not without"])
def test_ask_question_of_connectives_or_numbers_only_raises_query_error(retriever, question):
    with pytest.raises(QueryError, match="has no words to search for"):
        ask(question, retriever=retriever)


def test_ask_empty_question_raises_query_error(retriever):
    with pytest.raises(QueryError):
        ask("  ?  ", retriever=retriever)


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("What is the first-line treatment for an acute gout flare?", "treatment"),
        ("What dose of colchicine is used for a gout flare?", "dosing"),
        ("How is DKA diagnosed?", "diagnosis"),
        ("How often should serum urate be monitored?", "monitoring"),
        ("How can VTE be prevented after surgery?", "prevention"),
        ("What are the side effects of allopurinol?", "adverse_effects"),
        ("What is the mortality of septic shock?", "prognosis"),
        ("Gout", "overview"),
    ],
)
def test_classify_intent_keyword_cues(question, intent):
    assert classify_intent(question) == intent


def test_split_units_keeps_tables_and_algorithms_whole_and_drops_fragments():
    text = (
        # acr_gout_2020/flare_management.md and ats_idsa_cap_2019/empiric_antibiotic_therapy.md, verbatim.
        "**Low-dose colchicine** is strongly recommended over high-dose colchicine for gout flares (Strong, High). "
        "See above.\n\n"
        "| Parameter | Recommendation |\n|---|---|\n"
        "| **Regimen** | 1.2 mg orally immediately, followed by 0.6 mg orally 1 hour later |\n\n"
        "Acute gout flare confirmed\n  --> NO --> Low-dose colchicine (1.2 mg then 0.6 mg in 1 hour)\n\n"
        "(Strong recommendation, Moderate quality of evidence)\n\n"
        "- **Amoxicillin** 1 g orally three times daily; OR\n- **Doxycycline** 100 mg orally twice daily"
    )
    units = split_units(text)
    assert (
        "Low-dose colchicine is strongly recommended over high-dose colchicine for gout flares (Strong, High).",
        False,
    ) in units
    assert (
        "| Parameter | Recommendation |\n|---|---|\n"
        "| Regimen | 1.2 mg orally immediately, followed by 0.6 mg orally 1 hour later |",
        True,
    ) in units
    assert any(
        is_block and "--> NO --> Low-dose colchicine (1.2 mg then 0.6 mg in 1 hour)" in u for u, is_block in units
    )
    assert ("- Amoxicillin 1 g orally three times daily; OR\n- Doxycycline 100 mg orally twice daily", True) in units
    assert ("Amoxicillin 1 g orally three times daily; OR", False) in units
    assert all("See above" not in u and not u.startswith("(Strong") for u, _ in units)
    for unit, _ in units:
        assert normalise_quote(unit) in normalise_quote(text)


def _evidence(answer: Answer) -> list[Hit]:
    return [
        Hit(passage_id=r.passage_id, doc_id=r.passage_id.split("#")[0], rank=r.n, score=1.0, title=r.title, section="",
            text=r.passage, kind="guidelines", evidence_type="guideline")
        for r in answer.references
    ]  # fmt: skip


def test_check_citations_rejects_altered_statement_and_out_of_range_number(answers):
    answer = answers[FIRST_LINE[0][0]]
    hits = _evidence(answer)
    assert check_citations(answer, hits) == []
    first = answer.sections[0].statements[0]
    altered = answer.model_copy(deep=True)
    altered.sections[0].statements[0] = Statement(
        text=first.text.replace("a", "the", 1) + " Always.", citations=first.citations
    )
    with pytest.raises(CitationError):
        check_citations(altered, hits)
    assert check_citations(altered, hits, strict=False)
    beyond = answer.model_copy(deep=True)
    beyond.sections[0].statements[0] = Statement(text=first.text, citations=[len(answer.references) + 1])
    problems = check_citations(beyond, hits, strict=False)
    assert any("outside 1.." in problem for problem in problems)
    uncited = answer.model_copy(deep=True)
    uncited.sections[0].statements[0] = Statement(text=first.text, citations=[])
    assert check_citations(uncited, hits, strict=False)
    assert check_citations(answer, hits[1:], strict=False)  # a passage outside the evidence set


def test_answer_json_has_exactly_the_documented_keys(answers):
    payload = json.loads(answers[FIRST_LINE[0][0]].model_dump_json())
    assert set(payload) == {
        "id", "question", "audience", "intent", "follow_up_of", "abstained", "bottom_line", "sections",
        "references", "reading_grade", "disclaimer", "timings_ms", "composer", "verification", "notice",
        "pubmed_search",
    }  # fmt: skip
    assert payload["follow_up_of"] is None and payload["pubmed_search"] is None
    assert (payload["composer"], payload["verification"], payload["notice"]) == ("extractive", None, None)
    assert set(payload["bottom_line"]) == {"text", "citations", "statements"}
    assert set(payload["bottom_line"]["statements"][0]) == {"text", "citations", "context"}
    assert set(payload["sections"][0]) == {"title", "statements"}
    assert set(payload["sections"][0]["statements"][0]) == {"text", "citations", "context"}
    assert set(payload["references"][0]) == {
        "n", "type", "title", "source", "year", "doi", "pmid", "url", "passage_id", "section", "passage", "removed",
    }  # fmt: skip
    assert payload["references"][0]["removed"] is False
    assert set(payload["timings_ms"]) == {"retrieval", "composition", "total"}
    gout = payload["references"][0]
    assert gout["source"] == "ACR" and gout["year"] == 2020 and gout["doi"] == "10.1002/art.41247"
    assert gout["url"] == "https://doi.org/10.1002/art.41247"


def test_cli_ask_json_exits_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    code = run(["ask", FIRST_LINE[0][0], "--format", "json", "--library", str(tmp_path / "lib.db")])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["abstained"] is False and "colchicine" in payload["bottom_line"]["text"].lower()


def test_cli_ask_scrubs_identifiers_before_searching_saving_and_printing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    library = tmp_path / "lib.db"
    question = "John Smith (555-867-5309) asks: what is the first-line treatment for an acute gout flare?"
    assert run(["ask", question, "--format", "json", "--library", str(library)]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert "Smith" not in payload["question"] and "867" not in payload["question"]
    assert "[name]" in payload["question"] and "colchicine" in payload["bottom_line"]["text"].lower()
    assert "Removed from the question before searching and saving: name, phone." in captured.err
    data = b"".join(path.read_bytes() for path in tmp_path.glob("lib.db*"))
    assert b"Smith" not in data and b"867-5309" not in data


# --- Follow-ups and saved answers --------------------------------------------------------------------------------

VTE = "Should DOACs or warfarin be used to treat DVT or PE?"
PREGNANCY = "What about in pregnancy?"


def _guidelines(answer: Answer) -> set[str]:
    return {reference.passage_id.split("#")[0] for reference in answer.references}


def test_follow_up_about_pregnancy_abstains_when_the_earlier_topic_never_mentions_pregnancy(answers, retriever):
    # acr_gout_2020 has no passage on pregnancy: repeating the gout answer would mislead.
    earlier = answers[FIRST_LINE[0][0]]
    follow_up = ask(PREGNANCY, retriever=retriever, follow_up_of=earlier)
    assert follow_up.abstained and follow_up.follow_up_of == earlier.id


def test_follow_up_query_carries_the_earlier_question_terms(retriever):
    assert (
        follow_up_query(VTE, PREGNANCY, retriever=retriever)
        == "What about in pregnancy? DOACs warfarin used treat DVT PE"
    )
    with pytest.raises(QueryError):
        follow_up_query(VTE, "  ", retriever=retriever)
    with pytest.raises(QueryError, match="no words"):  # a tester's finding: '???' was answered as a follow-up
        follow_up_query(VTE, "???", retriever=retriever)


def test_follow_up_about_pregnancy_stays_on_the_earlier_guideline(answers, retriever):
    earlier = answers[VTE]
    assert earlier.references[earlier.bottom_line.citations[0] - 1].passage_id.startswith("guideline:ash_vte_2020#")
    follow_up = ask(PREGNANCY, retriever=retriever, follow_up_of=earlier)
    assert follow_up.follow_up_of == earlier.id and follow_up.id != earlier.id
    assert follow_up.question == PREGNANCY and not follow_up.abstained
    assert _guidelines(follow_up) == {"guideline:ash_vte_2020"}
    # ash_vte_2020/advanced_management.md, "### Pregnancy": the guideline's own pregnancy advice.
    assert (
        "Generally, LMWH is the preferred anticoagulant in pregnancy; DOACs and warfarin are contraindicated."
        in follow_up.bottom_line.text
    )
    assert follow_up.intent == earlier.intent == "treatment"  # no intent cue of its own: the earlier one
    check_citations(follow_up, [_hit(r) for r in follow_up.references], strict=True)
    # Without the earlier question, the same words reach other guidelines (GINA asthma in pregnancy first).
    alone = ask(PREGNANCY, retriever=retriever)
    assert alone.follow_up_of is None and _guidelines(alone) - {"guideline:ash_vte_2020"}


def _hit(reference) -> Hit:
    return Hit(
        passage_id=reference.passage_id,
        doc_id=reference.passage_id.split("#")[0],
        rank=reference.n,
        score=0.0,
        title=reference.title,
        section="",
        text=reference.passage,
        kind="guidelines",
        evidence_type="guideline",
    )


def test_saved_answer_round_trips_through_the_store(answers, retriever):
    earlier = answers[VTE]
    save_answer(retriever.store, earlier)
    question, audience, follow_up_of, data = retriever.store.get_answer(earlier.id)
    assert (question, audience, follow_up_of) == (VTE, "clinician", None)
    assert data == earlier.model_dump_json()
    assert load_answer(retriever.store, earlier.id) == earlier
    follow_up = ask(PREGNANCY, retriever=retriever, follow_up_of=earlier)
    save_answer(retriever.store, follow_up)
    save_answer(retriever.store, earlier)  # saving again replaces the row and keeps its follow-ups
    assert retriever.store.get_answer(follow_up.id)[2] == earlier.id
    with pytest.raises(NotFound, match="No answer with id 'ffffffffffffffff'"):
        retriever.store.get_answer("ffffffffffffffff")


def test_cli_ask_saves_the_answer_and_follows_it_up(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    library = str(tmp_path / "lib.db")
    assert run(["ask", VTE, "--library", library]) == 0
    out = capsys.readouterr().out
    match = re.search(r"Answer id: ([0-9a-f]{16}) \(ask a follow-up with --follow-up \1; `medcite library show", out)
    assert match, out[-300:]
    assert run(["ask", "--follow-up", match.group(1), PREGNANCY, "--format", "json", "--library", library]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["follow_up_of"] == match.group(1)
    assert {r["passage_id"].split("#")[0] for r in payload["references"]} == {"guideline:ash_vte_2020"}
    with Store.open(library) as store:
        assert store.get_answer(payload["id"])[2] == match.group(1)


def test_cli_ask_unknown_follow_up_id_is_one_line_exit_4(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    code = run(["ask", "--follow-up", "0123456789abcdef", PREGNANCY, "--library", str(tmp_path / "lib.db")])
    captured = capsys.readouterr()
    assert code == 4
    assert "Error: No answer with id '0123456789abcdef' in the library." in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_cli_schema_answer_prints_the_answer_json_schema(capsys):
    assert run(["schema", "answer"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Answer" and schema["type"] == "object"
    assert {"id", "question", "follow_up_of", "bottom_line", "sections", "references"} <= set(schema["properties"])
    assert {"id", "question", "bottom_line"} <= set(schema["required"])
    assert "follow_up_of" not in schema["required"]


def test_search_passages_orders_by_the_statements_ask_would_quote(retriever):
    # The ranking model puts the cholesterol guideline's primary-prevention algorithm (ages 40-75, risk estimate)
    # first; with the statement model's score the section for LDL-C >= 190 mg/dL, which holds a case of 200, leads.
    question = "LDL-C 200 mg/dL: is a 10-year risk estimate needed before a statin?"
    assert "Decision Algorithm" in retriever.search(question, limit=10)[0].section
    hits = search_passages(question, retriever=retriever, limit=10)
    assert "LDL-C >= 190 mg/dL" in hits[0].section
    assert "high-intensity statin" in hits[0].text
    assert [h.rank for h in hits] == list(range(1, 11))
    assert "statement" in hits[0].scores
    assert {h.passage_id for h in hits} <= {h.passage_id for h in retriever.search(question, limit=20)}


@pytest.mark.parametrize(
    ("question", "passage", "opening"),
    [
        # the Sepsis-3 consensus's own sentence (it answered with antibiotic timing before)
        ("What is septic shock?", "guideline:sepsis3_2016#p", "Septic shock is a subset of sepsis"),
        # a list defines it: its lead-in sentence is the statement's context
        ("What is acute kidney injury?", "guideline:kdigo_aki_2012#p0", "Increase in serum creatinine"),
        # the defining passage did not rank (the gout guideline's CKD dosing did): it is read for the definition
        ("What is CKD?", "guideline:kdigo_ckd_2024#p0", "CKD is defined as abnormalities of kidney structure"),
        # under the heading that defines it, before a sentence of the dictionary shape elsewhere ('... is one of the
        # most common medical complications')
        ("What is perinatal depression?", "guideline:acog_perinatal_depression_2018#p8", "includes major and minor"),
        # in its definition section, the first statement about the term, not the checklist under it
        ("What is severe asthma?", "guideline:gina_asthma_2024#p39", "Severe asthma is asthma that is uncontrolled"),
    ],
)
def test_a_definition_question_gets_the_librarys_definition_as_its_bottom_line(retriever, question, passage, opening):
    answer = ask(question, retriever=retriever)
    assert opening in answer.bottom_line.text
    assert answer.references[answer.bottom_line.citations[0] - 1].passage_id.startswith(passage)
    check_citations(answer, [_hit(r) for r in answer.references], strict=True)


def test_defined_term_reads_only_questions_that_ask_what_a_term_means():
    from medcite.retrieve.question import defined_term, parse_question

    assert defined_term("What is septic shock?") == "septic shock"
    assert defined_term("what's HFrEF") == "HFrEF"
    assert defined_term("What does NSTEMI mean?") == "NSTEMI"
    assert parse_question("Define acute kidney injury").form == "definition"
    assert parse_question("What is septic shock?").term == "septic shock"
    assert defined_term("What is the first-line treatment for migraine?") is None
    assert defined_term("What is the difference between HFrEF and HFpEF?") is None
    assert parse_question("what is the dose of apixaban?").form == "dose"
