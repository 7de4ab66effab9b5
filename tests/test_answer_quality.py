"""Issue 10's failure classes, each held by the right value from the guideline's own text (default library).

Every expected term below is quoted from the guideline pack (``open-medicine`` 0.12.0), file and heading named.
"""

from __future__ import annotations

import json

import pytest

import test_answer
from medcite.answer import ask, check_citations, retrieve_evidence
from medcite.cli import run
from medcite.index import default_guideline_pack, ingest
from medcite.models import Answer, Hit
from medcite.retrieve import Retriever
from medcite.settings import Settings
from medcite.store import Store

# The default guideline pack in a fresh library, lexical retrieval (test_answer's fixture).
retriever = test_answer.retriever


def _cited_documents(answer: Answer) -> set[str]:
    return {reference.passage_id.split("#")[0] for reference in answer.references}


def _bottom_documents(answer: Answer) -> set[str]:
    return {answer.references[n - 1].passage_id.split("#")[0] for n in answer.bottom_line.citations}


def _all_text(answer: Answer) -> str:
    statements = [s for section in answer.sections for s in section.statements]
    return " ".join([answer.bottom_line.text, *(s.plain() for s in statements)]).lower()


def test_outpatient_cap_bottom_line_is_the_antibiotic_not_the_sputum_test(retriever):
    # ats_idsa_cap_2019 empiric_antibiotic_therapy.md, "Healthy Adults Without Comorbidities ...": "Amoxicillin 1 g
    # orally three times daily; OR"; the sputum Gram stain advice (diagnostic_testing.md) is not the answer.
    answer = ask("first line abx for outpatient CAP, no comorbidities?", retriever=retriever)
    assert not answer.abstained
    bottom = answer.bottom_line.text.lower()
    assert "amoxicillin" in bottom
    assert "sputum" not in bottom


@pytest.mark.xfail(
    strict=True,
    reason=(
        "a broad 'how is X treated' question: fluids and potassium replacement score far below statements that "
        "repeat the condition's name (issue 10, open)"
    ),
)
def test_dka_treatment_answer_names_fluids_insulin_and_potassium(retriever):
    # ada_dka_hhs_2024: fluid replacement with isotonic saline, insulin 0.1 units/kg per hour, potassium replacement.
    answer = ask("How is diabetic ketoacidosis treated?", retriever=retriever)
    text = _all_text(answer)
    assert "insulin" in text and "potassium" in text
    assert "fluid" in text or "saline" in text
    assert _bottom_documents(answer) == {"guideline:ada_dka_hhs_2024"}


def test_asthma_exacerbation_bottom_line_is_whole_quoted_statements_not_joined_fragments(retriever):
    answer = ask("How should an acute asthma exacerbation be treated?", retriever=retriever)
    assert not answer.abstained
    assert "Track 1 is preferred because" not in answer.bottom_line.text
    hits = [_hit(reference) for reference in answer.references]
    assert check_citations(answer, hits, strict=False) == []
    assert answer.bottom_line.text == " ".join(s.plain() for s in answer.bottom_line.statements)


def test_af_anticoagulation_bottom_line_is_not_the_ablation_line_and_keeps_men_women_labels(retriever):
    answer = ask(
        "Should a man with atrial fibrillation and a CHA2DS2-VASc of 2 be anticoagulated?", retriever=retriever
    )
    assert not answer.abstained
    assert "paroxysmal AF" not in answer.bottom_line.text  # catheter ablation's "First-line therapy" line
    assert _bottom_documents(answer) == {"guideline:acc_aha_af_2023"}
    # acc_aha_af_2023 anticoagulation.md: the thresholds stand under "**Men:**" and "**Women:**".
    thresholds = [
        s
        for s in [*answer.bottom_line.statements, *(s for sec in answer.sections for s in sec.statements)]
        if "CHA2DS2-VASc = 1" in s.text or "CHA2DS2-VASc ≥ 2" in s.text
    ]
    assert thresholds and all({"Men:", "Women:"} & set(s.context) for s in thresholds)


def test_sepsis_fluid_answer_has_no_burn_fluid_formula(retriever):
    answer = ask("How much IV fluid in the first hours of septic shock?", retriever=retriever)
    assert not answer.abstained
    assert "parkland" not in _all_text(answer)
    assert "guideline:aba_burn_2016" not in _cited_documents(answer)
    # ssc_sepsis_2021: "at least 30 mL/kg of IV crystalloid fluid within the first 3 hours".
    assert "30 ml/kg" in _all_text(answer)


def test_hypertension_answer_has_no_depression_or_ablation_lines(retriever):
    answer = ask("What are the first-line antihypertensive drug classes?", retriever=retriever)
    documents = _cited_documents(answer)
    assert "guideline:apa_mdd_2023" not in documents and "guideline:acc_aha_af_2023" not in documents


def test_hba1c_answer_has_no_news2_oxygen_scale(retriever):
    answer = ask("What HbA1c target is recommended for most adults with type 2 diabetes?", retriever=retriever)
    assert "guideline:rcp_news2_2017" not in _cited_documents(answer)
    assert "scale 2" not in _all_text(answer)


def test_case_vignette_of_gout_flare_in_ckd_answers_from_the_gout_guideline(retriever):
    answer = ask(
        "A 67-year-old man with stage 4 CKD has an acute gout flare of the knee. What is the first-line treatment?",
        retriever=retriever,
    )
    assert not answer.abstained
    assert _bottom_documents(answer) == {"guideline:acr_gout_2020"}


def test_question_with_a_name_and_phone_number_is_scrubbed_and_answered(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDCITE_EMBEDDER", "none")
    question = "Pt Maria Lopez, call back 555-867-5309: low-dose colchicine regimen for an acute gout flare?"
    assert run(["ask", question, "--format", "json", "--library", str(tmp_path / "lib.db")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["abstained"] is False
    assert "Lopez" not in payload["question"] and "867" not in payload["question"]
    # acr_gout_2020 flare_management.md, the low-dose colchicine regimen row.
    assert "1.2 mg" in payload["bottom_line"]["text"] and "0.6 mg" in payload["bottom_line"]["text"]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the abstention model scores this 0.37 against the 0.425 threshold; held-out, about a third of uncovered "
        "questions abstain (issue 10, open)"
    ),
)
def test_copd_exacerbation_question_abstains_on_a_stable_copd_guideline(retriever):
    # gold_copd_2024 in the pack covers stable COPD (initial pharmacotherapy, ABE groups), not exacerbations.
    answer = ask("AECOPD: prednisone dose/duration, and when do I add antibiotics?", retriever=retriever)
    assert answer.abstained


def test_low_dose_colchicine_regimen_question_gets_the_dose(retriever):
    answer = ask("low-dose colchicine regimen for an acute gout flare?", retriever=retriever)
    bottom = answer.bottom_line.text
    assert "1.2 mg orally immediately, followed by 0.6 mg orally 1 hour later" in bottom


def test_follow_up_on_ckd_after_a_gout_flare_answer_stays_on_flares(retriever):
    earlier = ask("What is the first-line treatment for an acute gout flare?", retriever=retriever)
    follow_up = ask("What about in patients with chronic kidney disease?", retriever=retriever, follow_up_of=earlier)
    assert follow_up.follow_up_of == earlier.id and not follow_up.abstained
    assert _bottom_documents(follow_up) == {"guideline:acr_gout_2020"}
    assert "ckd" in follow_up.bottom_line.text.lower() or "kidney" in follow_up.bottom_line.text.lower()


def test_bottom_line_statements_carry_their_own_citations(retriever):
    answer = ask("55M alcohol cirrhosis, hematemesis, HR 115, BP 95/60, Hb 7.8. Suspected variceal bleed - initial "
                 "management?", retriever=retriever)  # fmt: skip
    assert not answer.abstained
    statements = answer.bottom_line.statements
    assert 1 <= len(statements) <= 3 and all(s.citations for s in statements)
    # aasld_cirrhosis_2023 complications.md, "Acute Variceal Hemorrhage (AVH)": octreotide, ceftriaxone, EVL in 12 h.
    text = answer.bottom_line.text.lower()
    assert "octreotide" in text and "ceftriaxone" in text and "12 hours" in text


def _hit(reference) -> Hit:
    return Hit(
        passage_id=reference.passage_id,
        doc_id=reference.passage_id.split("#")[0],
        rank=reference.n,
        score=0.0,
        title=reference.title,
        section=reference.section,
        text=reference.passage,
        kind="guidelines",
        evidence_type="guideline",
    )


# --- Research abstracts, consumer sources, one embedder ---------------------------------------------------------


@pytest.fixture(scope="module")
def pubmedqa_retriever(tmp_path_factory):
    from conftest import DATA

    source = DATA / "pubmedqa" / "ori_pqal.json"
    if not source.exists():
        pytest.skip(f"test data {source} is absent (set MEDCITE_TEST_DATA to the shared data folder)")
    folder = tmp_path_factory.mktemp("pubmedqa")
    settings = Settings(library=folder / "library.db", embedder="none")
    store = Store.open(settings.library)
    ingest(store, "pubmedqa", [source], settings=settings)
    yield Retriever(store, settings), json.loads(source.read_text())
    store.close()


def test_research_bottom_lines_never_quote_background_or_methods(pubmedqa_retriever):
    """PubMedQA abstracts keep their structured labels as headings: the bottom line comes from results or
    conclusions ("The primary objective was ..." or "We conducted a 52-week ..." is never the answer)."""
    retriever, records = pubmedqa_retriever
    checked = 0
    for pmid in list(records)[:40]:
        answer = ask(records[pmid]["QUESTION"], retriever=retriever)
        if answer.abstained:
            continue
        checked += 1
        for statement in answer.bottom_line.statements:
            section = answer.references[statement.citations[0] - 1].section.upper()
            assert not any(label in section for label in ("BACKGROUND", "METHOD", "OBJECTIVE", "AIM")), (
                records[pmid]["QUESTION"],
                section,
                statement.text,
            )
            assert not statement.text.lower().startswith(("we conducted", "the primary objective", "the aim of"))
    assert checked >= 20


def test_research_questions_are_answered_from_their_own_studys_findings(pubmedqa_retriever, tmp_path):
    """Issue 14: when abstracts lead the evidence, the bottom line quotes the lead study's results (PubMedQA keeps
    them under RESULTS), judged by the research abstention model; without the abstracts, the same questions abstain.
    Measured on the first 40 questions: 32 from their own RESULTS and 5 abstentions (the guideline composer: 18
    own, 17 abstained); 28 abstain on a copy of the library without their abstracts."""
    import sqlite3

    from medcite.compose.abstain import abstention_model
    from medcite.compose.extractive import compose_statements, lead_study

    retriever, records = pubmedqa_retriever
    first = list(records)[:40]
    own = abstained = 0
    for pmid in first:
        answer = ask(records[pmid]["QUESTION"], retriever=retriever)
        if answer.abstained:
            abstained += 1
            continue
        reference = answer.references[answer.bottom_line.citations[0] - 1]
        own += reference.passage_id.startswith(f"pmid:{pmid}#") and "RESULTS" in reference.section.upper()
    assert own >= 32 and abstained <= 5, (own, abstained)
    evidence = retrieve_evidence(records[first[1]]["QUESTION"], retriever=retriever)
    assert lead_study(evidence) == f"pmid:{first[1]}"
    assert abstention_model(compose_statements(evidence, evidence.frame.intent, "clinician")) == "abstain_research"

    copy = tmp_path / "without.db"
    with sqlite3.connect(retriever.settings.library) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    settings = Settings(library=copy, embedder="none")
    with Store.open(copy) as store:
        assert store.delete_documents([f"pmid:{pmid}" for pmid in first]) == 40
        without = Retriever(store, settings)
        uncovered = sum(ask(records[pmid]["QUESTION"], retriever=without).abstained for pmid in first)
    assert uncovered >= 28


def test_patient_heart_attack_symptoms_reach_the_consumer_page_when_medquad_is_ingested(tmp_path):
    from conftest import data_path

    pages = [data_path("medquad", "4_MPlus_Health_Topics_QA", "0000442.xml")]
    settings = Settings(library=tmp_path / "library.db", embedder="none")
    with Store.open(settings.library) as store:
        ingest(store, "guidelines", [default_guideline_pack()], settings=settings)
        ingest(store, "medquad", pages, settings=settings)
        answer = ask("What are the symptoms of a heart attack?", retriever=Retriever(store, settings),
                     audience="patient")  # fmt: skip
    assert not answer.abstained
    first = answer.references[answer.bottom_line.statements[0].citations[0] - 1]
    assert first.type == "Consumer health" and first.passage_id.startswith("medquad:")
    assert answer.reading_grade is not None


def test_cli_ask_and_search_load_the_same_embedder(tmp_path, monkeypatch, capsys):
    """The passage `medcite search` ranks first is the one `medcite ask` reads: both load one model."""
    import medcite.embed as embed

    asked: list[str] = []

    def recording_loader(name: str = "auto"):
        asked.append(name)
        return embed.HashEmbedder(32)

    monkeypatch.setattr(embed, "load_embedder", recording_loader)
    monkeypatch.setenv("MEDCITE_EMBEDDER", "auto")
    library = str(tmp_path / "lib.db")
    assert run(["search", "gout flare colchicine", "--library", library, "--format", "json"]) == 0
    assert run(["ask", "low-dose colchicine regimen for a gout flare?", "--library", library, "--format", "json"]) == 0
    capsys.readouterr()
    assert asked == [embed.CLI_EMBEDDER_CHOICE, embed.CLI_EMBEDDER_CHOICE]


@pytest.mark.parametrize("question", ["阿莫西林的剂量是多少", "доза амоксициллина"], ids=["chinese", "russian"])
def test_question_none_of_whose_words_the_library_holds_abstains(retriever, question):
    # A tester's finding: questions in another script got confident answers about unrelated guidelines.
    assert ask(question, retriever=retriever).abstained


def test_question_a_guideline_says_it_does_not_cover_abstains_quoting_that_sentence(retriever):
    # ash_vte_2020, Limitations: "The guideline does not address cancer-associated VTE, which is covered in the
    # separate ASH 2021 guideline". Before, the answer quoted the guideline's other anticoagulant advice.
    answer = ask("cancer-associated VTE - DOAC or LMWH?", retriever=retriever)
    assert answer.abstained
    assert answer.sections[0].title == "What the closest source says it does not cover"
    (statement,) = answer.sections[0].statements
    assert statement.text.startswith("The guideline does not address cancer-associated VTE")
    assert statement.citations == [1]
    assert answer.references[0].passage_id.startswith("guideline:ash_vte_2020#")


def test_a_narrower_scope_exclusion_does_not_silence_a_broader_question(retriever):
    # idsa_uti_2022, Limitations: "The guideline does not address duration for complicated UTI caused by
    # multidrug-resistant organisms specifically" must not stop the general question being answered.
    answer = ask("How should complicated urinary tract infection be treated?", retriever=retriever)
    assert not answer.abstained


def test_scope_objects_splits_the_excluded_topics():
    from medcite.compose.abstain import scope_objects

    text = (
        "The guideline does not address cancer-associated VTE (separate ASH 2021 guideline), pregnancy-associated "
        "VTE, or catheter-related VTE."
    )
    assert scope_objects(text) == [
        "cancer-associated VTE",
        "separate ASH 2021 guideline",
        "pregnancy-associated VTE",
        "catheter-related VTE",
    ]
    assert scope_objects("Cancer-associated VTE and pregnancy-associated VTE are addressed in separate modules.") == [
        "Cancer-associated VTE and pregnancy-associated VTE"
    ]
    assert scope_objects("Low-dose colchicine is strongly recommended.") == []


def test_dosing_question_whose_drug_the_sources_never_dose_abstains_and_says_why(retriever):
    # idsa_uti_2022 names nitrofurantoin only as suitable for uncomplicated cystitis (definitions_and_scope.md);
    # no statement in the pack gives its dose. Before, the answer quoted another drug's regimen.
    answer = ask("nitrofurantoin dose and duration for uncomplicated cystitis in a woman?", retriever=retriever)
    assert answer.abstained
    assert answer.bottom_line.text.startswith("The library's sources name nitrofurantoin but give no dose for it.")


def test_dosing_question_whose_drug_the_sources_dose_is_answered(retriever):
    # nice_ugib_2012: "Offer terlipressin to patients with suspected variceal bleeding at presentation. - Dose: 2 mg"
    answer = ask("terlipressin dose for variceal bleeding?", retriever=retriever)
    assert not answer.abstained
    assert "2 mg" in answer.bottom_line.text


def test_question_about_a_child_abstains_when_the_source_never_mentions_children(retriever):
    # bts_cap_2009 is "... Community Acquired Pneumonia in Adults" and none of its passages names a child; its adult
    # regimen ("Amoxicillin 500 mg TDS orally for 5 days") must not answer a 6-year-old's dose.
    answer = ask("6 yo, 20 kg, CAP, well enough for home treatment. Amoxicillin dose?", retriever=retriever)
    assert answer.abstained
    assert answer.bottom_line.text.startswith("The closest source (BTS Guidelines for the Management of Community")
    assert "never mentions children" in answer.bottom_line.text


def test_question_about_a_newborn_is_answered_from_the_newborn_guideline(retriever):
    # aha_aap_nrp_2020 is about newborns ("the initial steps of newborn resuscitation"); a parent's question about
    # their baby's cord is covered.
    answer = ask("How long should they wait before clamping my baby's cord?", retriever=retriever, audience="patient")
    assert not answer.abstained
    assert _bottom_documents(answer) == {"guideline:aha_aap_nrp_2020"}


def test_a_value_typed_without_its_unit_is_read_in_the_unit_of_the_condition_named_like_it(retriever):
    # aha_asa_ich_2022, "Blood Pressure Targets > SBP 150-220 mmHg": "Acute lowering of SBP to 140 mmHg is safe";
    # the "SBP > 220 mmHg" stratum does not fit a case with SBP 190.
    from medcite.retrieve.question import parse_question
    from medcite.retrieve.rerank import numeric_fit

    facts = parse_question("spontaneous ICH with SBP 190 - what SBP should I target?").facts
    assert numeric_fit(facts, "In patients with spontaneous ICH presenting with SBP > 220 mmHg") == (0.0, 1.0)
    assert numeric_fit(facts, "systolic blood pressure (SBP) between 150 and 220 mmHg")[0] == 1.0
    answer = ask("spontaneous ICH with SBP 190 - what SBP should I target?", retriever=retriever)
    assert "140 mmHg" in answer.bottom_line.text
    assert "> 220" not in answer.bottom_line.text


def test_named_strata_are_read_and_a_sibling_stratum_is_a_miss(retriever):
    # gold_copd_2024 headings "Group E:" (LABA + LAMA + ICS) and the question's group B; NYHA classes in roman
    # numerals; a recommendation's "(Class I, LOE A)" is not a stratum.
    from medcite.retrieve.question import parse_question, stratum_labels
    from medcite.retrieve.rerank import numeric_fit

    assert stratum_labels("NYHA class III-IV (Class I, LOE A)") == [("class", "3"), ("class", "4")]
    frame = parse_question("initial inhaler for GOLD group B COPD?")
    assert frame.labels == (("group", "b"),)
    assert numeric_fit(frame.facts, "Group E: LABA + LAMA", labels=frame.labels) == (0.0, 1.0)
    assert numeric_fit(frame.facts, "Group B: LABA + LAMA", labels=frame.labels) == (1.0, 0.0)
    answer = ask("initial inhaler for GOLD group B COPD?", retriever=retriever)
    assert "Group E" not in answer.bottom_line.text
    assert "fluticasone" not in answer.bottom_line.text.lower()


def test_a_score_named_in_full_fits_the_condition_written_with_its_initials():
    # nice_ugib_2012, "GBS-Based Disposition Algorithm": "GBS = 0 -> Low risk. Consider early discharge".
    from medcite.retrieve.question import parse_question
    from medcite.retrieve.rerank import numeric_fit

    facts = parse_question("Glasgow-Blatchford score 0 upper GI bleed - can they go home?").facts
    assert numeric_fit(facts, "→ GBS = 0\n→ Low risk. Consider early discharge") == (1.0, 0.0)
    assert numeric_fit(facts, "→ GBS ≥ 2\n→ Moderate-to-high risk.") == (0.0, 1.0)


def test_table_cells_are_named_by_their_column_and_a_shared_measure_word_names_nothing():
    # timi_ua_nstemi_2000: "| High Risk | 5-7 | Immediate/Early Invasive Strategy: Coronary angiography < 24 hours";
    # acc_aha_cholesterol_2018: "| CAC Score | Clinical Action |" over "| **0** | Treatment with statin therapy may
    # be withheld or delayed ..."; aha_acc_chest_pain_2021 "HEART Score 7–10" is not the NEWS score 7.
    from medcite.retrieve.question import numeric_conditions, parse_question
    from medcite.retrieve.rerank import numeric_fit

    cac = "| CAC Score | Clinical Action |\n|---|---|\n| **0** | Treatment withheld |\n| **1--99** | Favors statin |"
    assert [(c.name, c.low, c.high) for c in numeric_conditions(cac)] == [
        ("cac score", 0.0, 0.0),
        ("cac score", 1.0, 99.0),
    ]
    timi = parse_question("68M NSTEMI, TIMI score 5, hemodynamically stable. When should he go to the cath lab?")
    header = "Risk Group | Score | Actionable Recommendation"
    title = "TIMI Risk Score for Unstable Angina/Non-ST Elevation MI"
    assert numeric_fit(timi.facts, f"{header}\nHigh Risk | 5-7 | Immediate", title) == (1.0, 0.0)
    assert numeric_fit(timi.facts, f"{header}\nLow Risk | 0-2 | Conservative", title) == (0.0, 1.0)
    news = parse_question("My mum's NEWS score in hospital has gone up to 7. What should happen now?")
    assert numeric_fit(news.facts, "NEWS2 Score >= 7 — Emergency Response") == (1.0, 0.0)
    assert numeric_fit(news.facts, "HEART Score 7–10 (High Risk)") == (0.5, 0.0)


def test_question_about_a_child_outside_every_age_range_of_the_source_abstains(retriever):
    # gina_asthma_2024: "The diagnostic criteria apply to adults and adolescents >=12 years; different thresholds
    # exist for children aged 6-11 years" -- nothing for a 4-year-old.
    answer = ask("controller therapy for a 4 year old with recurrent viral wheeze?", retriever=retriever)
    assert answer.abstained
    assert answer.bottom_line.text.startswith(
        "The closest source (GINA Global Strategy for Asthma Management and Prevention 2024) states age ranges that "
        "leave out a child aged 4."
    )


def test_the_age_of_the_patient_is_the_first_written_age_in_any_unit():
    # A tester's findings: the last age won ('a 34-year-old mother of a 2-year-old'), a catheter size read as an
    # age ('16F'), months and decimals were not read.
    from medcite.retrieve.question import parse_question

    assert parse_question("A 34-year-old mother of a 2-year-old has a PE").age_years == 34
    frame = parse_question("A 75-year-old woman with a 16F indwelling urinary catheter has fever")
    assert (frame.age_years, frame.sex) == (75, "female")
    assert parse_question("A 1.5-year-old with croup").age_years == 1.5
    assert parse_question("A 6-month-old with sepsis: fluid bolus volume?").age_years == 0.5


@pytest.mark.parametrize(
    "question",
    [
        "My 40-year-old son has AF: does he need anticoagulation?",
        "Should I take a baby aspirin every day after a stroke?",
        "Which anticoagulant for atrial fibrillation in a patient with Child-Pugh B cirrhosis?",
    ],
    ids=["adult-son", "baby-aspirin", "child-pugh"],
)
def test_relations_and_child_pugh_do_not_make_the_patient_a_child(retriever, question):
    answer = ask(question, retriever=retriever)
    assert "children" not in answer.bottom_line.text
    assert "leave out a child" not in answer.bottom_line.text


def test_child_pugh_is_not_a_mention_of_children(retriever):
    # aasld_cirrhosis_2023 names "Child-Pugh" classes only; its "Start 100 mg daily" spironolactone is an adult dose.
    answer = ask("A 10-year-old with cirrhosis and ascites: what spironolactone dose?", retriever=retriever)
    assert answer.abstained
    assert "never mentions children" in answer.bottom_line.text


def test_a_source_validated_from_16_years_does_not_answer_for_a_15_year_old(retriever):
    # rcp_news2_2017: "validated for use in adult hospital patients (≥ 16 years)".
    answer = ask("A 15-year-old with a NEWS2 score of 7: what clinical response?", retriever=retriever)
    assert answer.abstained
    assert "leave out a child aged 15" in answer.bottom_line.text


def test_a_tools_limitation_is_not_the_guidelines_scope(retriever):
    # apa_aud_2018: "The AUDIT-C ... does not provide information about the number of AUD criteria present" is about
    # a screening tool; the guideline's severity table (Mild 2-3, Moderate 4-5, Severe 6 or more) answers.
    answer = ask("What determines AUD severity: mild, moderate or severe?", retriever=retriever)
    assert all(section.title != "What the closest source says it does not cover" for section in answer.sections)


def test_a_statement_holding_more_of_the_question_beats_the_scope_exclusion(retriever):
    # acr_gout_2020, "Organ Transplant Recipients": "The guideline does not provide specific recommendations for
    # organ transplant recipients", then "azathioprine with allopurinol -- absolute contraindication".
    answer = ask("Can azathioprine be given with allopurinol in a kidney transplant recipient?", retriever=retriever)
    assert not answer.abstained
    assert "contraindication" in _all_text(answer)


def test_a_dose_given_in_a_list_under_the_drug_counts(retriever):
    # ssc_sepsis_2021: the hydrocortisone list gives "Dose: 200 mg/day IV" without repeating the drug's name.
    answer = ask("What is the dose of hydrocortisone in septic shock?", retriever=retriever)
    assert not answer.abstained
    assert "200 mg" in _all_text(answer)


def test_negative_values_are_read_with_their_sign():
    # endocrine_osteoporosis_2020: "T-score <= -2.5", "T-score between -1.0 and -2.5 (osteopenia)"; a T-score of -2.0
    # is osteopenia, not osteoporosis. 'CURB-65' stays a term.
    from medcite.retrieve.question import numeric_conditions, parse_question
    from medcite.retrieve.rerank import numeric_fit

    frame = parse_question("alendronate x5 yrs, T-score -2.0, no fractures - drug holiday?")
    assert [(f.name, f.value) for f in frame.facts] == [("t-score", -2.0)]
    assert "-2.0" not in frame.focus
    (osteopenia,) = numeric_conditions("T-score between -1.0 and -2.5 (osteopenia)")
    assert (osteopenia.low, osteopenia.high) == (-2.5, -1.0)
    assert numeric_fit(frame.facts, "T-score between -1.0 and -2.5") == (1.0, 0.0)
    assert numeric_fit(frame.facts, "T-score <= -2.5 at the femoral neck") == (0.0, 1.0)
    assert [f.name for f in parse_question("CURB-65 score 2").facts] == ["curb-65 score"]


def test_a_drug_name_written_without_its_hyphen_is_the_drug_the_library_names(retriever):
    """'tPA': the drug dictionary writes 't-PA' for alteplase, which the stroke guideline names ("BP must be <
    185/110 mmHg before alteplase is administered"); the question's concept is held by the library and weighs what
    its equivalent weighs, not the weight of a word the library lacks (a Snowball stem, 'alteplas', once missed it)."""
    from medcite.retrieve.match import TermMatcher
    from medcite.retrieve.question import parse_question

    assert "alteplase" in retriever.vocabulary.equivalents("tPA")
    matcher = TermMatcher.build(parse_question("BP target before tPA?"), retriever)
    tpa = next(c for c in matcher.concepts if c.text == "tPA")
    assert tpa.in_library
    assert tpa.weight == pytest.approx(retriever.idf("alteplase"))


def test_an_ad_hoc_hyphenated_word_is_read_by_its_parts(retriever):
    """'clot-busting', '10-yr' and 'moderate-high' are not in the library, their parts are ('clot', 'year' for the
    shorthand 'yr', 'moderate', 'high'); a compound the library writes ('CHA2DS2-VASc') stays one concept."""
    from medcite.retrieve.match import TermMatcher
    from medcite.retrieve.question import parse_question

    question = "clot-busting drug, 10-yr risk, moderate-high activity, CHA2DS2-VASc 4?"
    concepts = {c.text: c for c in TermMatcher.build(parse_question(question), retriever).concepts}
    assert {"clot", "yr", "moderate", "high", "CHA2DS2-VASc"} <= set(concepts)
    assert not {"clot-busting", "10-yr", "moderate-high"} & set(concepts)
    assert all(concepts[word].in_library for word in ("clot", "yr", "moderate", "CHA2DS2-VASc"))


def test_a_clinical_word_the_library_lacks_is_not_conversation(retriever):
    """'dental' is everyday English and the pack never uses it, but 76 MeSH disease names hold it: a concept the
    library lacks (the endocarditis guideline has no dental prophylaxis), not small talk like 'cleaning'."""
    from medcite.retrieve.match import CONVERSATIONAL_WEIGHT, TermMatcher
    from medcite.retrieve.question import parse_question
    from medcite.vocabulary import disease_name_count

    assert disease_name_count("dental") == 76
    assert disease_name_count("cleaning") == 0
    question = "I have an artificial heart valve. Do I need antibiotics before my dental cleaning?"
    concepts = {c.text: c for c in TermMatcher.build(parse_question(question), retriever).concepts}
    assert not concepts["dental"].in_library
    assert concepts["dental"].weight == max(c.weight for c in concepts.values())
    assert concepts["cleaning"].in_library
    assert concepts["cleaning"].weight < CONVERSATIONAL_WEIGHT * 10


def test_disease_names_are_read_from_the_maintained_dictionary():
    from medcite.vocabulary import disease_names_in

    names = disease_names_in("acute ischemic stroke or migraine, no chest pain")
    assert {"acute ischemic stroke", "migraine", "chest pain"} <= set(names)
    assert "ischemic stroke" not in names  # inside a longer name found


def test_a_condition_no_quoted_source_mentions_abstains_naming_it(retriever):
    """The pack has no migraine guideline: 'migraine prophylaxis' once got the gout guideline's flare prophylaxis
    ("Prophylaxis should be started at the same time as ULT"). A vignette's passing symptom ('mild headache') and a
    ruled-out one ('no chest pain') do not start the rule, and a condition the source names (gout) answers."""
    answer = ask("migraine prophylaxis first line?", retriever=retriever)
    assert answer.abstained
    assert "never mentions migraine" in answer.bottom_line.text
    # The source the reason names is the first one listed.
    assert answer.references[0].title in answer.bottom_line.text
    vignette = ask(
        "58F with BP 200/122 on recheck, mild headache, normal neuro exam, no chest pain, normal creatinine and ECG. "
        "Does she need IV nicardipine?",
        retriever=retriever,
    )
    assert "never mentions" not in vignette.bottom_line.text
    gout = ask("I have gout. Can I still drink beer?", retriever=retriever, audience="patient")
    assert not gout.abstained


def test_a_question_in_another_script_abstains_outright(retriever):
    """'偏头痛 预防' (migraine prevention, in Chinese) has no word the library can weigh; with dense retrieval it once
    got the Sepsis-3 SOFA passage as its bottom line."""
    from medcite.compose.abstain import abstention_score
    from medcite.compose.evidence import gather_evidence
    from medcite.compose.extractive import compose_statements

    evidence = gather_evidence("偏头痛 预防", retriever=retriever)
    assert evidence.matcher.concepts == []
    composition = compose_statements(evidence, evidence.frame.intent, "clinician")
    assert abstention_score(evidence, composition) == 1.0
    answer = ask("偏头痛 预防", retriever=retriever)
    assert answer.abstained
    # Lexical search finds nothing to list, so the answer does not promise a list.
    assert answer.references == [] and "listed below" not in answer.bottom_line.text


def test_a_ruled_out_comorbidity_is_not_what_the_question_asks(retriever):
    """'no DM' describes the patient: DM (rare in the pack, which writes 'diabetes') must not be the question's most
    specific concept, which drives abstention; 'no' before a capitalised abbreviation rules it out like a word."""
    from medcite.retrieve.match import TermMatcher, negated_stems
    from medcite.retrieve.question import parse_question

    assert negated_stems("10y ASCVD 12%, no DM - start meds?") == {"dm"}
    assert negated_stems("no to") == frozenset()
    matcher = TermMatcher.build(parse_question("BP 152/96, 10y ASCVD 12%, no DM - start meds?"), retriever)
    dm = next(c for c in matcher.concepts if c.text == "DM")
    assert dm.is_negated
    assert dm not in matcher.key_concepts(2)


def test_an_entry_term_variant_is_not_the_question_s_own_words(retriever):
    # acc_aha_hypertension_2017 resistant_hypertension_and_crises.md heads one section "BP Reduction Targets in
    # Hypertensive Emergency" and another "Hypertensive Urgency (...)"; MeSH lists both as entry terms of one heading.
    from medcite.retrieve.match import TermMatcher, stems_of
    from medcite.retrieve.question import parse_question

    text = (
        default_guideline_pack() / "content/acc_aha_hypertension_2017/resistant_hypertension_and_crises.md"
    ).read_text(encoding="utf-8")
    urgency = "Hypertensive Urgency (Markedly Elevated BP Without Target Organ Damage)"
    emergency = "BP Reduction Targets in Hypertensive Emergency"
    assert f"### {urgency}" in text and f"### {emergency}" in text
    matcher = TermMatcher.build(parse_question("hypertensive emergency - how fast do I bring the BP down?"), retriever)
    concept = next(c for c in matcher.concepts if c.text == "emergency")
    assert concept.strength(stems_of(urgency)) == 1.0
    assert concept.strength(stems_of(urgency), variants=False) == 0.0
    assert concept.strength(stems_of(emergency), variants=False) == 1.0


def test_sections_leave_out_statements_for_patients_the_question_rules_out(retriever):
    # ats_idsa_cap_2019 empiric_antibiotic_therapy.md: "### Adults With Comorbidities" lists regimens for other
    # patients than a healthy outpatient with no comorbidities; the regimen for him leads the bottom line.
    answer = ask("first line abx for outpatient CAP, no comorbidities?", retriever=retriever)
    assert not answer.abstained
    assert "amoxicillin 1 g orally three times daily" in answer.bottom_line.text.lower()
    statements = [s for section in answer.sections for s in section.statements]
    assert not [s for s in statements if any("With Comorbidities" in c for c in s.context)]
